"""citypipe benchmarks: the pipeline against a plain script, at three city sizes.

Every figure stands beside a baseline measured in the same run, on the same machine:

- **the floor** (``bench/floor.py``): the same job — parse, resolve, pseudonymize per
  window, roll up, suppress, add noise, one CSV per theme — as one plain single-process
  script, on the same simulated files. It runs before and after each replay; the
  replay's wall time is compared with their mean (the machine may be shared: its load is
  recorded).
- **three sizes** of the example city's day (x0.25, x1, x4): readings per second of the
  replay and of the floor, and each function's peak resident memory in its workers.
- **where the time goes** at x1: CPU seconds, backend round trips and bytes per stage, the
  local backend's own CPU, beside the floor's CPU.
- **memory**: a replay in batches of ~10,000 readings, each function's peak beside a
  worker that has cold-started and done nothing.
- **cost per million readings** at AWS and Scaleway list prices, from the measured CPU
  seconds and round trips.
- the ingest core's readings per CPU second beside ``orjson`` parsing the same payloads,
  and each handler's cold import beside a bare interpreter's.

    make bench      # writes bench/results.json, and docs/benchmarks.md between its markers
                    # (the history after them is kept: bench/page.py)
    python bench/run.py --scales 14 --backend localstack --results bench/big.json  # big day
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from citypipe.core.columnar import read_parquet
from citypipe.core.ingest import Payload, normalize
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import load_city
from citypipe.service.collector import paused
from citypipe.service.export.spill import DayPartials
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.package import CITY_JSON, FUNCTION_ENVIRONMENT, write_city_json
from citypipe_local.replay import ReplayOptions, payloads_of, replay
from citypipe_local.runner import worker_context
from citypipe_local.simulate import scaled_city, simulate
from citypipe_local.usage import peak_rss_mb

sys.path.insert(0, str(Path(__file__).parent))
import scale as metropolis  # beside this script (bench/ is scripts, not a package)
from floor import floor
from page import splice

ROOT = Path(__file__).resolve().parents[1]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
DOCS = ROOT / "docs" / "benchmarks.md"
SEED = 7
TARGET_RATIO = {0.25: 3.0, 1.0: 2.0, 4.0: 2.0}  # issue 22: the floor times this, by size
TARGET_RSS_MB = 200  # issue 22: headroom under a 256 MB budget
TARGET_IMPORT_MS, TARGET_INGEST_IMPORT_MS = 300, 200  # issue 22
TARGET_CORE = 150_000  # issue 22: readings per CPU second of the ingest core, every format
PROBE_BATCH = 4_700  # hub messages: ~10,000 readings of the example city

# List prices (docs/deploy.md): per GB-second and per request
AWS = {
    "lambda_gb_s": 0.0000133334,  # Arm
    "lambda_request": 0.20 / 1e6,
    "s3_put": 0.0054 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.00043 / 1000,  # GET, HEAD
    "sqs_request": 0.40 / 1e6,
    "http_request": 1.00 / 1e6,  # API Gateway HTTP API: a hub's webhook request
}
SCALEWAY = {"gb_s": 1.20 / 100_000, "request": 0.15 / 1e6}  # Functions; storage requests free
# The webhook path's goals beside the direct replay of the same day (issue 24)
WEBHOOK_TIME_RATIO, WEBHOOK_COST_RATIO = 1.5, 3.0
WEBHOOK_HOURS = 0.25  # of the x1 day, a request a hub message (~3,300 requests: minutes)
# A vCPU comes with 1,769 MB on Lambda and ~1,830 MB on Scaleway Functions (560 mvCPU at
# 1,024 MB): a CPU-second of work is billed that many GB-s whatever the memory size.
GB_S_PER_CPU_S = {"aws": 1.769, "scaleway": 1.829}
S3_PUT_CLASS = {"PutObject", "ListObjectsV2", "CopyObject"}
S3_GET_CLASS = {"GetObject", "HeadObject"}
SQS_CALLS = {
    "SendMessageBatch", "SendMessage", "ReceiveMessage", "DeleteMessageBatch", "DeleteMessage",
    "GetQueueAttributes", "GetQueueUrl",
}  # fmt: skip
FUNCTIONS = ("edge", "ingest", "anonymize", "aggregate", "export")


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


# --- one size of the city -------------------------------------------------------------------


def inputs(work: Path, scale: float) -> tuple[Path, Path]:
    """The simulated day at this size, and the city file to replay it with."""
    folder = work / f"x{scale:g}"
    city_file = CITY_FILE
    if scale > 1:
        city_file = scaled_city(CITY_FILE, int(scale), folder / "city")
    simulate(load_city(city_file), folder / "input", hours=24, seed=SEED, scale=min(scale, 1.0))
    return folder / "input", city_file


def one_size(work: Path, scale: float, options: ReplayOptions) -> dict[str, Any]:
    captures, city_file = inputs(work, scale)
    before = floor(captures, city_file, work / "floor-before")
    load_before = load()
    report = replay(city_file, captures, work / f"out-x{scale:g}", options)
    load_after = load()
    spill = spilled(work / f"out-x{scale:g}" / "aggregates", work / "spill")
    after = floor(captures, city_file, work / "floor-after")
    floor_s = statistics.mean([before.seconds, after.seconds])
    seconds = report["seconds"]["total"]
    readings = report["received"]
    assert before.accepted == report["accepted"], "the floor must do the same job"
    return {
        "scale": scale,
        "readings": readings,
        "payloads": report["stages"]["ingest"]["payloads"],
        "replay_s": seconds,
        "edge_s": report["seconds"]["edge"],
        "deploy_s": report["seconds"]["deploy"],
        "floor_s": round(floor_s, 3),
        "floor_runs_s": [round(before.seconds, 3), round(after.seconds, 3)],
        "floor_cpu_s": round(statistics.mean([before.cpu_seconds, after.cpu_seconds]), 3),
        "ratio": round(seconds / floor_s, 2),
        "readings_per_s": round(readings / seconds),
        "floor_readings_per_s": round(readings / floor_s),
        "balanced": report["balanced"],
        "accepted": report["accepted"],
        "floor_accepted": before.accepted,
        "cells": {
            "published": report["published_cells"],
            "suppressed": report["suppressed_cells"],
        },
        "floor_cells": before.cells,
        "usage": report["usage"],
        "peak_rss_mb": report["workers"]["peak_rss_mb"],
        "spill": spill,
        "load": [load_before, load_after],
    }


def spilled(aggregates: Path, directory: Path) -> dict[str, int]:
    """What export's scratch holds of the day's partials (``service.export.spill``): the
    replay's partials (its aggregates zone, copied out) spilled again, as export does."""
    partials = DayPartials(directory)
    rows = 0
    for path in sorted(aggregates.rglob("*.parquet")):
        table = read_parquet(path.read_bytes())
        rows += table.num_rows
        partials.add(table)
    partials.groups([])  # every window's file closed
    size = sum(file.stat().st_size for file in directory.iterdir())
    partials.remove()
    return {"partial_rows": rows, "bytes": size}


