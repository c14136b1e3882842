"""ingest: hub payloads -> validated, normalized observations in the raw zone.

Nothing is dropped and nothing crashes a batch: a payload or reading that cannot be used
goes to quarantine with a machine-readable reason. Accepted readings are written in one raw
object per (source, hour) — many readings an object — each announced to anonymize.

A quarantine row is one payload: ``{"line", "payload", "rejected": {reason: readings},
"details": [{"reason", "detail"}, ...]}``; the books (``Normalized.reasons``) count readings.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from citypipe.config import City
from citypipe.domain import (
    EARLIEST_OBSERVATION,
    LATEST_OBSERVATION,
    QUANTITY_UNITS,
    Function,
    Message,
    Observation,
    TerminalError,
    Zone,
    plausible_time,
)
from citypipe.formats import PARSERS, Parser, Reading, Rejection
from citypipe.naming import data_key, inbox_key, input_id
from citypipe.ports import StoredObject
from citypipe.stage import Deps, Outcome, Output, finish, jsonl_gz

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_DETAILS = 5  # distinct details kept per quarantined payload (each reason has one)

Partition = tuple[str, datetime]  # (source, hour)


@dataclass
class Normalized:
    """The pure result of ingesting a batch of payloads."""

    by_partition: dict[Partition, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # a row per payload
    reasons: Counter[str] = field(default_factory=Counter)  # rejected readings by reason
    received: int = 0
    payloads: int = 0

    @property
    def accepted(self) -> int:
        return sum(len(rows) for rows in self.by_partition.values())

    def reject(self, line: int, payload: str, rejections: Sequence[Rejection]) -> None:
        """Quarantine a payload's rejected readings: one row, the readings counted by reason."""
        counts = Counter(r.reason for r in rejections)
        self.received += len(rejections)
        self.reasons.update(counts)
        self.quarantine.append(
            {
                "line": line,
                "payload": payload,
                "rejected": dict(counts),
                "details": _details(rejections),
            }
        )


def _details(rejections: Iterable[Rejection]) -> list[dict[str, str]]:
    """The first MAX_DETAILS distinct (reason, detail) pairs, and the first of any other reason."""
    details: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    reasons: set[str] = set()
    for rejection in rejections:
        pair = (rejection.reason, rejection.detail)
        if pair in seen or (len(details) >= MAX_DETAILS and rejection.reason in reasons):
            continue
        seen.add(pair)
        reasons.add(rejection.reason)
        details.append({"reason": rejection.reason, "detail": rejection.detail})
    return details


