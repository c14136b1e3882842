"""citypipe benchmarks: each stage core against a baseline run in the same process.

Absolute times drift between machines and runs; ratios to a baseline measured right next
to them do not drift much. Baselines are the floor each stage cannot go under: parsing the
same JSON (ingest, anonymize), reading the same Parquet (aggregate), and, end to end,
moving the same bytes through the same backend without any processing.

    make bench            # writes bench/results.json and prints a table
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from citypipe.adapters.memory import InMemoryKeyStore
from citypipe.aggregate import partial_of
from citypipe.anonymize import anonymize_records, sensor_keys
from citypipe.config import load_city
from citypipe.ingest import normalize
from citypipe.replay import ReplayOptions, replay
from citypipe.simulate import simulate
from citypipe.stage import parquet_bytes, read_parquet

ROOT = Path(__file__).resolve().parents[1]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
REPEAT = 3


def best(fn: Callable[[], Any]) -> float:
    """Median of a few runs (one warm-up first)."""
    fn()
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def safe_loads(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def main() -> None:
    city = load_city(CITY_FILE)
    work = Path(tempfile.mkdtemp(prefix="citypipe-bench-"))
    summary = simulate(city, work / "input", hours=2, scale=0.5, seed=11)
    senml = (work / "input" / "senml.jsonl").read_text().splitlines()
    canonical = (work / "input" / "canonical.jsonl").read_text().splitlines()
    results: dict[str, Any] = {"readings": summary.readings, "python": sys.version.split()[0]}

    json_floor = best(lambda: [safe_loads(line) for line in senml + canonical])
    ingest_t = best(
        lambda: (normalize(city, "senml", senml), normalize(city, "canonical", canonical))
    )
    results["ingest"] = {
        "seconds": ingest_t,
        "baseline_json_parse_s": json_floor,
        "ratio": ingest_t / json_floor,
    }

    normalized = normalize(city, "canonical", canonical)
    normalized_senml = normalize(city, "senml", senml)
    records = [
        r
        for rows in (*normalized.by_partition.values(), *normalized_senml.by_partition.values())
        for r in rows
    ]
    raw_lines = [json.dumps(r) for r in records]
    keys = InMemoryKeyStore()
    raw_floor = best(lambda: [json.loads(line) for line in raw_lines])
    anonymize_t = best(lambda: anonymize_records(city, records, sensor_keys(keys, city.city)))
    results["anonymize"] = {
        "seconds": anonymize_t,
        "baseline_json_parse_s": raw_floor,
        "ratio": anonymize_t / raw_floor,
    }

    clean = parquet_bytes(anonymize_records(city, records, sensor_keys(keys, city.city)).table())
    read_floor = best(lambda: read_parquet(clean))
    aggregate_t = best(lambda: partial_of(read_parquet(clean)))
    results["aggregate"] = {
        "seconds": aggregate_t,
        "baseline_parquet_read_s": read_floor,
        "ratio": aggregate_t / read_floor,
    }

    # End to end on the embedded backend, against the same bytes moved through it raw.
    started = time.perf_counter()
    report = replay(CITY_FILE, work / "input", work / "out", ReplayOptions(keys_dir=work / "keys"))
    e2e = time.perf_counter() - started
    payload_bytes = gzip.compress("\n".join(senml + canonical).encode())
    results["end_to_end"] = {
        "seconds": e2e,
        "readings_per_s": summary.readings / e2e,
        "balanced": report["balanced"],
        "gzip_payload_mb": len(payload_bytes) / 1e6,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{summary.readings:,} readings (2 h of half the example city), Python {results['python']}"
    )
    print(f"{'stage':<10} {'seconds':>8} {'baseline':>9} {'ratio':>6}  baseline is")
    for stage, floor_name in (
        ("ingest", "json.loads of the payloads"),
        ("anonymize", "json.loads of the raw lines it reads"),
        ("aggregate", "reading the clean Parquet"),
    ):
        r = results[stage]
        base = next(v for k, v in r.items() if k.startswith("baseline"))
        print(f"{stage:<10} {r['seconds']:>8.3f} {base:>9.3f} {r['ratio']:>6.1f}x  {floor_name}")
    print(
        f"end to end on embedded: {e2e:.1f} s, "
        f"{results['end_to_end']['readings_per_s']:,.0f} readings/s"
    )


if __name__ == "__main__":
    main()
