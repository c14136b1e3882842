"""Residents' opt-out: the set of devices whose detections every edge drops.

A resident submits a device's Wi-Fi or Bluetooth address (``service.optout_http``). It is
kept only as its HMAC-SHA-256 under the opt-outs' own long-lived key
(``KeyStore.optout_secret``: never a daily key, never destroyed with them), as the name of
one empty object in the keys bucket, ``optouts/<city>/<digest>`` — never in clear, never
logged, never published; at most ``MAX_OPT_OUTS`` of them. Anyone may opt out any address:
that only removes detections from the counts.

Every edge holds the set and reloads it when it is ``OPTOUT_RELOAD_S`` old by its clock:
an opt-out reaches every edge within that delay. The edge drops an opted-out device's
detections before any pseudonym of it is made (``core.ingest``), and the books count them
(``opted_out``: how many a batch had, never which device). The portal publishes how many
opt-outs exist (``opt_out_count``), never which.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice
from weakref import WeakKeyDictionary

from citypipe.core.pseudonyms import OptOuts, pseudonym
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_OPT_OUTS, OPTOUT_RELOAD_S
from citypipe.ports import KeyStore
from citypipe.service.kernel import Deps

RELOAD = timedelta(seconds=OPTOUT_RELOAD_S)
# What each key store's edge loaded, and when by its clock (a warm container's, for the
# life of its key store)
_LOADED: WeakKeyDictionary[KeyStore, tuple[datetime, OptOuts | None]] = WeakKeyDictionary()


def _digests(deps: Deps) -> frozenset[str]:
    prefix = deps.names.optout_prefix()
    infos = deps.store.list(deps.names.keys_bucket(), prefix)
    return frozenset(info.key.removeprefix(prefix) for info in islice(infos, MAX_OPT_OUTS))


def opt_out_count(deps: Deps) -> int:
    """How many addresses are opted out (the portal's figure: never which)."""
    return len(_digests(deps))


def opt_out(deps: Deps, keys: KeyStore, address: str) -> bool:
    """Record an opt-out of a normalized address (``core.pseudonyms.opt_out_address``):
    True once it is in the set (whether or not it was before: the same for the resident),
    False when the set is full — for every address, one already in it too: the answer
    never tells whether an address was opted out, and every request does the same work
    (the set listed, then its one object written again)."""
    bucket = deps.names.keys_bucket()
    key = deps.names.optout_prefix() + pseudonym(keys.optout_secret(), address)
    if len(_digests(deps)) >= MAX_OPT_OUTS:
        return False
    deps.store.put_or_replace(bucket, key, b"", "application/octet-stream")
    return True


def hour_slot(deps: Deps, now: datetime, per_hour: int) -> bool:
    """One of the city's ``per_hour`` opt-out requests of ``now``'s hour, whichever server
    or container takes it: an empty object put once (``If-None-Match``) at
    ``optout-rate/<city>/<hour>/<n>``, ``n`` below ``per_hour`` — so however many take
    them at once, no more are taken. False once the hour's listing shows them all taken;
    ``TransientError`` when others kept taking the next ones first (a crowd at once: the
    answer is "try again", not "the hour is full"). The slots expire with a lifecycle
    rule a day later; nothing here deletes them (a request of an hour before, late or on
    a clock behind, would free the next hour's)."""
    bucket = deps.names.keys_bucket()
    prefix = deps.names.optout_rate_prefix(now)
    for _ in range(SLOT_ROUNDS):
        taken = sum(1 for _ in islice(deps.store.list(bucket, prefix), per_hour))
        if taken >= per_hour:
            return False
        for n in range(taken, min(per_hour, taken + SLOT_TRIES)):
            if deps.store.put_if_absent(bucket, f"{prefix}{n:06d}", b"", _EMPTY).created:
                return True
    raise TransientError(f"the hour's opt-out slots were taken faster than {SLOT_ROUNDS} rounds")


SLOT_TRIES = 8  # the slots after a listing a request tries before it lists again
SLOT_ROUNDS = 4  # listings a request makes before it is answered "try again"
_EMPTY = "application/octet-stream"


def edge_opt_outs(deps: Deps, keys: KeyStore) -> OptOuts | None:
    """The opt-outs an edge drops (None: there are none), reloaded once they are
    ``OPTOUT_RELOAD_S`` old by the edge's clock (or its clock went back)."""
    now = deps.clock.now()
    loaded = _LOADED.get(keys)
    if loaded is not None and timedelta(0) <= now - loaded[0] < RELOAD:
        return loaded[1]
    digests = _digests(deps)
    held = OptOuts(keys.optout_secret(), digests) if digests else None
    _LOADED[keys] = (now, held)
    return held