# --- the webhook path: the x1 day posted to the webhook, a request per hub message --------------


def webhook_path(work: Path, options: ReplayOptions, hours: float) -> dict[str, Any]:
    """The first ``hours`` of the x1 day replayed directly and ``--via http`` (each hub
    message its own request, buffered into batches: service/buffer.py): wall time and cost
    per million readings, and their ratios to the direct replay's. A slice, not the day: the
    local webhook server is one Python process taking a request at a time per thread, where a
    cloud's scales out."""
    captures = work / "webhook-input"
    simulate(load_city(CITY_FILE), captures, hours=hours, seed=SEED, scale=1.0)
    direct = replay(CITY_FILE, captures, work / "out-webhook-direct", options)
    report = replay(CITY_FILE, captures, work / "out-webhook", replace(options, via="http"))
    transport = report["transport"]
    cost = costs(
        {
            "readings": report["received"],
            "usage": report["usage"],
            "webhook": {
                "requests": transport["requests"],
                "cpu_s": transport["webhook_cpu_s"],
                "sends": transport["webhook_sends"],
            },
        }
    )
    direct_cost = costs({"readings": direct["received"], "usage": direct["usage"]})
    seconds, direct_s = report["seconds"]["total"], direct["seconds"]["total"]
    return {
        "hours": hours,
        "readings": report["received"],
        "requests": transport["requests"],
        "replay_s": seconds,
        "direct_replay_s": direct_s,
        "time_ratio": round(seconds / direct_s, 2),
        "cost": cost,
        "direct_cost": direct_cost,
        "cost_ratio": {
            "aws": round(cost["aws_usd"]["total"] / direct_cost["aws_usd"]["total"], 2),
            "scaleway": round(
                cost["scaleway_eur"]["total"] / direct_cost["scaleway_eur"]["total"], 2
            ),
        },
        "balanced": report["balanced"],
        "accepted": report["accepted"],
        "direct_accepted": direct["accepted"],
        "load": load(),
    }


# --- memory: a worker with a 10k-reading batch, beside an idle one ----------------------------


def idle_worker_rss() -> float:
    """The peak resident memory of a worker forked as the replay's are (from the fork
    server that preloaded the library) that has processed nothing."""
    with worker_context().Pool(1) as pool:
        return round(pool.apply(peak_rss_mb), 1)


def memory(work: Path) -> dict[str, Any]:
    captures, city_file = work / "x1" / "input", CITY_FILE
    report = replay(
        city_file, captures, work / "out-probe", ReplayOptions(batch_payloads=PROBE_BATCH)
    )
    batches = report["usage"]["edge"]["invocations"]
    return {
        "batch_messages": PROBE_BATCH,
        "batch_readings": round(report["received"] / max(1, batches)),
        "peak_rss_mb": report["workers"]["peak_rss_mb"],
        "idle_worker_mb": idle_worker_rss(),
        "balanced": report["balanced"],
    }


# --- cost -----------------------------------------------------------------------------------


