"""Replay: push recorded hub payloads through a fresh city stack and collect everything.

Provisions the stack, drops every payload at the ingest entry point of its format (the
inbox + a claim check, as the MQTT/HTTP bridges do), runs the real Lambda handlers in the
local runner until the queues drain, asks export to publish every day, then copies every
zone to ``OUT/<zone>/``, the run's structured logs to ``OUT/logs.jsonl`` and writes
``OUT/report.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citypipe.bootstrap import deps_from
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import aggregates_prefix
from citypipe.service.ingest import drop_message
from citypipe.service.stage import Deps
from citypipe.settings import KeySettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import backend
from citypipe_local.logs import written_to
from citypipe_local.report import build_report
from citypipe_local.runner import Invoker, LocalRunner, Platform

PIPELINE = (Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ReplayOptions:
    backend: str = "embedded"
    batch_payloads: int = 20_000
    concurrency: int = 4
    duplicate_deliveries: bool = False
    # None: the daily secrets live in the stack's keys bucket, as in a cloud (and die with
    # the embedded backend). A directory: a file key store there, e.g. for tests comparing
    # two runs, which need the same secrets to publish the same distinct-device counts.
    keys_dir: Path | None = None
    visibility_timeout_s: int = 30
    localstack_endpoint: str | None = None
    name_prefix: str = ""  # a stack of its own on a shared backend (tests, two clones)
    platform: Platform = "aws"  # whose entry points the functions run through


def drop_payloads(deps: Deps, input_dir: Path, batch: int, progress: Progress | None) -> int:
    """Every ``<format>.jsonl`` in ``input_dir``: batches of payloads -> inbox + claim check."""
    sent = 0
    queue = deps.names.queue(Function.INGEST)
    for path in sorted(input_dir.glob("*.jsonl")):
        fmt = path.stem
        lines: list[str] = []
        with path.open(encoding="utf-8") as source:
            for raw in source:
                line = raw.rstrip("\n")
                if line.strip():
                    lines.append(line)
                if len(lines) == batch:
                    deps.queue.send_json(queue, [drop_message(deps, fmt, lines).model_dump()])
                    sent += len(lines)
                    lines = []
        if lines:
            deps.queue.send_json(queue, [drop_message(deps, fmt, lines).model_dump()])
            sent += len(lines)
        if progress:
            progress(f"dropped {path.name}", sent)
    return sent


def copy_zones(deps: Deps, out: Path) -> None:
    for zone in Zone:
        target = out / zone.value
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        bucket = deps.names.bucket(zone)
        for info in deps.store.list(bucket):
            path = target / info.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(deps.store.get(bucket, info.key).body)


def request_export(deps: Deps) -> None:
    """What an operator (or the schedule) does once the day is in: publish every day."""
    request = Message(
        city=deps.city.city,
        stage="export",
        bucket=deps.names.bucket(Zone.AGGREGATES),
        key=aggregates_prefix(deps.city.city),
    )
    deps.queue.send_json(deps.names.queue(Function.EXPORT), [request.model_dump(exclude_none=True)])


def replay(
    city_file: Path,
    input_dir: Path,
    out: Path,
    options: ReplayOptions = ReplayOptions(),
    progress: Progress | None = None,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs.jsonl").unlink(missing_ok=True)  # this run's logs only
    with backend(options.backend, options.localstack_endpoint) as endpoint:
        settings = Settings(
            backend=endpoint.settings,
            stack=StackSettings(
                deployment="local",
                city_file=city_file,
                visibility_timeout_s=options.visibility_timeout_s,
                name_prefix=options.name_prefix,
            ),
            keys=(
                KeySettings(store="file", directory=options.keys_dir)
                if options.keys_dir is not None
                else KeySettings(store="object")
            ),
        )
        deps = deps_from(settings)
        clients = stack.make_clients(settings.backend)
        stack.down(deps.names, clients)  # a replay starts from an empty stack
        stack.up(deps.city, deps.names, clients, settings.stack)
        started = time.perf_counter()
        with written_to(out / "logs.jsonl"):
            sent = drop_payloads(deps, input_dir, options.batch_payloads, progress)
            edge_seconds = time.perf_counter() - started
            invoker = Invoker(settings, options.concurrency, out / "logs.jsonl")
            runner = LocalRunner(
                deps.names,
                deps.queue,
                region=settings.backend.region or deps.city.region,
                concurrency=options.concurrency,
                duplicate_deliveries=options.duplicate_deliveries,
                on_batch=(lambda f, n: progress(f.value, n)) if progress else None,
                invoker=invoker,
                platform=options.platform,
            )
            try:
                runner.drain(PIPELINE)
                request_export(deps)
                runner.drain([Function.EXPORT])
            finally:
                invoker.close()
            report = build_report(deps, sent, {f: s.seconds for f, s in runner.stats.items()})
        report["seconds"] = {
            "edge": round(edge_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        }
        report["backend"] = endpoint.name
        copy_zones(deps, out)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
