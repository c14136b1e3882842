"""The export's scratch as a city grows: what the measured days leave out.

A scaled city (`make bench`'s x4, `make bench-big`'s x14) adds sensors, not people: every
size detects the simulator's 20,000 phones (``simulate.world.POPULATION``), though its
contributions (a phone's distinct windows and zones) grow with its sensors. The day is
made here as the pipeline makes it, in the replay's batches of 40,000 hub messages: each
batch through the edge (``core.ingest``), each of its raw objects (a source and day)
anonymized (``core.anonymize``) into a clean object, and that aggregated into a partial
(``core.aggregate``). The day's CSV drops (traffic loops, no people) are left out: 2 % of
the x4 day's partial rows.

The people release's device work (each clean object's contributions spilled by device,
then each device's cells capped: ``service.export.devices``) is measured on four days:

- the x1 day;
- the x4 day (the scaled city `make bench` replays): four times the sensors, the same
  phones;
- the x1 day copied four times, each copy's phones pseudonyms of their own: about as many
  contributions as the x4 day's, four times the phones;
- the x1 day copied ``COPIES`` times: a metropolis's phones.

The second and third tell what the phones cost beyond the contributions, which the
measured days' line through x4 and x14 already holds. Then the x4 day's two spills, plain
and lz4 (decision 0118): the partials spilled and read back by group, the devices spilled
and counted.

Each figure is the median of ``RUNS`` fresh interpreters: CPU seconds, the highest
resident memory above the process's before (the pages loading freed given back and the
high-water mark reset first), and the spill's bytes on disk. Its output is what
``bench/scale.py``'s ``PEOPLE_DAY`` and ``LZ4`` hold (copied by hand: the metropolis's day
takes a minute a run).

    python bench/people_day.py [work-dir]
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.aggregate import partial_of
from citypipe.core.anonymize import anonymize_columns
from citypipe.core.columnar import release_unused
from citypipe.core.disclosure import noise_of
from citypipe.core.ingest import normalize
from citypipe.core.people import contributions
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import load_city
from citypipe.domain.model import RAW_FIELDS
from citypipe.service.collector import paused
from citypipe.service.export.devices import DeviceSpill
from citypipe.service.export.spill import DayPartials
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.replay import edge_batches, payloads_of
from citypipe_local.simulate import scaled_city, simulate

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "infra" / "cities" / "velden.yaml"
SEED = 7  # bench/run.py's
BATCH = 40_000  # hub messages a batch, the replay's (ReplayOptions.batch_payloads)
COPIES = 100  # the metropolis: x100
RUNS = 3


def day_objects(work: Path, size: int) -> Path:
    """The x``size`` day (``bench/run.py``'s: a scaled city simulated at scale 1) as the
    pipeline makes it, in ``work/export-x<size>``, if absent: per raw object (batch,
    source and day), its clean object's contributions (``contributions/``) and its partial
    (``partials/``), each an Arrow IPC file."""
    out = work / f"export-x{size}"
    if out.exists():
        return out
    making = work / f"export-x{size}.making"  # renamed once whole: never half of a day reused
    shutil.rmtree(making, ignore_errors=True)
    city_file = CITY if size == 1 else scaled_city(CITY, size, work / f"x{size}" / "city")
    city = load_city(city_file)
    captures = work / f"x{size}" / "input"
    if not captures.exists():
        simulate(city, captures, hours=24, seed=SEED, scale=1.0)
    key_for = day_keys(InMemoryKeyStore(), city.slug)
    people = sorted(city.personal_quantities)
    for kind in ("contributions", "partials"):
        (making / kind).mkdir(parents=True)
    number = 0
    for lines in edge_batches(captures, BATCH):
        with paused():
            batch = normalize(city, None, payloads_of(lines), now=time.time(), key_for=key_for)
        for _, rows in sorted(batch.by_partition.items()):
            columns = dict(zip(RAW_FIELDS, map(list, zip(*rows, strict=True)), strict=True))
            clean = anonymize_columns(city, columns).clean
            contributed = contributions(clean, people)
            if contributed.num_rows:
                _write(making / "contributions" / f"{number:04d}.arrows", contributed)
            _write(making / "partials" / f"{number:04d}.arrows", partial_of(clean))
            number += 1
    return making.rename(out)


def _write(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _read(folder: Path) -> list[pa.Table]:
    tables = []
    for path in sorted(folder.glob("*.arrows")):
        with pa.OSFile(str(path)) as source:
            tables.append(pa.ipc.open_stream(source).read_all())
    return tables


MEASURE = """
import sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import people_day
day, what, copies, compressed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
if what == "partials":
    print(people_day.measure_partials(day, compressed == "lz4"))
else:
    print(people_day.measure(day, copies, compressed == "lz4"))
"""


def _resident_mb(field: str) -> float:
    """A field of /proc/self/status (kB: KiB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} in /proc/self/status")


def _baseline() -> float:
    """The resident MB now, once what was freed is given back; the high-water mark reset."""
    gc.collect()
    release_unused()
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark from here on
    return _resident_mb("VmRSS")


def measure(day: Path, copies: int, compressed: bool = False) -> str:
    """One day's device spill and count, in this (fresh) process: its contributions,
    ``copies`` times, each copy's phones their own. JSON."""
    tables = _read(day / "contributions")
    phones = pc.unique(pa.chunked_array([t["pseudonym"] for t in tables]).combine_chunks())
    cap = noise_of(load_city(CITY)).cap
    before = _baseline()
    spent = 0.0
    rows = 0
    with tempfile.TemporaryDirectory() as scratch:
        spill = DeviceSpill(Path(scratch) / "people", compressed)
        for copy in range(copies):
            names = phones.to_pylist()
            if copy:  # another copy of the city's phones: pseudonyms of their own
                names = [hashlib.sha256(f"{copy}:{n}".encode()).hexdigest() for n in names]
            renamed = pa.array(names, pa.string())
            for table in tables:
                column = table.schema.get_field_index("pseudonym")
                index = pc.index_in(table["pseudonym"], value_set=phones)
                copied = table.set_column(column, "pseudonym", renamed.take(index))
                started = time.process_time()
                spill.add(copied)
                spent += time.process_time() - started
                rows += copied.num_rows
        started = time.process_time()
        counts = spill.counts(cap, b"people-day-bench")
        spent += time.process_time() - started
        disk = sum(p.stat().st_size for p in (Path(scratch) / "people").iterdir())
        spill.remove()
    return json.dumps(
        {
            "phones": len(phones) * copies,
            "contributions": rows,
            "objects": len(tables) * copies,
            "cells": len(counts),
            "cpu_s": round(spent, 3),
            "peak_mb": round(_resident_mb("VmHWM") - before, 1),
            "disk_mb": round(disk / 1e6, 2),
        }
    )


def measure_partials(day: Path, compressed: bool) -> str:
    """The day's partials spilled by window and read back by group (``DayPartials``), in
    this (fresh) process. JSON."""
    tables = _read(day / "partials")
    before = _baseline()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.process_time()
        partials = DayPartials(Path(scratch) / "partials", compressed)
        for table in tables:
            partials.add(table)
        rows = sum(merged.num_rows for _, merged in partials.groups(partials.quantities()))
        spent = time.process_time() - started
        disk = sum(p.stat().st_size for p in (Path(scratch) / "partials").iterdir())
        partials.remove()
    return json.dumps(
        {
            "partial_rows": sum(t.num_rows for t in tables),
            "merged_rows": rows,
            "cpu_s": round(spent, 3),
            "peak_mb": round(_resident_mb("VmHWM") - before, 1),
            "disk_mb": round(disk / 1e6, 2),
        }
    )


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _run(code: str, *args: object) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    x1, x4 = day_objects(work, 1), day_objects(work, 4)
    code = MEASURE.format(bench=str(Path(__file__).parent))
    days = (("x1", x1, 1), ("x4", x4, 1), ("x1 copied 4 times", x1, 4), ("x100", x1, COPIES))
    for name, day, copies in days:
        runs = [_run(code, day, "devices", copies, "plain") for _ in range(RUNS)]
        print(json.dumps({"day": name} | _median(runs)), flush=True)
    for what in ("partials", "devices"):
        for compressed in ("plain", "lz4"):
            runs = [_run(code, x4, what, 1, compressed) for _ in range(RUNS)]
            print(json.dumps({"x4 spill": f"{what}, {compressed}"} | _median(runs)), flush=True)


if __name__ == "__main__":
    main()
