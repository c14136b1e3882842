"""aggregate's core: clean observations -> mergeable partials per zone x quantity x 15-min window.

One partial object per clean input, keyed by the input's identity. A partial row is a
(window, zone, quantity, unit, sensor) with count, sum, min and max (mean is derived) and,
for personal sources, an HLL sketch of that sensor's pseudonyms: distinct devices without
keeping any identifier. Rows stay per sensor because pseudonyms are per sensor and window:
one sensor can prove how many distinct people it saw in a window, a union of sensors cannot
(the same person has another pseudonym at each sensor), and no sketch links two windows.
Partials of a window merge exactly, associatively and commutatively, so late data and any
delivery order give the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datasketches import hll_sketch, hll_union

from citypipe.domain.model import WINDOW_MINUTES

HLL_LG_K = 12  # ~1.6 % relative error; exact in practice while a cell holds few devices
CELL = ["window_start", "zone", "quantity", "unit"]
KEY = [*CELL, "sensor"]

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
        ("devices", pa.binary()),  # serialized HLL sketch, null for non-personal sources
    ]
)
Key = tuple[object, ...]


def _keys(table: pa.Table, columns: Sequence[str] = KEY) -> list[Key]:
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


def _partial(grouped: pa.Table, *stats: str, devices: list[bytes | None]) -> pa.Table:
    columns = [grouped[c] for c in KEY] + [grouped[s] for s in stats]
    return pa.Table.from_arrays([*columns, pa.array(devices, pa.binary())], schema=PARTIAL_SCHEMA)


def _grouped(table: pa.Table, aggregations: list[tuple[str, str]]) -> pa.Table:
    grouped = table.group_by(KEY, use_threads=False).aggregate(aggregations)
    return grouped.sort_by([(c, "ascending") for c in KEY])


def partial_of(clean: pa.Table) -> pa.Table:
    """The pure core: one clean table in, one partial table out (sorted by key)."""
    windows = pc.floor_temporal(clean["observed_at"], multiple=WINDOW_MINUTES, unit="minute")
    table = clean.append_column("window_start", windows)
    grouped = _grouped(
        table, [("value", "count"), ("value", "sum"), ("value", "min"), ("value", "max")]
    )
    personal = table.filter(pc.is_valid(table["pseudonym"]))
    sketches: dict[Key, hll_sketch] = {}
    for key, alias in zip(_keys(personal), personal["pseudonym"].to_pylist(), strict=True):
        if key not in sketches:
            sketches[key] = hll_sketch(HLL_LG_K)
        sketches[key].update(alias)
    devices = [s.serialize_compact() if (s := sketches.get(k)) else None for k in _keys(grouped)]
    return _partial(grouped, "value_count", "value_sum", "value_min", "value_max", devices=devices)


def merge_partials(partials: Sequence[pa.Table]) -> pa.Table:
    """Merge partials in the order given (callers sort them: float sums stay reproducible)."""
    if not partials:
        return PARTIAL_SCHEMA.empty_table()
    table = pa.concat_tables(partials)
    grouped = _grouped(table, [("count", "sum"), ("sum", "sum"), ("min", "min"), ("max", "max")])
    unions: dict[Key, hll_union] = {}
    for key, blob in zip(_keys(table), table["devices"].to_pylist(), strict=True):
        if blob is not None:
            unions.setdefault(key, hll_union(HLL_LG_K)).update(hll_sketch.deserialize(blob))
    devices = [
        u.get_result().serialize_compact() if (u := unions.get(k)) else None for k in _keys(grouped)
    ]
    return _partial(grouped, "count_sum", "sum_sum", "min_min", "max_max", devices=devices)


@dataclass(frozen=True)
class SensorFigures:
    """What one sensor measured in a cell."""

    sensor: str
    count: int
    sum: float
    min: float
    max: float
    devices: int | None  # distinct devices it saw in the window; None: no data subject


@dataclass(frozen=True)
class Cell:
    """A zone x quantity x window, over all its sensors (figures), and per sensor: what
    disclosure control decides on. A cell of the complete grid nobody was measured in has
    count 0 and no sensor."""

    window_start: datetime
    zone: str
    quantity: str
    unit: str
    count: int
    sum: float
    min: float
    max: float
    sensors: tuple[SensorFigures, ...] = ()


def _total(values: Sequence[float]) -> float:
    """The exactly rounded sum; NaN where it has no finite value (1e308 + 1e308, inf - inf).

    Never raises: one cell's impossible figures are export's to flag, not a lost day.
    """
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return math.nan


def cells(merged: pa.Table) -> list[Cell]:
    """Roll a merged partial (per sensor) up to cells, in cell order. A sensor's distinct
    devices come from its own sketch only: pseudonyms are per sensor and window, so a
    union over sensors would only add them up (and count a device once per sensor)."""
    by_cell: dict[Key, list[dict[str, Any]]] = {}
    for row in merged.sort_by([(c, "ascending") for c in KEY]).to_pylist():
        by_cell.setdefault(tuple(row[c] for c in CELL), []).append(row)
    out = []
    for key, rows in sorted(by_cell.items()):
        window_start, zone, quantity, unit = rows[0]["window_start"], *key[1:]
        sensors = tuple(
            SensorFigures(
                sensor=str(r["sensor"]),
                count=int(r["count"]),
                sum=float(r["sum"]),
                min=float(r["min"]),
                max=float(r["max"]),
                devices=None
                if r["devices"] is None
                else round(hll_sketch.deserialize(r["devices"]).get_estimate()),
            )
            for r in rows
        )
        out.append(
            Cell(
                window_start=window_start,
                zone=str(zone),
                quantity=str(quantity),
                unit=str(unit),
                count=sum(s.count for s in sensors),
                sum=_total([s.sum for s in sensors]),
                min=min(s.min for s in sensors),
                max=max(s.max for s in sensors),
                sensors=sensors,
            )
        )
    return out
