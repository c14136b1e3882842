"""ingest's service: drops and webhook requests in, raw objects and quarantine out.

The edge (``drop_message``) keeps a batch of payloads as received in the inbox and
announces it; ``ingest_drop`` is the stage core for such a drop; ``ingest_webhook``
processes a hub's HTTP push inline.

A quarantine row is one payload: ``{"line", "payload", "rejected": {reason: readings},
"details": [{"reason", "detail"}, ...]}``; the books count readings.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

from citypipe.core.codecs import jsonl_gz
from citypipe.core.ingest import Normalized, is_one_document, normalize, one_line, split_lines
from citypipe.domain.books import IngestCounts
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import data_key, inbox_key, webhook_id, webhook_key
from citypipe.ports import StoredObject
from citypipe.service.stage import Deps, Outcome, Output, finish


def to_outcome(city: str, normalized: Normalized, ident: str) -> Outcome:
    outputs = [
        Output(
            zone=Zone.RAW,
            key=data_key(Zone.RAW, city, hour, source, ident, "jsonl.gz"),
            body=jsonl_gz(rows),
            records=len(rows),
            format="jsonl.gz",
            content_type="application/x-ndjson",
            notify=Function.ANONYMIZE,
        )
        for (source, hour), rows in sorted(normalized.by_partition.items())
    ]
    return Outcome(
        outputs=outputs,
        counts=IngestCounts(
            payloads=normalized.payloads,
            received=normalized.received,
            accepted=normalized.accepted,
            quarantined=dict(sorted(normalized.reasons.items())),
        ),
        quarantine=normalized.quarantine,
    )


def ingest_drop(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    """The stage core for a drop in the inbox: JSON Lines of payloads as received (gzip)."""
    try:
        text = gzip.decompress(obj.body).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    return to_outcome(
        deps.city.city, normalize(deps.city, message.format, split_lines(text)), ident
    )


def drop_message(deps: Deps, fmt: str, payloads: Sequence[str], trace_id: str = "") -> Message:
    """The edge of ingest: keep a batch of payloads as received and announce it.

    Used by the MQTT/HTTP bridges and the replay. Each payload is kept on one line (a
    pretty-printed one with its line breaks as spaces). The key is the content hash, so the
    same batch dropped twice is stored once.
    """
    text = "".join(one_line(p) + "\n" for p in payloads)
    body = gzip.compress(text.encode(), compresslevel=5, mtime=0)
    key = inbox_key(deps.city.city, fmt, body)
    bucket = deps.names.bucket(Zone.RAW)
    result = deps.store.put_if_absent(bucket, key, body, "application/gzip")
    return Message(
        city=deps.city.city,
        stage="inbox",
        bucket=bucket,
        key=key,
        etag=result.etag,
        records=len(payloads),
        format=fmt,
        trace_id=trace_id,
    )


MAX_REJECTIONS_SHOWN = 20  # a sender is told this many rejections, and the counts of all


def ingest_webhook(
    deps: Deps, source: str, body: str, trace_id: str = ""
) -> tuple[int, dict[str, Any]]:
    """A hub's HTTP push for one source (already authenticated for it): one payload, or
    JSON Lines of payloads, in the source's format. Processed inline.

    Returns (HTTP status, body). When nothing in the request is usable the sender gets a
    400 with the reasons; the rejected payloads are quarantined all the same, so the run
    ledger still balances. The response lists at most MAX_REJECTIONS_SHOWN rejections and
    counts every rejected reading by reason.
    """
    fmt = deps.city.sources[source].format
    # One (possibly pretty-printed) payload; else JSON Lines, or garbage line by line
    lines = [one_line(body)] if is_one_document(body) else split_lines(body)
    normalized = normalize(deps.city, fmt, lines, only_source=source)
    ident = webhook_id(source, body)
    message = Message(
        city=deps.city.city,
        stage="webhook",
        bucket="",
        key=webhook_key(source, ident),
        records=len(lines),
        format=fmt,
        trace_id=trace_id,
    )
    finish(Function.INGEST, message, deps, ident, to_outcome(deps.city.city, normalized, ident))
    rejected = [r for row in normalized.quarantine for r in _rejected(row)]
    told = {
        "quarantined": sum(normalized.reasons.values()),
        "reasons": dict(sorted(normalized.reasons.items())),
        "rejected": rejected[:MAX_REJECTIONS_SHOWN],
        "rejected_total": len(rejected),
    }
    if normalized.accepted == 0:
        return 400, {"error": "no_usable_reading", **told}
    return 202, {"accepted": normalized.accepted, **told}


def _rejected(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What a webhook sender is told of one quarantined payload: per reason, the readings
    rejected and the first detail."""
    first: dict[str, str] = {}
    for detail in row["details"]:
        first.setdefault(detail["reason"], detail["detail"])
    return [
        {"line": row["line"], "reason": reason, "count": count, "detail": first.get(reason, "")}
        for reason, count in row["rejected"].items()
    ]
