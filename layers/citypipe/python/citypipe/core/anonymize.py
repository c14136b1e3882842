"""anonymize's core: the rest of each source's declared privacy policy, raw -> clean.

The edge already replaced the data subject's identifier by its keyed pseudonym
(``core.pseudonyms``), dropped the other identifiers and resolved the zone; here:

- ``refuse``: a reading that carried a refused field (biometrics, images; the edge never
  wrote its value) is refused whole;
- time is floored to the policy's resolution.

The clean object is written before the raw one is deleted (``service.stage`` keeps that
order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from citypipe.domain.city import City

CLEAN_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("sensor", pa.string()),
        ("quantity", pa.string()),
        ("unit", pa.string()),
        ("value", pa.float64()),
        ("observed_at", pa.timestamp("ms", tz="UTC")),
        ("zone", pa.string()),
        ("pseudonym", pa.string()),
    ]
)


@dataclass
class Anonymized:
    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {name: [] for name in CLEAN_SCHEMA.names}
    )
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.columns["source"])

    def table(self) -> pa.Table:
        return pa.Table.from_pydict(self.columns, schema=CLEAN_SCHEMA)


def _floor(at: datetime, minutes: int) -> datetime:
    if minutes <= 1:
        return at.replace(second=0, microsecond=0)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((at - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=elapsed - elapsed % minutes)


def anonymize_records(city: City, records: Iterable[dict[str, Any]]) -> Anonymized:
    """The pure core: raw (pseudonymous) records in, clean columns and refusals out."""
    out = Anonymized()
    cols = out.columns
    zones = set(city.zone_index.ids)
    for record in records:
        source = city.sources.get(record.get("source", ""))
        if source is None:
            out.refused["unknown_source"] += 1
            continue
        policy = source.policy
        refused = record.get("refused")
        if refused:
            out.refused[f"refused_field:{refused}"] += 1
            continue
        alias = record.get("pseudonym")
        if policy.subject_field is not None and not alias:
            # the edge pseudonymizes; the policy may have changed since: bad data, not a crash
            out.refused["missing_personal_field"] += 1
            continue
        zone = record.get("zone")
        if zone not in zones:
            out.refused["outside_zones"] += 1
            continue
        observed = datetime.fromisoformat(record["observed_at"]).astimezone(UTC)
        cols["source"].append(record["source"])
        cols["sensor"].append(record["sensor"])
        cols["quantity"].append(record["quantity"])
        cols["unit"].append(record["unit"])
        cols["value"].append(record["value"])
        cols["observed_at"].append(_floor(observed, policy.time_resolution_minutes))
        cols["zone"].append(zone)
        cols["pseudonym"].append(alias if policy.subject_field is not None else None)
    return out
