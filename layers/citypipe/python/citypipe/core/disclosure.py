"""Disclosure control: what of a day's cells may be published, in one function.

``disclose`` is the contract every open format relies on: every cell in, exactly one
``DisclosedCell`` out per cell, in the same order, holding the figures that may be
published — and only those. No format reads a merged partial or a ``Cell`` directly, so
a rule changed here changes every format at once. ``treatment`` says in words and numbers
what the rule is, for the catalogue, the data package, the portal and the register.

The rule:

1. a cell whose figures are not plausible (a sum that overflowed, a value outside its
   quantity's range: readings ingest should have refused) is **flagged**: marked, its
   figures blank, so a broken sensor can never publish a number nor lose the day;
2. a cell of a quantity that counts people (its source pseudonymizes a data subject)
   counts only the sensors that alone saw at least k distinct devices in the window
   (pseudonyms are per sensor and window, so that is what can be proven); with none, it
   is **suppressed**: marked, figures blank, never zero. A people dataset's day is a
   **complete grid** (``complete_grid``): every zone with a counter x every window x
   quantity has a row, and an empty window is suppressed exactly as one of 1 to k - 1
   devices is, so suppression discloses no presence;
3. where the city adds noise (``disclosure.noise``), a published people cell shows one
   figure, its distinct devices plus noise (``core.noise``), never below k; the exact
   counts, sums and extremes are not released (each would spend privacy budget). The
   noise is drawn from a stream keyed by the city's secret noise key and seeded by the
   cell's place and exact inputs: a re-export of unchanged inputs shows the same figure
   (byte-identical files, nothing new learned), a cell whose inputs changed gets fresh
   noise (and the release is charged again to the ε ledger);
4. every other cell is **published** as measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from citypipe.core.aggregate import Cell
from citypipe.core.noise import Noise, cell_seed
from citypipe.domain.city import City
from citypipe.domain.model import QUANTITIES, QUANTITY_UNITS, WINDOW_MINUTES


class Status(StrEnum):
    PUBLISHED = "published"
    SUPPRESSED = "suppressed"
    FLAGGED = "flagged"


# Machine-readable reasons of a cell that is not published.
FEWER_THAN_K = "fewer_than_k_devices"
NOT_FINITE = "not_finite"
IMPLAUSIBLE = "implausible_value"

WINDOWS_A_DAY = 24 * 60 // WINDOW_MINUTES


@dataclass(frozen=True)
class DisclosedCell:
    """A cell as it may be published. Figures are None unless the cell is published."""

    window_start: datetime
    zone: str
    quantity: str
    unit: str
    status: Status
    reason: str  # "" when published
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    distinct_devices: int | None = None

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(minutes=WINDOW_MINUTES)


@dataclass(frozen=True)
class PrivacyTreatment:
    """How a dataset's cells were protected, stated in every place the dataset is
    described. ``mechanism`` and the rest stay None where no noise is added."""

    personal: bool  # the dataset counts people
    k: int | None
    rule: str
    mechanism: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    budget: float | None = None  # ε a sensor-day may spend over every release of it
    noise: str | None = None  # the noise in words


def noise_of(city: City) -> Noise | None:
    """The city's noise for people counts, or None."""
    settings = city.disclosure.noise
    if settings is None:
        return None
    return Noise(settings.mechanism, settings.epsilon, settings.delta)


def _implausible(cell: Cell) -> str:
    """Why a cell's figures cannot be published as measured, or ''."""
    if not all(math.isfinite(v) for v in (cell.sum, cell.min, cell.max)):
        return NOT_FINITE
    known = QUANTITIES.get(cell.quantity)
    if known and (cell.min < known.low or cell.max > known.high):
        return IMPLAUSIBLE
    return ""


def day_windows(day: str) -> list[datetime]:
    """The starts of a day's 15-minute windows."""
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return [midnight + timedelta(minutes=WINDOW_MINUTES * w) for w in range(WINDOWS_A_DAY)]


def complete_grid(
    city: City,
    day: str,
    quantities: Iterable[str],
    cells: Sequence[Cell],
    windows: Iterable[datetime] | None = None,
) -> list[Cell]:
    """The day's cells of people quantities on the complete grid: every window x every zone
    with a registered device measuring the quantity x quantity, in cell order; a cell nobody
    was measured in is an empty one (suppressed like any cell under k). ``windows``: the
    day's windows to fill, when the cells are those of some windows only (a day published
    a few windows at a time); every window of the day by default."""
    wanted = day_windows(day)
    if windows is not None:
        chosen = set(windows)
        wanted = [w for w in wanted if w in chosen]
    found = {(c.window_start, c.zone, c.quantity): c for c in cells}
    for quantity in quantities:
        for zone in city.zones_measuring.get(quantity, ()):
            for start in wanted:
                if (start, zone, quantity) not in found:
                    found[start, zone, quantity] = Cell(
                        start, zone, quantity, QUANTITY_UNITS[quantity], 0, 0.0, math.nan,
                        math.nan,
                    )  # fmt: skip
    return [found[key] for key in sorted(found)]


