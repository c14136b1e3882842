"""The ε ledger: the one release of each people dataset's day, charged before its files.

The unit of privacy is one device over one UTC day (decision 0078). A people dataset's day
is released once, at a time fixed in advance (``people.release_time``), never again: so
whether and when a release happens says nothing about who was seen. Its entry in the
ledger (``epsilon/<city>/date=<day>/<dataset>.json``, audit zone) is written by a
conditional put before any of its files, and holds what the release was computed from —
the clean objects it read, by key and etag — so an export that loses a race, or retries
after a crash, recomputes that very release (the same counts under the same key: the same
noise, the same bytes) instead of drawing a new one. The day's entries together may not
spend more than the city's ε (and δ) per person-day; one that would is refused.
"""

from __future__ import annotations

from citypipe.domain.books import ExportCounts
from citypipe.domain.city import RED_LINE_DELTA
from citypipe.domain.errors import NotFoundError
from citypipe.domain.export_books import EpsilonCharge
from citypipe.domain.model import Message, Zone
from citypipe.domain.themes import Theme, quantities_of
from citypipe.service.kernel import Deps, Output, log

BUDGET_SPENT = "epsilon_budget_spent"
PSEUDONYMS_GONE = "pseudonyms_destroyed"  # the day's key died before its release
NOT_REPRODUCIBLE = "release_not_reproducible"  # its inputs or its release secret changed
COUNTER_REMOVED = "people_counter_removed"  # a people quantity the city no longer declares
OUTSIDE_THE_GRID = "outside_the_grid"  # people cells of zones no counter stands in
# a whole release refused (nothing published, nothing charged); OUTSIDE_THE_GRID refuses
# cells of a release that is published
RELEASE_REFUSED = frozenset({BUDGET_SPENT, PSEUDONYMS_GONE, NOT_REPRODUCIBLE, COUNTER_REMOVED})
SLACK = 1e-9  # relative: float sums of ε


def people_quantities(deps: Deps, theme: Theme) -> list[str]:
    """The theme's quantities that count people (their releases are charged)."""
    return [q for q in quantities_of(deps.city, theme) if q in deps.city.personal_quantities]


def entries(deps: Deps, day: str | None = None) -> list[tuple[str, EpsilonCharge]]:
    """The ledger's entries, by key: of one day, or of every day."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = sorted(i.key for i in deps.store.list(audit, deps.names.epsilon_prefix(day)))
    found = deps.store.get_many(audit, keys)
    return [(o.key, EpsilonCharge.model_validate_json(o.body)) for o in found]


def entry(deps: Deps, day: str, dataset: str) -> EpsilonCharge | None:
    """The day's release of a dataset, if it was charged."""
    audit = deps.names.bucket(Zone.AUDIT)
    try:
        body = deps.store.get(audit, deps.names.epsilon_charge_key(day, dataset)).body
    except NotFoundError:
        return None
    return EpsilonCharge.model_validate_json(body)


def refused(message: Message, cells: int, readings: int, reason: str) -> ExportCounts:
    """The counts of a release refused whole: its cells, by reason."""
    return ExportCounts(
        partials=message.records, cells=cells, readings=readings, published=0,
        suppressed=0, flagged=0, refused={reason: cells}, quarantined={},
    )  # fmt: skip


def charge(
    deps: Deps, day: str, dataset: str, release: str, inputs: list[str]
) -> EpsilonCharge | None:
    """Charge this release of a dataset's day, once: the entry that stands (this one, or
    the one a racing export wrote first, whose release this export then recomputes); None
    when the day cannot pay for it."""
    noise = deps.city.disclosure.noise
    found = [e for _, e in entries(deps, day) if e.dataset != dataset]
    spent = sum(e.epsilon for e in found) + noise.epsilon
    delta = sum(e.delta or 0.0 for e in found) + (noise.delta or 0.0)
    if spent > noise.budget * (1 + SLACK) or (noise.delta and delta > RED_LINE_DELTA):
        log.warning(
            "release refused: privacy budget spent",
            extra={"function": "export", "window": day, "dataset": dataset},
        )
        return None
    made = EpsilonCharge(
        city=deps.city.slug, dataset=dataset, day=day, release=release, inputs=inputs,
        mechanism=noise.mechanism, epsilon=noise.epsilon, delta=noise.delta,
        contributions_per_day=noise.contributions_per_day, spent=spent,
        delta_spent=delta if noise.delta else None, budget=noise.budget, at=deps.clock.now(),
    )  # fmt: skip
    key = deps.names.epsilon_charge_key(day, dataset)
    audit = deps.names.bucket(Zone.AUDIT)
    if deps.store.put_if_absent(audit, key, _body(made), "application/json").created:
        return made
    return EpsilonCharge.model_validate_json(deps.store.get(audit, key).body)


def ledger_output(deps: Deps, charged: EpsilonCharge) -> Output:
    """The release's entry as an output of the export (written already: a no-op put), so
    the lineage of the files names the charge they were published under."""
    key = deps.names.epsilon_charge_key(charged.day, charged.dataset)
    return Output(Zone.AUDIT, key, _body(charged), 0, "json", "application/json")


def _body(charged: EpsilonCharge) -> bytes:
    return charged.model_dump_json(indent=1).encode()
