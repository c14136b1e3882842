"""Privacy as an insider would attack it: a simulated week of the example city's Wi-Fi
counters (400 passers-by a day, and one commuter seen at the same sensor from 08:00 to
18:00 every weekday) run through the real edge, stages, hourly job and export, in memory.

Each test is one attack, tried with everything a zone holds; each failed on the code before
issue 10 (the commuter singled out on 5 of 5 weekdays, sketch coupons linking windows,
empty windows missing from the grid, a re-export differing by exactly one device). Since
decision 0078 a device has one pseudonym a day — the link its day's contribution is
bounded by — and the attacks check that this link ends with the day and with its key.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from unit_support import at, drain, exporting, push

from citypipe.core.aggregate import PARTIAL_SCHEMA
from citypipe.core.columnar import read_parquet
from citypipe.domain.export_books import EpsilonCharge
from citypipe.domain.model import Zone
from citypipe.domain.themes import OpenFormat
from citypipe.service.export import export_day
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryKeyStore

MONDAY = datetime(2026, 6, 1, tzinfo=UTC)
WEEK = 7
PASSERS_BY = 400
COMMUTER = "02:00:5e:c0:ff:ee"
WORK = "wifi-22"  # the sensor the commuter sits beside, 08:00-18:00 on weekdays
COUNTERS = ("wifi-21", "wifi-22", "wifi-23")  # the example city's canonical counters
NOISE_SECRET = bytes(range(32))  # fixed, so the noise of these tests is reproducible


def day_of_detections(day: datetime, rng: random.Random) -> list[tuple[str, datetime, str]]:
    """(sensor, time, MAC) of a simulated day: 400 passers-by seen once or twice at a counter
    between 07:00 and 21:00, and the commuter every 5 minutes of a working day."""
    seen = []
    for _ in range(PASSERS_BY):
        mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
        sensor = rng.choice(COUNTERS)
        first = day + timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600))
        seen.append((sensor, first, mac))
        if rng.random() < 0.3:
            seen.append((sensor, first + timedelta(minutes=rng.randrange(1, 10)), mac))
    if day.weekday() < 5:
        for minute in range(0, 10 * 60, 5):
            seen.append((WORK, day + timedelta(hours=8, minutes=minute), COMMUTER))
    return seen


@pytest.fixture(scope="module")
def week(city: Any, memory_stack: Callable[[Any], Deps]) -> Iterator[tuple[Deps, InMemoryKeyStore]]:
    """Seven days of the city, each pushed as its day ends; the hourly job at 00:05 the
    next morning destroys the secrets past the key retention and publishes the day's air,
    at 23:05 it releases the day's people counts (an hour before its key dies)."""
    deps = memory_stack(city)
    keys = InMemoryKeyStore(noise_secret=NOISE_SECRET)
    rng = random.Random(10)
    for offset in range(WEEK):
        day = MONDAY + timedelta(days=offset)
        evening = at(deps, day + timedelta(hours=23, minutes=59))
        push(evening, keys, day_of_detections(day, rng))
        drain(evening)
        for fired in (
            day + timedelta(days=1, minutes=5),
            day + timedelta(days=1, hours=23, minutes=5),
        ):
            hourly(at(deps, fired), exporting(keys), fired)
    yield deps, keys


def clean_rows(deps: Deps) -> list[dict[str, Any]]:
    bucket = deps.names.bucket(Zone.CLEAN)
    rows: list[dict[str, Any]] = []
    for info in deps.store.list(bucket):
        rows += read_parquet(deps.store.get(bucket, info.key).body).to_pylist()
    return rows


