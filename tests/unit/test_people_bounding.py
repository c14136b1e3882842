"""``capped_counts`` against the rule it implements, written out plainly (decision 0078):
each device counts once in each of its distinct (window, zone, quantity) cells — or, seen
in more than ``cap`` of them, in the ``cap`` of lowest HMAC(key, pseudonym|start|zone|
quantity), the start in the column's epoch milliseconds. The release's counts and id are
the bounding's: any other count is another release (new noise, charged again), so the
implementation must give exactly what this reference gives, on tables of devices under, at
and over the cap, with duplicates within and across tables, counted at once or a group of
devices at a time (``DeviceSpill``)."""

from __future__ import annotations

import hmac
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from citypipe.core.noise import Noise
from citypipe.core.people import CONTRIBUTION, CellKey, capped_counts, release_id
from citypipe.service.export.devices import DeviceSpill

SCHEMA = pa.schema(
    [
        ("pseudonym", pa.string()),
        ("window_start", pa.timestamp("ms", tz="UTC")),
        ("zone", pa.string()),
        ("quantity", pa.string()),
    ]
)
assert SCHEMA.names == CONTRIBUTION
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)
ZONES = ("centrum", "noord", "west")
QUANTITIES = ("people.presence", "people.flow")
Row = tuple[str, datetime, str, str]


def reference(tables: list[list[Row]], cap: int, key: bytes) -> dict[CellKey, int]:
    """The rule, one device at a time, in plain Python."""
    cells: dict[str, set[tuple[datetime, str, str]]] = {}
    for rows in tables:
        for device, start, zone, quantity in rows:
            cells.setdefault(device, set()).add((start, zone, quantity))
    counts: Counter[CellKey] = Counter()
    for device, seen in cells.items():

        def rank(cell: tuple[datetime, str, str], device: str = device) -> bytes:
            start, zone, quantity = cell
            ms = (start - EPOCH) // timedelta(milliseconds=1)
            return hmac.digest(key, f"{device}\x1f{ms}\x1f{zone}\x1f{quantity}".encode(), "sha256")

        counts.update(sorted(seen, key=rank)[:cap])
    return dict(counts)


def table(rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(CONTRIBUTION, row, strict=True)) for row in rows], schema=SCHEMA
    )


def a_row(device: str, window: int, zone: int = 0, quantity: int = 0) -> Row:
    return (device, DAY + timedelta(minutes=15 * window), ZONES[zone], QUANTITIES[quantity])


contributions = st.builds(
    a_row,
    st.sampled_from(["a", "b", "day:c", "d\u00e9", "0" * 64, "f" * 64, ""]),
    st.integers(0, 11),
    st.integers(0, len(ZONES) - 1),
    st.integers(0, len(QUANTITIES) - 1),
)


@st.composite
def days(draw: st.DrawFn) -> list[list[Row]]:
    """A day's objects: lists of contributions, then one more of rows already seen (a cell
    in two objects)."""
    tables = draw(st.lists(st.lists(contributions, max_size=40), min_size=1, max_size=4))
    seen = [row for rows in tables for row in rows]
    if seen:
        tables.append(draw(st.lists(st.sampled_from(seen), max_size=20)))
    return tables


@settings(max_examples=150, deadline=None)
@given(days(), st.integers(1, 8), st.binary(min_size=1, max_size=100))
@example([[a_row("a", w) for w in range(3)]], 3, b"k")  # at the cap
@example([[a_row("a", w) for w in range(4)]], 3, b"k")  # one over
@example([[a_row("a", w) for w in range(2)]], 3, b"k")  # one under
@example([[a_row("a", w) for w in range(4)], [a_row("a", w) for w in range(4)]], 3, b"k")
@example([[a_row("a", w) for w in range(5)]], 2, b"k" * 64)  # a key of one block
@example([[a_row("a", w) for w in range(5)]], 2, b"k" * 65)  # a key longer: hashed first
def test_capped_counts_is_the_rule(tables: list[list[Row]], cap: int, key: bytes) -> None:
    found = capped_counts([table(rows) for rows in tables], cap, key)
    expected = reference(tables, cap, key)
    assert found == expected
    assert all(isinstance(n, int) and n > 0 for n in found.values())
    noise = Noise("laplace", 2.0, None, cap)
    assert release_id(key, "people", "2026-06-01", noise, found) == release_id(
        key, "people", "2026-06-01", noise, expected
    )


def a_day(rng: random.Random, cap: int, devices: int) -> list[list[Row]]:
    """Devices seen in fewer, exactly, one more than and many more than ``cap`` cells, each
    cell once or several times, spread over five objects."""
    objects: list[list[Row]] = [[] for _ in range(5)]
    for number in range(devices):
        many = rng.choice([1, cap - 1, cap, cap + 1, cap + 2, 3 * cap, rng.randint(1, 40)])
        cells = rng.sample(
            [(w, z, q) for w in range(96) for z in range(3) for q in range(2)], max(many, 1)
        )
        device = f"{number:x}" * (number % 3 + 1)
        for cell in cells:
            for rows in rng.sample(objects, rng.choice([1, 1, 2, 3])):
                rows.append(a_row(device, *cell))
    return objects


def test_a_busy_day_is_bounded_as_the_rule_says() -> None:
    rng = random.Random(22)
    for cap in (1, 2, 5, 10):
        day = a_day(rng, cap, 300)
        found = capped_counts([table(rows) for rows in day], cap, b"choice")
        assert found == reference(day, cap, b"choice")
        assert sum(found.values()) < sum(len(set(r)) for r in day)  # some devices were capped


def test_a_day_counted_a_few_devices_at_a_time_is_the_rule(tmp_path: Path) -> None:
    rng = random.Random(23)
    day = a_day(rng, 4, 400)
    for max_rows in (1, 250, 3_000, 10**9):
        spill = DeviceSpill(tmp_path / f"people-{max_rows}")
        for rows in day:
            spill.add(table(rows))
        try:
            assert spill.counts(4, b"choice", max_rows) == reference(day, 4, b"choice")
        finally:
            spill.remove()


def test_no_contribution_counts_nobody() -> None:
    assert capped_counts([table([])], 3, b"k") == {}
    assert capped_counts([table([]), table([])], 1, b"k") == {}
