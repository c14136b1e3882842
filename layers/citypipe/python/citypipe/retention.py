"""Retention the lifecycle rules cannot promise: raw objects never outlive 24 hours.

S3 lifecycle expiration counts whole days, rounds to the next midnight UTC and runs when
the provider gets to it (up to ~48 h), and local backends do not run it at all. The
hourly job therefore deletes whatever is still in the raw zone after 24 hours: inbox
drops and raw objects whose messages were dead-lettered. Their readings are already
counted as dead-lettered; what they held must not outlive the promise.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from citypipe.domain import Zone
from citypipe.stage import Deps, log

RAW_LIFETIME = timedelta(hours=24)


def sweep_raw(deps: Deps, now: datetime) -> int:
    """Delete raw-zone objects older than 24 hours; return how many."""
    bucket = deps.names.bucket(Zone.RAW)
    expired = [
        info.key
        for info in deps.store.list(bucket)
        if info.modified is not None and now - info.modified > RAW_LIFETIME
    ]
    for key in expired:
        deps.store.delete(bucket, key)
    if expired:
        log.warning(
            "raw objects past 24 h deleted", extra={"function": "export", "count": len(expired)}
        )
    return len(expired)
