"""Replay: push recorded hub messages through a fresh city stack and collect everything.

Provisions the stack, then plays the hubs: every captured message (``<format>.jsonl``,
from ``simulate``) goes through the library's edge — as the webhook and the MQTT bridge
send it — in worker processes (as bridges are processes of their own), so identifiers are
pseudonymized or dropped before anything is written; CSV files under ``drops/`` are put
in the inbox with a claim check, as a city's own system drops them, for the ingest
function. Then the real Lambda handlers run in the local runner until the queues drain,
export is asked to publish every day, every zone is copied to ``OUT/<zone>/``, the run's
structured logs to ``OUT/logs.jsonl``, and ``OUT/report.json`` is written.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import json
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from citypipe.adapters.scratch import TempScratch
from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.core.pseudonyms import opt_out_address
from citypipe.domain.city import City, load_city
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function, Message, Zone
from citypipe.ports import KeyStore
from citypipe.service.collector import paused
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.export import ExportPorts, days_with_partials
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.export.people import release_time
from citypipe.service.export.withdrawal import carry_out
from citypipe.service.housekeeping import retire_keys
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out
from citypipe.service.partners import withdraw
from citypipe.settings import KeySettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint, backend
from citypipe_local.bare import BareInvoker, Runtime
from citypipe_local.clock import Offset, SimulatedClock
from citypipe_local.drops import announce, drop
from citypipe_local.fakes import InMemoryWebhookTokens
from citypipe_local.faults import Faults, poison_messages
from citypipe_local.hubs import Captured, MqttHub, post, routed
from citypipe_local.logs import written_to
from citypipe_local.report import BridgeRun, build_report
from citypipe_local.runner import (
    GATHER_WINDOW_S,
    InvocationCrashedError,
    Invoker,
    LambdaContext,
    LocalRunner,
    Platform,
    worker_composition,
)
from citypipe_local.usage import Meter, Usage, process_cpu_s

PIPELINE = (Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE)
PROGRESS_EVERY = 100  # messages a transport replay sends between two progress updates
HTTP_HUBS = 16  # hubs posting to the webhook at once in a replay --via http
Progress = Callable[[str, int], None]
T = TypeVar("T")


Via = Literal["direct", "mqtt", "http"]


@dataclass(frozen=True)
class ReplayOptions:
    backend: str = "embedded"
    # How the captures reach the edge: direct (the edge called in worker processes, as many
    # bridges), mqtt (published on a broker, through the MQTT bridge), http (posted to the
    # local webhook server, one request per message)
    via: Via = "direct"
    broker: str | None = None  # --via mqtt: mqtt://host:port; None: a Mosquitto started here
    batch_payloads: int = 40_000
    concurrency: int = 4
    faults: Faults = field(default_factory=Faults)  # none: a clean run
    # None: the secrets live in the stack's keys bucket, as in a cloud. A directory: a file
    # key store there, whose release secret (the noise of people counts) outlives the run,
    # e.g. for tests comparing two runs' open data byte for byte. Either way every daily
    # secret is destroyed at the end of the run.
    keys_dir: Path | None = None
    visibility_timeout_s: int = 30
    # None: the real clock, every day exported at the end. A period: the captures played on
    # a simulated clock, the hourly job firing that often on it (a week in an hour or two)
    job_every: timedelta | None = None
    max_receive_count: int = 3  # deliveries before a message is dead-lettered
    localstack_endpoint: str | None = None
    name_prefix: str = ""  # a stack of its own on a shared backend (tests, two clones)
    platform: Platform = "aws"  # whose entry points the functions run through
    # None: the functions of the source tree. A runtime: the functions of the deployment
    # artefacts unpacked there, each in a bare interpreter (``citypipe_local.rehearse``)
    runtime: Runtime | None = None
    # Device addresses residents opted out before the captures play, as ``POST /optout``
    # records them (kept as their keyed hashes only): every edge drops their detections
    opt_outs: tuple[str, ...] = ()
    # partners whose permission is withdrawn before the first message (a run that never
    # had them), and once every day is published (their days published again without them)
    withdrawn: tuple[str, ...] = ()
    withdraw_after: tuple[str, ...] = ()
    # asked once the open data is published, on the live stack, on the real clock
    # (``citypipe_local.public``: the public entry points): its answers are the report's
    # ``public``
    probe: Callable[[Session], Probed] | None = None


def _at(line: bytes) -> float:
    """The arrival time of a captured message (``{"at":<n>,...``: read without parsing it)."""
    return float(line[6 : line.find(b",")])


Arrival = tuple[float, str, bytes, int]  # (arrival time, format, captured line, its number)
Captures = list[tuple[str, bytes, int]]  # (format, captured line, its number in its file)


def _captured(path: Path) -> Iterator[Arrival]:
    fmt = path.stem
    if fmt not in FORMATS:
        raise ValueError(f"{path.name}: no format {fmt!r}; formats: {sorted(FORMATS)}")
    with path.open("rb") as source:
        for number, raw in enumerate(source, start=1):
            line = raw.rstrip(b"\n")
            if line.strip():
                yield _at(line), fmt, line, number


def captured(input_dir: Path) -> Iterator[Arrival]:
    """Every capture in ``input_dir``, merged in arrival order: one bridge before the hubs."""
    streams = [_captured(p) for p in sorted(input_dir.glob("*.jsonl"))]
    return heapq.merge(*streams, key=lambda item: item[0])


def batches(items: Iterable[Arrival], batch: int) -> Iterator[Captures]:
    """Captured messages in batches of about ``batch`` messages — as a bridge batches by
    count and time. A batch never splits messages that arrived in the same instant (a hub's
    resend stays with what it resends)."""
    lines: Captures = []
    last = None
    for at, fmt, line, number in items:
        if len(lines) >= batch and at != last:
            yield lines
            lines = []
        lines.append((fmt, line, number))
        last = at
    if lines:
        yield lines


def edge_batches(input_dir: Path, batch: int) -> Iterator[Captures]:
    """Every capture in ``input_dir``, merged in arrival order, in batches (``batches``)."""
    return batches(captured(input_dir), batch)


def payloads_of(lines: Iterable[bytes | tuple[str, bytes, int]]) -> list[Payload]:
    """Captured messages as the edge receives them: format and line number in its capture
    file (where given: a quarantine row names that line), body, arrival, topic, headers."""
    return list(decoded(lines))


def decoded(lines: Iterable[bytes | tuple[str, bytes, int]]) -> Iterator[Payload]:
    """``payloads_of`` one at a time, each decoded as it is asked for."""
    loads, no_headers = orjson.loads, Context(0).headers
    for position, item in enumerate(lines, start=1):
        fmt, line, number = item if isinstance(item, tuple) else (None, item, position)
        envelope = loads(line)
        body = envelope.get("body")
        data = base64.b64decode(envelope["body_base64"]) if body is None else body.encode()
        headers = envelope.get("headers")
        if headers:
            headers = {k.lower(): v for k, v in headers.items()}
        ctx = Context(float(envelope["at"]), envelope.get("topic"), headers or no_headers)
        yield Payload(data, ctx, number, fmt=FORMATS[fmt] if fmt else None)


def taken(items: list[T]) -> Iterator[T]:
    """The items of a list in order, each let go by the list as it is taken: the list is
    empty once they all are."""
    items.reverse()
    while items:
        yield items.pop()


def play_batch(deps: Deps, keys: KeyStore, lines: Captures) -> int:
    """One batch of captured messages (of any hub formats) through the edge, as a bridge
    sends it; ``lines`` is consumed (left empty). Returns the payloads it held. A bridge
    retries a batch that failed (with its own copy of it: the worker's is consumed): the
    edge writes it once. Each message is decoded as the edge takes it and let go: a
    batch's messages, their decoded payloads and what the edge makes of them are never all
    held at once."""
    with paused():  # as the edge's admit, from the envelopes decoded on (decision 72)
        messages: Iterator[tuple[str, bytes, int]] = taken(lines)
        # the batch let go before the collector wakes: it would walk all of it
        return admit(deps, keys, Inbound(decoded(messages), Route.REPLAY)).normalized.payloads


def push(deps: Deps, keys: KeyStore, input_dir: Path, batch: int) -> int:
    """Every capture through the edge in this process, as one bridge in front of a deployed
    stack, then the CSV drops into its inbox. Returns the payloads and rows sent."""
    sent = sum(play_batch(deps, keys, lines) for lines in edge_batches(input_dir, batch))
    return sent + drop_csv(deps, input_dir)


def edge_worker(lines: Captures) -> int:
    """``play_batch`` in a worker process, on its own composition (as a bridge has); the
    batch sent is the worker's copy, consumed as it is played."""
    return play_batch(*worker_composition(), lines)


def csv_drops(input_dir: Path) -> list[Path]:
    """The CSV files a city's own system drops, under ``drops/csv/<mapping>/``."""
    return sorted((input_dir / "drops" / "csv").glob("*/*.csv"))


def drop_csv(deps: Deps, input_dir: Path, files: Iterable[Path] | None = None) -> int:
    """CSV files (every one under ``drops/csv/<mapping>/`` unless given): into the inbox,
    then a claim check to ingest, as a city's own system drops them. Returns the rows."""
    rows = 0
    for path in csv_drops(input_dir) if files is None else files:
        body = path.read_bytes()
        count = max(0, len(body.decode("utf-8", errors="replace").splitlines()) - 1)
        announce(deps, drop(deps, "csv", f"{path.parent.name}/{path.name}", body, count))
        rows += count
    return rows


BRIDGE_TRIES = 20  # a bridge tries a batch this often before it gives up


@dataclass
class Delivered:
    """What the hubs sent through the edge in worker processes."""

    payloads: int = 0
    retried: int = 0  # batches a bridge sent again after the edge failed


def play_hubs(
    invoker: Invoker,
    items: Iterable[Arrival],
    batch: int,
    workers: int,
    progress: Progress | None,
    written: Callable[[], None] = lambda: None,
) -> Delivered:
    """Every capture through the edge, batches in the worker processes, a few at a time
    (``written`` after each: anonymize has messages). A batch whose edge failed (a worker
    died, the backend failed) is sent again, as a bridge retries: the edge writes it once."""
    played = Delivered()
    running: dict[Future[int], tuple[Captures, int]] = {}

    def settle(done: Iterable[Future[int]]) -> None:
        for future in done:
            lines, tries = running.pop(future)
            try:
                played.payloads += future.result()
                written()
            except (InvocationCrashedError, TransientError):
                if tries >= BRIDGE_TRIES:
                    raise
                played.retried += 1
                running[invoker.submit("edge", edge_worker, lines)] = (lines, tries + 1)
        if progress:
            progress("dropped captures", played.payloads)

    for lines in batches(items, batch):
        while len(running) >= 2 * workers:
            settle(wait(running, return_when=FIRST_COMPLETED).done)
        running[invoker.submit("edge", edge_worker, lines)] = (lines, 1)
    while running:
        settle(wait(running, return_when=FIRST_COMPLETED).done)
    return played


def copy_zones(deps: Deps, out: Path) -> None:
    """Every zone's bucket to ``out/<zone>/<city>/…``: the bucket's keys with the zone (a
    key's first part where it names it) and the city put first, so every zone reads alike
    (``out/open/velden/index.html``, ``out/audit/velden/lineage/…``)."""
    for zone in Zone:
        target = out / zone.value
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        bucket = deps.names.bucket(zone)
        for info in deps.store.list(bucket):
            path = target / local_path(zone, deps.city.slug, info.key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(deps.store.get(bucket, info.key).body)


def local_path(zone: Zone, slug: str, key: str) -> str:
    """Where a key of ``zone``'s bucket lands under ``out/<zone>/``: ``<city>/…``."""
    parts = key.split("/")
    if parts[0] == zone.value:
        parts = parts[1:]
    if slug in parts[:2]:
        parts.remove(slug)
        parts.insert(0, slug)
    return "/".join(parts)


def end_of_run(deps: Deps, keys: KeyStore) -> dict[str, int]:
    """Keys really die: at the end of a local run, destroy every daily secret (up to
    tomorrow, the latest day a reading may be dated) and scrub the pseudonyms of every day
    from the clean zone, as the hourly job does once a day's key retention is over. What
    the run leaves behind — zones copied to disk, a LocalStack that lives on, a keys
    directory — lets nobody compute a pseudonym again. The release secret (noise) stays: it
    links nothing to anyone, and a re-run with it publishes the same noise."""
    now = deps.clock.now()
    days = days_with_partials(deps)  # a replayed day may be older than the clean retention
    since = date.fromisoformat(days[0]) if days else None
    destroyed, scrubbed = retire_keys(deps, keys, now.date() + timedelta(days=2), now, since)
    return {"keys_destroyed": destroyed, "clean_scrubbed": scrubbed}


def request_export(deps: Deps) -> None:
    """What an operator (or the schedule) does once the day is in: publish every day."""
    request = Message(
        city=deps.city.slug,
        stage="export",
        bucket=deps.names.bucket(Zone.AGGREGATES),
        key=deps.names.aggregates_prefix(),
    )
    deps.queue.send_json(deps.names.queue(Function.EXPORT), [request.model_dump(exclude_none=True)])


@dataclass(frozen=True)
class Played:
    sent: int | None  # payloads the hubs sent; None: not known (a server that took what came)
    transport: dict[str, Any] | None = None  # how they travelled (``report["transport"]``)
    bridge: BridgeRun | None = None  # the MQTT bridge's books, checked by the report
    resent: int = 0  # payloads the webhook recognized as received before: nothing written


@dataclass(frozen=True)
class Probed:
    """What ``ReplayOptions.probe`` asked of the live stack: the hub payloads it sent (the
    books count them) and the answers it was given."""

    sent: int = 0
    answers: dict[str, Any] | None = None

    def sent_with(self, played: int | None) -> int | None:
        """The payloads the hubs sent (None: not known) and those the probe sent."""
        return None if played is None else played + self.sent


@dataclass
class Session:
    """A fresh local stack, its workers and the local runner, for a player to send hubs'
    messages into. ``stop`` is set when the run is asked to end (Ctrl-C, SIGTERM): a player
    that serves until then returns."""

    settings: Settings
    deps: Deps
    options: ReplayOptions
    invoker: Invoker
    runner: LocalRunner
    progress: Progress | None
    clock: Offset | None = None  # the simulated clock, shared with the backend; None: real
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0  # payloads and CSV rows the hubs sent
    delivered: Delivered = field(default_factory=Delivered)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def alongside(self, player: Callable[[Session], T]) -> T:
        """``player`` sends while the functions run, as hubs do; then until the queues
        drain. Ctrl-C (or SIGTERM) asks the player to stop; the run finishes what came — but
        a replay through a transport (``via`` http or mqtt) stops there, its player, server,
        broker and workers with it (decision 91)."""
        with (
            ThreadPoolExecutor(1, thread_name_prefix="hubs") as hubs,
            stopped_by_signals(self.stop, interrupt=self.options.via != "direct"),
        ):
            playing = hubs.submit(player, self)
            playing.add_done_callback(lambda _: self.runner.wake())  # drain's until() is true
            self.runner.drain(PIPELINE, timeout_s=float("inf"), until=playing.done)
            played = playing.result()
        self.runner.drain(PIPELINE)
        return played

    def play(self, items: Iterable[Arrival], drops: Iterable[Path], input_dir: Path) -> None:
        """The hubs' messages through the edge (in the worker processes) and the CSV files
        into the inbox, while the functions run; counted in ``sent``."""

        def hubs(session: Session) -> int:
            rows = drop_csv(self.deps, input_dir, drops)
            self.runner.wake(Function.INGEST)
            delivered = play_hubs(
                self.invoker,
                items,
                self.options.batch_payloads,
                self.options.concurrency,
                self.progress,
                lambda: self.runner.wake(Function.ANONYMIZE),
            )
            self.delivered.payloads += delivered.payloads
            self.delivered.retried += delivered.retried
            return rows + delivered.payloads

        self.sent += self.alongside(hubs)

    def export_all(self) -> None:
        request_export(self.deps)
        self.runner.drain([Function.EXPORT])

    def hourly_job(self, fired: datetime) -> None:
        """The export function's schedule fires (EventBridge's event, at ``fired``)."""
        function = self.deps.names.queue(Function.EXPORT)
        event = {
            "version": "0",
            "id": f"citypipe-local-{fired:%Y%m%dT%H%M}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": fired.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.deps.city.region,
            "resources": [f"arn:aws:events:{self.deps.city.region}:000000000000:rule/{function}"],
            "detail": {},
        }
        arn = f"arn:aws:lambda:{self.deps.city.region}:000000000000:function:{function}"
        self.jobs.append(
            self.invoker.invoke(Function.EXPORT, "aws", event, LambdaContext(function, arn))
        )


Player = Callable[[Session], Played]


class _Arrivals:
    """The merged captures, taken in slices of time (never all in memory)."""

    def __init__(self, input_dir: Path) -> None:
        self.items = captured(input_dir)
        self.pending = next(self.items, None)
        self.last_day: date | None = None

    def before(self, limit: datetime) -> Iterator[Arrival]:
        while self.pending is not None and self.pending[0] < limit.timestamp():
            item, self.pending = self.pending, next(self.items, None)
            self.last_day = datetime.fromtimestamp(item[0], UTC).date()
            yield item


def _simulated_days(run: Session, input_dir: Path, clock: Offset, every: timedelta) -> datetime:
    """Play the captures on a simulated clock: up to each firing of the hourly job, the
    messages that arrived before it and the CSV files of the hours that ended, then the
    job at its time; until every message is in and the job that releases the last day's
    people counts — an hour before its key dies — has fired (when)."""
    arrivals = _Arrivals(input_dir)
    if arrivals.pending is None:
        return datetime.now(UTC)
    first = datetime.fromtimestamp(arrivals.pending[0], UTC)
    fired = first.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    drops = {path: _drop_hour(path) + timedelta(hours=1) for path in csv_drops(input_dir)}
    while True:
        clock.set_now(fired - timedelta(minutes=1))
        due = sorted(p for p, ended in drops.items() if ended <= fired)
        for path in due:
            del drops[path]
        run.play(arrivals.before(fired), due, input_dir)
        clock.set_now(fired)
        run.hourly_job(fired)
        last_day = arrivals.last_day or first.date()
        released = release_time(run.deps.city, last_day.isoformat())
        if arrivals.pending is None and not drops and fired >= released:
            return fired  # the job that released the last day's people counts
        fired += every


def _drop_hour(path: Path) -> datetime:
    """The hour a CSV drop covers, from its name (``loops-2026-06-01T00.csv``)."""
    stamp = path.stem.rsplit("-", 3)[-3:]
    return datetime.strptime("-".join(stamp), "%Y-%m-%dT%H").replace(tzinfo=UTC)


def _usage(
    invoker: Invoker, runner: Usage, pid: int | None, backend_cpu: float | None
) -> dict[str, Any]:
    """What the run cost where it ran: per function, the runner's own calls, the backend."""
    usage = {name: u.as_dict() for name, u in sorted(invoker.usage.items())}
    usage["runner"] = runner.as_dict()
    if backend_cpu is not None and pid:
        used = (process_cpu_s(pid) or backend_cpu) - backend_cpu
        usage["backend"] = {"cpu_s": round(used, 3)}
    return usage


def local_settings(endpoint: Endpoint, city_file: Path, options: ReplayOptions) -> Settings:
    """A laptop's settings for a stack on ``endpoint``."""
    return Settings(
        backend=endpoint.settings,
        stack=StackSettings(
            deployment="local",
            city_file=city_file,
            visibility_timeout_s=options.visibility_timeout_s,
            max_receive_count=options.max_receive_count,
            name_prefix=options.name_prefix,
        ),
        keys=(
            KeySettings(store="file", directory=options.keys_dir)
            if options.keys_dir is not None
            else KeySettings(store="object")
        ),
    )


def _session(
    settings: Settings,
    deps: Deps,
    options: ReplayOptions,
    invoker: Invoker,
    progress: Progress | None,
    clock_file: Path | None,
) -> Session:
    """A session on a fresh stack: the local runner over its queues, the invoker's workers."""
    runner = LocalRunner(
        deps.names,
        deps.queue,
        region=settings.backend.region or deps.city.region,
        concurrency=options.concurrency,
        duplicate=options.faults.duplicate,
        seed=options.faults.seed,
        on_batch=(lambda f, n: progress(f.value, n)) if progress else None,
        invoker=invoker,
        platform=options.platform,
        window_s=min(GATHER_WINDOW_S, options.visibility_timeout_s / 3),
    )
    clock = Offset(clock_file) if clock_file is not None else None
    return Session(settings, deps, options, invoker, runner, progress, clock)


def _run_facts(session: Session, invoker: Invoker) -> dict[str, Any]:
    """What the run's report says of how it ran: workers, faults, hourly jobs."""
    options, stats = session.options, session.runner.stats
    facts: dict[str, Any] = {
        "workers": {
            "per_function": options.concurrency,
            "peak_rss_mb": {k: round(v, 1) for k, v in sorted(invoker.peak_rss_mb.items())},
            "started": {name: pool.started for name, pool in sorted(invoker.pools.items())},
        },
        "faults": {
            "asked": str(options.faults),
            "crashes": dict(sorted(invoker.crashes.items())),
            "injected": dict(sorted(invoker.injected.items())),
            "bridge_retries": session.delivered.retried,
            "failed_deliveries": sum(s.failures for s in stats.values()),
        },
    }
    if options.job_every is not None:
        facts["hourly_jobs"] = session.jobs
    if isinstance(invoker, BareInvoker):
        facts["from_artefacts"] = {"invocations": invoker.invocations}
    return facts


def run_local(
    city_file: Path,
    out: Path,
    options: ReplayOptions,
    player: Player,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A fresh stack on the options' backend, the functions running in the local runner
    while ``player`` sends the hubs' messages (``Session.alongside``); then, on the real
    clock, every day exported; the zones copied to ``out``, the run report written.

    On a simulated clock (``options.job_every``) the player plays the captures in their own
    time and fires the hourly job on that clock (publishing yesterday, destroying old keys,
    sweeping raw and quarantine) instead of an export request; the embedded backend keeps
    the same time (``session.clock``)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs.jsonl").unlink(missing_ok=True)  # this run's logs only
    meter = Meter()
    meter.install()  # this process's own round trips: the hubs' CSV drops, the runner's polls
    clock_file = out / ".clock" if options.job_every is not None else None
    if clock_file is not None:
        clock_file.write_text("0")
    region = load_city(city_file).region  # the embedded backend serves the city's region
    with backend(options.backend, options.localstack_endpoint, clock_file, region) as endpoint:
        settings = local_settings(endpoint, city_file, options)
        deps = deps_from(settings)
        clients = stack.make_clients(settings.backend)
        stack.down(deps.names, clients)  # a replay starts from an empty stack
        if options.keys_dir is not None:  # ... and a key store of its own: no secret, no horizon
            stack.reset_file_keys(options.keys_dir / deps.city.slug)
        stack.up(deps.city, deps.names, clients, settings.stack)
        deploy_seconds = _deployed(deps, key_store_from(settings, deps), options.opt_outs)
        started, runner_before = time.perf_counter(), meter.snapshot()
        backend_cpu = process_cpu_s(endpoint.pid) if endpoint.pid else None
        with written_to(out / "logs.jsonl"):
            invoker = (
                Invoker(
                    settings, options.concurrency, out / "logs.jsonl", options.faults, clock_file
                )
                if options.runtime is None
                else BareInvoker(settings, options.concurrency, out / "logs.jsonl", options.runtime)
            )
            session = _session(settings, deps, options, invoker, progress, clock_file)
            try:
                poison_messages(deps, options.faults.poison)
                for partner in options.withdrawn:
                    withdraw(deps, partner)
                played = player(session)
                edge_seconds = time.perf_counter() - started
                if clock_file is None:
                    session.export_all()
                probed = options.probe(session) if options.probe is not None else Probed()
                for partner in options.withdraw_after:
                    withdraw(deps, partner)
                    keys = key_store_from(settings, deps)
                    carry_out(deps, ExportPorts(keys, TempScratch()), partner)
                total = time.perf_counter() - started  # published (and the probe answered)
            finally:
                invoker.close()
            usage = _usage(invoker, meter.since(runner_before), endpoint.pid, backend_cpu)
            seconds = {f: s.seconds for f, s in session.runner.stats.items()}
            report = build_report(
                deps, probed.sent_with(played.sent), seconds, played.bridge, played.resent
            )
            # the end of the run is at the run's time: the simulated clock's, if it has one
            ending = deps if clock_file is None else replace(deps, clock=SimulatedClock(clock_file))
            report["end_of_run"] = end_of_run(ending, key_store_from(settings, deps))
        asked = {"transport": played.transport, "public": probed.answers}  # what it was asked
        report |= {name: value for name, value in asked.items() if value is not None}
        report["seconds"] = {
            "deploy": round(deploy_seconds, 3),
            "edge": round(edge_seconds, 3),
            "total": round(total, 3),
        }
        report["usage"] = usage
        report |= {"backend": endpoint.name, **_run_facts(session, invoker)}
        copy_zones(deps, out)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")  # books first
    return report


def _deployed(deps: Deps, keys: KeyStore, opt_outs: Iterable[str]) -> float:
    """The stack made ready for its hubs: the residents' opt-outs in, then the deploy's
    last step (docs/deploy.md), the city's files — the registers, the record of
    processing, a notice per sensor, the residents' pages, an empty catalogue — public
    before any hub sends, as ``request-export`` to a stack without data publishes them (the
    day's export then finds them built). Returns the seconds of that step."""
    _opted_out(deps, keys, opt_outs)
    started = time.perf_counter()
    publish_metadata(deps, TempScratch())
    return time.perf_counter() - started


def _opted_out(deps: Deps, keys: KeyStore, addresses: Iterable[str]) -> None:
    """Residents' opt-outs recorded in a fresh stack, as ``POST /optout`` records them."""
    for address in addresses:
        normalized = opt_out_address(address)
        if normalized is None:
            raise ValueError("an opt-out names a Wi-Fi or Bluetooth address (EUI-48)")
        opt_out(deps, keys, normalized)


@contextlib.contextmanager
def stopped_by_signals(stop: threading.Event, interrupt: bool = False) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM (a container stopping, ``kill``) end the play: ``stop``
    is set and, when ``interrupt``, the run is interrupted there (``KeyboardInterrupt``).
    Handled here, whatever this process inherited (a process started with SIGINT ignored —
    by a test runner's worker, a background job — still stops on Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopping(signum: int, frame: object) -> None:
        stop.set()
        if interrupt:
            raise KeyboardInterrupt

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, stopping) for s in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def replay(
    city_file: Path,
    input_dir: Path,
    out: Path,
    options: ReplayOptions = ReplayOptions(),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every capture of ``input_dir`` through a fresh stack, the way ``options.via`` says,
    and the CSV drops through the inbox; the report of the run's books.

    On the real clock (the default) every message is played as fast as the stack takes
    it, then every day is exported. On a simulated clock (``options.job_every``, direct
    only) the captures are played in their own time — possibly days of them — with the
    hourly job firing on that clock."""
    if options.job_every is not None and options.via != "direct":
        raise ValueError("a simulated clock plays the captures directly (via=direct)")
    if options.runtime is not None and (options.job_every is not None or options.faults.any):
        raise ValueError("the artefacts run on the real clock, without injected faults")
    if options.probe is not None and options.job_every is not None:
        raise ValueError("the public entry points are asked on the real clock")

    def direct(session: Session) -> Played:
        session.play(captured(input_dir), csv_drops(input_dir), input_dir)
        return Played(session.sent)

    def simulated(session: Session) -> Played:
        assert options.job_every is not None and session.clock is not None
        last = _simulated_days(session, input_dir, session.clock, options.job_every)
        # the run ends an hour after the last job (an audit record of keys destroyed is
        # one per hour: the end of the run's is its own)
        session.clock.set_now(last + timedelta(hours=1))
        return Played(session.sent)

    def through(transport: Callable[[Session, Path], Played]) -> Player:
        def then_drops(session: Session) -> Played:
            played = transport(session, input_dir)
            sent = (played.sent or 0) + drop_csv(session.deps, input_dir)
            return Played(sent, played.transport, played.bridge, played.resent)

        return lambda session: session.alongside(then_drops)

    players: dict[Via, Player] = {
        "direct": simulated if options.job_every is not None else direct,
        "mqtt": through(play_mqtt),
        "http": through(play_http),
    }
    return run_local(city_file, out, options, players[options.via], progress)


# --- the captures through a broker and the MQTT bridge, or through the webhook server -------


def _captured_messages(city: City, input_dir: Path) -> list[Captured]:
    """Every capture, merged in arrival order, with the source and format of its topic."""
    return [m for lines in edge_batches(input_dir, 1 << 62) for m in routed(city, lines)]


def play_mqtt(session: Session, input_dir: Path, timeout_s: float = 3600) -> Played:
    """The captures published on a broker (``options.broker``, else a Mosquitto started
    here) in arrival order, by a publisher with a persistent session, and bridged into the
    stack by the MQTT bridge (running here, ``arrival=property``: a message is dated by its
    recorded arrival, as the direct replay dates it). Returns when the bridge has written
    every message."""
    from citypipe_bridge.main import Running, run
    from citypipe_bridge.settings import BridgeSettings, MqttSettings
    from citypipe_local.backends.mosquitto import Mosquitto

    messages = _captured_messages(session.deps.city, input_dir)
    run_id = uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as cleanup:
        url = session.options.broker
        if url is None:
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
            url = cleanup.enter_context(Mosquitto(folder)).url
        mqtt = MqttSettings(
            broker=url,
            client_id=f"citypipe-replay-{run_id}",
            session_expiry_s=3600,
            batch_age_s=2,
            arrival="property",
        )
        settings = BridgeSettings.of(session.settings, mqtt)
        keys = key_store_from(settings, session.deps)
        stop, running = threading.Event(), Running()
        bridging = ThreadPoolExecutor(1, thread_name_prefix="bridge")
        bridged = bridging.submit(run, settings, stop, session.deps, keys, running)
        client = wait_for(lambda: running.client, bridged, 60, "the bridge's client")
        wait_for(client.subscribed.is_set, bridged, 60, "the bridge's subscriptions")
        hub = MqttHub(mqtt.host, mqtt.port, f"citypipe-replay-hubs-{run_id}")
        try:
            for number, message in enumerate(messages, start=1):
                if session.stop.is_set():
                    raise Stopped("the replay was asked to stop")
                hub.publish(message)
                if session.progress and number % PROGRESS_EVERY == 0:
                    session.progress("dropped captures", number)
            bridge = running.bridge
            assert bridge is not None
            wait_for(
                lambda: bridge.books.written + bridge.books.redelivered >= len(messages),
                bridged,
                timeout_s,
                "the bridge writing every message",
                session.stop,
            )
        finally:
            stop.set()
            hub.close()
            books = bridged.result()
            bridging.shutdown()
    forget_journal(session.deps, mqtt.client_id)  # a replay's client id is never used again
    if session.progress:
        session.progress("dropped captures", len(messages))
    transport = {"via": "mqtt", "published": len(messages)}
    return Played(len(messages), transport, BridgeRun(len(messages), books))


def forget_journal(deps: Deps, client_id: str) -> None:
    """Delete a bridge's journal (in the raw zone): for a client id that will not return."""
    bucket = deps.names.bucket(Zone.RAW)
    for info in deps.store.list(bucket, deps.names.journal_prefix(client_id)):
        deps.store.delete(bucket, info.key)


def play_http(session: Session, input_dir: Path) -> Played:
    """The captures posted to the local webhook server (started here, a token minted per
    source), one request per message as hubs post them, a few at a time; a request the
    server answers 5xx is posted again, as a hub retries."""
    from citypipe_local.serve import ServerOptions, WebhookServer

    deps = session.deps
    messages = _captured_messages(deps.city, input_dir)
    tokens = InMemoryWebhookTokens()
    minted = {source: tokens.mint(source) for source in deps.city.sources}
    keys = key_store_from(session.settings, deps)
    # many hubs post at once (each waits for its answer): as many writes at once as hubs
    # posting, the replay measures the stack, not the cap
    hubs = max(HTTP_HUBS, session.options.concurrency)
    writes = max(ServerOptions.max_writes, hubs)
    options = ServerOptions(port=0, trust_received_at=True, max_writes=writes, buffered=True)
    server = WebhookServer(deps, tokens, keys, options)
    server.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    statuses: Counter[int] = Counter()
    resent = 0

    def send(message: Captured) -> tuple[int, bool]:
        for attempt in range(10):
            if session.stop.is_set():
                raise Stopped("the replay was asked to stop")
            status, answer = post(host, port, message, minted[message.route.source])
            if status < 500:
                return status, bool(answer.get("resent"))
            time.sleep(min(5.0, 0.2 * 2**attempt))
        raise RuntimeError(f"the webhook answered {status} ten times")

    try:
        with ThreadPoolExecutor(hubs, thread_name_prefix="hub") as pool:
            for number, (status, again) in enumerate(pool.map(send, messages), start=1):
                statuses[status] += 1
                resent += again
                if session.progress and number % PROGRESS_EVERY == 0:
                    session.progress("dropped captures", number)
    finally:
        server.shutdown()
        server.server_close()
    transport = {
        "via": "http",
        "requests": len(messages),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "resent": resent,
        "webhook_cpu_s": round(server.cpu_s, 3),  # the requests through the edge
        # its SendMessageBatch calls: requests served at once hand over together here,
        # where a function invoked per request sends a message each (bench/run.py's price)
        "webhook_sends": server.sends.calls,
    }
    return Played(len(messages), transport, resent=resent)


class Stopped(Exception):
    """A player asked to stop (Ctrl-C, SIGTERM) before it sent everything."""


def wait_for(
    check: Callable[[], T | None],
    worker: Future[Any],
    timeout_s: float,
    what: str,
    stop: threading.Event | None = None,
) -> T:
    """``check()``'s first true value, polled; fails when ``worker`` ended first, or
    ``stop`` was set."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise Stopped(f"{what}: the replay was asked to stop")
        value = check()
        if value:
            return value
        if worker.done():
            worker.result()  # its exception, if any
            raise RuntimeError(f"{what}: the bridge stopped")
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
