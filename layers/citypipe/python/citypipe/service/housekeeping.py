"""The hourly job: publish yesterday, destroy old keys, keep raw's 24-hour promise and
quarantine's retention.

Raw objects never outlive 24 hours. S3 lifecycle expiration counts whole days, rounds to
the next midnight UTC and runs when the provider gets to it (up to ~48 h), and local
backends do not run it at all. The hourly job therefore deletes whatever is still in the
raw zone after 24 hours: inbox drops and raw objects whose messages were dead-lettered.
Their readings are already counted as dead-lettered; what they held must not outlive the
promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from citypipe.domain.books import KeyDestruction
from citypipe.domain.model import Zone
from citypipe.domain.naming import key_destruction_key
from citypipe.ports import KeyStore
from citypipe.service.export import export_day
from citypipe.service.stage import Deps, log

RAW_LIFETIME = timedelta(hours=24)


def sweep(deps: Deps, zone: Zone, lifetime: timedelta, now: datetime) -> int:
    """Delete a zone's objects older than ``lifetime``; return how many."""
    bucket = deps.names.bucket(zone)
    expired = [
        info.key
        for info in deps.store.list(bucket)
        if info.modified is not None and now - info.modified > lifetime
    ]
    for key in expired:
        deps.store.delete(bucket, key)
    if expired:
        log.warning(
            "objects past their retention deleted",
            extra={"function": "export", "zone": zone.value, "count": len(expired)},
        )
    return len(expired)


def sweep_raw(deps: Deps, now: datetime) -> int:
    """Delete raw-zone objects older than 24 hours; return how many."""
    return sweep(deps, Zone.RAW, RAW_LIFETIME, now)


def sweep_quarantine(deps: Deps, now: datetime) -> int:
    """Delete quarantine rows older than the city's quarantine retention (lifecycle rules
    count whole days and run late; local backends have none)."""
    days = deps.city.retention_days.get(Zone.QUARANTINE)
    return 0 if days is None else sweep(deps, Zone.QUARANTINE, timedelta(days=days), now)


def destroy_keys(deps: Deps, keys: KeyStore, keep_from: date, fired: datetime) -> int:
    """Destroy the secrets of the days before ``keep_from``, and say so in the audit zone."""
    destroyed = keys.destroy_before(keep_from)
    if destroyed:
        record = KeyDestruction(destroyed_before=keep_from, destroyed=destroyed, at=fired)
        deps.store.put_if_absent(
            deps.names.bucket(Zone.AUDIT),
            key_destruction_key(deps.city.city, fired),
            record.model_dump_json(indent=1).encode(),
            "application/json",
        )
    return destroyed


@dataclass(frozen=True)
class Housekeeping:
    day: str  # the day published (yesterday, UTC)
    result: str  # export_day's result
    keys_destroyed: int
    raw_swept: int
    quarantine_swept: int


def hourly(deps: Deps, keys: KeyStore, fired: datetime) -> Housekeeping:
    """Publish yesterday (UTC) — a no-op once published unless late data arrived —, destroy
    the pseudonymization secrets of days past the key retention, delete raw objects older
    than 24 hours and quarantine rows past the quarantine retention. The housekeeping
    runs even when the export fails."""
    day = (fired - timedelta(days=1)).date().isoformat()
    keep_from = fired.date() - timedelta(days=deps.city.key_retention_days - 1)
    try:
        result = export_day(deps, day)
    finally:
        destroyed = destroy_keys(deps, keys, keep_from, fired)
        swept = sweep_raw(deps, fired)
        quarantine = sweep_quarantine(deps, fired)
    log.info(
        "housekeeping",
        extra={
            "function": "export",
            "keys_destroyed": destroyed,
            "raw_swept": swept,
            "quarantine_swept": quarantine,
        },
    )
    return Housekeeping(day, result, destroyed, swept, quarantine)
