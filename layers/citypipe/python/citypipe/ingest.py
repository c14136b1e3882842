"""ingest: hub payloads -> validated, normalized observations in the raw zone.

Nothing is dropped and nothing crashes a batch: a payload or reading that cannot be used
goes to quarantine with a machine-readable reason. Accepted readings are written in one raw
object per (source, hour) — many readings an object — each announced to anonymize.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from citypipe.config import City
from citypipe.domain import QUANTITY_UNITS, Function, Message, Observation, TerminalError, Zone
from citypipe.formats import PARSERS, Reading, Rejection
from citypipe.naming import data_key, inbox_key, input_id
from citypipe.ports import StoredObject
from citypipe.stage import Deps, Outcome, Output, finish, jsonl_gz

MAX_PAYLOAD_BYTES = 256 * 1024


@dataclass
class Normalized:
    """The pure result of ingesting a batch of payloads."""

    by_partition: dict[tuple[str, datetime], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    received: int = 0
    payloads: int = 0

    @property
    def accepted(self) -> int:
        return sum(len(rows) for rows in self.by_partition.values())

    def reject(self, reason: str, detail: str, line: int, payload: str) -> None:
        self.received += 1
        self.reasons[reason] += 1
        self.quarantine.append(
            {"reason": reason, "detail": detail, "line": line, "payload": payload}
        )


def _observation(city: City, fmt: str, reading: Reading) -> tuple[str, Observation] | Rejection:
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


def normalize(city: City, fmt: str, payloads: Iterable[str]) -> Normalized:
    """Parse and validate payloads (each as received, one JSON document) of one format."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise TerminalError("unknown_format", fmt)
    result = Normalized()
    for line, text in enumerate(payloads, start=1):
        if not text.strip():
            continue
        result.payloads += 1
        size = len(text.encode())
        if size > MAX_PAYLOAD_BYTES:
            result.reject("payload_too_large", f"{size} bytes", line, text[:1024])
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            result.reject("invalid_json", str(exc), line, text)
            continue
        items = parser(document)
        if not items:  # e.g. a SenML pack of base or position records only
            result.reject("no_readings", "the payload holds no reading", line, text)
            continue
        for item in items:
            outcome = item if isinstance(item, Rejection) else _observation(city, fmt, item)
            if isinstance(outcome, Rejection):
                result.reject(outcome.reason, outcome.detail, line, text)
                continue
            name, observation = outcome
            result.received += 1
            hour = observation.observed_at.replace(minute=0, second=0, microsecond=0)
            result.by_partition[(name, hour)].append(observation.to_record())
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
    outcome = to_outcome(
        deps.city.city, normalize(deps.city, message.format, text.splitlines()), ident
    )
    outcome.consume_input = True
    return outcome


def drop_message(deps: Deps, fmt: str, payloads: Sequence[str], trace_id: str = "") -> Message:
    """The edge of ingest: keep a batch of payloads as received and announce it.

    Used by the MQTT/HTTP bridges and the replay. The key is the content hash, so the
    same batch dropped twice is stored once.
    """
    body = gzip.compress(("\n".join(payloads) + "\n").encode(), compresslevel=5, mtime=0)
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
    try:
        json.loads(body)
        lines = [body.replace("\n", " ")]  # one (possibly pretty-printed) payload
    except json.JSONDecodeError:
        lines = body.splitlines()  # JSON Lines, or garbage quarantined line by line
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
    reasons = [
        {"reason": q["reason"], "detail": q["detail"], "line": q["line"]}
        for q in normalized.quarantine
    ]
    if normalized.accepted == 0:
        return 400, {"error": "no_usable_reading", "rejected": reasons}
    return 202, {"accepted": normalized.accepted, "quarantined": len(reasons), "rejected": reasons}