def costs(size: dict[str, Any]) -> dict[str, Any]:
    """Per million readings, from one replay's measured CPU seconds and round trips: every
    function's work and the bridges' (the edge runs in ingest on a cloud), and the backend
    calls the functions and the runner made (the runner's polls stand for the platform's).
    A replay through the webhook (``webhook``: its requests and their CPU through the edge)
    adds an invocation per request, and on AWS the API Gateway's request; its messages to
    the queue are priced one a request (a function invoked per request sends its own), not
    as the local server grouped them (``webhook.sends``)."""
    usage, per = size["usage"], 1e6 / size["readings"]
    webhook = size.get("webhook", {"requests": 0, "cpu_s": 0.0, "sends": 0})
    cpu = sum(usage[name]["cpu_s"] for name in FUNCTIONS if name in usage) + webhook["cpu_s"]
    invocations = sum(usage[name]["invocations"] for name in FUNCTIONS if name in usage)
    invocations += webhook["requests"]
    calls: dict[str, int] = {}
    for name in (*FUNCTIONS, "runner"):
        for op, n in usage.get(name, {}).get("operations", {}).items():
            calls[op] = calls.get(op, 0) + n
    puts = sum(n for op, n in calls.items() if op in S3_PUT_CLASS)
    gets = sum(n for op, n in calls.items() if op in S3_GET_CLASS)
    sqs = sum(n for op, n in calls.items() if op in SQS_CALLS)
    sqs += webhook["requests"] - webhook["sends"]
    aws = {
        "compute": cpu * GB_S_PER_CPU_S["aws"] * AWS["lambda_gb_s"],
        "invocations": invocations * AWS["lambda_request"],
        "s3": puts * AWS["s3_put"] + gets * AWS["s3_get"],
        "sqs": sqs * AWS["sqs_request"],
        "gateway": webhook["requests"] * AWS["http_request"],
    }
    scaleway = {
        "compute": cpu * GB_S_PER_CPU_S["scaleway"] * SCALEWAY["gb_s"],
        "invocations": invocations * SCALEWAY["request"],
    }
    return {
        "cpu_s_per_million": round(cpu * per, 1),
        "invocations_per_million": round(invocations * per),
        "s3_puts_per_million": round(puts * per),
        "s3_gets_per_million": round(gets * per),
        "sqs_requests_per_million": round(sqs * per),
        "aws_usd": {k: round(v * per, 5) for k, v in aws.items()}
        | {"total": round(sum(aws.values()) * per, 4)},
        "scaleway_eur": {k: round(v * per, 5) for k, v in scaleway.items()}
        | {"total": round(sum(scaleway.values()) * per, 4)},
    }


# --- the cores ------------------------------------------------------------------------------


def ingest_core(captures: Path) -> dict[str, Any]:
    """The normalization path over the day's first ~100,000 hub messages (each capture
    file's first 12,000), on one core: all of them as one mix, then each format's alone."""
    city = load_city(CITY_FILE)
    by_format: dict[str, list[Payload]] = {}
    for path in sorted(captures.glob("*.jsonl")):
        with path.open("rb") as handle:
            lines = [
                (path.stem, line.rstrip(b"\n"), number)
                for number, line in zip(range(1, 12_001), handle, strict=False)
            ]
        by_format[path.stem] = payloads_of(lines)
    payloads = [payload for each in by_format.values() for payload in each]
    key_for = day_keys(InMemoryKeyStore(), city.slug)
    now = time.time()

    def parse_only() -> None:
        for payload in payloads:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(payload.body)

    def core_of(batch: list[Payload]) -> Callable[[], int]:
        def core_only() -> int:
            with paused():  # as the edge runs it (service.edge.prepare)
                return normalize(city, None, batch, now=now, key_for=key_for).received

        return core_only

    mix = ""  # no capture file's format is named so
    cores = {mix: (len(payloads), core_of(payloads))}
    cores |= {fmt: (len(batch), core_of(batch)) for fmt, batch in by_format.items()}
    best = _best_rounds(cores)
    parse = min(_cpu_s(parse_only) for _ in range(CORE_ROUNDS))
    return best.pop(mix) | {"baseline_orjson_parse_cpu_s": round(parse, 3), "formats": best}


CORE_ROUNDS, CORE_ROUND_CPU_S = 5, 0.2


