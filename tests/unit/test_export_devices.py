"""A day's people contributions counted a few devices at a time (``service.export.devices``):
the counts are the whole day's, whatever the grouping, so a release — its counts, its id,
its noise — is the one counting the day at once gave."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from unit_support import clean, reading

from citypipe.core.people import CONTRIBUTED_FROM, CONTRIBUTION, capped_counts, contributions
from citypipe.service.export.devices import DeviceSpill

PEOPLE = ["people.presence"]


def a_day(rng: random.Random, people: int = 200) -> list[pa.Table]:
    """A day's clean objects: devices in 1 to 30 windows at three zones, their rows spread
    over six objects (a device in several, a cell seen twice in two); most pseudonyms are
    hex (an HMAC's), some are not."""
    objects: list[list[dict[str, Any]]] = [[] for _ in range(6)]
    for person in range(people):
        name = hashlib.sha256(f"p{person}".encode()).hexdigest()
        pseudonym = name if person % 7 else f"not-hex-{person}"
        for _ in range(rng.randint(1, 30)):
            minute = rng.randrange(96) * 15 + rng.randrange(15)
            row = reading(minute, zone=rng.choice(("centrum", "noord", "west")))
            row["pseudonym"] = pseudonym
            for rows in rng.sample(objects, rng.randint(1, 2)):
                rows.append(row)
    return [contributions(clean(*rows), PEOPLE) for rows in objects]


@pytest.mark.parametrize("max_rows", [1, 100, 1_000_000])
def test_a_day_counted_by_device_groups_is_the_day_counted_at_once(
    tmp_path: Path, max_rows: int
) -> None:
    # Given a day's contributions, over the cap for many devices
    tables = a_day(random.Random(5))
    spill = DeviceSpill(tmp_path / "people")
    for table in tables:
        spill.add(table)
    # When they are spilled by device and counted a group of files at a time
    counted = spill.counts(4, b"key", max_rows)
    spill.remove()
    # Then the counts are those of the whole day at once, and the spill is gone
    assert counted == capped_counts(tables, 4, b"key")
    assert counted
    assert not (tmp_path / "people").exists()


def test_a_cap_of_no_cell_is_refused_however_few_devices_the_day_saw(tmp_path: Path) -> None:
    spill = DeviceSpill(tmp_path / "people")
    with pytest.raises(ValueError, match="one cell at least"):
        spill.counts(0, b"key")
    assert spill.counts(3, b"key") == {}


def test_contributions_need_only_the_columns_export_reads_of_a_clean_object() -> None:
    rows = [
        reading(15 * w, device=f"d{w % 3}", zone=z) for w in range(9) for z in ("noord", "west")
    ]
    rows.append(reading(20, quantity="air.no2"))
    whole = clean(*rows)
    order = [(column, "ascending") for column in CONTRIBUTION]
    found = contributions(whole.select(CONTRIBUTED_FROM), PEOPLE).sort_by(order)
    assert found == contributions(whole, PEOPLE).sort_by(order)
    assert found.num_rows == 18


def test_no_pseudonym_is_written_to_scratch(tmp_path: Path) -> None:
    """A run killed while the day is spilled leaves devices' numbers, not pseudonyms that
    could outlive their key (docs/privacy.md: no stored row keeps a pseudonym longer)."""
    tables = a_day(random.Random(9), people=50)
    spill = DeviceSpill(tmp_path / "people")
    for table in tables:
        spill.add(table)
    spill._close()  # as a killed run leaves them: written, never counted
    written = b"".join(p.read_bytes() for p in (tmp_path / "people").iterdir())
    pseudonyms = {p for t in tables for p in t.column("pseudonym").to_pylist()}
    assert written and pseudonyms
    assert [p for p in pseudonyms if p.encode() in written] == []
    assert [p for p in pseudonyms if p[:16].encode() in written] == []


def test_an_objects_devices_are_numbered_without_hashing_the_days_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each object's devices looked up among its own, never among all the day's so far: a
    lookup among the day's hashed them all again for every object, the day's devices times
    its objects (quadratic in a city's size: its devices and its edge batches both grow)."""
    looked_among: list[int] = []
    for name in ("index_in", "is_in"):
        lookup = getattr(pc, name)

        def among(values: Any, *args: Any, lookup: Any = lookup, **kwargs: Any) -> Any:
            looked_among.append(len(kwargs["value_set"]))
            return lookup(values, *args, **kwargs)

        monkeypatch.setattr(pc, name, among)
    # Given a day of eight objects, each with twenty devices of its own and one they share
    tables = []
    for number in range(8):
        rows = []
        for device in [*range(20 * number, 20 * number + 20), "shared"]:
            row = reading(15 * (number + 1), zone="noord")
            row["pseudonym"] = hashlib.sha256(f"d{device}".encode()).hexdigest()
            rows.append(row)
        tables.append(contributions(clean(*rows), PEOPLE))
    looked_among.clear()
    spill = DeviceSpill(tmp_path / "people")
    # When they are spilled
    for table in tables:
        spill.add(table)
    # Then no lookup was among more devices than one object holds (the day holds 161)
    assert looked_among and max(looked_among) <= 21
    monkeypatch.undo()
    assert spill.counts(4, b"key") == capped_counts(tables, 4, b"key")


def test_devices_are_numbered_in_the_order_first_seen_across_the_days_objects(
    tmp_path: Path,
) -> None:
    """The spill's files are the same bytes however the numbering is made (decision 0117):
    a device is numbered where it is first seen, in its object's order, and keeps its
    number in every later object."""
    a, b, c = (hashlib.sha256(name.encode()).hexdigest() for name in "abc")
    objects = []
    for names in ([a, b, a], [c, a], [b, c]):
        rows = []
        for minute, name in enumerate(names):
            row = reading(15 * minute, zone="noord")
            row["pseudonym"] = name
            rows.append(row)
        objects.append(contributions(clean(*rows), PEOPLE))
    spill = DeviceSpill(tmp_path / "people")
    for table in objects:
        spill.add(table)
    spill._close()
    numbered: dict[int, set[int]] = {}
    for path in sorted((tmp_path / "people").iterdir()):
        with pa.OSFile(str(path)) as file:
            for number in pa.ipc.open_stream(file).read_all()["pseudonym"].to_pylist():
                numbered.setdefault(number, set()).add(int(path.stem))
    # three devices, numbered 0, 1, 2, each in the file its number chooses
    assert numbered == {0: {0}, 1: {1}, 2: {2}}
    assert spill.counts(4, b"key") == capped_counts(objects, 4, b"key")
    every = pa.concat_arrays([t["pseudonym"].combine_chunks() for t in objects])
    assert spill._pseudonyms.to_pylist() == pc.unique(every).to_pylist()  # first seen first
    assert sorted(spill._pseudonyms.to_pylist()) == sorted([a, b, c])
