"""The hourly job: publish yesterday, destroy old keys, take the pseudonyms out of the clean
objects of days whose key is gone, keep raw's 24-hour promise and every zone's retention.

No trail outlives its key: once a day's secret is destroyed, nobody can tell whose a
pseudonym of that day was — but the clean zone keeps rows for 90 days, one per detection.
So the same run that destroys a day's secret rewrites every clean object of a
person-related source of that day without its pseudonyms (``scrub_clean``): rows, times,
zones and values stay (re-aggregation still adds up), the day's pseudonyms go. Each
rewrite is idempotent (a deterministic key, a conditional put, an audit record, then the
original deleted), and a day is settled — skipped from then on — once no new object of it
can come.

Raw objects never outlive 24 hours. S3 lifecycle expiration counts whole days, rounds to
the next midnight UTC and runs when the provider gets to it (up to ~48 h), and local
backends do not run it at all. The hourly job therefore deletes whatever is still in the
raw zone after 24 hours: inbox drops and raw objects whose messages were dead-lettered.
Their readings are already counted as dead-lettered; what they held must not outlive the
promise.

Every other zone's retention is kept the same way, on every cloud: quarantine, clean,
aggregates and audit objects older than the zone's retention in the city file are deleted
by the same run (``sweep_retention``); lifecycle rules, where a cloud runs them, are the
second line. The audit zone is kept at least as long as every other (checked on load), so
no lineage record — the marker that makes a stage's effects happen once — goes before the
data it accounts for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa

from citypipe.core.columnar import parquet_bytes, read_parquet
from citypipe.domain.books import ObjectRef, Written
from citypipe.domain.errors import NotFoundError
from citypipe.domain.export_books import CleanDaySettled, CleanScrubbed, KeyDestruction
from citypipe.domain.model import Zone
from citypipe.domain.naming import (
    input_id,
    is_scrubbed,
    scrubbed_key,
    source_of,
)
from citypipe.ports import KeyStore
from citypipe.service.claims import claims_kept_from, sweep_claims
from citypipe.service.export import ExportPorts, export_day
from citypipe.service.export.withdrawal import carry_out_withdrawals
from citypipe.service.kernel import Deps, log

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


# The zones swept to the city's retention (raw has its own 24 hours; open is kept).
RETAINED = (Zone.QUARANTINE, Zone.CLEAN, Zone.AGGREGATES, Zone.AUDIT)


def sweep_retention(deps: Deps, now: datetime) -> dict[Zone, int]:
    """Delete each zone's objects older than its retention in the city file, audit last
    (lifecycle rules count whole days and run late; Scaleway's and local backends may run
    none): how many, by zone."""
    swept = {}
    for zone in RETAINED:
        days = deps.city.retention_days.get(zone)
        swept[zone] = 0 if days is None else sweep(deps, zone, timedelta(days=days), now)
    return swept


SETTLED_AFTER_DAYS = 2  # raw objects live 24 h: no clean object of a day comes later


def scrub_object(deps: Deps, key: str, etag: str, day: str, fired: datetime) -> None:
    """Rewrite one clean object without pseudonyms, once: the scrubbed copy (conditional
    put), its audit record, then the original deleted. A crash anywhere is redone."""
    clean = deps.names.bucket(Zone.CLEAN)
    try:
        obj = deps.store.get(clean, key)
    except NotFoundError:  # scrubbed by a concurrent run
        return
    table = read_parquet(obj.body)
    table = table.set_column(
        table.schema.get_field_index("pseudonym"),
        "pseudonym",
        pa.nulls(table.num_rows, pa.string()),
    )
    target = scrubbed_key(key)
    written = deps.store.put_if_absent(clean, target, parquet_bytes(table))
    record = CleanScrubbed(
        input=ObjectRef(bucket=clean, key=key, etag=obj.etag),
        output=Written(bucket=clean, key=target, etag=written.etag, records=table.num_rows),
        day=day,
        at=fired,
    )
    deps.store.put_if_absent(
        deps.names.bucket(Zone.AUDIT),
        deps.names.scrub_record_key(input_id(clean, key, obj.etag)),
        record.model_dump_json(indent=1).encode(),
        "application/json",
    )
    deps.store.delete(clean, key)


def scrub_clean(deps: Deps, keep_from: date, fired: datetime, since: date | None = None) -> int:
    """Rewrite without pseudonyms every clean object of a person-related source of a day
    before ``keep_from`` (whose secret is destroyed), from ``since`` (default: as far back
    as the clean retention); return how many. Days settled earlier are skipped."""
    city = deps.city
    personal = {n for n, s in city.sources.items() if s.policy.subject_field is not None}
    if not personal:
        return 0
    audit = deps.names.bucket(Zone.AUDIT)
    settled_prefix = deps.names.scrub_days_prefix()
    settled = {
        info.key.removeprefix(settled_prefix).removesuffix(".json")
        for info in deps.store.list(audit, settled_prefix)
    }
    retention = city.retention_days.get(Zone.CLEAN) or 0
    first = since or keep_from - timedelta(days=retention)
    scrubbed = 0
    for back in range((keep_from - first).days, 0, -1):
        day = (keep_from - timedelta(days=back)).isoformat()
        if day in settled:
            continue
        done = 0
        for info in deps.store.list(
            deps.names.bucket(Zone.CLEAN), deps.names.clean_day_prefix(day)
        ):
            if is_scrubbed(info.key) or source_of(info.key) not in personal:
                continue
            scrub_object(deps, info.key, info.etag, day, fired)
            done += 1
        scrubbed += done
        if back > SETTLED_AFTER_DAYS:
            mark = CleanDaySettled(day=day, scrubbed=done, at=fired)
            deps.store.put_if_absent(
                audit, deps.names.scrub_day_key(day), mark.model_dump_json().encode(),
                "application/json",
            )  # fmt: skip
    if scrubbed:
        log.info(
            "pseudonyms scrubbed from the clean zone",
            extra={"function": "export", "count": scrubbed},
        )
    return scrubbed


def destroy_keys(deps: Deps, keys: KeyStore, keep_from: date, fired: datetime) -> int:
    """Destroy the secrets of the days before ``keep_from``, and say so in the audit zone."""
    destroyed = keys.destroy_before(keep_from)
    if destroyed:
        record = KeyDestruction(destroyed_before=keep_from, destroyed=destroyed, at=fired)
        deps.store.put_if_absent(
            deps.names.bucket(Zone.AUDIT),
            deps.names.key_destruction_key(fired),
            record.model_dump_json(indent=1).encode(),
            "application/json",
        )
    return destroyed


@dataclass(frozen=True)
class Housekeeping:
    day: str  # the day published (yesterday, UTC)
    result: str  # export_day's result
    keys_destroyed: int
    clean_scrubbed: int
    raw_swept: int  # objects deleted past their zone's retention, by zone
    quarantine_swept: int
    clean_swept: int
    aggregates_swept: int
    audit_swept: int
    claims_swept: int  # readings' claims of days the edge refuses now (service.claims)
    withdrawals: dict[str, str]  # partner -> what its withdrawal's run did


def hourly(deps: Deps, ports: ExportPorts, fired: datetime) -> Housekeeping:
    """Publish yesterday (UTC) — a no-op once published unless late data arrived — and the
    day whose key this run destroys (its people counts are released before, if they were
    not), destroy the pseudonymization secrets of days past the key retention and scrub
    those days' pseudonyms from the clean zone, delete raw objects older than 24 hours and
    every other zone's objects past its retention, and the claims of readings of days the
    edge refuses now (``service.claims``). Every partner's recorded withdrawal is carried
    out first (``service.export.withdrawal``). The housekeeping runs even when the export
    fails."""
    day = (fired - timedelta(days=1)).date().isoformat()
    keep_from = deps.city.first_living_day(fired.date())
    retiring = (keep_from - timedelta(days=1)).isoformat()  # its key dies in this run
    try:
        withdrawals = carry_out_withdrawals(deps, ports)  # first: the days below lose them
        if retiring != day:  # released by now, or now: never after its key is gone (first:
            # yesterday has more runs); its metadata too, in case it fails before yesterday
            export_day(deps, ports, retiring, closing=True)
        result = export_day(deps, ports, day, closing=retiring == day)
    finally:
        destroyed, scrubbed = retire_keys(deps, ports.keys, keep_from, fired)
        swept = {Zone.RAW: sweep_raw(deps, fired), **sweep_retention(deps, fired)}
        claims = sweep_claims(deps, claims_kept_from(deps.city, fired.date()))
    done = Housekeeping(
        day,
        result,
        destroyed,
        scrubbed,
        raw_swept=swept[Zone.RAW],
        quarantine_swept=swept[Zone.QUARANTINE],
        clean_swept=swept[Zone.CLEAN],
        aggregates_swept=swept[Zone.AGGREGATES],
        audit_swept=swept[Zone.AUDIT],
        claims_swept=claims,
        withdrawals=withdrawals,
    )
    counts = {k: v for k, v in asdict(done).items() if k not in ("day", "result")}
    log.info("housekeeping", extra={"function": "export", **counts})
    return done


def retire_keys(
    deps: Deps, keys: KeyStore, keep_from: date, fired: datetime, since: date | None = None
) -> tuple[int, int]:
    """Destroy the secrets of the days before ``keep_from``, then scrub those days'
    pseudonyms from the clean zone (from ``since``, default the clean retention): (secrets
    destroyed, objects scrubbed). The end of a local run calls it with the day after
    tomorrow, so no key and no pseudonym outlives the run."""
    destroyed = destroy_keys(deps, keys, keep_from, fired)
    return destroyed, scrub_clean(deps, keep_from, fired, since)
