"""Disclosure's edges (issue 25: survivors of mutation testing of ``core.disclosure``): a
day's 96 windows, a value at its quantity's plausible bound published and one past it
flagged, the empty cells of the complete grid, the people cells left out of it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from unit_support import DAY, T10, clean, devices, release_of

from citypipe.core.aggregate import Cell, cells, partial_of
from citypipe.core.disclosure import (
    WINDOWS_A_DAY,
    DisclosedCell,
    Status,
    complete_grid,
    day_windows,
    disclose,
    treatment,
)
from citypipe.domain.city import City
from citypipe.domain.model import QUANTITIES

MIDNIGHT = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_day_has_96_windows_of_15_minutes_from_midnight() -> None:
    windows = day_windows(DAY)
    assert WINDOWS_A_DAY == 96
    assert windows == [MIDNIGHT + timedelta(minutes=15 * w) for w in range(96)]
    assert windows[-1] == datetime(2026, 6, 1, 23, 45, tzinfo=UTC)


def test_a_disclosed_cell_ends_15_minutes_after_it_starts() -> None:
    cell = DisclosedCell(T10, "centrum", "air.no2", "ug/m3", Status.PUBLISHED, "")
    assert cell.window_end == T10 + timedelta(minutes=15)


def no2_cell(low: float, high: float) -> Cell:
    return Cell(T10, "centrum", "air.no2", "ug/m3", 2, low + high, low, high)


NO2 = QUANTITIES["air.no2"]


@pytest.mark.parametrize(
    ("low", "high", "status"),
    [
        (NO2.low, NO2.high, Status.PUBLISHED),
        (NO2.low - 0.5, NO2.high, Status.FLAGGED),
        (NO2.low, NO2.high + 0.5, Status.FLAGGED),
        (NO2.low - 0.5, NO2.high - 1, Status.FLAGGED),
        (NO2.low + 1, NO2.high + 0.5, Status.FLAGGED),
    ],
    ids=["at-both-bounds", "below-low", "above-high", "only-below-low", "only-above-high"],
)
def test_a_value_at_its_quantitys_bound_is_published_and_past_it_flagged(
    city: City, low: float, high: float, status: Status
) -> None:
    [cell] = disclose(city, [no2_cell(low, high)])
    assert cell.status is status
    # the reasons are the open data's machine-readable words: spelled out, not imported
    assert cell.reason == ("" if status is Status.PUBLISHED else "implausible_value")
    if status is Status.PUBLISHED:
        assert (cell.count, cell.min, cell.max, cell.mean) == (2, low, high, (low + high) / 2)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_figure_that_is_not_a_number_is_flagged_not_finite(city: City, bad: float) -> None:
    [cell] = disclose(city, [Cell(T10, "centrum", "air.no2", "ug/m3", 2, bad, 1.0, 2.0)])
    assert (cell.status, cell.reason, cell.sum) == (Status.FLAGGED, "not_finite", None)
    assert (cell.status.value, Status.SUPPRESSED.value) == ("flagged", "suppressed")


def test_an_empty_cell_of_the_grid_was_measured_zero_times(city: City) -> None:
    grid, outside = complete_grid(city, DAY, ["people.presence"], [])
    assert outside == 0
    empty = grid[0]
    assert (empty.window_start, empty.zone, empty.quantity) == (
        MIDNIGHT,
        "centrum",
        "people.presence",
    )
    assert empty.unit == QUANTITIES["people.presence"].unit
    assert (empty.count, empty.sum) == (0, 0.0)
    assert math.isnan(empty.min) and math.isnan(empty.max)


def test_the_grid_counts_each_people_cell_it_leaves_out_once(city: City) -> None:
    # three people cells of a zone with no counter, and one of a zone with one
    stray = [
        Cell(T10 + timedelta(minutes=15 * w), "nowhere", "people.presence", "", 3, 3.0, 1, 1)
        for w in range(3)
    ]
    counted = cells(partial_of(clean(*devices(2))))
    grid, outside = complete_grid(city, DAY, ["people.presence"], [*stray, *counted])
    assert outside == 3
    assert {c.zone for c in grid} == set(city.zones_measuring["people.presence"])
    [seen] = [c for c in grid if c.count]
    assert (seen.window_start, seen.zone, seen.count) == (T10, "centrum", 2)


def test_the_grid_of_some_windows_holds_those_windows_only(city: City) -> None:
    chosen = [T10, T10 + timedelta(minutes=15)]
    grid, _ = complete_grid(city, DAY, ["people.presence"], [], chosen)
    assert sorted({c.window_start for c in grid}) == chosen


def test_a_people_cell_needs_a_release(city: City) -> None:
    counted = cells(partial_of(clean(*devices(2))))
    with pytest.raises(ValueError, match="from a release of people counts"):
        disclose(city, counted)
    [cell] = disclose(city, counted, release_of(city, *devices(2)))
    assert cell.count is None and cell.status is Status.SUPPRESSED


def test_a_dataset_about_no_one_says_so(city: City) -> None:
    stated = treatment(city, ["air.no2", "traffic.vehicles"])
    assert (stated.personal, stated.k, stated.mechanism, stated.noise) == (False, None, None, None)
    assert stated.rule.startswith("No personal data: the sensors measure the environment")
    assert "Implausible figures are flagged, never published." in stated.rule