def _cpu_s(fn: Callable[[], Any]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def _best_rounds(
    cores: dict[str, tuple[int, Callable[[], int]]],
    clock: Callable[[], float] = time.process_time,
) -> dict[str, dict[str, Any]]:
    """Each batch's core: normalized again and again for at least ``CORE_ROUND_CPU_S`` a
    round (the mix takes over a second a pass, a format's 12,000 messages a tenth of one,
    Telraam's 230 a few milliseconds), the batches' rounds interleaved, ``CORE_ROUNDS`` of
    them; the best round of each (on a shared machine, interference only slows)."""
    best: dict[str, tuple[float, int, int]] = {}
    for _, core_only in cores.values():
        core_only()  # warm: the first pass fills the caches a container keeps
    for _ in range(CORE_ROUNDS):
        for name, (_, core_only) in cores.items():
            readings = runs = 0
            started = clock()
            while (spent := clock() - started) < CORE_ROUND_CPU_S:
                readings += core_only()
                runs += 1
            if name not in best or readings / spent > best[name][1] / best[name][0]:
                best[name] = (spent, readings, runs)
    return {
        name: {
            "payloads": cores[name][0],
            "readings": readings // runs,
            "cpu_s": round(spent / runs, 4),
            "readings_per_cpu_s": round(readings / spent),
        }
        for name, (spent, readings, runs) in best.items()
    }


def core_format_lines(formats: dict[str, dict[str, Any]] | None) -> list[str]:
    """Each format's messages alone through the normalization path, against the target."""
    if not formats:
        return []
    below = [f"{fmt} {f['readings_per_cpu_s']:,}" for fmt, f in formats.items()
             if f["readings_per_cpu_s"] < TARGET_CORE]  # fmt: skip
    verdict = f"NOT met: {', '.join(below)}" if below else "met"
    lines = [
        f"Each format of the captures alone (target: at least {TARGET_CORE:,} readings per "
        f"CPU second on every format; {verdict}). The same messages by format, measured as "
        "the mix is:",
        "",
        "| format | hub messages | readings | CPU ms a pass | readings per CPU s |",
        "|---|---|---|---|---|",
    ]
    for fmt, f in formats.items():
        lines.append(
            f"| {fmt} | {f['payloads']:,} | {f['readings']:,} | {f['cpu_s'] * 1000:.1f} | "
            f"{f['readings_per_cpu_s']:,} |"
        )
    return [*lines, ""]


def _import_ms(code: str) -> float:
    """Milliseconds of imports (``python -X importtime``: the top-level entries' cumulative
    times) in a fresh interpreter running ``code``, in a deployed function's environment."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env=os.environ | FUNCTION_ENVIRONMENT,
    ).stderr  # fmt: skip
    total_us = 0
    for line in err.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total_us += int(cumulative)
    return total_us / 1000


def _cold_start_ms(function: str, load: str, city: Path) -> float:
    """Milliseconds from nothing imported to a container's app built (the handler's import
    and its composition root: the city read, the clients made; no request sent), in a fresh
    interpreter configured as a deployed function is: its environment, and ``city`` the
    JSON its package ships (``deployed_city``)."""
    code = (
        "import time; t = time.perf_counter(); " + load + "; import importlib; "
        f"importlib.import_module('citypipe.bootstrap.{function}').cold_start(); "
        "print((time.perf_counter() - t) * 1000)"
    )
    environment = (
        os.environ
        | FUNCTION_ENVIRONMENT
        | {
            "CITYPIPE_STACK": json.dumps({"city_file": str(city)}),
            "AWS_REGION": load_city(city).region,
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env=environment,
    ).stdout  # fmt: skip
    return float(out)


def compiled() -> None:
    """Bytecode written for every source the bench runs, once, before it measures: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on some machines and CI images) a fresh interpreter
    would compile each edited module again at every import, and the cold imports would
    measure the compiler. On Lambda, imports read what the layer ships."""
    for folder in ("layers/citypipe/python", "functions", "tools", "bridge", "bench"):
        if not compileall.compile_dir(ROOT / folder, quiet=1, workers=0):
            raise SystemExit(f"bench: {folder} does not compile")


def deployed_city(work: Path) -> Path:
    """The example city as a package ships it: checked, merged and written as JSON."""
    return write_city_json(load_city(CITY_FILE), CITY_FILE, work / CITY_JSON)


def cold_imports(work: Path) -> dict[str, dict[str, float]]:
    """Each handler's cold import, as Lambda loads it, beside a bare interpreter's start
    (median of 5 fresh interpreters each); and its cold start to the app built (what the
    first invocation adds: the composition root loads botocore, pyarrow and the city)."""
    city = deployed_city(work)
    bare = statistics.median(_import_ms("pass") for _ in range(5))
    results = {}
    for function in ("ingest", "anonymize", "aggregate", "export"):
        path = ROOT / "functions" / function / "handler.py"
        code = (
            "import importlib.util as u; s = u.spec_from_file_location('handler', "
            f"{str(path)!r}); s.loader.exec_module(u.module_from_spec(s))"
        )
        handler = statistics.median(_import_ms(code) for _ in range(5))
        started = statistics.median(_cold_start_ms(function, code, city) for _ in range(5))
        results[function] = {
            "import_ms": round(handler, 1),
            "cold_start_ms": round(started, 1),
            "baseline_bare_python_ms": bare,
        }
    return results


# --- the page -------------------------------------------------------------------------------


def _mb(peaks: dict[str, float]) -> str:
    return ", ".join(f"{name} {peaks[name]:.0f}" for name in FUNCTIONS if name in peaks)


def _deploy(sizes: list[dict[str, Any]]) -> list[str]:
    """What each stack's deploy did before its replay, outside the replay's time."""
    deployed = [s for s in sizes if "deploy_s" in s]
    if not deployed:
        return []
    return [
        "",
        "Before each replay the stack is deployed: its buckets and queues made, then the "
        "city's files published before any hub sends (the registers, the record of "
        "processing, a notice per sensor: the end of `docs/deploy.md`'s deploy step), in "
        + ", ".join(f"{s['deploy_s']:.1f} s at x{s['scale']:g}" for s in deployed)
        + ", outside the replay's time. A city pays that once per city file, not per day; "
        "the day's export finds them built (decision 0110). Before that decision the day's "
        "export wrote them inside the replay's time, so ratios from before it are not "
        "comparable with these (the history below).",
    ]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    sizes = results["sizes"]
    one = next(s for s in sizes if s["scale"] == 1)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {results['date']} ({results['seconds']:.0f} s). Machine: "
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['system']}, Python "
        f"{m['python']}; backend: {results['backend']}. The machine is shared: load average "
        f"{results['load'][0]} when the run started, {results['load'][1]} when it ended (each "
        "replay's is below). Every figure stands beside its baseline, measured in this run.",
        "",
        "## The pipeline against a plain script",
        "",
        "The floor is `bench/floor.py`: the same job on the same simulated files — hub "
        "messages parsed, devices and zones resolved, MACs replaced by HMACs keyed per sensor "
        "and 15-minute window, 15-minute cells, people cells from the sensors that alone saw "
        "k devices on the complete grid with discrete Laplace noise, one CSV per theme — as "
        "one plain single-process script (it publishes the cells the pipeline publishes: "
        "`tests/integration/test_floor.py`). It runs before "
        "and after each replay; the ratio is the replay's wall time over their mean. The "
        "replay is everything the pipeline does besides: exactly-once effects, lineage, "
        "quarantine, four open formats, the catalogue and the portal, isolation in worker "
        "processes, a local S3/SQS server on the same two cores.",
        "",
        "| city | readings | replay | readings/s | floor | readings/s | ratio | books | "
        "load (before, after) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sizes:
        lines.append(
            f"| x{s['scale']:g} | {s['readings']:,} | {s['replay_s']:.1f} s | "
            f"{s['readings_per_s']:,} | {s['floor_s']:.1f} s | {s['floor_readings_per_s']:,} | "
            f"**{s['ratio']:.2f}x** | {'balanced' if s['balanced'] else 'NOT balanced'} | "
            f"{s['load'][0]}, {s['load'][1]} |"
        )
    lines += [
        "",
        "Targets: the replay within "
        + ", ".join(
            f"{TARGET_RATIO[s['scale']]:g}x the floor at x{s['scale']:g} "
            f"({'met' if s['ratio'] <= TARGET_RATIO[s['scale']] else 'NOT met'}: "
            f"{s['ratio']:.2f}x)"
            for s in sizes
            if s["scale"] in TARGET_RATIO
        )
        + "; throughput that does not fall with size.",
        *_deploy(sizes),
        "",
        "## Where the time goes (x1)",
        "",
        "CPU seconds measured in the workers of each function (the edge: the hubs' bridges), "
        "round trips to the backend and the bytes they carried, beside the floor's CPU.",
        "",
        "| stage | invocations | CPU s | round trips | sent | received |",
        "|---|---|---|---|---|---|",
    ]
    usage = one["usage"]
    for name in (*FUNCTIONS, "runner"):
        u = usage.get(name)
        if u is None:
            continue
        lines.append(
            f"| {name} | {u['invocations']} | {u['cpu_s']:.2f} | {u['requests']:,} | "
            f"{u['bytes_sent'] / 1e6:.1f} MB | {u['bytes_received'] / 1e6:.1f} MB |"
        )
    total_cpu = sum(usage[n]["cpu_s"] for n in (*FUNCTIONS, "runner") if n in usage)
    backend_cpu = usage.get("backend", {}).get("cpu_s")
    lines += [
        f"| the local backend's server | | {backend_cpu if backend_cpu is not None else 'n/a'} "
        "| | | |",
        f"| **all** | | **{total_cpu + (backend_cpu or 0):.1f}** | | | |",
        f"| the floor (baseline) | 1 | {one['floor_cpu_s']:.2f} | 0 | | |",
        "",
        "(`runner`: the replay's own process — reading the captures, the local event source "
        "mapping's polls. Round trips by call are in `bench/results.json`.)",
        "",
        "## Memory",
        "",
        f"Peak resident memory of each function's workers, MB (target: at most {TARGET_RSS_MB} "
        "MB, whatever the size of the day).",
        "",
        "| run | batch | peak per function (MB) | baseline: a worker forked, idle |",
        "|---|---|---|---|",
    ]
    probe = results["memory"]
    lines.append(
        f"| x1, batches of {probe['batch_messages']:,} messages | ~{probe['batch_readings']:,} "
        f"readings | {_mb(probe['peak_rss_mb'])} | {probe['idle_worker_mb']:.0f} MB |"
    )
    for s in sizes:
        per_batch = round(s["readings"] / max(1, s["usage"]["edge"]["invocations"]))
        lines.append(
            f"| x{s['scale']:g}, default batches | ~{per_batch:,} readings | "
            f"{_mb(s['peak_rss_mb'])} | |"
        )
    spills = [s for s in sizes if "spill" in s]
    if spills:
        per_row = sum(s["spill"]["bytes"] for s in spills) / sum(
            s["spill"]["partial_rows"] for s in spills
        )
        lines += [
            "",
            "Export's disk: the day's partials spilled to its scratch (`/tmp`), "
            + ", ".join(
                f"{s['spill']['bytes'] / 1e6:.1f} MB at x{s['scale']:g} "
                f"({s['spill']['partial_rows']:,} partial rows)"
                for s in spills
            )
            + f": {per_row:.0f} bytes a partial row.",
        ]
    cost = results["cost"]
    lines += [
        "",
        "## Cost per million readings (x1)",
        "",
        f"From the measured compute: {cost['cpu_s_per_million']} CPU seconds per million "
        f"readings across the functions and the edge, {cost['invocations_per_million']} "
        f"invocations, {cost['s3_puts_per_million']:,} S3 PUT-class and "
        f"{cost['s3_gets_per_million']:,} GET-class requests, "
        f"{cost['sqs_requests_per_million']:,} SQS requests. A vCPU comes with 1,769 MB on "
        "Lambda and ~1,830 MB on Scaleway, so a CPU-second is billed ~1.8 GB-s at any memory "
        "size (time spent waiting on storage comes on top). List prices as in "
        "`docs/deploy.md` (AWS eu-central-1, Lambda Arm; Scaleway Functions, storage requests "
        "not billed); free tiers left out.",
        "",
        "| per million readings | compute | invocations | S3 | SQS | total |",
        "|---|---|---|---|---|---|",
        "| AWS (USD) | {compute} | {invocations} | {s3} | {sqs} | **{total}** |".format(
            **cost["aws_usd"]
        ),
        "| Scaleway (EUR) | {compute} | {invocations} | — | — | **{total}** |".format(
            **cost["scaleway_eur"]
        ),
        "",
        *webhook_lines(results.get("webhook")),
        "## The cores",
        "",
    ]
    core = results["ingest_core"]
    lines += [
        f"The normalization path ran at **{core['readings_per_cpu_s']:,} readings per CPU "
        f"second** on one core ({core['readings']:,} readings in {core['payloads']:,} hub "
        f"messages of every format: {core['cpu_s']:.2f} CPU s, beside "
        f"{core['baseline_orjson_parse_cpu_s']:.2f} CPU s for `orjson` to parse the same "
        f"bodies). Each batch is normalized again and again for {CORE_ROUND_CPU_S:g} CPU s "
        f"a round, the batches' rounds interleaved, the best of {CORE_ROUNDS} rounds "
        "(interference on the shared machine only slows).",
        "",
        *core_format_lines(core.get("formats")),
        f"Target: every handler's cold import within {TARGET_IMPORT_MS} ms, ingest's within "
        f"{TARGET_INGEST_IMPORT_MS} ms. The cold start adds the composition root (the city "
        "file, the clients, the stage's code), which the first invocation pays. Both read "
        "bytecode the bench compiles first.",
        "",
        "| handler | cold import | cold start, to the app built | baseline: a bare interpreter |",
        "|---|---|---|---|",
    ]
    for function, cold in results["cold_import"].items():
        bare = cold["baseline_bare_python_ms"]
        lines.append(
            f"| {function} | {cold['import_ms']:.0f} ms | {cold['cold_start_ms']:.0f} ms | "
            f"{bare:.0f} ms |"
        )
    big = results.get("big")
    if big:
        lines += [
            "",
            f"## A big day on {big['backend']} ({big['date']}, run once, not by `make bench`)",
            "",
        ]
        for s in big["sizes"]:
            lines.append(
                f"x{s['scale']:g}: {s['readings']:,} readings replayed in {s['replay_s']:.0f} s "
                f"({s['readings_per_s']:,} readings/s; the floor {s['floor_s']:.0f} s, ratio "
                f"{s['ratio']:.2f}x), books {'balanced' if s['balanced'] else 'NOT balanced'}, "
                f"peak MB per function: {_mb(s['peak_rss_mb'])}; load {s['load']}."
            )
    return "\n".join(lines) + "\n"


def webhook_lines(path: dict[str, Any] | None) -> list[str]:
    """The webhook path's section: the x1 day through the webhook beside its direct replay."""
    if path is None:
        return []
    aws, scw = path["cost"]["aws_usd"], path["cost"]["scaleway_eur"]
    return [
        "## The webhook path (a slice of x1, a request per hub message)",
        "",
        f"The first {path['hours']:g} hour(s) of the x1 day posted to the webhook (`citypipe "
        f"replay --via http`: {path['requests']:,} requests, buffered into batches, "
        "docs/decisions/0090) took "
        f"{path['replay_s']:.1f} s, **{path['time_ratio']:.2f}x** the direct replay's "
        f"{path['direct_replay_s']:.1f} s of the same slice (goal: at most "
        f"{WEBHOOK_TIME_RATIO}x); books "
        f"{'balanced' if path['balanced'] else 'NOT balanced'}, {path['accepted']:,} readings "
        f"accepted ({path['direct_accepted']:,} directly). Per million readings, with an "
        "invocation per request and, on AWS, the API Gateway's request ($1.00 per million):",
        "",
        "| per million readings | compute | invocations | S3 | SQS | gateway | total | "
        "x the direct replay |",
        "|---|---|---|---|---|---|---|---|",
        f"| AWS (USD) | {aws['compute']} | {aws['invocations']} | {aws['s3']} | {aws['sqs']} | "
        f"{aws['gateway']} | **{aws['total']}** | {path['cost_ratio']['aws']:.1f}x |",
        f"| Scaleway (EUR) | {scw['compute']} | {scw['invocations']} | — | — | — | "
        f"**{scw['total']}** | {path['cost_ratio']['scaleway']:.1f}x |",
        "",
    ]


