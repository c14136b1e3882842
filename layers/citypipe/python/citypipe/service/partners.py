"""A partner's withdrawal of its permission: recorded, and refused at the edge
(docs/partners.md; carried out by ``service.export.withdrawal``).

``withdraw`` records the withdrawal in the audit zone (once: ``WithdrawalRequested``). From
then on the edge refuses the partner's sources (``withdrawn_sources``: their readings are
quarantined as ``partner_withdrawn``), and ``carry_out`` — run by ``citypipe partner
withdraw`` on a laptop, and by export's hourly job on every cloud for every withdrawal
recorded — deletes the partner's objects from the clean and aggregate zones and exports
every day that held them again: its datasets' files are then what a city that never had
the partner publishes, each day a new version (the previous one's notes say what
changed). Each run is recorded (``WithdrawalCarriedOut``): what it deleted, the readings
the deleted partials aggregated (the books say where they went), the days published again.

A people dataset's day is released once (decision 0078): a partner whose readings a
released people day counted cannot have that day published again without a second
release, which the day's privacy budget must pay for. Such a withdrawal is refused whole,
before anything is deleted, and says which days, what they spent and what a release costs.
"""

from __future__ import annotations

import threading
import time
import weakref

from citypipe.domain.books import WithdrawalRequested
from citypipe.domain.model import Zone
from citypipe.ports import ObjectStore
from citypipe.service.kernel import Deps, log

# How long a warm edge remembers the withdrawals it read: a withdrawal is refused by every
# edge at most this long after it is recorded (at once by the process recording it)
CACHE_S = 60.0
# per store (forgotten with it), per audit bucket: when read, the sources withdrawn
_remembered: weakref.WeakKeyDictionary[ObjectStore, dict[str, tuple[float, frozenset[str]]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


class WithdrawalRefusedError(ValueError):
    """A withdrawal that cannot be carried out as it must be: nothing was changed."""


def withdrawn_sources(deps: Deps) -> frozenset[str]:
    """The sources of every partner whose withdrawal is recorded (none for a city without
    partners: no request made). Remembered ``CACHE_S`` seconds per store and city."""
    if not deps.city.partners:
        return frozenset()
    bucket = deps.names.bucket(Zone.AUDIT)
    with _lock:
        found = _remembered.get(deps.store, {}).get(bucket)
    if found is not None and time.monotonic() - found[0] < CACHE_S:
        return found[1]
    sources = frozenset(
        s for name in withdrawn_partners(deps) for s in deps.city.partners[name].sources
    )
    with _lock:
        _remembered.setdefault(deps.store, {})[bucket] = (time.monotonic(), sources)
    return sources


def _forget(deps: Deps) -> None:
    with _lock:
        _remembered.get(deps.store, {}).pop(deps.names.bucket(Zone.AUDIT), None)


def withdraw(deps: Deps, partner: str) -> WithdrawalRequested:
    """Record a partner's withdrawal (the one recorded first stands): its sources are
    refused from now on."""
    if partner not in deps.city.partners:
        raise WithdrawalRefusedError(
            f"{partner} is no partner of {deps.city.slug} ({sorted(deps.city.partners)})"
        )
    request = WithdrawalRequested(
        partner=partner, sources=deps.city.partners[partner].sources, at=deps.clock.now()
    )
    audit, key = deps.names.bucket(Zone.AUDIT), deps.names.withdrawal_key(partner)
    body = request.model_dump_json(indent=1).encode()
    if not deps.store.put_if_absent(audit, key, body, "application/json").created:
        request = WithdrawalRequested.model_validate_json(deps.store.get(audit, key).body)
    _forget(deps)
    log.info("partner withdrawn", extra={"function": "export", "partner": partner})
    return request


def withdrawn_partners(deps: Deps) -> list[str]:
    """The partners whose withdrawal is recorded, and still in the city file."""
    prefix = deps.names.withdrawals_prefix()
    found = deps.store.list(deps.names.bucket(Zone.AUDIT), prefix)
    names = (i.key[len(prefix) :].removesuffix(".json") for i in found)
    return sorted(n for n in names if n in deps.city.partners)
