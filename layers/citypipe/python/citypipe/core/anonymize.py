"""anonymize's core: apply each source's declared privacy policy, raw -> clean.

- ``drop``: the field is gone.
- ``pseudonymize``: HMAC-SHA-256 of the normalized value under the sensor's key for that
  day; the key is derived from the day's secret, which the key store destroys later, so
  pseudonyms cannot be linked across sensors or days, nor reversed once the key is gone.
- ``refuse``: a reading carrying the field (biometrics, images) is refused whole.
- time is floored to the policy's resolution, a point becomes the zone holding it.

The clean object is written before the raw one is deleted (``service.stage`` keeps that
order).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from citypipe.domain.city import Action, City
from citypipe.domain.errors import KeyDestroyedError
from citypipe.ports import KeyStore

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

KeyFor = Callable[[str, date], bytes]


def sensor_keys(keys: KeyStore, city: str) -> KeyFor:
    """Per-sensor daily keys: HMAC(day's secret, city/sensor), cached per invocation."""
    cache: dict[tuple[str, date], bytes] = {}

    def key_for(sensor: str, day: date) -> bytes:
        if (sensor, day) not in cache:
            label = f"citypipe/v1/sensor-key/{city}/{sensor}".encode()
            cache[sensor, day] = hmac.new(keys.daily_secret(day), label, hashlib.sha256).digest()
        return cache[sensor, day]

    return key_for


def normalize_identifier(value: str | float) -> str:
    """One device, one pseudonym: 'AA-BB-..' and 'aa:bb:..' are the same MAC."""
    text = str(value).strip().lower()
    return "".join(ch for ch in text if ch.isalnum()) or text


def pseudonym(key: bytes, value: str | float) -> str:
    return hmac.new(key, normalize_identifier(value).encode(), hashlib.sha256).hexdigest()


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


def anonymize_records(city: City, records: Iterable[dict[str, Any]], key_for: KeyFor) -> Anonymized:
    """The pure core: raw observation records in, clean columns and refusals out."""
    out = Anonymized()
    cols = out.columns
    for record in records:
        source = city.sources.get(record["source"])
        if source is None:
            out.refused["unknown_source"] += 1
            continue
        policy = source.policy
        personal = record.get("personal") or {}
        refused = [f for f in personal if policy.personal.get(f) is Action.REFUSE]
        if refused:
            out.refused[f"refused_field:{refused[0]}"] += 1
            continue
        subject = policy.subject_field
        if subject is not None and subject not in personal:
            # ingest checks this, but the policy may have changed since: bad data, not a crash
            out.refused["missing_personal_field"] += 1
            continue
        zone = record.get("zone")
        if zone is not None and zone not in city.zone_index.ids:
            zone = None
        if zone is None and record.get("location"):
            lon, lat = record["location"]
            zone = city.zone_index.zone_of(lon, lat)
        if zone is None:
            out.refused["outside_zones"] += 1
            continue
        observed = datetime.fromisoformat(record["observed_at"]).astimezone(UTC)
        alias = None
        if subject is not None:
            try:
                key = key_for(record["sensor"], observed.date())
            except KeyDestroyedError:
                out.refused["key_destroyed"] += 1  # too late: that day's key is gone
                continue
            alias = pseudonym(key, personal[subject])
        cols["source"].append(record["source"])
        cols["sensor"].append(record["sensor"])
        cols["quantity"].append(record["quantity"])
        cols["unit"].append(record["unit"])
        cols["value"].append(record["value"])
        cols["observed_at"].append(_floor(observed, policy.time_resolution_minutes))
        cols["zone"].append(zone)
        cols["pseudonym"].append(alias)
    return out