# --- docs/deploy.md's cost tables, from the same run -------------------------------------------

DEPLOY = ROOT / "docs" / "deploy.md"
SCALE = ROOT / "docs" / "scale.md"
SCALE_TABLES = ("<!-- bench/scale.py: begin -->", "<!-- bench/scale.py: end -->")
README = ROOT / "README.md"
README_SPEED = ("<!-- make bench: speed begin -->", "<!-- make bench: speed end -->")
AWS_COSTS = ("<!-- make bench: aws costs begin -->", "<!-- make bench: aws costs end -->")
SCW_COSTS = ("<!-- make bench: scaleway costs begin -->", "<!-- make bench: scaleway costs end -->")


def aws_cost_table(results: dict[str, Any]) -> str:
    """docs/deploy.md §10's table: the x1 day's batched drops beside the webhook path, per
    million readings at AWS list prices, every figure this run's."""
    day, path = results["cost"], results["webhook"]
    hook, x1 = path["cost"], next(s for s in results["sizes"] if s["scale"] == 1)

    def cell(size: dict[str, Any], count: str, item: str) -> str:
        unit = " CPU-s" if count == "cpu_s_per_million" else ""
        return f"{size[count]:,}{unit} → ${_money(size['aws_usd'][item])}"

    def s3(size: dict[str, Any]) -> str:
        puts, gets = size["s3_puts_per_million"], size["s3_gets_per_million"]
        return f"{puts:,} + {gets:,} → ${_money(size['aws_usd']['s3'])}"

    requests = path["requests"] / path["readings"] * 1e6
    total, direct = hook["aws_usd"]["total"], path["direct_cost"]["aws_usd"]["total"]
    return (
        "\n".join(
            [
                "| per million readings | batched drops: the x1 day replayed "
                f"({x1['readings']:,} readings) | a webhook request per hub message, buffered "
                f"(decision 90): the x1 day's first {path['hours']:g} h via http "
                f"({path['requests']:,} requests, {path['readings']:,} readings) |",
                "|---|---|---|",
                "| Lambda duration (CPU time) | "
                f"{cell(day, 'cpu_s_per_million', 'compute')} | "
                f"{cell(hook, 'cpu_s_per_million', 'compute')} |",
                f"| Lambda requests | {cell(day, 'invocations_per_million', 'invocations')} | "
                f"{cell(hook, 'invocations_per_million', 'invocations')} |",
                f"| API Gateway (HTTP API) | — | {requests:,.0f} → "
                f"${_money(hook['aws_usd']['gateway'])} |",
                f"| S3 (PUT-class + GET-class) | {s3(day)} | {s3(hook)} |",
                f"| SQS requests | {cell(day, 'sqs_requests_per_million', 'sqs')} | "
                f"{cell(hook, 'sqs_requests_per_million', 'sqs')} |",
                f"| **total** | **${_money(day['aws_usd']['total'])}** | **${_money(total)}** "
                f"({path['cost_ratio']['aws']:.1f}x the same slice replayed directly, "
                f"${_money(direct)}) |",
            ]
        )
        + "\n"
    )


