"""ingest's service: hubs' webhook requests and drops in the inbox, through the edge.

- ``ingest_webhook``: a hub's HTTP push (one payload, or JSON Lines of payloads), processed
  inline by the edge; the sender is told what was accepted and why the rest was not.
- ``ingest_core``: the stage core for a drop a city's own system put in the inbox
  (``inbox/<city>/<format>/…``: JSON Lines of payloads, gzip or not, or a CSV file with a
  mapping ``inbox/<city>/csv/<mapping>/…``). Each line is judged on its own.

Bounds: a webhook body, a drop (decompressed) and each line or payload have a size limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from citypipe.core.codecs import gunzip_bounded
from citypipe.core.formats import FORMATS, Context, Rejection, csv_drop
from citypipe.core.ingest import MAX_PAYLOAD_BYTES, Payload, normalize
from citypipe.core.pseudonyms import sensor_keys
from citypipe.domain.city import City
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Message
from citypipe.ports import KeyStore, StoredObject
from citypipe.service.edge import receive, to_outcome
from citypipe.service.stage import Core, Deps, Outcome

MAX_BODY_BYTES = 1024 * 1024  # a webhook request
MAX_BODY_LINES = 10_000
MAX_DROP_BYTES = 64 * 1024 * 1024  # a drop, decompressed
MAX_REJECTIONS_SHOWN = 20  # a sender is told this many rejections, and the counts of all
# The MQTT topic a message was published on, where an HTTP sender knows it (an AWS IoT rule's
# HTTP action: ``X-Citypipe-Topic: ${topic()}``); the aws-iot format names a device by it.
TOPIC_HEADER = "x-citypipe-topic"


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """JSON Lines split at line feeds only (U+2028 and friends are valid inside JSON
    strings); a CR before the LF is JSON whitespace. Blank lines are no payloads."""
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def csv_payloads(city: City, body: bytes, mapping_name: str, at: float) -> list[Payload]:
    """A CSV drop's rows as payloads, each judged alone (a line that is not UTF-8, not CSV
    or of the wrong width is rejected as it is)."""
    mapping = city.csv.get(mapping_name)
    if mapping is None:
        raise TerminalError("unknown_mapping", f"no CSV mapping {mapping_name!r} in the city file")
    ctx = Context(received_at=at)
    raw = body.split(b"\n")
    texts: list[str] = []
    payloads: list[Payload] = []
    for number, line in enumerate(raw, start=1):
        try:
            texts.append(line.rstrip(b"\r").decode("utf-8"))
        except UnicodeDecodeError:  # this line alone
            texts.append("")
            refused = Rejection("invalid_encoding", "a line that is not UTF-8")
            payloads.append(Payload(line, ctx, number, rejection=refused))
    for number, doc in csv_drop.documents(texts, mapping):
        if isinstance(doc, Rejection):
            payloads.append(Payload(raw[number - 1], ctx, number, rejection=doc))
        else:
            payloads.append(Payload(doc, ctx, number, parsed=True))
    return sorted(payloads, key=lambda p: p.line)


def ingest_core(keys: KeyStore | None) -> Core:
    """The stage core for an inbox drop, on the key store of the daily secrets."""

    def ingest_drop(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
        fmt = FORMATS.get(message.format)
        if fmt is None:
            raise TerminalError("unknown_format", f"formats: {sorted(FORMATS)}")
        body = obj.body
        if message.key.endswith(".gz"):
            body = gunzip_bounded(body, MAX_DROP_BYTES)
        elif len(body) > MAX_DROP_BYTES:
            raise TerminalError("drop_too_large", f"{len(body)} bytes > {MAX_DROP_BYTES}")
        at = deps.clock.now().timestamp()
        if fmt is csv_drop.FORMAT:
            parts = message.key.split("/")
            payloads = csv_payloads(deps.city, body, parts[3] if len(parts) > 4 else "", at)
        else:
            ctx = Context(received_at=at)
            payloads = [Payload(line, ctx, number) for number, line in _lines(body)]
        key_for = sensor_keys(keys, deps.city.slug) if keys is not None else None
        normalized = normalize(deps.city, fmt, payloads, now=at, key_for=key_for)
        return to_outcome(deps.names, normalized, ident)

    return ingest_drop


def _is_payload_line(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict | list)
    except orjson.JSONDecodeError:
        return False


def _payloads(body: bytes, ctx: Context) -> list[Payload] | None:
    """One (possibly pretty-printed) document; else JSON Lines when any line is a payload
    (an object or an array) on its own; else one broken document (kept once, not line by
    line). None when over the bounds."""
    if len(body) <= MAX_PAYLOAD_BYTES:  # a larger one is refused as such, below
        try:
            return [Payload(orjson.loads(body), ctx, 1, parsed=True)]
        except orjson.JSONDecodeError:
            pass
    lines = list(_lines(body))
    if len(lines) > MAX_BODY_LINES:
        return None
    if len(lines) > 1 and not any(_is_payload_line(line) for _, line in lines):
        return [Payload(body, ctx, 1)]
    return [Payload(line, ctx, number) for number, line in lines]


def ingest_webhook(
    deps: Deps,
    keys: KeyStore | None,
    source: str,
    fmt_name: str,
    body: bytes | str,
    trace_id: str = "",
    headers: Mapping[str, str] | None = None,
    received_at: float | None = None,
) -> tuple[int, dict[str, Any]]:
    """A hub's HTTP push for one source (``service.webhook`` authenticated it for that
    source): one payload, or JSON Lines of payloads, of format ``fmt_name``, processed inline
    by the edge. Readings of another source's devices are quarantined (``wrong_source``).

    ``received_at``: when the request arrived (epoch s), where the platform says; payloads
    without a time of their own are dated by it.

    Returns (HTTP status, body). The same content received before (a hub's resend or retry):
    202 with ``"resent": true``, nothing written, every reading a duplicate. Nothing usable:
    400 with the reasons (the rejected payloads are quarantined all the same, so the books
    balance). Over the bounds: 413, nothing written. The answer lists at most
    MAX_REJECTIONS_SHOWN rejections and counts every rejected reading by reason.
    """
    fmt = FORMATS.get(fmt_name)
    if fmt is None or fmt is csv_drop.FORMAT:
        return 404, {"error": "unknown_format", "detail": f"formats: {webhook_formats()}"}
    data = body.encode("utf-8", errors="surrogatepass") if isinstance(body, str) else body
    if len(data) > MAX_BODY_BYTES:
        return 413, {"error": "body_too_large", "detail": f"at most {MAX_BODY_BYTES} bytes"}
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    ctx = Context(
        received_at=deps.clock.now().timestamp() if received_at is None else received_at,
        topic=lowered.get(TOPIC_HEADER),
        headers=lowered,
    )
    payloads = _payloads(data, ctx)
    if payloads is None:
        return 413, {"error": "too_many_lines", "detail": f"at most {MAX_BODY_LINES} payloads"}
    received = receive(deps, keys, fmt, payloads, trace_id, only_source=source)
    result = received.normalized
    rejected = [r for row in result.quarantine for r in _rejected(row)]
    answer: dict[str, Any] = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "quarantined": sum(result.reasons.values()),
        "reasons": dict(sorted(result.reasons.items())),
        "rejected": rejected[:MAX_REJECTIONS_SHOWN],
        "rejected_total": len(rejected),
    }
    if received.duplicate:  # this very content was received before: nothing written again
        answer.update(accepted=0, duplicates=result.accepted + result.duplicates, resent=True)
        return 202, answer
    if result.accepted == 0 and result.duplicates == 0:
        return 400, {"error": "no_usable_reading", **answer}
    return 202, answer


def webhook_formats() -> list[str]:
    """The formats a hub may push (a CSV file is a drop, not a push)."""
    return sorted(n for n in FORMATS if n != csv_drop.FORMAT.name)


def _rejected(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What a sender is told of one quarantined payload: per reason, the readings rejected,
    the first detail and its JSON path."""
    first: dict[str, dict[str, str]] = {}
    for detail in row["details"]:
        first.setdefault(detail["reason"], detail)
    return [
        {
            "line": row["line"],
            "reason": reason,
            "count": count,
            "detail": first.get(reason, {}).get("detail", ""),
            "path": first.get(reason, {}).get("path", ""),
        }
        for reason, count in row["rejected"].items()
    ]