def _observation(city: City, fmt: str, reading: Reading) -> tuple[str, Observation] | Rejection:
    if not plausible_time(reading.observed_at):
        return Rejection(
            "implausible_time",
            f"observed_at {reading.observed_at.isoformat()} is outside "
            f"[{EARLIEST_OBSERVATION.date()}, {LATEST_OBSERVATION.date()}) UTC",
        )
    found = city.source_for(fmt, reading.sensor)
    if found is None:
        return Rejection("unknown_sensor", f"sensor {reading.sensor!r} is in no {fmt} source")
    name, source = found
    quantity = source.quantities.get(reading.measure)
    if quantity is None:
        return Rejection("unknown_quantity", f"{name} does not declare {reading.measure!r}")
    undeclared = sorted(set(reading.personal) - set(source.policy.personal))
    if undeclared:
        return Rejection("undeclared_personal_field", f"{name} does not declare {undeclared}")
    subject = source.policy.subject_field
    if subject and subject not in reading.personal:
        return Rejection("missing_personal_field", f"{name} readings carry {subject!r}")
    unit = source.units.get(reading.unit, reading.unit)
    if unit != QUANTITY_UNITS[quantity]:
        return Rejection("unit_mismatch", f"{quantity} is in {QUANTITY_UNITS[quantity]!r}")
    if reading.location is None and reading.zone is None:
        return Rejection("missing_location", "a location or a zone is required")
    try:
        observation = Observation(
            source=name,
            sensor=reading.sensor,
            quantity=quantity,
            unit=unit,
            value=reading.value,
            observed_at=reading.observed_at,
            location=reading.location,
            zone=reading.zone,
            personal=reading.personal,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "observation"
        return Rejection("invalid_observation", f"{where}: {first['msg']}")
    return name, observation


def _read(
    city: City, fmt: str, parser: Parser, text: str
) -> tuple[list[tuple[Partition, dict[str, Any]]], list[Rejection]]:
    """One payload's accepted records (with their partition) and rejected readings.

    Raises ValueError (JSONDecodeError included), OverflowError or RecursionError on a
    payload beyond reach; the caller quarantines that payload whole.
    """
    accepted: list[tuple[Partition, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    for item in parser(json.loads(text)):
        outcome = item if isinstance(item, Rejection) else _observation(city, fmt, item)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
            continue
        name, observation = outcome
        hour = observation.observed_at.replace(minute=0, second=0, microsecond=0)
        accepted.append(((name, hour), observation.to_record()))
    if not accepted and not rejected:  # e.g. a SenML pack of base or position records only
        rejected.append(Rejection("no_readings", "the payload holds no reading"))
    return accepted, rejected


def normalize(
    city: City, fmt: str, payloads: Iterable[str], parsers: Mapping[str, Parser] = PARSERS
) -> Normalized:
    """Parse and validate payloads (each as received, one JSON document) of one format.

    Each payload stands alone: whatever one holds, it is accepted, quarantined, or both
    (reading by reading), and never stops the others.
    """
    parser = parsers.get(fmt)
    if parser is None:
        raise TerminalError("unknown_format", fmt)
    result = Normalized()
    for line, text in enumerate(payloads, start=1):
        if not text.strip():
            continue
        result.payloads += 1
        size = len(text.encode())
        if size > MAX_PAYLOAD_BYTES:
            result.reject(line, text[:1024], [Rejection("payload_too_large", f"{size} bytes")])
            continue
        try:
            accepted, rejected = _read(city, fmt, parser, text)
        except json.JSONDecodeError as exc:
            accepted, rejected = [], [Rejection("invalid_json", str(exc))]
        except (ValueError, OverflowError, RecursionError) as exc:
            # Valid JSON beyond reach (an integer of 5,000 digits, nesting deeper than the
            # recursion limit) or an input no parser foresaw: this payload alone, whole.
            accepted, rejected = [], [Rejection("invalid_payload", f"{type(exc).__name__}: {exc}")]
        for partition, record in accepted:
            result.received += 1
            result.by_partition[partition].append(record)
        if rejected:
            result.reject(line, text, rejected)
    return result


def to_outcome(city: str, normalized: Normalized, ident: str) -> Outcome:
    outputs = [
        Output(
            zone=Zone.RAW,
            key=data_key("raw", city, hour, source, ident, "jsonl.gz"),
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
        counts={
            "payloads": normalized.payloads,
            "received": normalized.received,
            "accepted": normalized.accepted,
            "quarantined": dict(sorted(normalized.reasons.items())),
        },
        quarantine=normalized.quarantine,
    )


def ingest_drop(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    """Core for a drop object in the inbox: JSON Lines of payloads as received (gzip)."""
    try:
        text = gzip.decompress(obj.body).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    return to_outcome(deps.city.city, normalize(deps.city, message.format, _lines(text)), ident)


def _lines(text: str) -> list[str]:
    """JSON Lines split at line feeds only: ``str.splitlines`` also splits at U+2028, U+0085
    and others, which JSON allows raw inside strings. A CR before the LF is JSON whitespace."""
    return text.split("\n")


def _one_line(payload: str) -> str:
    """A payload on one line. A raw CR or LF is whitespace outside JSON strings and invalid
    inside them, so a pretty-printed document stays the same document."""
    return payload.replace("\r", " ").replace("\n", " ")


def drop_message(deps: Deps, fmt: str, payloads: Sequence[str], trace_id: str = "") -> Message:
    """The edge of ingest: keep a batch of payloads as received and announce it.

    Used by the MQTT/HTTP bridges and the replay. Each payload is kept on one line (a
    pretty-printed one with its line breaks as spaces). The key is the content hash, so the
    same batch dropped twice is stored once.
    """
    text = "".join(_one_line(p) + "\n" for p in payloads)
    body = gzip.compress(text.encode(), compresslevel=5, mtime=0)
    key = inbox_key(deps.city.city, fmt, input_id(fmt, hashlib.sha256(body).hexdigest()))
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


def ingest_webhook(
    deps: Deps, fmt: str, body: str, trace_id: str = ""
) -> tuple[int, dict[str, Any]]:
    """A hub's HTTP push: one payload, or JSON Lines of payloads. Processed inline.

    Returns (HTTP status, body). When nothing in the request is usable the sender gets a
    400 with every reason; the rejected payloads are quarantined all the same, so the run
    ledger still balances.
    """
    if fmt not in PARSERS:
        return 404, {"error": "unknown_format", "detail": f"formats: {sorted(PARSERS)}"}
    # One (possibly pretty-printed) payload; else JSON Lines, or garbage line by line
    lines = [_one_line(body)] if _is_one_document(body) else _lines(body)
    normalized = normalize(deps.city, fmt, lines)
    ident = input_id("webhook", fmt, hashlib.sha256(body.encode()).hexdigest())
    message = Message(
        city=deps.city.city,
        stage="webhook",
        bucket="",
        key=f"webhook/{fmt}/{ident}",
        records=len(lines),
        format=fmt,
        trace_id=trace_id,
    )
    finish(Function.INGEST, message, deps, ident, to_outcome(deps.city.city, normalized, ident))
    rejected = [_rejected(row) for row in normalized.quarantine]
    reasons = [reason for per_line in rejected for reason in per_line]
    if normalized.accepted == 0:
        return 400, {"error": "no_usable_reading", "rejected": reasons}
    quarantined = sum(normalized.reasons.values())
    return 202, {"accepted": normalized.accepted, "quarantined": quarantined, "rejected": reasons}


def _is_one_document(body: str) -> bool:
    """Whether a request body is one JSON document. Only its shape is read: integers are not
    converted (one of 5,000 digits is still one document, quarantined as such)."""
    try:
        json.loads(body, parse_int=lambda _: 0)
    except (ValueError, RecursionError):
        return False
    return True


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
