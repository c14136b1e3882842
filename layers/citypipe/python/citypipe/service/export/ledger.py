"""The ε ledger: what each release of a people dataset costs its sensors, in the audit zone.

A release of a people dataset's day is what it discloses: its cells' per-sensor device
counts (``ThemeDay.release``), so two exports of the same counts are one release, whatever
else changed that day (late air-quality data makes a new partial set, not a new release).
Each release is charged once, before its files are written (an output of the export); a
release that a sensor's day cannot pay for is refused, and the version published before
stays.
"""

from __future__ import annotations

from citypipe.core.publish.day import ThemeDay
from citypipe.domain.books import EpsilonCharge, ExportCounts
from citypipe.domain.model import Message, Zone
from citypipe.domain.themes import Theme, quantities_of
from citypipe.service.kernel import Deps, Output, log

BUDGET_SPENT = "epsilon_budget_spent"
SLACK = 1e-9  # float sums of ε: a budget of 2.0 pays four releases of 0.5


def people_quantities(deps: Deps, theme: Theme) -> list[str]:
    """The theme's quantities that count people (their noise is charged to the ledger)."""
    return [q for q in quantities_of(deps.city, theme) if q in deps.city.personal_quantities]


def charged(deps: Deps, theme: Theme) -> bool:
    """Whether a release of this theme is charged: it counts people, and the city adds
    noise to what it publishes of them."""
    return bool(people_quantities(deps, theme)) and deps.city.disclosure.noise is not None


def entries(deps: Deps, day: str | None = None) -> list[EpsilonCharge]:
    """The ledger's entries: of one day, or of every day."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = [i.key for i in deps.store.list(audit, deps.names.epsilon_prefix(day))]
    return [EpsilonCharge.model_validate_json(o.body) for o in deps.store.get_many(audit, keys)]


def charge(deps: Deps, message: Message, result: ThemeDay) -> Output | ExportCounts:
    """This release's entry of the ledger, to be written before its files (once: a release
    charged before is not charged again); or, when a sensor's day cannot pay for it, the
    counts of the refused release."""
    noise = deps.city.disclosure.noise
    assert noise is not None
    day, theme = message.window or "", result.theme
    release, sensors = result.release, list(result.sensors)
    found = entries(deps, day)
    if not any(e.release == release and e.dataset == theme.slug for e in found):
        spent: dict[str, float] = {}
        for entry in found:
            for sensor, epsilon in entry.charges.items():
                spent[sensor] = spent.get(sensor, 0.0) + epsilon
        over = [s for s in sensors if spent.get(s, 0.0) + noise.epsilon > noise.budget + SLACK]
        if over:
            log.warning(
                "release refused: privacy budget spent",
                extra={"function": "export", "window": day, "dataset": theme.slug,
                       "sensors": len(over)},
            )  # fmt: skip
            return ExportCounts(
                partials=message.records, cells=result.cells, readings=result.readings,
                published=0, suppressed=0, flagged=0, refused={BUDGET_SPENT: result.cells},
                quarantined={},
            )  # fmt: skip
    entry = EpsilonCharge(
        city=deps.city.slug,
        dataset=theme.slug,
        day=day,
        release=release,
        mechanism=noise.mechanism,
        epsilon=noise.epsilon,
        delta=noise.delta,
        charges=dict.fromkeys(sensors, noise.epsilon),
        at=deps.clock.now(),
    )
    key = deps.names.epsilon_charge_key(day, theme.slug, release)
    body = entry.model_dump_json(indent=1).encode()
    return Output(Zone.AUDIT, key, body, 0, "json", "application/json")