def scaleway_cost_table(results: dict[str, Any]) -> str:
    """docs/deploy.md's Scaleway table: the same run at Scaleway Functions' list prices."""
    day, path = results["cost"], results["webhook"]
    hook = path["cost"]
    gb_s = day["cpu_s_per_million"] * GB_S_PER_CPU_S["scaleway"]

    def eur(size: dict[str, Any], item: str) -> str:
        return f"€{_money(size['scaleway_eur'][item])}"

    direct = path["direct_cost"]["scaleway_eur"]["total"]
    return (
        "\n".join(
            [
                "| per million readings | batched drops (the x1 day) | a webhook request per hub "
                f"message, buffered (the x1 day's first {path['hours']:g} h) |",
                "|---|---|---|",
                f"| compute (CPU time) | {day['cpu_s_per_million']:g} CPU-s ≈ {gb_s:,.0f} GB-s → "
                f"{eur(day, 'compute')} | {hook['cpu_s_per_million']:g} CPU-s → "
                f"{eur(hook, 'compute')} |",
                f"| requests | {day['invocations_per_million']:,} → {eur(day, 'invocations')} | "
                f"{hook['invocations_per_million']:,} → {eur(hook, 'invocations')} |",
                "| object storage requests | not billed | not billed |",
                f"| **total** | **{eur(day, 'total')}** | **{eur(hook, 'total')}** "
                f"({path['cost_ratio']['scaleway']:.0f}x the same slice replayed directly, "
                f"€{_money(direct)}) |",
            ]
        )
        + "\n"
    )


