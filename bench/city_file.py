"""The city file a container reads at every cold start, measured at x1, x4, x14 and x100:
``load_city``'s CPU seconds (the best of three; x100 of two) and the memory the city holds
once read (resident pages after ``load_city`` and a collection, less before, each in a fresh
interpreter), for the ``city.json`` a deployment ships (decision 0114) and the YAML a local
run reads. Its output is what ``bench/scale.py``'s ``CITY_FILE_LOAD`` holds (copied by
hand: the x100 city takes a few minutes to build).

    python bench/city_file.py [work-dir]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from citypipe.domain.city import load_city
from citypipe.domain.cityjson import city_json
from citypipe_local.simulate import scaled_city

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "infra" / "cities" / "velden.yaml"
SCALES = (1, 4, 14, 100)

HELD = """
import gc, sys, time
from pathlib import Path
from citypipe.domain.city import load_city
import citypipe.domain.cityjson, yaml
def resident():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6
gc.collect(); before = resident()
city = load_city(Path(sys.argv[1])); gc.collect()
print(len(city.registry.devices), resident() - before)
"""


def _cpu_s(path: Path, repeat: int) -> float:
    best = []
    for _ in range(repeat):
        started = time.process_time()
        load_city(path)
        best.append(time.process_time() - started)
    return min(best)


def _held_mb(path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", HELD, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[1])


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    for scale in SCALES:
        yaml_file = CITY if scale == 1 else scaled_city(CITY, scale, work / f"x{scale}")
        json_file = work / f"x{scale}.json"
        json_file.write_bytes(city_json(yaml_file))
        devices = len(load_city(json_file).registry.devices)
        repeat = 2 if scale >= 100 else 3
        figures = [(_cpu_s(path, repeat), _held_mb(path)) for path in (json_file, yaml_file)]
        (json_cpu, json_mb), (yaml_cpu, yaml_mb) = figures
        print(
            f"x{scale}: {devices} devices; city.json {json_cpu:.3f} CPU-s, {json_mb:.1f} MB; "
            f"YAML {yaml_cpu:.3f} CPU-s, {yaml_mb:.1f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
