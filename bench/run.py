"""citypipe benchmarks: each stage core against a baseline run in the same process.

Absolute times drift between machines and runs; ratios to a baseline measured right next
to them do not drift much. Baselines are the floor each stage cannot go under: parsing the
same JSON with orjson (ingest: the hubs' payloads; anonymize: the raw lines), reading the
same Parquet (aggregate), and, end to end, moving the same bytes through the same backend
without any processing. Ingest also reports readings per second (target: >= 150,000).

    make bench            # writes bench/results.json and prints a table
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from citypipe.adapters.s3 import S3ObjectStore
from citypipe.adapters.sqs import SqsQueue
from citypipe.core.aggregate import merge_partials, partial_of
from citypipe.core.anonymize import anonymize_records
from citypipe.core.columnar import parquet_bytes, read_parquet
from citypipe.core.formats import FORMATS
from citypipe.core.ingest import Normalized, normalize
from citypipe.core.pseudonyms import sensor_keys
from citypipe.domain.city import City, load_city
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.ports import SystemClock
from citypipe.service.export import days_with_partials, export_day
from citypipe.service.stage import Deps
from citypipe.settings import StackSettings
from citypipe_local import stack
from citypipe_local.backends import backend
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.replay import ReplayOptions, payloads_of, replay
from citypipe_local.simulate import simulate
from citypipe_local.stack import make_clients

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


def best_cpu(fn: Callable[[], Any]) -> float:
    """Median CPU seconds of this process over a few runs (one warm-up first): what one core
    spends, whatever else the machine runs."""
    fn()
    times = []
    for _ in range(REPEAT):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def io_floor(bodies: list[bytes]) -> float:
    """Seconds to put and get every body once on a fresh embedded backend."""
    with backend("embedded") as endpoint:
        store = S3ObjectStore(make_clients(endpoint.settings).s3)
        store.client.create_bucket(
            Bucket="floor", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            store.put("floor", f"o/{i}", body)
            store.get("floor", f"o/{i}")
        return time.perf_counter() - started


def export_per_day(city: City, aggregates: Path) -> dict[str, Any]:
    """Export of a day (every theme in four formats, the catalogue, the data package, the
    portal) on the embedded backend, beside reading and merging the same partials: the
    floor export cannot go under. Each export runs on a fresh stack (a second export of
    the same partials is a duplicate that writes nothing)."""
    partials = sorted(aggregates.rglob("*.parquet"))
    with backend("embedded") as endpoint:
        clients = make_clients(endpoint.settings)
        runs = iter(range(REPEAT + 1))

        def fresh() -> Deps:
            names = StackNames(city.city, prefix=f"bench{next(runs)}-")
            settings = StackSettings(city_file=CITY_FILE, name_prefix=names.prefix)
            stack.up(city, names, clients, settings)
            deps = Deps(
                city, names, S3ObjectStore(clients.s3), SqsQueue(clients.sqs), SystemClock()
            )
            for path in partials:
                key = str(path.relative_to(aggregates))
                deps.store.put(names.bucket(Zone.AGGREGATES), key, path.read_bytes())
            return deps

        deps = fresh()
        bucket = deps.names.bucket(Zone.AGGREGATES)
        [day] = days_with_partials(deps)
        keys = [i.key for i in deps.store.list(bucket)]
        read_t = best(
            lambda: merge_partials(
                [read_parquet(o.body) for o in deps.store.get_many(bucket, keys)]
            )
        )
        sequential_t = best(
            lambda: merge_partials([read_parquet(deps.store.get(bucket, k).body) for k in keys])
        )
        stacks = [deps, *(fresh() for _ in range(REPEAT))]
        times = []
        for one in stacks:  # the first is the warm-up
            started = time.perf_counter()
            export_day(one, day, keys=InMemoryKeyStore())
            times.append(time.perf_counter() - started)
        export_t = statistics.median(times[1:])
    return {
        "seconds": export_t,
        "baseline_read_partials_s": read_t,
        "ratio": export_t / read_t,
        "read_partials_one_by_one_s": sequential_t,
        "partials": len(keys),
        "day": day,
    }


def _import_ms(code: str) -> float:
    """Milliseconds of imports (``python -X importtime``: the top-level entries' cumulative
    times) in a fresh interpreter running ``code``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stderr  # fmt: skip
    total_us = 0
    for line in err.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total_us += int(cumulative)
    return total_us / 1000


def cold_imports() -> dict[str, dict[str, float]]:
    """Each handler's cold import, as Lambda loads it, beside a bare interpreter's start
    (median of 5 fresh interpreters each)."""
    bare = statistics.median(_import_ms("pass") for _ in range(5))
    results = {}
    for function in ("ingest", "anonymize", "aggregate", "export"):
        path = ROOT / "functions" / function / "handler.py"
        code = (
            "import importlib.util as u; s = u.spec_from_file_location('handler', "
            f"{str(path)!r}); s.loader.exec_module(u.module_from_spec(s))"
        )
        handler = statistics.median(_import_ms(code) for _ in range(5))
        results[function] = {"import_ms": handler, "baseline_bare_python_ms": bare}
    return results