def _money(amount: float) -> str:
    """An amount as a plain decimal (0.00001, never 1e-05), to five places at most."""
    return f"{amount:.5f}".rstrip("0").rstrip(".") or "0"


def splice_between(page: str, generated: str, markers: tuple[str, str]) -> str:
    """``page`` with the text between ``markers`` replaced; a page without them is refused
    (a hand-written page is never overwritten whole)."""
    if not all(m in page for m in markers):
        raise ValueError(f"the page has no {markers[0]!r} … {markers[1]!r}")
    return splice(page, generated, *markers)


def readme_speed(results: dict[str, Any]) -> str:
    """The README's sentence on speed: the run's ratios against the floor, each target met
    or not, and the webhook path's against the direct replay."""
    sizes = [s for s in results["sizes"] if s["scale"] in TARGET_RATIO]
    missed = [f"x{s['scale']:g}" for s in sizes if s["ratio"] > TARGET_RATIO[s["scale"]]]
    whose = [" the script's time"] + [""] * (len(sizes) - 1)
    ratios = ", ".join(
        f"**{s['ratio']:.2f}x**{whose[n]} at x{s['scale']:g} (target {TARGET_RATIO[s['scale']]:g}x)"
        for n, s in enumerate(sizes)
    )
    listed = ", ".join(missed[:-1]) + " and " + missed[-1] if len(missed) > 1 else "".join(missed)
    verdict = f"the targets are missed at {listed}" if missed else "every target is met"
    text = (
        f"How fast: `make bench` on {results['date']}, on a shared "
        f"{results['machine']['cores']}-core machine, replayed the example city's day (x1), "
        "a quarter of it and four times it beside a plain single-process script doing the "
        f"same job; the replay took {ratios}: {verdict}."
    )
    hook = results.get("webhook")
    if hook:
        met = hook["time_ratio"] <= WEBHOOK_TIME_RATIO
        text += (
            " Through the webhook, a request per hub message, a slice of the day took "
            f"{hook['time_ratio']:.2f}x the direct replay's time (goal {WEBHOOK_TIME_RATIO:g}x: "
            f"{'met' if met else 'not met'})."
        )
    return text + " [`docs/benchmarks.md`](docs/benchmarks.md) has where the time goes.\n"