def disclose(
    city: City, cells: Sequence[Cell], noise_key: bytes | None = None
) -> list[DisclosedCell]:
    """The cells of a day as they may be published: flagged, suppressed or published.
    ``noise_key``: the city's secret noise key, which seeds the noise of people cells
    where the city adds noise (required then)."""
    personal = city.personal_quantities
    rule = _PeopleRule(city.disclosure.k, noise_of(city), noise_key)
    if rule.noise is not None and noise_key is None and any(c.quantity in personal for c in cells):
        raise ValueError("people cells with noise need the city's noise key")
    out = []
    for cell in cells:
        where = (cell.window_start, cell.zone, cell.quantity, cell.unit)
        if cell.count and (reason := _implausible(cell)):
            out.append(DisclosedCell(*where, Status.FLAGGED, reason))
        elif cell.quantity in personal:
            out.append(rule.disclosed(cell))
        else:
            out.append(
                DisclosedCell(
                    *where,
                    Status.PUBLISHED,
                    "",
                    count=cell.count,
                    sum=cell.sum,
                    min=cell.min,
                    max=cell.max,
                    mean=cell.sum / cell.count,
                )
            )
    return out


@dataclass(frozen=True)
class _PeopleRule:
    """How a cell of a people quantity is disclosed: only the sensors that alone saw at
    least ``k`` distinct devices count; with none, suppressed; with noise, one noisy
    figure never below k; without, the exact figures of those sensors."""

    k: int
    noise: Noise | None
    noise_key: bytes | None

    def disclosed(self, cell: Cell) -> DisclosedCell:
        where = (cell.window_start, cell.zone, cell.quantity, cell.unit)
        counted = [s for s in cell.sensors if s.devices is not None and s.devices >= self.k]
        if not counted:
            return DisclosedCell(*where, Status.SUPPRESSED, FEWER_THAN_K)
        devices = sum(s.devices or 0 for s in counted)
        if self.noise is not None:
            assert self.noise_key is not None
            inputs = [f"{s.sensor}={s.devices}" for s in counted]
            seed = cell_seed(
                self.noise_key, cell.window_start.isoformat(), cell.zone, cell.quantity, *inputs
            )
            noisy = max(self.k, devices + self.noise.sample(seed))  # post-processing: private
            return DisclosedCell(*where, Status.PUBLISHED, "", distinct_devices=noisy)
        count = sum(s.count for s in counted)
        total = math.fsum(s.sum for s in counted)
        return DisclosedCell(
            *where, Status.PUBLISHED, "", count=count, sum=total, min=min(s.min for s in counted),
            max=max(s.max for s in counted), mean=total / count, distinct_devices=devices,
        )  # fmt: skip


def treatment(city: City, quantities: Iterable[str]) -> PrivacyTreatment:
    """The privacy treatment of a dataset holding these quantities."""
    k = city.disclosure.k
    if not set(quantities) & city.personal_quantities:
        return PrivacyTreatment(
            personal=False,
            k=None,
            rule="No personal data: the sensors measure the environment or count vehicles, "
            "so cells are published as measured. Implausible figures are flagged, never "
            "published.",
        )
    rule = (
        "Device identifiers are replaced within minutes by keyed pseudonyms (HMAC-SHA-256 "
        "under a key per sensor and 15-minute window, derived from a daily secret destroyed "
        f"after {city.key_retention_days} days) and never published; after that no stored "
        "row keeps one. A 15-minute zone cell counts only the sensors that alone saw at "
        f"least k = {k} distinct devices; a cell without one is marked suppressed with every "
        "figure blank (never zero), and every window of every zone with a counter has a row, "
        "so an empty window looks like any suppressed one. Day summaries use published "
        "cells only. distinct_devices counts a device once per sensor that saw it."
    )
    noise = noise_of(city)
    settings = city.disclosure.noise
    if noise is None or settings is None:
        return PrivacyTreatment(personal=True, k=k, rule=rule)
    words = (
        f"{noise.describe()}; the unit of privacy is one device's presence in one 15-minute "
        f"window at one sensor; each sensor may spend ε = {settings.budget} a day over every "
        "release of it (re-releases after late data included), recorded in a ledger; a "
        "release over budget is refused. Published cells show distinct_devices only, noisy "
        f"and never below k; count, sum, min, max and mean are not released."
    )
    return PrivacyTreatment(
        personal=True,
        k=k,
        rule=f"{rule} Noise: {words}",
        mechanism=settings.mechanism,
        epsilon=settings.epsilon,
        delta=settings.delta,
        budget=settings.budget,
        noise=words,
    )
