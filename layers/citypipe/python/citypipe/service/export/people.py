"""A day's people counts, from the clean zone while the day's pseudonyms live.

People counts are not rolled up by aggregate (nothing there may link a device's windows):
export reads the day's clean rows of the sources that count people — each device under one
pseudonym for the day — bounds each device's day and counts it (``core.people``). Once
the day's key is destroyed, the hourly job has taken those pseudonyms out of the clean
zone: the day's people can no longer be counted, and a release is refused (the version
published while they lived stays).
"""

from __future__ import annotations

from collections.abc import Sequence

from citypipe.core.columnar import read_parquet
from citypipe.core.disclosure import noise_of
from citypipe.core.noise import noise_key
from citypipe.core.people import PeopleRelease, capped_counts, choice_key, contributions, release_id
from citypipe.domain.model import Zone
from citypipe.domain.naming import is_scrubbed, source_of
from citypipe.ports import KeyStore
from citypipe.service.kernel import Deps


def people_sources(deps: Deps, quantities: Sequence[str]) -> set[str]:
    """The sources whose devices measure one of ``quantities``."""
    registry = deps.city.registry
    return {
        profile.source
        for profile in registry.profiles.values()
        if any(spec.quantity in quantities for spec in profile.fields.values())
    }


def people_release(
    deps: Deps, keys: KeyStore, dataset: str, day: str, quantities: Sequence[str], measured: bool
) -> PeopleRelease:
    """The release of a day's people counts of ``quantities``. Its ``release`` is "" when
    the day's pseudonyms are gone — scrubbed after the key was destroyed, or the clean
    rows past their retention while the partials (``measured``: they hold readings of
    these quantities) say there were some —: then nothing of it may be published."""
    bucket = deps.names.bucket(Zone.CLEAN)
    sources = people_sources(deps, quantities)
    found = [
        i.key
        for i in deps.store.list(bucket, deps.names.clean_day_prefix(day))
        if source_of(i.key) in sources
    ]
    city = deps.city
    noise = noise_of(city)
    key = noise_key(keys.noise_secret(), city.slug)
    gone = any(is_scrubbed(k) for k in found) or (measured and not found)
    tables = [
        contributions(read_parquet(obj.body), quantities)
        for obj in ([] if gone else deps.store.get_many(bucket, sorted(found)))
    ]
    counts = capped_counts(tables, noise.cap, choice_key(key))
    return PeopleRelease(
        counts=counts,
        noise=noise,
        key=key,
        release="" if gone else release_id(key, dataset, day, noise, counts),
        k=city.disclosure.k,
        ceilings=city.device_ceilings,
    )
