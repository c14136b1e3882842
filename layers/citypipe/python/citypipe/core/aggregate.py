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
from typing import Any, NamedTuple

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


def _placed(grouped: pa.Table, sketches: dict[Key, bytes]) -> list[bytes | None]:
    """The devices column of a grouped table: each key's sketch at that key's row (an
    Arrow join: no Python object per row of a table of thousands of sensors)."""
    devices: list[bytes | None] = [None] * grouped.num_rows
    if sketches:
        found = pa.table(
            {
                c: pa.array([k[i] for k in sketches], grouped.schema.field(c).type)
                for i, c in enumerate(KEY)
            }
        ).append_column("sketch", pa.array(range(len(sketches))))
        rows = grouped.select(KEY).append_column("row", pa.array(range(grouped.num_rows)))
        matched = rows.join(found, keys=KEY, join_type="inner", use_threads=False)
        blobs = list(sketches.values())
        for row, sketch in zip(
            matched["row"].to_pylist(), matched["sketch"].to_pylist(), strict=True
        ):
            devices[row] = blobs[sketch]
    return devices


def partial_of(clean: pa.Table) -> pa.Table:
    """The pure core: one clean table in, one partial table out (sorted by key)."""
    windows = pc.floor_temporal(clean["observed_at"], multiple=WINDOW_MINUTES, unit="minute")
    table = clean.append_column("window_start", windows)
    grouped = _grouped(
        table, [("value", "count"), ("value", "sum"), ("value", "min"), ("value", "max")]
    )
    personal = table.filter(pc.is_valid(table["pseudonym"]))
    aliases = personal.group_by(KEY, use_threads=False).aggregate([("pseudonym", "list")])
    sketches: dict[Key, bytes] = {}
    for key, seen in zip(_keys(aliases), aliases["pseudonym_list"].to_pylist(), strict=True):
        sketch = hll_sketch(HLL_LG_K)
        for alias in seen:
            sketch.update(alias)
        sketches[key] = sketch.serialize_compact()
    devices = _placed(grouped, sketches)
    return _partial(grouped, "value_count", "value_sum", "value_min", "value_max", devices=devices)


def merge_partials(partials: Sequence[pa.Table]) -> pa.Table:
    """Merge partials in the order given (callers sort them: float sums stay reproducible).

    Vectorized: Arrow merges the numbers; Python touches only the rows with a sketch
    (personal sources), so a day of thousands of sensors costs no Python object per row."""
    if not partials:
        return PARTIAL_SCHEMA.empty_table()
    table = pa.concat_tables(partials)
    grouped = _grouped(table, [("count", "sum"), ("sum", "sum"), ("min", "min"), ("max", "max")])
    personal = table.filter(pc.is_valid(table["devices"]))
    unions: dict[Key, hll_union] = {}
    for key, blob in zip(_keys(personal), personal["devices"].to_pylist(), strict=True):
        unions.setdefault(key, hll_union(HLL_LG_K)).update(hll_sketch.deserialize(blob))
    merged = {key: union.get_result().serialize_compact() for key, union in unions.items()}
    devices = _placed(grouped, merged)
    return _partial(grouped, "count_sum", "sum_sum", "min_min", "max_max", devices=devices)


def of_quantities(merged: pa.Table, wanted: Sequence[str]) -> pa.Table:
    """The rows of a merged partial that measure one of ``wanted`` (a theme's quantities),
    in their order. Its cells are those of the whole table with these quantities: a merged
    partial has one row per key, so sorting the rows kept sorts them as the whole did."""
    value_set = pa.array(sorted(wanted), pa.string())
    return merged.filter(pc.is_in(merged["quantity"], value_set=value_set))


class SensorFigures(NamedTuple):
    """What one sensor measured in a cell (a tuple: a day of a large city has ~10^5)."""

    sensor: str
    count: int  # type: ignore[assignment]  # the field, not tuple.count (never called)
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
    union over sensors would only add them up (and count a device once per sensor).

    Column by column, not a dict per row (a day of a large city has ~10^5 sensor rows);
    sketches are read for the personal rows only."""
    if merged.num_rows == 0:
        return []
    table = merged.sort_by([(c, "ascending") for c in KEY])
    column = {c: table[c].to_pylist() for c in PARTIAL_SCHEMA.names if c != "window_start"}
    # a day has 96 windows: each made a datetime once, rows keyed by its integer
    starts = table["window_start"]
    windows = pc.unique(starts)
    when = dict(zip(windows.cast(pa.int64()).to_pylist(), windows.to_pylist(), strict=True))
    column["window_start"] = starts.cast(pa.int64()).to_pylist()
    devices = [
        None if blob is None else round(hll_sketch.deserialize(blob).get_estimate())
        for blob in column["devices"]
    ]
    rows = list(
        zip(column["sensor"], column["count"], column["sum"], column["min"], column["max"],
            devices, strict=True)
    )  # fmt: skip
    keys = list(zip(*(column[c] for c in CELL), strict=True))
    out = []
    start = 0
    for end in range(1, len(keys) + 1):
        if end < len(keys) and keys[end] == keys[start]:
            continue
        window_start, zone, quantity, unit = keys[start]
        out.append(_cell(when[window_start], str(zone), str(quantity), str(unit), rows[start:end]))
        start = end
    return out


def _cell(
    start: datetime, zone: str, quantity: str, unit: str, rows: Sequence[tuple[Any, ...]]
) -> Cell:
    """A cell from its sensors' rows (sensor, count, sum, min, max, distinct devices)."""
    sensors = tuple(
        SensorFigures(str(s), int(n), float(total), float(low), float(high), d)
        for s, n, total, low, high, d in rows
    )
    return Cell(
        window_start=start,
        zone=zone,
        quantity=quantity,
        unit=unit,
        count=sum(s.count for s in sensors),
        sum=_total([s.sum for s in sensors]),
        min=min(s.min for s in sensors),
        max=max(s.max for s in sensors),
        sensors=sensors,
    )
