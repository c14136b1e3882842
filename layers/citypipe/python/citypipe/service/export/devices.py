"""A day's people contributions spilled to export's scratch directory by device, bounded a
few devices at a time.

``core.people.capped_counts`` bounds each device's day from all of that device's cells at
once, and never needs two devices together. Counting the whole day at once held every
contribution of the day as Python objects (~1 KB each, 380,000 at the x4 day): export's
memory grew with the day. Here each clean object's contributions are appended to one of
``FILES`` local Arrow IPC files, chosen by the device; ``counts`` then bounds a few
consecutive files at a time, up to ``GROUP_ROWS`` rows, and adds up their counts. Every
cell of a device is in one file, so each device is bounded from its whole day, and the sum
is exactly the whole day's counts, whatever the grouping.

No pseudonym is written to disk: a device is spilled as its number in this export's
memory, and given its pseudonym back when its file is read (the ranking that chooses a
device's cells is keyed by it). A run killed mid-way leaves numbers in scratch, not
pseudonyms that could outlive their key. A day's spill and count held 42 MB at the
example city's 18,573 phones and 744 MB at 1.86 M, ~380 bytes a phone more
(``bench/people_day.py``): most of it the numbers, kept by pseudonym while the day is
spilled.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.columnar import release_unused
from citypipe.core.people import CellKey, capped_cells, capped_counts, summed
from citypipe.service.export.spill import spill_options

GROUP_ROWS = 20_000  # contributions bounded at once (Arrow tables, ranks of a group)
FILES = 64  # open at once while a day is spilled: well under a process's 256 (macOS)


class DeviceSpill:
    """A day's contributions (``core.people.contributions``), by pseudonym prefix, in local
    Arrow IPC files."""

    def __init__(self, directory: Path, compressed: bool = False) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        self._options = spill_options(compressed)
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._rows: Counter[int] = Counter()
        # a device's number, by its pseudonym (in the order numbered: a number's pseudonym
        # is its index in the dict's order), made an array once the day is spilled
        self._numbers: dict[str | None, int] = {}
        self._pseudonyms: pa.Array  # a number's pseudonym, by index: made by ``_groups``
        self._counted = False

    def add(self, contributed: pa.Table) -> None:
        """One clean object's contributions, each row to its device's file."""
        assert not self._counted, "a day is spilled, then counted"
        if contributed.num_rows == 0:
            return
        column = contributed.schema.get_field_index("pseudonym")
        pseudonyms = contributed.column(column).combine_chunks()
        # the object's devices numbered (those not seen before in the order they first
        # appear here), each looked up once in the day's numbers, and its rows given their
        # device's number by a lookup among the object's own devices. Each object's lookup
        # of its devices among the day's, in Arrow, hashed all the day's devices again:
        # objects times devices, quadratic in a city's size (decision 117)
        seen = pc.unique(pseudonyms)
        numbers = self._numbers
        own = [numbers.setdefault(name, len(numbers)) for name in seen.to_pylist()]
        found = pc.index_in(pseudonyms, value_set=seen, skip_nulls=False)
        device = pa.array(own, pa.int32()).take(found)
        numbered = contributed.set_column(column, "pseudonym", device)
        part = pc.bit_wise_and(device, FILES - 1)
        order = pc.sort_indices(part)
        rows = numbered.take(order).combine_chunks()
        runs = pc.run_end_encode(part.take(order))
        first = 0
        for number, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
            if number not in self._writers:
                path = str(self.directory / f"{number:03d}.arrows")
                self._writers[number] = pa.ipc.new_stream(path, rows.schema, options=self._options)
            self._writers[number].write_table(rows.slice(first, end - first))
            self._rows[number] += end - first
            first = end
        release_unused()

    def counts(self, cap: int, key: bytes, max_rows: int = GROUP_ROWS) -> dict[CellKey, int]:
        """The day's counts, every device counted in at most ``cap`` cells (``key``: the
        rank that chooses them), bounded a group of files at a time."""
        capped_counts([], cap, key)  # a cap below one is refused, whatever the day holds
        cells = []
        for tables in self._groups(max_rows):
            cells.append(capped_cells(tables, cap, key))
            release_unused()
        return summed(cells)

    def _groups(self, max_rows: int) -> Iterator[list[pa.Table]]:
        if not self._counted:  # the numbers as an array: about a third of the dict's memory
            self._counted = True
            self._close()
            numbers = self._numbers
            self._pseudonyms = pa.array(iter(numbers), pa.string(), size=len(numbers))
            self._numbers = {}
        group: list[pa.Table] = []
        size = 0
        for number in sorted(self._rows):
            if group and size + self._rows[number] > max_rows:
                yield group
                group, size = [], 0
            with pa.OSFile(str(self.directory / f"{number:03d}.arrows")) as file:
                group.append(self._named(pa.ipc.open_stream(file).read_all()))
            size += self._rows[number]
        if group:
            yield group

    def _named(self, spilled: pa.Table) -> pa.Table:
        """A file's rows with their devices' pseudonyms back."""
        column = spilled.schema.get_field_index("pseudonym")
        return spilled.set_column(
            column, "pseudonym", self._pseudonyms.take(spilled.column(column))
        )

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def remove(self) -> None:
        """The day is counted: its files go."""
        try:
            self._close()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
