"""The city file a container reads at every cold start, measured at x1, x4, x14 and x100,
each in fresh interpreters (the median of three): ``load_city``'s CPU seconds, the first
read of the process, and the memory the city holds once read and once its lookups are
built, as a warm container holds it (resident pages, after a collection, less before),
for the ``city.json`` a deployment ships (decision 0114) and the YAML a local run reads.
Its output is what ``bench/scale.py``'s ``CITY_FILE_LOAD`` holds (copied by hand: the x100
city takes minutes to build and read).

    python bench/city_file.py [work-dir]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from citypipe.domain.cityjson import city_json
from citypipe_local.simulate import scaled_city

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "infra" / "cities" / "velden.yaml"
SCALES = (1, 4, 14, 100)
RUNS = 3

READ = """
import gc, sys, time
from functools import cached_property
from pathlib import Path
from citypipe.domain.city import City, load_city
import citypipe.domain.cityjson, yaml
def resident():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6
gc.collect(); before = resident()
started = time.process_time()
city = load_city(Path(sys.argv[1]))
cpu = time.process_time() - started
for name, member in vars(City).items():
    if isinstance(member, cached_property):
        getattr(city, name)  # the lookups a warm container has built
gc.collect()
print(len(city.registry.devices), cpu, resident() - before)
"""


def _read(path: Path) -> tuple[int, float, float]:
    """Devices, CPU seconds and MB held: the median of ``RUNS`` fresh interpreters."""
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((int(out[0]), float(out[1]), float(out[2])))
    return (
        runs[0][0],
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
    )


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    for scale in SCALES:
        yaml_file = CITY if scale == 1 else scaled_city(CITY, scale, work / f"x{scale}")
        json_file = work / f"x{scale}.json"
        json_file.write_bytes(city_json(yaml_file))
        devices, json_cpu, json_mb = _read(json_file)
        yaml_devices, yaml_cpu, yaml_mb = _read(yaml_file)
        if yaml_devices != devices:  # the JSON is the YAML's city, merged
            raise SystemExit(f"x{scale}: {devices} devices in the JSON, {yaml_devices} in the YAML")
        print(
            f"x{scale}: {devices} devices; city.json {json_cpu:.3f} CPU-s, {json_mb:.1f} MB; "
            f"YAML {yaml_cpu:.3f} CPU-s, {yaml_mb:.1f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
