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


class _HashedPerObject(DeviceSpill):
    """A spill that numbers each object's rows as the spill before decision 0117 did (its
    devices looked up among all the day's, in Arrow) and checks, row by row, that the
    numbers are the dict's, before writing them as ever: the numbering is the files' only
    difference."""

    def add(self, contributed: pa.Table) -> None:
        column = contributed.schema.get_field_index("pseudonym")
        pseudonyms = contributed.column(column).combine_chunks()
        known = pa.array(list(self._numbers), pa.string())
        seen = pc.unique(pseudonyms)
        new = seen.filter(pc.invert(pc.is_in(seen, value_set=known)))
        for name in new.to_pylist():
            self._numbers[name] = len(self._numbers)
        day = pa.array(list(self._numbers), pa.string())
        device = pc.index_in(pseudonyms, value_set=day, skip_nulls=False).cast(pa.int32())
        own = dict(zip(day.to_pylist(), range(len(day)), strict=True))
        assert device.to_pylist() == [own[p] for p in pseudonyms.to_pylist()]
        super().add(contributed)


def test_the_spills_files_are_the_bytes_the_numbering_before_0117_wrote(tmp_path: Path) -> None:
    """A device is numbered where it is first seen, in its object's order, and keeps its
    number in every later object, as before decision 0117: a day of 300 devices (past the
    64 files), one null and some not hex, numbered both ways row by row alike, gives the
    same files byte for byte."""
    tables = a_day(random.Random(11), people=300)
    tables[2] = tables[2].set_column(
        0, "pseudonym", pa.array([None, *tables[2]["pseudonym"].to_pylist()[1:]], pa.string())
    )
    spilled = {}
    for name, spill_type in (("now", DeviceSpill), ("before", _HashedPerObject)):
        spill = spill_type(tmp_path / name)
        for table in tables:
            spill.add(table)
        spill._close()
        spilled[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert len(spilled["now"]) == 64 and spilled["now"] == spilled["before"]
