"""aggregate's core: clean observations -> mergeable partials per zone x quantity x 15-min window.

One partial object per clean input, keyed by the input's identity. A partial row is a
(window, zone, quantity, unit, sensor) with count, sum, min and max (mean is derived).
Partials of a window merge exactly, associatively and commutatively, so late data and any
delivery order give the same result.

No partial holds anything about who was seen: people counts are not rolled up here but
counted by export from the day's clean rows while their pseudonyms live, each device's
contribution to the day bounded first (``core.people``, decision 0078). A people
quantity's partial rows count detections only, which nobody publishes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.domain.model import WINDOW_MINUTES

CELL = ["window_start", "zone", "quantity", "unit"]
KEY = [*CELL, "sensor"]
STATS = ["count", "sum", "min", "max"]

PARTIAL_SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("ms", tz="UTC")),
        ("zone", pa.string()),
        ("quantity", pa.string()),
        ("unit", pa.string()),
        ("sensor", pa.string()),
        ("count", pa.int64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
    ]
)


def _grouped(table: pa.Table, aggregations: list[tuple[str, str]]) -> pa.Table:
    grouped = table.group_by(KEY, use_threads=False).aggregate(aggregations)
    grouped = grouped.sort_by([(c, "ascending") for c in KEY])
    stats = [f"{column}_{how}" for column, how in aggregations]
    return pa.Table.from_arrays(
        [grouped[c] for c in KEY] + [grouped[s] for s in stats], schema=PARTIAL_SCHEMA
    )


def partial_of(clean: pa.Table) -> pa.Table:
    """The pure core: one clean table in, one partial table out (sorted by key)."""
    windows = pc.floor_temporal(clean["observed_at"], multiple=WINDOW_MINUTES, unit="minute")
    table = clean.append_column("window_start", windows)
    return _grouped(table, [("value", how) for how in STATS])


def merge_partials(partials: Sequence[pa.Table]) -> pa.Table:
    """Merge partials in the order given (callers sort them: float sums stay reproducible).
    Vectorized: Arrow merges the numbers, no Python object per row."""
    if not partials:
        return PARTIAL_SCHEMA.empty_table()
    table = pa.concat_tables(partials)
    return _grouped(table, [("count", "sum"), ("sum", "sum"), ("min", "min"), ("max", "max")])


def of_quantities(merged: pa.Table, wanted: Sequence[str]) -> pa.Table:
    """The rows of a merged partial that measure one of ``wanted`` (a theme's quantities),
    in their order. Its cells are those of the whole table with these quantities: a merged
    partial has one row per key, so sorting the rows kept sorts them as the whole did."""
    value_set = pa.array(sorted(wanted), pa.string())
    return merged.filter(pc.is_in(merged["quantity"], value_set=value_set))


@dataclass(frozen=True)
class Cell:
    """A zone x quantity x window, over all its sensors. A cell of the complete grid
    nobody was measured in has count 0."""

    window_start: datetime
    zone: str
    quantity: str
    unit: str
    count: int
    sum: float
    min: float
    max: float
    above_ceiling: bool = False  # a sensor's window total exceeds what it can count


def _total(values: Sequence[float]) -> float:
    """The exactly rounded sum; NaN where it has no finite value (1e308 + 1e308, inf - inf).

    Never raises: one cell's impossible figures are export's to flag, not a lost day.
    """
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return math.nan


def cells(
    merged: pa.Table, ceilings: Mapping[tuple[str, str], float] = MappingProxyType({})
) -> list[Cell]:
    """Roll a merged partial (per sensor) up to cells, in cell order; a cell one of whose
    sensors' window totals exceeds its ceiling (``ceilings``: (sensor, quantity) -> the
    most it can count in a window) is ``above_ceiling``.

    Column by column, not a dict per row (a day of a large city has ~10^5 sensor rows)."""
    if merged.num_rows == 0:
        return []
    table = merged.sort_by([(c, "ascending") for c in KEY])
    column = {c: table[c].to_pylist() for c in PARTIAL_SCHEMA.names if c != "window_start"}
    # a day has 96 windows: each made a datetime once, rows keyed by its integer
    starts = table["window_start"]
    windows = pc.unique(starts)
    when = dict(zip(windows.cast(pa.int64()).to_pylist(), windows.to_pylist(), strict=True))
    column["window_start"] = starts.cast(pa.int64()).to_pylist()
    rows = list(zip(*(column[s] for s in STATS), strict=True))
    keys = list(zip(*(column[c] for c in CELL), strict=True))
    above = _above(column["sensor"], column["quantity"], column["sum"], ceilings)
    out = []
    start = 0
    for end in range(1, len(keys) + 1):
        if end < len(keys) and keys[end] == keys[start]:
            continue
        window_start, zone, quantity, unit = keys[start]
        cell = _cell(when[window_start], str(zone), str(quantity), str(unit), rows[start:end])
        if any(above[start:end]):
            cell = replace(cell, above_ceiling=True)
        out.append(cell)
        start = end
    return out


def _above(
    sensors: Sequence[Any],
    quantities: Sequence[Any],
    sums: Sequence[Any],
    ceilings: Mapping[tuple[str, str], float],
) -> list[bool]:
    """Whether each sensor row's window total exceeds the sensor's ceiling for it."""
    if not ceilings:
        return [False] * len(sums)
    inf = math.inf
    return [
        total > ceilings.get((sensor, quantity), inf)
        for sensor, quantity, total in zip(sensors, quantities, sums, strict=True)
    ]


def _cell(
    start: datetime, zone: str, quantity: str, unit: str, rows: Sequence[tuple[Any, ...]]
) -> Cell:
    """A cell from its sensors' rows (count, sum, min, max)."""
    return Cell(
        window_start=start,
        zone=zone,
        quantity=quantity,
        unit=unit,
        count=sum(int(n) for n, _, _, _ in rows),
        sum=_total([float(total) for _, total, _, _ in rows]),
        min=min(float(low) for _, _, low, _ in rows),
        max=max(float(high) for _, _, _, high in rows),
    )
