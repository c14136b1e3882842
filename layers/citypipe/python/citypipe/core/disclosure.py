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
2. a cell of a quantity that counts people shows one figure, its distinct devices —
   each device's day bounded, plus noise — and every decision about it is taken on that
   noisy figure alone (``core.people``): published at k or more, **suppressed** below
   (figures blank, never zero), flagged above what its sensors can hear. A people
   dataset's day is a **complete grid** (``complete_grid``): every zone with a counter x
   every window x quantity has a row, an empty window disclosed like any other. The
   counts of readings, sums and extremes of people cells are never released;
3. every other cell is **published** as measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from citypipe.core.aggregate import Cell
from citypipe.core.noise import Noise
from citypipe.core.people import FEWER_THAN_K, PeopleRelease
from citypipe.domain.city import City
from citypipe.domain.model import QUANTITIES, QUANTITY_UNITS, WINDOW_MINUTES


class Status(StrEnum):
    PUBLISHED = "published"
    SUPPRESSED = "suppressed"
    FLAGGED = "flagged"


# Machine-readable reasons of a cell that is not published (people: ``core.people``).
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
    described. The differential-privacy figures are None where the dataset counts nobody."""

    personal: bool  # the dataset counts people
    k: int | None
    rule: str
    mechanism: str | None = None
    epsilon: float | None = None  # what one release costs one device's day
    delta: float | None = None  # per release
    budget: float | None = None  # ε per person-day, over every release of the day
    contributions: int | None = None  # the most cells one device counts in a day
    noise: str | None = None  # the noise in words
    resident: str | None = None  # the guarantee in words a resident understands


def noise_of(city: City) -> Noise:
    """The city's noise for people counts: its mechanism, per-release ε (and δ) and cap."""
    settings = city.disclosure.noise
    return Noise(
        settings.mechanism, settings.epsilon, settings.delta, settings.contributions_per_day
    )


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
) -> tuple[list[Cell], int]:
    """The day's cells with those of people ``quantities`` on the complete grid, in cell
    order, and how many people cells were left out: every window x every zone with a
    registered device measuring the quantity x quantity has one (empty where nobody was
    measured), and nothing else — a people cell of a zone no counter stands in (the
    registry changed) is left out, never published only where data exists. Cells of
    other quantities pass as they are. ``windows``: the day's windows to fill, when the
    cells are those of some windows only (a day published a few windows at a time)."""
    wanted = day_windows(day)
    if windows is not None:
        chosen = set(windows)
        wanted = [w for w in wanted if w in chosen]
    people = set(quantities)
    grid = {
        (start, zone, quantity)
        for quantity in people
        for zone in city.zones_measuring.get(quantity, ())
        for start in wanted
    }
    found = {(c.window_start, c.zone, c.quantity): c for c in cells}
    outside = sum(1 for place in found if place[2] in people and place not in grid)
    kept = {place for place in found if place[2] not in people} | grid
    placed = [
        found.get(place) or Cell(*place, QUANTITY_UNITS[place[2]], 0, 0.0, math.nan, math.nan)
        for place in sorted(kept)
    ]
    return placed, outside


def disclose(
    city: City, cells: Sequence[Cell], people: PeopleRelease | None = None
) -> list[DisclosedCell]:
    """The cells of a day as they may be published: flagged, suppressed or published.
    ``people``: the release of the day's people counts (required where a cell counts
    people)."""
    personal = city.personal_quantities
    out = []
    for cell in cells:
        where = (cell.window_start, cell.zone, cell.quantity, cell.unit)
        if cell.quantity in personal:
            if people is None:
                raise ValueError("people cells are disclosed from a release of people counts")
            figure = people.figure(cell.window_start, cell.zone, cell.quantity)
            status = Status.PUBLISHED if figure.devices is not None else (
                Status.SUPPRESSED if figure.reason == FEWER_THAN_K else Status.FLAGGED
            )  # fmt: skip
            out.append(
                DisclosedCell(*where, status, figure.reason, distinct_devices=figure.devices)
            )
        elif cell.count and (reason := _implausible(cell)):
            out.append(DisclosedCell(*where, Status.FLAGGED, reason))
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
    settings = city.disclosure.noise
    noise = noise_of(city)
    cap = settings.contributions_per_day
    words = (
        f"{noise.describe()}. The unit of privacy is one device over one UTC day, across "
        f"every sensor, zone, window and release of that day: a device counts in at most "
        f"{cap} zone-windows of a day (chosen at random under a secret key, its other "
        f"sightings not counted), so the dataset's one release of the day — made at a time "
        "fixed in advance, an hour before the day's key is destroyed, never again — costs "
        f"its day at most ε = {settings.epsilon}"
        f"{'' if settings.delta is None else f' (δ = {settings.delta})'}; every release of a "
        f"day is charged to a ledger before its files are written, and a day may spend "
        f"ε = {settings.budget} per person-day over every people dataset."
    )
    rule = (
        "Device identifiers are replaced at the edge by keyed pseudonyms (HMAC-SHA-256 under "
        "a key per city and day, derived from a daily secret destroyed after "
        f"{city.key_retention_days} days) and never published; once the key is destroyed no "
        "stored row keeps one. Each cell shows one figure, its distinct devices plus noise; "
        f"it is published when that noisy figure reaches k = {k}, suppressed below (every "
        "figure blank, never zero), flagged above what its sensors can hear; every window "
        "of every zone with a counter has a row, so an empty window looks like any other. "
        "Counts of readings, sums and extremes are not released; day summaries use "
        f"published cells only. Noise: {words}"
    )
    delta = "" if settings.delta is None else f", δ = {settings.delta * settings.releases:g}"
    resident = (
        f"Whether or not your phone was seen on a given day changes the chance of anything "
        f"published about that day by at most a factor of {_factor(settings.budget)} "
        f"(differential privacy, ε = {settings.budget} per person per day{delta}): someone "
        f"who thought it even odds that you were there could be at most "
        f"{_odds(settings.budget)} % sure after reading everything published. Your phone's "
        "address is replaced by a code that changes every day and cannot be traced back "
        f"once the day's key is destroyed, after {city.key_retention_days} days."
    )
    return PrivacyTreatment(
        personal=True,
        k=k,
        rule=rule,
        mechanism=settings.mechanism,
        epsilon=settings.epsilon,
        delta=settings.delta,
        budget=settings.budget,
        contributions=cap,
        noise=words,
        resident=resident,
    )


def _factor(epsilon: float) -> str:
    """e^ε in words: how much more likely any outcome may become."""
    return f"{math.exp(epsilon):.1f}"


def _odds(epsilon: float) -> str:
    """How sure, in per cent, an even-odds guess may become: e^ε / (1 + e^ε)."""
    return f"{100 * math.exp(epsilon) / (1 + math.exp(epsilon)):.0f}"
