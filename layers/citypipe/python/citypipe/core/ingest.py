"""ingest's core: hub payloads -> validated, normalized observations, and rejections.

Nothing is dropped and nothing crashes a batch: a payload or reading that cannot be used
is rejected with a machine-readable reason (the service quarantines it). Accepted
readings are grouped per (source, hour): one raw object each.

A quarantine row is one payload: ``{"line", "payload", "rejected": {reason: readings},
"details": [{"reason", "detail"}, ...]}``; the books (``Normalized.reasons``) count readings.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from citypipe.core.formats import PARSERS, Parser, Reading, Rejection
from citypipe.domain.city import City
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import (
    EARLIEST_OBSERVATION,
    LATEST_OBSERVATION,
    QUANTITY_RANGES,
    QUANTITY_UNITS,
    Observation,
    plausible_time,
    plausible_value,
)

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
    if not plausible_value(quantity, reading.value):
        low, high = QUANTITY_RANGES.get(quantity, (None, None))
        return Rejection("implausible_value", f"{quantity} outside [{low}, {high}] {unit}")
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
    city: City, fmt: str, parser: Parser, text: str, only_source: str | None = None
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
        if only_source is not None and name != only_source:
            rejected.append(
                Rejection("wrong_source", f"{observation.sensor!r} is not {only_source}'s")
            )
            continue
        hour = observation.observed_at.replace(minute=0, second=0, microsecond=0)
        accepted.append(((name, hour), observation.to_record()))
    if not accepted and not rejected:  # e.g. a SenML pack of base or position records only
        rejected.append(Rejection("no_readings", "the payload holds no reading"))
    return accepted, rejected


def normalize(
    city: City,
    fmt: str,
    payloads: Iterable[str],
    parsers: Mapping[str, Parser] = PARSERS,
    only_source: str | None = None,
) -> Normalized:
    """Parse and validate payloads (each as received, one JSON document) of one format.

    Each payload stands alone: whatever one holds, it is accepted, quarantined, or both
    (reading by reading), and never stops the others. With ``only_source`` (a webhook
    authenticated for that source) a reading of another source's sensor is rejected
    (``wrong_source``): one source's token never writes another's readings.
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
            accepted, rejected = _read(city, fmt, parser, text, only_source)
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


def split_lines(text: str) -> list[str]:
    """JSON Lines split at line feeds only: ``str.splitlines`` also splits at U+2028, U+0085
    and others, which JSON allows raw inside strings. A CR before the LF is JSON whitespace."""
    return text.split("\n")


def one_line(payload: str) -> str:
    """A payload on one line. A raw CR or LF is whitespace outside JSON strings and invalid
    inside them, so a pretty-printed document stays the same document."""
    return payload.replace("\r", " ").replace("\n", " ")


def is_one_document(body: str) -> bool:
    """Whether a request body is one JSON document. Only its shape is read: integers are not
    converted (one of 5,000 digits is still one document, quarantined as such)."""
    try:
        json.loads(body, parse_int=lambda _: 0)
    except (ValueError, RecursionError):
        return False
    return True
