"""Disclosure control: what of a day's cells may be published, in one function.

``disclose`` is the contract every open format relies on: every cell in, exactly one
``DisclosedCell`` out per cell, in the same order, holding the figures that may be
published — and only those. No format reads a merged partial or a ``Cell`` directly, so
a change of rule here (complementary suppression, a complete grid, noise under an epsilon
budget) changes every format at once. ``treatment`` says in words and numbers what the
rule is, for the catalogue, the data package and the portal.

Today's rule:

1. a cell whose figures are not plausible (a sum that overflowed, a value outside its
   quantity's range: readings ingest should have refused) is **flagged**: marked, its
   figures blank, so a broken sensor can never publish a number nor lose the day;
2. a cell of a quantity that counts people (its source pseudonymizes a data subject) is
   **suppressed** unless one of its sensors alone saw at least k distinct devices
   (pseudonyms are per sensor, so that is the count that can be proven): marked, figures
   blank, never zero;
3. every other cell is **published** as measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from citypipe.core.aggregate import WINDOW_MINUTES, Cell
from citypipe.domain.city import City
from citypipe.domain.model import QUANTITIES


class Status(StrEnum):
    PUBLISHED = "published"
    SUPPRESSED = "suppressed"
    FLAGGED = "flagged"


# Machine-readable reasons of a cell that is not published.
FEWER_THAN_K = "fewer_than_k_devices"
NOT_FINITE = "not_finite"
IMPLAUSIBLE = "implausible_value"


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
    described. ``mechanism`` and ``epsilon`` stay None until noise is added."""

    personal: bool  # the dataset counts people
    k: int | None
    rule: str
    mechanism: str | None = None
    epsilon: float | None = None


def _implausible(cell: Cell) -> str:
    """Why a cell's figures cannot be published as measured, or ''."""
    if not all(math.isfinite(v) for v in (cell.sum, cell.min, cell.max)):
        return NOT_FINITE
    known = QUANTITIES.get(cell.quantity)
    if known and (cell.min < known.low or cell.max > known.high):
        return IMPLAUSIBLE
    return ""


def disclose(city: City, cells: Sequence[Cell]) -> list[DisclosedCell]:
    """The cells of a day as they may be published: flagged, suppressed or published."""
    personal = city.personal_quantities
    k = city.disclosure.k
    out = []
    for cell in cells:
        where = (cell.window_start, cell.zone, cell.quantity, cell.unit)
        if reason := _implausible(cell):
            out.append(DisclosedCell(*where, Status.FLAGGED, reason))
        elif cell.quantity in personal and (cell.min_people or 0) < k:
            out.append(DisclosedCell(*where, Status.SUPPRESSED, FEWER_THAN_K))
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
                    distinct_devices=cell.distinct_devices,
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
    return PrivacyTreatment(
        personal=True,
        k=k,
        rule=f"Device identifiers are replaced within minutes by keyed pseudonyms (HMAC-SHA-256 "
        f"under a key per sensor and day, destroyed after the retention period) and never "
        f"published. A 15-minute zone cell is published only when one sensor alone saw at "
        f"least k = {k} distinct devices; otherwise it is marked suppressed with every figure "
        f"blank (never zero). Day summaries use published cells only. distinct_devices "
        f"counts a device once per sensor that saw it.",
    )
