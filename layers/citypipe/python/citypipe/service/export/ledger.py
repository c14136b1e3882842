"""The ε ledger: what each release of people counts costs a person's day, in the audit zone.

The unit of privacy is one device over one UTC day (decision 0078), so the budget is per
day, shared by every people dataset and every release of it: each release of fresh noise
costs every device of the day the city's ε per release, and a day may spend its budget.

A release is what it discloses: its counts under the noise key (``core.people.release_id``),
so an export of unchanged counts is the same release — same noise, same bytes — and is
charged once, while a new release secret makes a new release, charged again.

The ledger of a day is a sequence of entries ``0001``, ``0002``… each written with a
conditional put: a release is charged by writing the next free entry, after checking the
entries before it leave room; an export that loses the race for that entry reads the
ledger again and checks again, so two racing exports can never both spend the last of a
day's budget. A release is charged before any of its files is written, and refused when
the day cannot pay for it (the version published before stays).
"""

from __future__ import annotations

from citypipe.domain.books import EpsilonCharge, ExportCounts
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Message, Zone
from citypipe.domain.themes import Theme, quantities_of
from citypipe.service.kernel import Deps, Output, log

BUDGET_SPENT = "epsilon_budget_spent"
PSEUDONYMS_GONE = "pseudonyms_destroyed"  # the day's key is gone: its people can't be counted
SLACK = 1e-9  # float sums of ε: a budget of 2.0 pays two releases of 1.0
RACES = 8  # entries lost to racing exports before giving up (the request is retried)


def people_quantities(deps: Deps, theme: Theme) -> list[str]:
    """The theme's quantities that count people (their releases are charged)."""
    return [q for q in quantities_of(deps.city, theme) if q in deps.city.personal_quantities]


def entries(deps: Deps, day: str | None = None) -> list[tuple[str, EpsilonCharge]]:
    """The ledger's entries, by key: of one day, or of every day."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = sorted(i.key for i in deps.store.list(audit, deps.names.epsilon_prefix(day)))
    found = deps.store.get_many(audit, keys)
    return [(o.key, EpsilonCharge.model_validate_json(o.body)) for o in found]


def refused(message: Message, cells: int, readings: int, reason: str) -> ExportCounts:
    """The counts of a release refused whole: its cells, by reason."""
    return ExportCounts(
        partials=message.records, cells=cells, readings=readings, published=0,
        suppressed=0, flagged=0, refused={reason: cells}, quarantined={},
    )  # fmt: skip


def charge(deps: Deps, message: Message, dataset: str, release: str) -> Output | None:
    """Charge this release to its day, once, before its files: the ledger entry (already
    written; an output of the export, so its lineage names it), or None when the day
    cannot pay for it."""
    noise = deps.city.disclosure.noise
    day = message.window or ""
    audit = deps.names.bucket(Zone.AUDIT)
    for _ in range(RACES):
        found = entries(deps, day)
        for key, entry in found:
            if entry.release == release and entry.dataset == dataset:
                return _output(key, entry)  # charged before: the same release again
        spent = sum(entry.epsilon for _, entry in found)
        if spent + noise.epsilon > noise.budget + SLACK:
            log.warning(
                "release refused: privacy budget spent",
                extra={"function": "export", "window": day, "dataset": dataset},
            )
            return None
        entry = EpsilonCharge(
            city=deps.city.slug, dataset=dataset, day=day, release=release,
            mechanism=noise.mechanism, epsilon=noise.epsilon, delta=noise.delta,
            contributions_per_day=noise.contributions_per_day, spent=spent + noise.epsilon,
            budget=noise.budget, at=deps.clock.now(),
        )  # fmt: skip
        key = deps.names.epsilon_charge_key(day, len(found) + 1)
        if deps.store.put_if_absent(audit, key, _body(entry), "application/json").created:
            return _output(key, entry)
    raise TransientError(f"the ε ledger of {day} kept changing under {RACES} attempts")


def _body(entry: EpsilonCharge) -> bytes:
    return entry.model_dump_json(indent=1).encode()


def _output(key: str, entry: EpsilonCharge) -> Output:
    """A ledger entry as an output of the export (written already: its put is a no-op)."""
    return Output(Zone.AUDIT, key, _body(entry), 0, "json", "application/json")
