"""aggregate: mergeable partials per zone x quantity x 15-minute window.

Values in these tests are exactly representable (integers and halves), so sums do not
depend on the order floats are added in. No partial holds anything about who was seen
(decision 0078): people are counted by export, from the clean zone.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from unit_support import T10, clean, devices, no2, reading, vehicles

from citypipe.core.aggregate import (
    PARTIAL_SCHEMA,
    cells,
    merge_partials,
    of_quantities,
    partial_of,
)
from citypipe.core.columnar import parquet_bytes, read_parquet
from citypipe.service.export.spill import DayPartials


def readable(partial: pa.Table) -> list[dict[str, Any]]:
    return list(partial.to_pylist())


# --- partials ----------------------------------------------------------------------------


def test_a_partial_holds_count_sum_min_and_max_per_15_minute_window() -> None:
    # Given NO2 readings at 10:00, 10:07, 10:14 and 10:15, 10:29
    table = clean(no2(0, 20.0), no2(7, 24.5), no2(14, 18.0), no2(15, 30.0), no2(29, 31.5))
    # When the partial is computed
    cells = readable(partial_of(table))
    # Then there is one cell per window, with the window's statistics
    assert [(c["window_start"], c["count"], c["sum"], c["min"], c["max"]) for c in cells] == [
        (T10, 3, 62.5, 18.0, 24.5),
        (T10 + timedelta(minutes=15), 2, 61.5, 30.0, 31.5),
    ]


def test_cells_are_split_by_zone_and_quantity() -> None:
    table = clean(no2(1, zone="centrum"), no2(2, zone="noord"), reading(3, zone="centrum"))
    cells = {(c["zone"], c["quantity"]) for c in readable(partial_of(table))}
    assert cells == {
        ("centrum", "air.no2"),
        ("noord", "air.no2"),
        ("centrum", "people.presence"),
    }


def test_a_partial_keeps_one_row_per_sensor_of_a_cell() -> None:
    # Given two Wi-Fi counters in the same zone and window
    table = clean(*devices(3, sensor="wifi-012"), *devices(2, sensor="wifi-013"))
    # Then each sensor has its own row, with its own count of readings
    assert [(r["sensor"], r["count"]) for r in readable(partial_of(table))] == [
        ("wifi-012", 3),
        ("wifi-013", 2),
    ]


def test_a_partial_has_the_partial_schema() -> None:
    assert partial_of(clean(no2())).schema == PARTIAL_SCHEMA


def test_a_partial_keeps_nothing_about_who_was_seen() -> None:
    # Given three devices' day pseudonyms in the clean rows
    pseudonyms = {row["pseudonym"] for row in devices(3)}
    # When their partial is written and read back as the aggregates zone holds it
    stored = parquet_bytes(partial_of(clean(*devices(3), *devices(2, minute=5))))
    partial = read_parquet(stored)
    # Then it has the partial's columns only (no pseudonym, no sketch of them), counts
    # the five detections, and no pseudonym is anywhere in its bytes
    assert partial.column_names == PARTIAL_SCHEMA.names
    [row] = partial.to_pylist()
    assert row["count"] == 5
    assert all(p.encode() not in stored for p in pseudonyms)


# --- merging -------------------------------------------------------------------------------

A = clean(no2(0, 20.0), no2(16, 22.5), *devices(4), *devices(2, minute=20))
B = clean(no2(3, 19.0), no2(40, 25.0), *devices(3, minute=9, first=3))
C = clean(no2(8, 21.5, zone="noord"), *devices(6, minute=14, first=2, sensor="wifi-013"))


def test_merging_is_order_independent() -> None:
    a, b = partial_of(A), partial_of(B)
    assert readable(merge_partials([a, b])) == readable(merge_partials([b, a]))


def test_merging_is_associative() -> None:
    a, b, c = partial_of(A), partial_of(B), partial_of(C)
    left = merge_partials([merge_partials([a, b]), c])
    right = merge_partials([a, merge_partials([b, c])])
    assert readable(left) == readable(right)


def test_merged_partials_equal_the_partial_of_all_readings_at_once() -> None:
    merged = merge_partials([partial_of(A), partial_of(B), partial_of(C)])
    whole = partial_of(pa.concat_tables([A, B, C]))
    assert readable(merged) == readable(whole)


def test_merging_one_partial_changes_nothing() -> None:
    a = partial_of(A)
    assert readable(merge_partials([a])) == readable(a)


def test_merging_nothing_gives_an_empty_partial() -> None:
    merged = merge_partials([])
    assert (merged.num_rows, merged.schema) == (0, PARTIAL_SCHEMA)


# --- a day spilled by window, merged a few windows at a time --------------------------------

INEXACT = [
    clean(*({**no2(m, 0.1 * m + p), "sensor": f"aq-00{m % 3}"} for m in range(0, 90, 4)))
    for p in range(4)
]  # four partials of the same keys: their sums are not exact in binary


def day_partials(tmp_path: Path) -> DayPartials:
    partials = DayPartials(tmp_path)
    for table in [*INEXACT, A, B, C]:
        partials.add(partial_of(table))
    return partials


def test_a_day_merged_window_by_window_is_the_day_merged_at_once(tmp_path: Path) -> None:
    # Given partials whose sums depend on the order they are added in, spilled by window
    partials = day_partials(tmp_path)
    whole = merge_partials([partial_of(t) for t in [*INEXACT, A, B, C]])
    # When they are merged a partial row's worth at a time (a window a group)
    groups = list(partials.groups(["air.no2", "people.presence"], max_rows=1))
    # Then the groups are the day's windows in order, and together the day's merge
    assert [len(windows) for windows, _ in groups] == [1] * len(groups)
    assert [w for windows, _ in groups for w in windows] == sorted(
        set(whole["window_start"].to_pylist())
    )
    assert readable(pa.concat_tables([merged for _, merged in groups])) == readable(
        of_quantities(whole, ["air.no2", "people.presence"])
    )


def test_a_group_holds_windows_until_their_rows_would_pass_the_bound(tmp_path: Path) -> None:
    # Given a day spilled, and its NO2 partial rows per window
    partials = day_partials(tmp_path)
    no2_rows = pa.concat_tables(
        [of_quantities(partial_of(t), ["air.no2"]) for t in [*INEXACT, A, B, C]]
    )
    rows: dict[Any, int] = {}
    for window in no2_rows["window_start"].to_pylist():
        rows[window] = rows.get(window, 0) + 1
    bound = 30
    # When grouped by up to 30 partial rows
    groups = [windows for windows, _ in partials.groups(["air.no2"], max_rows=bound)]
    # Then every window with NO2 is in one group, in order; a group passes the bound only
    # when it is a single window; and each group would have passed it with the next window
    assert [w for windows in groups for w in windows] == sorted(rows)
    sizes = [sum(rows[w] for w in windows) for windows in groups]
    assert all(size <= bound or len(w) == 1 for size, w in zip(sizes, groups, strict=True))
    assert all(
        size + rows[after[0]] > bound for size, after in zip(sizes, groups[1:], strict=False)
    )
    assert len(groups) > 1 and any(len(w) > 1 for w in groups)


def test_windows_without_rows_are_grouped_when_asked_for(tmp_path: Path) -> None:
    # Given a day spilled, and a window of it nobody measured (a people day's grid)
    partials = day_partials(tmp_path)
    empty = T10 - timedelta(hours=5)
    # When its people rows are grouped with that window
    groups = list(partials.groups(["people.presence"], [empty], max_rows=10**6))
    # Then it is in the one group, before the windows with rows (two sensors at 10:00)
    [(windows, merged)] = groups
    assert windows == [empty, T10, T10 + timedelta(minutes=15)]
    assert merged.num_rows == 3


# --- cells ---------------------------------------------------------------------------------


def test_a_themes_cells_are_the_days_cells_of_its_quantities() -> None:
    # Given a day of NO2, presence and vehicles merged (sums not exact in binary, two
    # sensors in a cell)
    more = clean(
        vehicles(2, 0.1), vehicles(5, 0.2, zone="noord"), no2(6, 0.3),
        {**no2(7, 0.7), "sensor": "aq-008"},
    )  # fmt: skip
    merged = merge_partials([partial_of(A), partial_of(B), partial_of(C), partial_of(more)])
    whole = cells(merged)
    assert {c.quantity for c in whole} == {"air.no2", "people.presence", "traffic.vehicles"}
    # When the cells of some quantities (export: a theme's) are made from their rows alone
    # Then they are the day's cells of those quantities, in the same order
    for wanted in (["air.no2"], ["people.presence"], ["traffic.vehicles", "air.no2"], []):
        assert cells(of_quantities(merged, wanted)) == [c for c in whole if c.quantity in wanted]


def test_a_cell_whose_sensors_sum_past_the_largest_float_is_nan_not_an_error() -> None:
    # Given two sensors of a zone that each sent 1e308 in the same window
    first = no2(0, 1e308)
    second = {**no2(1, 1e308), "sensor": "aq-008"}
    # When the merged partial is rolled up to cells
    [cell] = cells(partial_of(clean(first, second)))
    # Then the cell's sum has no finite value (export flags it) instead of raising
    assert cell.sum != cell.sum  # NaN
    assert (cell.count, cell.min, cell.max) == (2, 1e308, 1e308)


def test_a_partial_written_with_a_sketch_column_is_still_read(tmp_path: Path) -> None:
    # Given a partial as aggregate wrote them before decision 0078 (a sketch per row)
    old = partial_of(A)
    old = old.append_column("devices", pa.array([b"sketch"] * old.num_rows, pa.binary()))
    partials = DayPartials(tmp_path)
    partials.add(read_parquet(parquet_bytes(old)))
    # When the day is merged, then it is today's partial: the sketches are never read
    [(_, merged)] = list(partials.groups(["air.no2", "people.presence"], max_rows=10**6))
    assert readable(merged) == readable(partial_of(A))
