"""The layer's bytecode, measured (docs/decisions/0113): each handler's cold import and its
cold start to the app built, on the runtime's Python (3.12), from a layer built by
``build_layer`` for this machine (x86_64: the same code and pins as the arm64 layer, this
machine's wheels) — once as built, with its bytecode, and once with its bytecode deleted.
Both write none (``-B``: Lambda mounts the layer read-only). Behind the layer, the SDK a
Lambda runtime carries (``infra/lambda-runtime-sdk.txt``), compiled alike for both: only
the layer differs. Fresh interpreters, the two layers interleaved; medians of CPU time
(``time.process_time``, which the shared machine's load moves less) and of wall time.

    .venv/bin/python bench/bytecode.py [--runs 7]

Not part of `make bench`: it builds the layer (PyPI, or pip's cache). Its figures are in
the history of docs/benchmarks.md, under decision 113.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from citypipe.domain.city import load_city
from citypipe_local.package import build_layer, host_platforms, measure, runtime_interpreter
from citypipe_local.rehearse import runtime_sdk

ROOT = Path(__file__).resolve().parents[1]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
PYTHON = "3.12"
FUNCTIONS = ("ingest", "anonymize", "aggregate", "export")
PROBE = """
import importlib, importlib.util, sys, time
sys.path[0:0] = [{layer!r}, {sdk!r}]
wall, cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("handler", {handler!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
imported = (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
importlib.import_module("citypipe.bootstrap.{function}").cold_start()
started = (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
print(*imported, *started)
"""
FIGURES = ("import_cpu_ms", "import_wall_ms", "cold_start_cpu_ms", "cold_start_wall_ms")


def layers(work: Path) -> dict[str, Path]:
    """The layer as built (its bytecode), and a copy without it."""
    built = build_layer(work / "bytecode", host_platforms(), PYTHON).path / "python"
    source = work / "source" / "python"
    shutil.copytree(built, source, ignore=shutil.ignore_patterns("__pycache__"))
    return {"source": source, "bytecode": built}


def probe(python: str, layer: Path, sdk: Path, function: str) -> list[float]:
    handler = ROOT / "functions" / function / "handler.py"
    code = PROBE.format(layer=str(layer), sdk=str(sdk), handler=str(handler), function=function)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CITYPIPE_STACK": json.dumps({"city_file": str(CITY_FILE)}),
        "AWS_REGION": load_city(CITY_FILE).region,
    }
    out = subprocess.run(
        [python, "-I", "-B", "-c", code],
        capture_output=True, text=True, check=True, env=environment, cwd=layer.parent,
    ).stdout  # fmt: skip
    return [float(figure) for figure in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per layer")
    args = parser.parse_args()
    python = runtime_interpreter(PYTHON)
    work = Path(tempfile.mkdtemp(prefix="citypipe-bytecode-"))
    try:
        trees = layers(work)
        sdk = runtime_sdk(work / "sdk")
        subprocess.run([python, "-m", "compileall", "-q", str(sdk)], check=True)
        results: dict[str, object] = {
            "python": python,
            "layer_mb": {k: round(measure(t).unzipped_bytes / 1e6, 1) for k, t in trees.items()},
            "runs": args.runs,
            "load_before": round(os.getloadavg()[0], 2),
        }
        for function in FUNCTIONS:
            samples: dict[str, list[list[float]]] = {name: [] for name in trees}
            for run in range(args.runs):
                order = list(trees) if run % 2 == 0 else list(reversed(trees))
                for name in order:
                    samples[name].append(probe(python, trees[name], sdk, function))
            results[function] = {
                name: {
                    figure: round(statistics.median(s[i] for s in runs), 1)
                    for i, figure in enumerate(FIGURES)
                }
                for name, runs in samples.items()
            }
            print(function, json.dumps(results[function]), flush=True)
        results["load_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
