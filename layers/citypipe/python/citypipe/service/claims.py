"""A reading is written once, whichever batches carry it: the first batch that writes a
reading claims it, every later one finds the claim and counts the reading a duplicate.

A batch's identity is its content (``service.edge``), so the same reading resent beside
other payloads — a hub's at-least-once retry, or someone gaming a count — makes a new
batch. Before a batch is written (``edge.commit``, and an inbox drop's stage core), each
of its readings of a quantity that is no person's is claimed by a conditional put at
``claims/<city>/date=<day>/<source>/<sensor>/<quantity>/<observed_at>`` in the quarantine
zone's bucket (unversioned, kept days: never the audit zone, whose versions are locked for
years), its body the batch's identity:

- created: the reading is this batch's;
- found, with this batch's identity (its etag is the identity's MD5): this very batch,
  retried after a failure, keeps it (the same content, the same identity);
- found, another batch's: a duplicate; it is taken out of the batch's raw objects and
  counted as a duplicate in the books, never accepted twice.

People readings are not claimed: a people figure counts distinct devices, so a sighting
sent twice changes nothing published, and a claim per Wi-Fi detection would cost a request
each. The horizon is the age bound: a reading of a day before the first whose key lives
is refused (``too_old``), and the hourly job deletes the claims of the days before that
one (``sweep_claims``), a day late, so a claim outlives every reading it can match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from functools import cached_property

from citypipe.core.codecs import gz, raw_columns, read_raw_columns
from citypipe.domain.books import IngestCounts
from citypipe.domain.city import City
from citypipe.domain.model import RAW_FIELDS, Zone
from citypipe.domain.naming import day_of, source_of
from citypipe.ports import in_parallel
from citypipe.service.kernel import Deps, Outcome, Output, log

CLAIM_CONCURRENCY = 16  # conditional puts in flight at once
RAW_GZIP_LEVEL = 1  # raw objects live minutes: write fast, read once
_SOURCE, _SENSOR, _QUANTITY, _OBSERVED = (
    RAW_FIELDS.index(name) for name in ("source", "sensor", "quantity", "observed_at")
)

CLAIMS_ZONE = Zone.QUARANTINE  # its bucket, a prefix of its own: unversioned, swept in days


class _Claimable:
    """What of a city is claimed: readings of its quantities that are no person's."""

    def __init__(self, city: City) -> None:
        self.city = city

    @cached_property
    def personal(self) -> frozenset[str]:
        return self.city.personal_quantities

    @cached_property
    def sources(self) -> frozenset[str]:
        """Sources with a device measuring a quantity that is no person's."""
        return frozenset(
            profile.source
            for profile in self.city.registry.profiles.values()
            if any(spec.quantity not in self.personal for spec in profile.fields.values())
        )


def claimed(deps: Deps, ident: str, outcome: Outcome) -> Outcome:
    """The batch ``ident`` as it may be written: its readings another batch claimed first
    taken out of its raw objects and counted as duplicates."""
    claimable = _Claimable(deps.city)
    outputs: list[Output] = []
    earlier = 0
    for output in outcome.outputs:
        if output.zone is not Zone.RAW or source_of(output.key) not in claimable.sources:
            outputs.append(output)
            continue
        kept, found = _claim(deps, ident, output, claimable.personal)
        earlier += found
        if kept is not None:
            outputs.append(kept)
    if not earlier:
        return outcome
    counts = outcome.counts
    assert isinstance(counts, IngestCounts)
    log.info("readings written before", extra={"input_id": ident, "duplicates": earlier})
    update = {"accepted": counts.accepted - earlier, "duplicates": counts.duplicates + earlier}
    return replace(outcome, outputs=outputs, counts=counts.model_copy(update=update))


def _claim(
    deps: Deps, ident: str, output: Output, personal: frozenset[str]
) -> tuple[Output | None, int]:
    """One raw object's readings claimed: the object without those another batch claimed
    first (None: none left), and how many those were."""
    assert isinstance(output.body, bytes)
    columns = read_raw_columns(output.body, RAW_FIELDS)
    rows = list(zip(*(columns[name] for name in RAW_FIELDS), strict=True))
    wanted = [i for i, row in enumerate(rows) if row[_QUANTITY] not in personal]
    keys = [
        deps.names.claim_key(rows[i][_SOURCE], rows[i][_SENSOR], rows[i][_QUANTITY],
                             rows[i][_OBSERVED])
        for i in wanted
    ]  # fmt: skip
    theirs = {i for i, mine in zip(wanted, _taken(deps, ident, keys), strict=True) if not mine}
    if not theirs:
        return output, 0
    left = [row for i, row in enumerate(rows) if i not in theirs]
    if not left:
        return None, len(theirs)
    body = gz(raw_columns(left, RAW_FIELDS), RAW_GZIP_LEVEL)
    return replace(output, body=body, records=len(left)), len(theirs)


def _taken(deps: Deps, ident: str, keys: Sequence[str]) -> list[bool]:
    """For each claim key, whether it is this batch's (taken now, or by this very batch
    before)."""
    bucket = deps.names.bucket(CLAIMS_ZONE)
    body = ident.encode()
    mine = hashlib.md5(body, usedforsecurity=False).hexdigest()

    def take(key: str) -> bool:
        result = deps.store.put_if_absent(bucket, key, body, "text/plain")
        return result.created or result.etag.strip('"') == mine

    return in_parallel(take, keys, CLAIM_CONCURRENCY)


def sweep_claims(deps: Deps, first_kept: date) -> int:
    """Delete the claims of the days before ``first_kept``: readings of those days are
    refused as too old already. Returns how many."""
    bucket = deps.names.bucket(CLAIMS_ZONE)
    prefix = deps.names.claims_prefix()
    kept = first_kept.isoformat()
    old = [i.key for i in deps.store.list(bucket, prefix) if day_of(i.key, prefix) < kept]
    for key in old:
        deps.store.delete(bucket, key)
    return len(old)


def claims_kept_from(city: City, today: date) -> date:
    """The first day whose claims the hourly job keeps: a day before the first whose
    readings the edge accepts (an edge whose clock is late still finds them)."""
    return city.first_living_day(today) - timedelta(days=1)
