"""The day's people release as a city's phones grow: what the measured days leave out.

A scaled city (`make bench`'s x4, `make bench-big`'s x14) adds sensors, not people: every
size detects the simulator's 20,000 phones (``simulate.world.POPULATION``), though its
contributions (a phone's distinct windows and zones) grow with its sensors. The release's
device work (each clean object's contributions spilled by device, then each device's cells
capped: ``service.export.devices``) is measured here on four days, each in its replay's
batches of 40,000 hub messages, one clean object per batch and source:

- the x1 day's own contributions, through the edge;
- the x4 day's (the scaled city `make bench` replays): four times the sensors, the same
  phones;
- the x1 day's copied four times, each copy's phones pseudonyms of their own: about as
  many contributions as the x4 day's, four times the phones;
- the x1 day's copied ``COPIES`` times: a metropolis's phones.

The second and third tell what the phones themselves cost beyond the contributions, which
the measured days' line through x4 and x14 already holds. The objects are made from the
edge's raw rows of a batch, all its days together: the simulated day has one, and export
reads a clean object per source and day.

Each day is measured ``RUNS`` times, each in a fresh interpreter: the CPU seconds of the
spill and of the count, the highest resident memory during them above the process's
before (its high-water mark reset first), and the spill's bytes on disk; the medians are
printed. Its output is what ``bench/scale.py``'s ``PEOPLE_DAY`` holds (copied by hand: the
metropolis's day takes a minute a run).

    python bench/people_day.py [work-dir]
"""

from __future__ import annotations

import gc
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.columnar import release_unused
from citypipe.core.disclosure import noise_of
from citypipe.core.ingest import normalize
from citypipe.core.people import contributions
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import load_city
from citypipe.service.collector import paused
from citypipe.service.export.devices import DeviceSpill
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
    """The x``size`` day's contributions (``bench/run.py``'s day: a scaled city simulated
    at scale 1), one Arrow IPC file per clean object (batch and source), in
    ``work/people-x<size>``: simulated and normalized as the edge does, if absent."""
    out = work / f"people-x{size}"
    if out.exists():
        return out
    city_file = CITY if size == 1 else scaled_city(CITY, size, work / f"x{size}" / "city")
    city = load_city(city_file)
    captures = work / f"x{size}" / "input"
    if not captures.exists():
        simulate(city, captures, hours=24, seed=SEED, scale=1.0)
    key_for = day_keys(InMemoryKeyStore(), city.slug)
    out.mkdir(parents=True)
    number = 0
    for lines in edge_batches(captures, BATCH):
        with paused():
            batch = normalize(city, None, payloads_of(lines), now=time.time(), key_for=key_for)
        for table in _contributed(batch.by_partition, city.personal_quantities):
            with (
                pa.OSFile(str(out / f"{number:04d}.arrows"), "wb") as sink,
                pa.ipc.new_stream(sink, table.schema) as writer,
            ):
                writer.write_table(table)
            number += 1
    return out


def _contributed(
    partitions: dict[tuple[str, int], list[Any]], people: frozenset[str]
) -> list[pa.Table]:
    """A batch's contributions, one table per source (its clean object's): its raw rows of
    people quantities that hold a pseudonym."""
    by_source: dict[str, list[tuple[Any, ...]]] = {}
    for (source, _), rows in sorted(partitions.items()):
        by_source.setdefault(source, []).extend(
            (row[7], row[5], row[6], row[2]) for row in rows if row[2] in people and row[7]
        )
    tables = []
    for rows in by_source.values():
        if rows:
            pseudonym, observed_at, zone, quantity = zip(*rows, strict=True)
            clean = pa.table(
                {
                    "pseudonym": pa.array(pseudonym, pa.string()),
                    # ISO 8601 with microseconds, as a raw row holds it
                    "observed_at": pc.cast(
                        pa.array(observed_at), pa.timestamp("us", tz="UTC")
                    ).cast(pa.timestamp("ms", tz="UTC"), safe=False),
                    "zone": pa.array(zone, pa.string()),
                    "quantity": pa.array(quantity, pa.string()),
                }
            )
            tables.append(contributions(clean, sorted(people)))
    return tables


MEASURE = """
import sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import people_day
print(people_day.measure(Path(sys.argv[1]), int(sys.argv[2])))
"""


def _resident_mb(field: str) -> float:
    """A field of /proc/self/status (kB: KiB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(objects: Path, copies: int) -> str:
    """One day's spill and count, in this (fresh) process: the objects, ``copies`` times,
    each copy's phones their own. JSON."""
    tables = []
    for path in sorted(objects.glob("*.arrows")):
        with pa.OSFile(str(path)) as source:
            tables.append(pa.ipc.open_stream(source).read_all())
    phones = pc.unique(pa.chunked_array([t["pseudonym"] for t in tables]).combine_chunks())
    cap = noise_of(load_city(CITY)).cap
    gc.collect()
    release_unused()  # what loading freed, given back before the baseline is read
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark from here on
    before = _resident_mb("VmRSS")
    spill_s = 0.0
    rows = 0
    with tempfile.TemporaryDirectory() as scratch:
        spill = DeviceSpill(Path(scratch) / "people")
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
                spill_s += time.process_time() - started
                rows += copied.num_rows
        started = time.process_time()
        counts = spill.counts(cap, b"people-day-bench")
        count_s = time.process_time() - started
        disk = sum(p.stat().st_size for p in (Path(scratch) / "people").iterdir())
        spill.remove()
    return json.dumps(
        {
            "phones": len(phones) * copies,
            "contributions": rows,
            "objects": len(tables) * copies,
            "cells": len(counts),
            "cpu_s": round(spill_s + count_s, 3),
            "peak_mb": round(_resident_mb("VmHWM") - before, 1),
            "disk_mb": round(disk / 1e6, 1),
        }
    )


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _run(code: str, objects: Path, copies: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, str(objects), str(copies)],
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
    for name, objects, copies in days:
        runs = [_run(code, objects, copies) for _ in range(RUNS)]
        print(json.dumps({"day": name} | _median(runs)), flush=True)


if __name__ == "__main__":
    main()