def write_docs(results: dict[str, Any]) -> None:
    """docs/benchmarks.md, docs/deploy.md's cost tables, docs/scale.md's and the README's
    sentence on speed, from this run's results (written to bench/results.json first:
    bench/scale.py reads it there). The prose around them is checked against them by
    tests/unit/test_bench_report.py and test_scale_doc.py, which fail where a new run moved
    a figure it quotes."""
    DOCS.write_text(splice(DOCS.read_text() if DOCS.exists() else None, markdown(results)))
    page = splice_between(DEPLOY.read_text(), aws_cost_table(results), AWS_COSTS)
    DEPLOY.write_text(splice_between(page, scaleway_cost_table(results), SCW_COSTS))
    SCALE.write_text(splice_between(SCALE.read_text(), metropolis.tables(), SCALE_TABLES))
    README.write_text(splice_between(README.read_text(), readme_speed(results), README_SPEED))


def main() -> None:
    parser = argparse.ArgumentParser(description="citypipe benchmarks")
    parser.add_argument("--scales", default="0.25,1,4")
    parser.add_argument("--backend", default="embedded")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--quick", action="store_true", help="sizes only: no probe, no cores")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    started, first_load = time.perf_counter(), load()
    compiled()
    work = Path(tempfile.mkdtemp(prefix="citypipe-bench-"))
    try:
        results = measure(work, scales, args.backend, quick=args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = time.perf_counter() - started
    results["load"] = [first_load, load()]
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    if args.results == ROOT / "bench" / "results.json" and "memory" in results:
        big = ROOT / "bench" / "big.json"
        if big.exists():
            results["big"] = json.loads(big.read_text())
        write_docs(results)
        print(
            f"wrote {DOCS.relative_to(ROOT)}, {DEPLOY.relative_to(ROOT)}, "
            f"{SCALE.relative_to(ROOT)}, {README.relative_to(ROOT)} and "
            f"{args.results.relative_to(ROOT)}"
        )


def measure(work: Path, scales: list[float], backend: str, quick: bool) -> dict[str, Any]:
    options = ReplayOptions(backend=backend)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "backend": backend,
        "sizes": [],
    }
    for scale in scales:
        size = one_size(work, scale, options)
        results["sizes"].append(size)
        print(
            f"x{scale:g}: {size['readings']:,} readings, replay {size['replay_s']:.1f} s "
            f"({size['readings_per_s']:,}/s), floor {size['floor_s']:.1f} s, ratio "
            f"{size['ratio']:.2f}x, balanced {size['balanced']}, peak MB "
            f"{_mb(size['peak_rss_mb'])}, load {size['load']}",
            flush=True,
        )
    if 1.0 in scales:
        x1 = next(s for s in results["sizes"] if s["scale"] == 1)
        results["cost"] = costs(x1)
        results["webhook"] = path = webhook_path(work, options, WEBHOOK_HOURS)
        print(
            f"webhook (x1's first {WEBHOOK_HOURS:g} h via http): {path['requests']:,} requests, "
            f"{path['replay_s']:.1f} s "
            f"({path['time_ratio']:.2f}x the direct replay's, goal {WEBHOOK_TIME_RATIO}x), "
            f"${path['cost']['aws_usd']['total']} / EUR {path['cost']['scaleway_eur']['total']} "
            f"per million readings ({path['cost_ratio']['aws']:.2f}x / "
            f"{path['cost_ratio']['scaleway']:.2f}x the direct replay's, goal "
            f"{WEBHOOK_COST_RATIO}x), balanced {path['balanced']}, load {path['load']}",
            flush=True,
        )
    if not quick and 1.0 in scales:
        results["memory"] = memory(work)
        results["ingest_core"] = ingest_core(work / "x1" / "input")
        results["cold_import"] = cold_imports(work)
    return results


if __name__ == "__main__":
    main()
