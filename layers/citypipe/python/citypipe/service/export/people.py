"""A day's people counts: released once, at a fixed time, from the clean zone.

People counts are not rolled up by aggregate (nothing there may link a device's windows):
export reads the day's clean rows of the sources that count people — each device under one
pseudonym for the day — bounds each device's day and counts it (``core.people``).

When, and whether, is never decided by the data (decision 0078): a people dataset's day is
released once, at the first export after ``release_time`` — the last hour before the day's
key is destroyed, so late data has come — or, at the latest, by the run that destroys the
key (it exports the day first, ``closing``), and never again. Before that time nothing of it
is published; after it, an export publishes the release the ledger names (recomputed from
the inputs the ledger entry lists: the same counts, noise and bytes), whatever late data
came since. A day whose key died before its release is refused, not counted from nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from citypipe.core.columnar import read_parquet
from citypipe.core.disclosure import noise_of
from citypipe.core.noise import noise_key
from citypipe.core.people import (
    CONTRIBUTED_FROM,
    PeopleRelease,
    choice_key,
    contributions,
    release_id,
)
from citypipe.domain.city import City
from citypipe.domain.errors import KeyDestroyedError, NotFoundError
from citypipe.domain.export_books import EpsilonCharge
from citypipe.domain.model import Zone
from citypipe.domain.naming import is_scrubbed, source_of
from citypipe.ports import GET_CONCURRENCY, KeyStore
from citypipe.service.export.devices import DeviceSpill
from citypipe.service.export.ledger import (
    BUDGET_SPENT,
    NOT_REPRODUCIBLE,
    PSEUDONYMS_GONE,
    charge,
    entry,
)
from citypipe.service.kernel import Deps

BEFORE_THE_KEY_DIES = timedelta(hours=1)  # the release: the last hourly run of the key's life


def release_time(city: City, day: str) -> datetime:
    """When a day's people counts are released: an hour before its key is destroyed (the
    hourly job destroys a day's secret once ``key_retention_days`` have begun after it)."""
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return midnight + timedelta(days=city.key_retention_days) - BEFORE_THE_KEY_DIES


@dataclass(frozen=True)
class PeopleDay:
    """What a people dataset's day is at an export: its release (to publish, ``charged``
    naming its ledger entry), or the reason it is refused (``release`` withheld: its
    figures are computed from nothing, and never published)."""

    release: PeopleRelease
    charged: EpsilonCharge | None
    refused: str = ""


def people_sources(city: City, quantities: Sequence[str]) -> set[str]:
    """The sources whose devices measure one of ``quantities``."""
    return {
        profile.source
        for profile in city.registry.profiles.values()
        if any(spec.quantity in quantities for spec in profile.fields.values())
    }


def people_day(
    deps: Deps,
    keys: KeyStore,
    dataset: str,
    day: str,
    quantities: Sequence[str],
    due: bool,
    scratch: Path,
    *,
    compressed: bool = False,
) -> PeopleDay | None:
    """The people dataset's day at this export; None when its release is not ``due`` yet
    (its release time has not come, and its key is not about to die). ``scratch``: where
    the day's contributions are spilled while they are counted (``devices``), compressed
    or not."""
    if not due:
        return None
    key = noise_key(keys.noise_secret(), deps.city.slug)
    directory = scratch / f"people-{dataset}"
    count = partial(_release, deps, key, dataset, day, quantities, directory, compressed)
    charged = entry(deps, day, dataset)
    if charged is None:
        if not _key_lives(keys, day):
            return _withheld(deps, key, PSEUDONYMS_GONE)
        inputs = _inputs(deps, day, quantities)
        release = count(inputs)
        if release is None:
            return _withheld(deps, key, PSEUDONYMS_GONE)
        charged = charge(deps, day, dataset, release.release, inputs)
        if charged is None:
            return _withheld(deps, key, BUDGET_SPENT)
        if charged.release == release.release:
            return PeopleDay(release, charged)
    release = count(charged.inputs)
    if release is None or release.release != charged.release:
        return _withheld(deps, key, NOT_REPRODUCIBLE)
    return PeopleDay(release, charged)


def _key_lives(keys: KeyStore, day: str) -> bool:
    try:
        keys.daily_secret(datetime.fromisoformat(day).date())
    except KeyDestroyedError:
        return False
    return True


def _inputs(deps: Deps, day: str, quantities: Sequence[str]) -> list[str]:
    """The day's clean objects of the people sources, ``key@etag``, in key order."""
    sources = people_sources(deps.city, quantities)
    found = deps.store.list(deps.names.bucket(Zone.CLEAN), deps.names.clean_day_prefix(day))
    return sorted(f"{i.key}@{i.etag}" for i in found if source_of(i.key) in sources)


def _release(
    deps: Deps,
    key: bytes,
    dataset: str,
    day: str,
    quantities: Sequence[str],
    directory: Path,
    compressed: bool,
    inputs: list[str],
) -> PeopleRelease | None:
    """The release counted from exactly these clean objects; None when one is gone,
    changed or scrubbed of its pseudonyms. They are read a few at a time, their
    contributions spilled to ``directory`` by device (``devices``): never the whole day in
    memory."""
    wanted = dict(item.rsplit("@", 1) for item in inputs)
    if any(is_scrubbed(k) for k in wanted):
        return None
    noise = noise_of(deps.city)
    spill = DeviceSpill(directory, compressed)
    try:
        if not _spilled(deps, wanted, quantities, spill):
            return None
        counts = spill.counts(noise.cap, choice_key(key))
    finally:
        spill.remove()
    return PeopleRelease(
        counts=counts,
        noise=noise,
        key=key,
        release=release_id(key, dataset, day, noise, counts),
        k=deps.city.disclosure.k,
        ceilings=deps.city.device_ceilings,
    )


def _spilled(
    deps: Deps, wanted: dict[str, str], quantities: Sequence[str], spill: DeviceSpill
) -> bool:
    """Every one of the ``wanted`` clean objects (key: etag) read, in key order, and its
    contributions added to ``spill``; False when one is gone or changed."""
    bucket = deps.names.bucket(Zone.CLEAN)
    keys = sorted(wanted)
    for start in range(0, len(keys), GET_CONCURRENCY):
        try:
            read = deps.store.get_many(bucket, keys[start : start + GET_CONCURRENCY])
        except NotFoundError:  # an input gone: the release cannot be recomputed
            return False
        if any(o.etag.strip('"') != wanted[o.key].strip('"') for o in read):
            return False
        for o in read:  # a clean row's other columns are never needed here
            spill.add(contributions(read_parquet(o.body, CONTRIBUTED_FROM), quantities))
    return True


def withheld(deps: Deps, keys: KeyStore, reason: str) -> PeopleDay:
    """A release that is refused: figures from nothing, for the books, never published."""
    return _withheld(deps, noise_key(keys.noise_secret(), deps.city.slug), reason)


def _withheld(deps: Deps, key: bytes, reason: str) -> PeopleDay:
    city = deps.city
    nothing = PeopleRelease({}, noise_of(city), key, "", city.disclosure.k, city.device_ceilings)
    return PeopleDay(nothing, None, reason)