def safe_loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def main() -> None:
    city = load_city(CITY_FILE)
    work = Path(tempfile.mkdtemp(prefix="citypipe-bench-"))
    summary = simulate(city, work / "input", hours=6, scale=1.0, seed=11)
    captures = {
        p.stem: payloads_of(p.read_bytes().splitlines())
        for p in sorted((work / "input").glob("*.jsonl"))
    }
    bodies = [payload.body for payloads in captures.values() for payload in payloads]
    results: dict[str, Any] = {"readings": summary.readings, "python": sys.version.split()[0]}
    results["cold_import"] = cold_imports()

    keys = InMemoryKeyStore()
    now = time.time()

    def ingest() -> list[Normalized]:
        key_for = sensor_keys(keys, city.city)
        return [
            normalize(city, FORMATS[fmt], payloads, now=now, key_for=key_for)
            for fmt, payloads in captures.items()
        ]

    def parse_only() -> None:
        for body in bodies:
            safe_loads(body)

    json_floor = best(parse_only)
    ingest_t = best(ingest)
    ingest_cpu = best_cpu(ingest)
    normalized = ingest()
    readings = sum(n.received for n in normalized)
    results["ingest"] = {
        "seconds": ingest_t,
        "baseline_orjson_parse_s": json_floor,
        "ratio": ingest_t / json_floor,
        "payloads": len(bodies),
        "readings": readings,
        "readings_per_s": readings / ingest_t,
        "cpu_seconds": ingest_cpu,
        "readings_per_cpu_s": readings / ingest_cpu,
    }

    records = [r for n in normalized for rows in n.by_partition.values() for r in rows]
    raw_lines = [orjson.dumps(r) for r in records]
    raw_floor = best(lambda: [orjson.loads(line) for line in raw_lines])
    anonymize_t = best(lambda: anonymize_records(city, [orjson.loads(line) for line in raw_lines]))
    results["anonymize"] = {
        "seconds": anonymize_t,
        "baseline_orjson_parse_s": raw_floor,
        "ratio": anonymize_t / raw_floor,
    }

    clean = parquet_bytes(anonymize_records(city, records).table())
    read_floor = best(lambda: read_parquet(clean))
    aggregate_t = best(lambda: partial_of(read_parquet(clean)))
    results["aggregate"] = {
        "seconds": aggregate_t,
        "baseline_parquet_read_s": read_floor,
        "ratio": aggregate_t / read_floor,
    }

    # End to end on the embedded backend, against the floor of the same bytes moved through
    # the same kind of backend without any processing: every object the run left put once and
    # read once, and its raw objects (consumed by anonymize; their clean twins stand in).
    started = time.perf_counter()
    report = replay(CITY_FILE, work / "input", work / "out", ReplayOptions(keys_dir=work / "keys"))
    e2e = time.perf_counter() - started
    objects = [
        p.read_bytes() for p in (work / "out").rglob("*") if p.is_file() and p.name != "logs.jsonl"
    ]
    objects += [p.read_bytes() for p in (work / "out" / "clean").rglob("*.parquet")]
    floor = io_floor(objects)
    results["end_to_end"] = {
        "seconds": e2e,
        "edge_seconds": report["seconds"]["edge"],
        "baseline_io_s": floor,
        "ratio": e2e / floor,
        "readings_per_s": summary.readings / e2e,
        "balanced": report["balanced"],
        "objects": len(objects),
    }
    results["export"] = export_per_day(city, work / "out" / "aggregates")
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{summary.readings:,} readings (6 h of the example city), Python {results['python']}")
    print(f"{'stage':<10} {'seconds':>8} {'baseline':>9} {'ratio':>6}  baseline is")
    for stage, floor_name in (
        ("ingest", "orjson.loads of the same hub payloads"),
        ("anonymize", "orjson.loads of the raw lines it reads"),
        ("aggregate", "reading the clean Parquet"),
    ):
        r = results[stage]
        base = next(v for k, v in r.items() if k.startswith("baseline"))
        print(f"{stage:<10} {r['seconds']:>8.3f} {base:>9.3f} {r['ratio']:>6.1f}x  {floor_name}")
    export = results["export"]
    print(
        f"{'export':<10} {export['seconds']:>8.3f} {export['baseline_read_partials_s']:>9.3f} "
        f"{export['ratio']:>6.1f}x  reading and merging the day's {export['partials']} partials "
        f"(one by one: {export['read_partials_one_by_one_s']:.3f} s)"
    )
    print(
        f"{'':<10} ingest: {results['ingest']['readings_per_cpu_s']:,.0f} readings per CPU "
        f"second, {results['ingest']['readings_per_s']:,.0f} per wall second (parse, validate, "
        "normalize, pseudonymize; one core; target 150,000)"
    )
    for function, cold in results["cold_import"].items():
        print(
            f"{'import ' + function:<10} {cold['import_ms'] / 1000:>8.3f} "
            f"{cold['baseline_bare_python_ms'] / 1000:>9.3f} "
            f"{cold['import_ms'] / cold['baseline_bare_python_ms']:>6.1f}x  "
            "a bare interpreter's own imports (target: handler <= 0.300 s)"
        )
    end = results["end_to_end"]
    print(
        f"{'end to end':<10} {e2e:>8.3f} {floor:>9.3f} {end['ratio']:>6.1f}x  "
        f"put+get of the same {end['objects']} objects ({end['readings_per_s']:,.0f} readings/s)"
    )


if __name__ == "__main__":
    main()