def window_of(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


# --- singling out from the clean zone ---------------------------------------------------------


def test_no_pseudonym_outlives_its_key_in_the_clean_zone(
    week: tuple[Deps, InMemoryKeyStore],
) -> None:
    # Given the week's clean zone, after the hourly job destroyed the secrets of days 1-6
    deps, _ = week
    keep_from = (MONDAY + timedelta(days=WEEK - 1)).date()  # today + yesterday: day 7 lives
    # When an insider reads every row of a day whose key is gone
    aliased = {
        row["observed_at"].date()
        for row in clean_rows(deps)
        if row["pseudonym"] is not None and row["observed_at"].date() < keep_from
    }
    # Then no row of those days holds a pseudonym (the code before: all 7 days did)
    assert aliased == set()


def test_the_commuter_is_linked_across_no_two_days(week: tuple[Deps, InMemoryKeyStore]) -> None:
    # Given every clean row of the week that still holds a pseudonym, grouped by pseudonym
    deps, _ = week
    days: dict[str, set[date]] = defaultdict(set)
    for row in clean_rows(deps):
        if row["pseudonym"] is not None:
            days[row["pseudonym"]].add(row["observed_at"].date())
    # When the insider looks for a device followed from one day to the next
    # Then no pseudonym spans two days (the code before issue 10: the commuter on 5 of 5
    # weekdays), and only the day whose key lives has any
    assert days, "the last day's key lives: its clean rows keep their day pseudonyms"
    assert max(len(seen) for seen in days.values()) == 1
    assert {day for seen in days.values() for day in seen} == {(MONDAY + timedelta(days=6)).date()}


# --- linking through the aggregates zone ------------------------------------------------------


def test_the_aggregates_zone_holds_nothing_about_who_was_seen(
    week: tuple[Deps, InMemoryKeyStore],
) -> None:
    # Given every partial of the aggregates zone (kept for two years)
    deps, _ = week
    bucket = deps.names.bucket(Zone.AGGREGATES)
    partials = [read_parquet(deps.store.get(bucket, i.key).body) for i in deps.store.list(bucket)]
    # Then each holds counts, sums and extremes of readings only: no pseudonym, no sketch
    # of them, no binary column anything could hide in (the code before issue 10: the
    # commuter's sketch coupon in 40 windows of every weekday)
    assert partials
    assert {tuple(p.column_names) for p in partials} == {tuple(PARTIAL_SCHEMA.names)}
    assert not [f for p in partials for f in p.schema if f.type == pa.binary()]


# --- suppression must not disclose presence ---------------------------------------------------


def people_rows(deps: Deps, day: date) -> list[dict[str, str]]:
    key = deps.names.open_file_key("people-counts", OpenFormat.CSV, day.isoformat())
    body = deps.store.get(deps.names.bucket(Zone.OPEN), key).body
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_every_window_of_every_counted_zone_has_a_row(week: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, _ = week
    rows = people_rows(deps, MONDAY.date())
    zones = {deps.city.device("canonical", sensor).zone for sensor in COUNTERS}  # type: ignore[union-attr]
    grid = {(w, z) for w in range(96) for z in zones}
    seen = {
        (
            (datetime.fromisoformat(r["window_start"].replace("Z", "+00:00")) - MONDAY).seconds
            // 900,
            r["zone"],
        )
        for r in rows
    }
    assert grid <= seen


def test_an_empty_window_and_a_window_of_a_few_devices_look_the_same(
    week: tuple[Deps, InMemoryKeyStore],
) -> None:
    # Given Monday's people counts: 03:00 saw nobody anywhere, the early evening a few
    deps, _ = week
    rows = people_rows(deps, MONDAY.date())
    suppressed = [r for r in rows if r["status"] == "suppressed"]
    # When the rows are stripped of where and when they are
    shapes = {
        tuple(v for k, v in r.items() if k not in ("window_start", "window_end", "zone"))
        for r in suppressed
    }
    night = [r for r in rows if r["window_start"].startswith("2026-06-01T03:00")]
    # Then an empty window has a row, and every suppressed row is the same row
    assert night and suppressed
    assert len(shapes) == 1


# --- differencing across re-exports -----------------------------------------------------------


def test_a_re_export_with_one_more_device_does_not_give_that_device_away(
    memory_stack_deps: Deps,
) -> None:
    # Given 40 windows in which the work counter saw 60 devices, released at 23:05 the
    # next day (an hour before the day's key dies)
    deps = memory_stack_deps
    keys = InMemoryKeyStore(noise_secret=NOISE_SECRET)
    day = MONDAY + timedelta(days=1)
    released = at(deps, day + timedelta(days=1, hours=23, minutes=5))
    windows = [day + timedelta(hours=8, minutes=15 * w) for w in range(40)]
    push(released, keys, [(WORK, w, f"02:00:00:00:{n:02x}:{i:02x}") for i, w in enumerate(windows)
                          for n in range(60)])  # fmt: skip
    drain(released)
    export_day(released, exporting(keys), day.date().isoformat())
    before = people_rows(deps, day.date())
    # When late data brings one more device into each of those windows, and the day is
    # exported again
    push(released, keys, [(WORK, w + timedelta(minutes=7), f"02:00:00:01:00:{i:02x}")
                          for i, w in enumerate(windows)])  # fmt: skip
    drain(released)
    export_day(released, exporting(keys), day.date().isoformat())
    # Then there is nothing to subtract: the day's one release stands, byte for byte (the
    # code before issue 10: 40 differences of exactly 1; before issue 17, a second release
    # charged whenever a count changed — itself telling that someone came)
    assert people_rows(deps, day.date()) == before
    assert sum(r["status"] == "published" for r in before) >= 40
    ledger = [
        EpsilonCharge.model_validate_json(deps.store.get(deps.names.bucket(Zone.AUDIT), i.key).body)
        for i in deps.store.list(deps.names.bucket(Zone.AUDIT), deps.names.epsilon_prefix())
    ]
    noise = deps.city.disclosure.noise
    assert [(c.day, c.epsilon, c.spent) for c in ledger] == [
        (day.date().isoformat(), noise.epsilon, noise.epsilon)
    ]


@pytest.fixture
def memory_stack_deps(city: Any, memory_stack: Callable[[Any], Deps]) -> Deps:
    return memory_stack(city)
