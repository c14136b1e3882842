"""A day's partials spilled to export's scratch directory, merged back a few windows at a
time.

Export used to read and merge a whole day's partials at once, so its memory grew with the
day. Here each partial, read once, is split by 15-minute window and appended to that
window's Arrow IPC file in ``directory`` (export's ``ports.Scratch``: the function's /tmp);
then ``groups`` merges consecutive windows, up to a bounded number of partial rows at a
time. A published cell is one window's, so a group's cells are exactly the whole day's
cells of its windows, in the same order; and a key's rows reach the merge in the order
the partials were added (callers add them in key order), so its sums are added as the
whole day's merge adds them.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.aggregate import PARTIAL_SCHEMA, merge_partials, of_quantities
from citypipe.core.columnar import read_parquet, release_unused
from citypipe.ports import GET_CONCURRENCY
from citypipe.service.kernel import Deps

GROUP_ROWS = 10_000  # partial rows merged at once: a few tens of MB, whatever the day
# Uncompressed unless the scratch disk asks (``Scratch.compressed``, decision 0118: a fixed
# small disk): the day is read back once, for every theme at a time, and lz4 costs CPU for
# its room (bench/people_day.py measures both); ~90 bytes a partial row, 35 MB for the x4
# day.
SPILL = pa.ipc.IpcWriteOptions(compression=None)


@cache
def spill_options(compressed: bool) -> pa.ipc.IpcWriteOptions:
    """How a spill's Arrow IPC files are written (lz4's codec set up only if asked)."""
    return pa.ipc.IpcWriteOptions(compression="lz4") if compressed else SPILL


class DayPartials:
    """A day's partials, by window, in local Arrow IPC files."""

    def __init__(self, directory: Path, compressed: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._options = spill_options(compressed)
        self._writers: dict[datetime, pa.ipc.RecordBatchStreamWriter] = {}
        self._rows: dict[datetime, Counter[str]] = {}  # a window's partial rows per quantity

    def add(self, partial: pa.Table) -> None:
        """One partial's rows, each window's to its file (in their order)."""
        if partial.num_rows == 0:
            return
        # today's columns only: a partial written before decision 0078 also holds sketches
        partial = partial.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA)
        partial = partial.sort_by("window_start").combine_chunks()  # a stable sort
        counted = partial.group_by(["window_start", "quantity"], use_threads=False).aggregate(
            [("quantity", "count")]
        )
        for start, quantity, rows in zip(
            *(counted[c].to_pylist() for c in ("window_start", "quantity", "quantity_count")),
            strict=True,
        ):
            self._rows.setdefault(start, Counter())[quantity] += rows
        runs = pc.run_end_encode(partial["window_start"].chunk(0))
        first = 0
        for start, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
            if start not in self._writers:
                self._writers[start] = pa.ipc.new_stream(
                    str(self._path(start)), PARTIAL_SCHEMA, options=self._options
                )
            self._writers[start].write_table(partial.slice(first, end - first))
            first = end
        release_unused()

    def quantities(self) -> list[str]:
        """The quantities the day holds, sorted."""
        return sorted({q for counts in self._rows.values() for q in counts})

    def groups(
        self,
        quantities: Sequence[str],
        windows: Iterable[datetime] = (),
        max_rows: int = GROUP_ROWS,
    ) -> Iterator[tuple[list[datetime], pa.Table]]:
        """The day's rows of ``quantities``, merged a group of consecutive windows at a time
        (at most ``max_rows`` partial rows a group, one window at least): each group's
        windows (``windows`` too, though they hold no row: a people day's empty windows)
        and its merged partial."""
        self._close()
        rows = {w: sum(counts[q] for q in quantities) for w, counts in self._rows.items()}
        wanted = sorted({w for w, n in rows.items() if n} | set(windows))
        group: list[datetime] = []
        size = 0
        for window in wanted:
            if group and size + rows.get(window, 0) > max_rows:
                yield group, self._merged(group, quantities)
                release_unused()
                group, size = [], 0
            group.append(window)
            size += rows.get(window, 0)
        if group:
            yield group, self._merged(group, quantities)

    def _close(self) -> None:
        """Every window's file complete: the day's partials were all added."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _merged(self, windows: Sequence[datetime], quantities: Sequence[str]) -> pa.Table:
        tables = []
        for window in windows:
            if window in self._rows:
                with pa.OSFile(str(self._path(window))) as file:
                    tables.append(of_quantities(pa.ipc.open_stream(file).read_all(), quantities))
        return merge_partials(tables)

    def remove(self) -> None:
        """The spill is merged: its files go (the themes' files need the room)."""
        self._close()
        shutil.rmtree(self.directory)

    def _path(self, window: datetime) -> Path:
        return self.directory / f"{window:%Y%m%dT%H%M%S}.arrows"


def spill_day(
    deps: Deps, bucket: str, keys: Sequence[str], directory: Path, compressed: bool = False
) -> DayPartials:
    """The day's partials, read concurrently a few at a time (in key order) and spilled
    to ``directory`` by window (``compressed`` or not): never the whole day in memory."""
    partials = DayPartials(directory, compressed)
    for start in range(0, len(keys), GET_CONCURRENCY):
        for body in deps.store.get_many(bucket, keys[start : start + GET_CONCURRENCY]):
            partials.add(read_parquet(body.body))
    return partials
