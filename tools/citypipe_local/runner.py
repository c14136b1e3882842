"""The local runner: Lambda's SQS event source mapping, played on a laptop.

Polls each function's queue, invokes that function's real Lambda handler with genuine SQS
event records, deletes what succeeded and leaves ``batchItemFailures`` to reappear after
the visibility timeout; the backend's redrive policy moves a message received more than
``maxReceiveCount`` times to the DLQ. Runs until the queues drain.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import multiprocessing
import os
import pickle
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

from citypipe.adapters.http import UrllibHttp
from citypipe.adapters.scratch import TempScratch
from citypipe.bootstrap import aggregate as bootstrap_aggregate
from citypipe.bootstrap import anonymize as bootstrap_anonymize
from citypipe.bootstrap import deps_from
from citypipe.bootstrap import export as bootstrap_export
from citypipe.bootstrap import ingest as bootstrap_ingest
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.errors import BackendRefusedError, TransientError
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.drain import DRAIN_BYTES, DRAIN_MESSAGES, sqs_event
from citypipe.entrypoints.events import DRAIN_CRON_BODY
from citypipe.ports import ApiKeys, Clock, KeyStore, Queue, ReceivedMessage, WebhookTokens
from citypipe.service.export import ExportPorts
from citypipe.service.kernel import Deps, log
from citypipe.service.poll import Poller
from citypipe.settings import Settings
from citypipe_local.backends import die_with_parent
from citypipe_local.clock import SimulatedClock
from citypipe_local.fakes import InMemoryApiKeys, InMemoryWebhookTokens
from citypipe_local.faults import FaultInjector, Faults
from citypipe_local.scaleway_model import TRIGGER_RETRIES
from citypipe_local.usage import Meter, Usage, peak_rss_mb

Handler = Callable[..., dict[str, Any]]
T = TypeVar("T")


def functions_dir() -> Path:
    """The repository's ``functions/``: beside ``tools/`` (the dev install is editable), or
    where ``CITYPIPE_FUNCTIONS_DIR`` says."""
    configured = os.environ.get("CITYPIPE_FUNCTIONS_DIR")
    directory = (
        Path(configured) if configured else Path(__file__).resolve().parents[2] / "functions"
    )
    if not (directory / "ingest" / "handler.py").is_file():
        raise FileNotFoundError(
            f"no functions/ at {directory}: run from a clone, or set CITYPIPE_FUNCTIONS_DIR"
        )
    return directory


Platform = Literal["aws", "scaleway"]
# Each platform's entry point of a function: (file in functions/<name>/, callable in it)
ENTRY_POINTS: dict[Platform, tuple[str, str]] = {
    "aws": ("handler.py", "handler"),
    "scaleway": ("scaleway.py", "handle"),
}


# The public entry points, which no queue or schedule drives: the hubs' webhook and the
# open-data API (``functions/api``). Each: its folder in ``functions/``, and the callable
# of its platform's file where it is not the folder's own (Scaleway's ``ingest-webhook``).
PUBLIC: dict[str, tuple[str, dict[Platform, str]]] = {
    "webhook": ("ingest", {"scaleway": "webhook"}),
    "api": ("api", {}),
}


def load_handler(
    function: Function | str,
    directory: Path | None = None,
    platform: Platform = "aws",
    entry: str | None = None,
) -> Handler:
    """Import a function's entry point the way the platform does: by file, not package.
    ``function``: a function, or a folder of ``functions/`` (``api``); ``entry``: another
    callable of that file (Scaleway's ingest ``webhook``)."""
    folder = function.value if isinstance(function, Function) else function
    filename, name = ENTRY_POINTS[platform]
    name = entry or name
    path = (directory or functions_dir()) / folder / filename
    spec = importlib.util.spec_from_file_location(f"citypipe_function_{folder}_{platform}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = getattr(module, name)
    return handler


@dataclass
class LambdaContext:
    """What Lambda passes as ``context``; the library's logs read these attributes."""

    function_name: str
    invoked_function_arn: str
    timeout_s: float = 900
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_s - (time.monotonic() - self.started)) * 1000)


def app_for(
    function: Function,
    deps: Deps,
    keys: KeyStore,
    tokens: WebhookTokens | None = None,
    api_keys: ApiKeys | None = None,
) -> FunctionApp:
    """A function's app from its own composition root, on the given ports. Without
    ``tokens`` no source has a webhook token: ingest refuses every webhook request; without
    ``api_keys`` no polled API has its key: the poller's tick asks none of them."""
    if function is Function.INGEST:
        poller = local_poller(deps, keys, api_keys or InMemoryApiKeys())
        return bootstrap_ingest.build(deps, keys, tokens or InMemoryWebhookTokens(), poller)
    if function is Function.ANONYMIZE:
        return bootstrap_anonymize.build(deps)
    if function is Function.AGGREGATE:
        return bootstrap_aggregate.build(deps)
    return bootstrap_export.build(deps, ExportPorts(keys, TempScratch()))


def local_poller(deps: Deps, keys: KeyStore, api_keys: ApiKeys) -> Poller | None:
    """The poller of the hub APIs the city polls, on this machine's network (None: it polls
    none)."""
    if not any(source.poll for source in deps.city.sources.values()):
        return None
    return Poller(deps, keys, UrllibHttp(), api_keys, time.sleep)


def in_process_handlers(
    deps: Deps, keys: KeyStore, platform: Platform = "aws"
) -> dict[Function, Handler]:
    """The real handlers, each given its app built on these ports (the handlers' test seam):
    for tests that run the functions in this process on fakes or flaky adapters."""
    return {
        f: functools.partial(load_handler(f, platform=platform), app=app_for(f, deps, keys))
        for f in Function
    }


def scaleway_event(body: str, request_id: str = "") -> dict[str, Any]:
    """What a Scaleway queue trigger POSTs to a function: one message's body."""
    return scaleway_http_event("POST", "/", body, {"Content-Type": "application/json"}, request_id)


def scaleway_http_event(
    method: str,
    path: str,
    body: str = "",
    headers: dict[str, str] | None = None,
    request_id: str = "",
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP request as Scaleway hands it to a function (API Gateway's 1.0 shape, no path
    parameters; Envoy's ``X-Request-Id``, which the local runs also put in
    ``requestContext``)."""
    return {
        "path": path,
        "httpMethod": method,
        "headers": {**(headers or {}), "X-Request-Id": request_id},
        "multiValueHeaders": None,
        "queryStringParameters": query or {},
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariable": {},
        "requestContext": {"httpMethod": method, "requestId": request_id},
        "body": body,
    }


_worker_handlers: dict[tuple[Function | str, Platform], Handler] = {}


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``CITYPIPE_<SECTION>`` variables a Lambda function is deployed
    with (a section as JSON, which ``citypipe.settings`` reads)."""
    env = {}
    for section, value in settings.model_dump(
        mode="json", exclude={"localstack_endpoint", "platform_region"}
    ).items():
        env[f"CITYPIPE_{section.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


_meter = Meter()  # this worker process's round trips and bytes
_faults: FaultInjector | None = None  # this worker process's faults, when asked for
_clock: Clock | None = None  # the run's simulated clock, when it has one
_composition: tuple[Deps, KeyStore] | None = None


def _worker_init(
    environment: dict[str, str], log_path: str | None, faults: Faults, clock: str | None
) -> None:
    """In each worker process, as in a Lambda container: settings in the environment (the
    handlers' composition roots read them at cold start), logs to the run's file, and the
    meter (and the faults asked for) on the process's botocore session before any client
    exists."""
    global _faults, _clock  # noqa: PLW0603  (one per worker process)
    from citypipe_local.logs import send_to

    os.environ.update(environment)
    _meter.install()
    if faults.any:
        _faults = FaultInjector(faults)
        _faults.install()
    if clock is not None:
        _clock = SimulatedClock(Path(clock))
    if log_path:
        send_to(Path(log_path))


def worker_composition() -> tuple[Deps, KeyStore]:
    """This worker's stack and key store, built once from the environment as a container
    (or a bridge) builds them, on the run's simulated clock when it has one."""
    global _composition  # noqa: PLW0603  (one per worker process)
    if _composition is None:
        settings = Settings()
        deps = deps_from(settings)
        if _clock is not None:
            deps = replace(deps, clock=_clock)
        _composition = (deps, key_store_from(settings, deps))
    return _composition


@dataclass(frozen=True)
class Measured(Generic[T]):
    """A worker's result, with what producing it cost there."""

    value: T
    usage: Usage
    peak_rss_mb: float  # the worker's peak resident memory so far
    injected: Counter[str]  # faults injected in the worker while it ran


def _measured(fn: Callable[..., T], *args: Any) -> Measured[T]:
    before = _meter.snapshot()
    if _faults is None:
        return Measured(fn(*args), _meter.since(before), peak_rss_mb(), Counter())
    injected = _faults.injected.copy()
    _faults.begin()
    value = fn(*args)
    _faults.end()
    return Measured(value, _meter.since(before), peak_rss_mb(), _faults.injected - injected)


def _worker_invoke(
    function: Function, platform: Platform, event: dict[str, Any], context: Any
) -> dict[str, Any]:
    if (function, platform) not in _worker_handlers:
        handler = load_handler(function, platform=platform)  # it cold-starts as on Lambda
        if _clock is not None:  # but on the run's clock: its app, through its test seam
            handler = functools.partial(handler, app=app_for(function, *worker_composition()))
        _worker_handlers[function, platform] = handler
    return _worker_handlers[function, platform](event, context)


def _worker_public(
    name: str, platform: Platform, event: dict[str, Any], context: Any
) -> dict[str, Any]:
    """A public entry point (``PUBLIC``) of the source tree, cold-started as a platform
    starts it (on the real clock: no replay on a simulated one calls it)."""
    if (name, platform) not in _worker_handlers:
        folder, entries = PUBLIC[name]
        _worker_handlers[name, platform] = load_handler(
            folder, platform=platform, entry=entries.get(platform)
        )
    return _worker_handlers[name, platform](event, context)


# What every worker imports: done once, in the fork server, instead of once per worker
PRELOAD = [
    "citypipe_local.runner",
    "citypipe_local.replay",
    "citypipe.bootstrap.ingest",
    "citypipe.bootstrap.anonymize",
    "citypipe.bootstrap.aggregate",
    "citypipe.bootstrap.export",
    # what the composition roots load when they build a stage (pyarrow: not at import)
    "citypipe.service.anonymize",
    "citypipe.service.aggregate",
    "citypipe.service.export",
    "citypipe.entrypoints.schedule",
    "citypipe_local.preload",
]


def worker_context() -> multiprocessing.context.ForkServerContext:
    """Workers are forked from a fork server that imported the library once (a clean,
    single-threaded process: no lock or socket of this one is inherited); each still
    builds its composition root from the environment at its first invocation, as a Lambda
    container does. Spawning fresh interpreters re-imported everything in every worker:
    ~1.5 CPU-seconds each."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class InvocationCrashedError(RuntimeError):
    """The worker running an invocation died (killed, out of memory): its work is lost
    mid-way, as when a Lambda container dies. A fresh worker takes its place."""


def _serve(conn: Connection, init: tuple[Any, ...]) -> None:
    """A worker process: set up as a container is, then run what it is sent, one at a time.
    It ends with the fork server it came from, which ends with the run (even killed)."""
    die_with_parent()
    _worker_init(*init)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        fn, args = task
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:  # the caller's to handle, as a Lambda error is
            answer = (False, exc)
        # the call's arguments let go before its answer is sent and the next call is read:
        # a worker never holds one call's inputs (a bridge's batch) beside the next one's
        task = fn = args = None
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception not picklable
            conn.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection


class Workers:
    """Up to ``size`` worker processes, started on demand, each running one call at a time.
    A worker that dies fails only the call it was running (``InvocationCrashedError``);
    the next call gets a fresh worker — unlike ``ProcessPoolExecutor``, where one death
    breaks the whole pool."""

    def __init__(self, size: int, init: tuple[Any, ...]) -> None:
        self.size, self.init = size, init
        self.started = self.crashes = 0
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._available = threading.Condition()

    def _take(self) -> _Worker:
        with self._available:
            while not self._idle and len(self._all) >= self.size:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            context = worker_context()
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, self.init), daemon=True)
            process.start()
            theirs.close()
            worker = _Worker(process, ours)
            self._all.append(worker)
            self.started += 1
            return worker

    def _give_back(self, worker: _Worker, alive: bool) -> None:
        with self._available:
            if alive:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
                self.crashes += 1
            self._available.notify()

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        worker = self._take()
        try:
            worker.conn.send((fn, args))
            ok, value = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            self._give_back(worker, alive=False)
            raise InvocationCrashedError(f"worker {worker.process.pid} died mid-call") from None
        self._give_back(worker, alive=True)
        if not ok:
            raise value
        return cast(T, value)

    def close(self) -> None:
        with self._available:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()


class Invoker:
    """Runs handlers in worker processes, as Lambda runs them in containers: workers per
    function (and for the replay's bridges, ``edge``), each with its own cold start,
    logger state, GIL and memory — so a worker's peak memory is one function's,
    what its Lambda memory size must hold. Counts what the work cost by name, each name's
    peak resident memory, and the workers that died."""

    def __init__(
        self,
        settings: Settings,
        workers: int,
        log_path: Path | None = None,
        faults: Faults | None = None,
        clock: Path | None = None,
    ) -> None:
        """``clock``: the offset file of the run's simulated clock (None: the real one)."""
        self.workers = workers
        log = str(log_path) if log_path else None
        self._init = (
            settings_environment(settings),
            log,
            faults or Faults(),
            str(clock) if clock is not None else None,
        )
        self.pools: dict[str, Workers] = {}
        self.usage: dict[str, Usage] = {}
        self.peak_rss_mb: dict[str, float] = {}  # name -> its workers' highest peak
        self.injected: Counter[str] = Counter()  # faults injected in the workers, by kind
        self._lock = threading.Lock()
        self._calls = ThreadPoolExecutor(workers, thread_name_prefix="invoker")

    @property
    def crashes(self) -> dict[str, int]:
        return {name: pool.crashes for name, pool in self.pools.items() if pool.crashes}

    def _pool(self, name: str) -> Workers:
        with self._lock:
            if name not in self.pools:
                self.pools[name] = Workers(self.workers, self._init)
            return self.pools[name]

    def run(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker of ``name`` (a function, or ``edge``), counted there."""
        measured: Measured[T] = self._pool(name).run(_measured, fn, *args)
        with self._lock:
            self.usage.setdefault(name, Usage()).add(measured.usage)
            self.peak_rss_mb[name] = max(measured.peak_rss_mb, self.peak_rss_mb.get(name, 0.0))
            self.injected.update(measured.injected)
        return measured.value

    def invoke(
        self, function: Function, platform: Platform, event: dict[str, Any], context: Any
    ) -> dict[str, Any]:
        return self.run(function.value, _worker_invoke, function, platform, event, context)

    def invoke_public(
        self, name: str, platform: Platform, event: dict[str, Any], context: Any
    ) -> dict[str, Any]:
        """One request to a public entry point (``PUBLIC``: the webhook, the API)."""
        return self.run(name, _worker_public, name, platform, event, context)

    def submit(self, name: str, fn: Callable[..., T], *args: Any) -> Future[T]:
        """``run`` without waiting (the replay's bridges)."""
        return self._calls.submit(self.run, name, fn, *args)

    def close(self) -> None:
        self._calls.shutdown(wait=True, cancel_futures=True)
        for pool in self.pools.values():
            pool.close()


# An empty queue is polled again after 0.1 s, then 0.2, 0.4 ... at most 1 s (or as soon
# as an invocation finishes: its outputs may be the next stage's messages)
POLL_MIN_S, POLL_MAX_S = 0.1, 1.0
GATHER_WINDOW_S = 5.0  # a gathering function's batching window (Lambda's, 10 s: serverless.yml)
GATHER_POLL_S = 0.1  # while a batch is gathered, its queue is asked again after this
NEXT = {Function.INGEST: Function.ANONYMIZE, Function.ANONYMIZE: Function.AGGREGATE}
# Scaleway: ingest's queue has no trigger, a CRON drains it every minute (decision 90)
CRON_DRAINED = frozenset({Function.INGEST})


@dataclass
class FunctionStats:
    invocations: int = 0
    messages: int = 0
    failures: int = 0
    seconds: float = 0.0
    undeleted: int = 0  # batches whose messages outlived their visibility: delivered again


@dataclass
class Gathering:
    """A gathering function's batch while its window is open: its messages by id (one
    received again, its visibility out, is kept once, with its newest receipt)."""

    until: float  # time.monotonic() at which the window ends
    messages: dict[str, ReceivedMessage] = field(default_factory=dict)
    size: int = 0

    def full(self, limit: int) -> bool:
        return len(self.messages) >= limit or self.size >= DRAIN_BYTES

    def add(self, received: Iterable[ReceivedMessage]) -> None:
        for message in received:
            if message.message_id not in self.messages:
                self.size += len(message.body)
            self.messages[message.message_id] = message


@dataclass
class LocalRunner:
    names: StackNames
    queue: Queue
    region: str = "eu-central-1"
    batch_size: int = 10
    # as Lambda's event source with a batch size above 10 gathers a batch from several
    # receives: ingest's, whose queue carries the webhook's buffered requests (serverless.yml)
    gathered: dict[Function, int] = field(default_factory=lambda: {Function.INGEST: DRAIN_MESSAGES})
    concurrency: int = 4
    duplicate: float = 0.0  # the share of messages delivered twice (1.0: every message)
    handlers: dict[Function, Handler] = field(default_factory=dict)
    stats: dict[Function, FunctionStats] = field(default_factory=dict)
    on_batch: Callable[[Function, int], None] | None = None
    seed: int = 0
    _duplicated: set[str] = field(default_factory=set)
    _rng: random.Random = field(init=False)
    _woken: set[Function] = field(default_factory=set)  # queues sent to from outside
    _wakeup: threading.Event = field(default_factory=threading.Event)
    _waking: threading.Lock = field(default_factory=threading.Lock)
    # a gathering function's batching window: keep it well inside the queue's visibility
    # timeout (AWS: at least six function timeouts plus the window), or what it gathered
    # first comes back before it is delivered
    window_s: float = GATHER_WINDOW_S
    _gathering: dict[Function, Gathering] = field(default_factory=dict)
    _waiting: dict[Function, float] = field(default_factory=dict)  # a CRON-drained queue's
    # messages seen waiting since (time.monotonic())

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    invoker: Invoker | None = None  # None: call the handlers in this process's threads
    # aws: Lambda's SQS event source (batches, partial failures); scaleway: a queue trigger
    # (one message per POST, a status >= 300 retried three times, then left to the queue),
    # but ingest's CRON, which drains its queue itself (``CRON_DRAINED``)
    platform: Platform = "aws"

    def handler(self, function: Function) -> Handler:
        if function not in self.handlers:
            self.handlers[function] = load_handler(function, platform=self.platform)
        return self.handlers[function]

    def _run(self, function: Function, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self.invoker is not None:
            return self.invoker.invoke(function, self.platform, event, context)
        return self.handler(function)(event, context)

    def _call(self, function: Function, messages: list[ReceivedMessage]) -> set[str]:
        """One delivery of these messages; returns the ids of those that failed."""
        if self.platform == "scaleway":
            return {m.message_id for m in messages if not self._post(function, m)}
        queue = self.names.queue(function)
        event = sqs_event(messages, self.queue.arn(queue), self.region)
        arn = f"arn:aws:lambda:{self.region}:000000000000:function:{queue}"
        try:
            response = self._run(function, event, LambdaContext(queue, arn))
            return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:  # a crashed invocation fails its whole batch, as on Lambda
            log.error(
                "invocation crashed",
                extra={
                    "function": function.value,
                    "error": type(exc).__name__,
                    "detail": str(exc)[:200],
                    "message_ids": [m.message_id for m in messages],
                },
            )
            return {m.message_id for m in messages}

    def _post(self, function: Function, message: ReceivedMessage) -> bool:
        """A Scaleway queue trigger's delivery of one message: whether it was acknowledged."""
        context = {"memoryLimitInMb": 1024, "functionName": self.names.queue(function)}
        for _ in range(1 + TRIGGER_RETRIES):  # Scaleway's documented retry policy
            try:
                response = self._run(function, scaleway_event(message.body), context)
            except Exception:  # a crashed function answers 500 on Scaleway
                log.error("invocation crashed", extra={"function": function.value})
                continue
            if int(response.get("statusCode", 500)) < 300:
                return True
        return False

    def _invoke(self, function: Function, messages: list[ReceivedMessage]) -> None:
        queue = self.names.queue(function)
        stats = self.stats.setdefault(function, FunctionStats())
        started = time.perf_counter()
        failed = self._call(function, messages)
        if self.duplicate:
            self._redeliver(function, messages, failed)
        stats.seconds += time.perf_counter() - started
        stats.invocations += 1
        stats.messages += len(messages)
        stats.failures += len(failed)
        done = [m.receipt_handle for m in messages if m.message_id not in failed]
        if done:
            try:
                self.queue.delete(queue, done)
            except TransientError:
                # an invocation slower than the visibility timeout: its messages are
                # visible again and their receipts stale, so SQS refuses the delete. As
                # Lambda's event source mapping, carry on: they are delivered again and
                # the stage's exactly-once effects make that a duplicate.
                stats.undeleted += 1
                log.warning("messages not deleted", extra={"function": function.value})
        if self.on_batch:
            self.on_batch(function, len(messages))

    def _cron_drained(self, function: Function) -> bool:
        return self.platform == "scaleway" and function in CRON_DRAINED

    def _cron_due(self, function: Function, coming: Callable[[], bool]) -> bool:
        """Whether a CRON-drained queue's CRON fires now: once messages wait, at the end of
        the window after they were first seen waiting (the deployed CRON fires every
        minute), or at once when nothing more is ``coming()``."""
        if not self.queue.depth(self.names.queue(function))[0]:
            self._waiting.pop(function, None)
            return False
        since = self._waiting.setdefault(function, time.monotonic())
        if time.monotonic() - since < self.window_s and coming():
            return False
        del self._waiting[function]
        return True

    def _fire_cron(self, function: Function) -> bool:
        """One firing of a function's drain CRON: it takes its queue's messages itself, in
        batches, and deletes what it did (``entrypoints.drain``). Returns whether it took
        any: a drain that crashed or found nothing is not fired again at once."""
        stats = self.stats.setdefault(function, FunctionStats())
        started = time.perf_counter()
        context = {"memoryLimitInMb": 1024, "functionName": self.names.queue(function)}
        drained: Any = {}
        try:
            answer = self._run(function, scaleway_event(json.dumps(DRAIN_CRON_BODY)), context)
            drained = json.loads(answer.get("body") or "{}")
        except BackendRefusedError:
            raise  # a deployment problem: the run fails loudly, as a refused receive does
        except Exception as exc:  # a crashed function answers 500; what it took comes back
            failure = {"function": function.value, "error": type(exc).__name__}
            log.error("invocation crashed", extra={**failure, "detail": str(exc)[:200]})
        if not isinstance(drained, dict):
            drained = {}
        done, failed = int(drained.get("done", 0)), int(drained.get("failed", 0))
        stats.seconds += time.perf_counter() - started
        stats.invocations += 1
        stats.messages += done + failed
        stats.failures += failed
        if self.on_batch:
            self.on_batch(function, done + failed)
        return done + failed > 0

    def _job(
        self, function: Function, coming: Callable[[], bool], busy: Iterable[Function]
    ) -> Callable[[], bool | None] | None:
        """What to run for ``function`` now: an invocation with a batch of its messages, a
        firing of its drain CRON (Scaleway's ingest, one at a time), or nothing yet."""
        if self._cron_drained(function):
            if function in busy or not self._cron_due(function, coming):
                return None
            return functools.partial(self._fire_cron, function)
        messages = self._receive(function, coming)
        return functools.partial(self._invoke, function, messages) if messages else None

    def _redeliver(
        self, function: Function, messages: list[ReceivedMessage], failed: set[str]
    ) -> None:
        """At-least-once, played hard: a share of the batch delivered again at once, and
        sent again to arrive later (after its input may have been consumed)."""
        twice = [m for m in messages if self._rng.random() < self.duplicate]
        if not twice:
            return
        self._call(function, twice)
        fresh = [
            m.body for m in twice if m.message_id not in failed and m.body not in self._duplicated
        ]
        self._duplicated.update(fresh)
        self.queue.send(self.names.queue(function), fresh)

    def wake(self, *functions: Function) -> None:
        """Messages were sent to these functions' queues from outside the runner (the hubs'
        edge, a drop), or (none named) what ``drain`` waits ``until`` may have changed: ask
        now, not after the back-off. Without it each edge batch's messages waited up to
        ``POLL_MAX_S`` for anonymize, and the end of the hubs' play as long again."""
        with self._waking:
            self._woken.update(functions)
        self._wakeup.set()

    def _woken_now(self) -> set[Function]:
        self._wakeup.clear()
        with self._waking:
            woken, self._woken = self._woken, set()
        return woken

    def _receive(
        self, function: Function, coming: Callable[[], bool] = lambda: False
    ) -> list[ReceivedMessage]:
        """A batch of a function's messages to invoke it with now, or none yet. One receive
        is a batch, but a gathering function's (ingest's on AWS, whose queue carries the
        webhook's buffered requests) are gathered, what waits taken at each of ``drain``'s
        passes, as Lambda's event source gathers them: until its batch size, Lambda's 6 MB of event
        or the end of its batching window; and before the window ends, once a receive finds
        nothing while nothing more is ``coming()`` (the replay's hubs are done). Without
        the window a batcher that caught up with the hubs wrote a batch each time, a raw
        object per source for a few requests. ``drain`` goes on polling the other queues
        meanwhile."""
        queue = self.names.queue(function)
        received = self.queue.receive(queue, self.batch_size)
        limit = self.gathered.get(function, 0) if self.platform == "aws" else 0
        pending = self._gathering.get(function)
        if not limit or (pending is None and not received):
            return received
        if pending is None:
            pending = self._gathering[function] = Gathering(time.monotonic() + self.window_s)
        pending.add(received)
        while len(received) == self.batch_size and not pending.full(limit):
            received = self.queue.receive(queue, self.batch_size)  # what waits, taken now
            pending.add(received)
        if not pending.full(limit) and time.monotonic() < pending.until and (received or coming()):
            return []
        del self._gathering[function]
        return list(pending.messages.values())

    def _idle(self, functions: Sequence[Function]) -> bool:
        return all(sum(self.queue.depth(self.names.queue(f))) == 0 for f in functions)

    def drain(
        self,
        functions: Sequence[Function],
        timeout_s: float = 3600,
        until: Callable[[], bool] = lambda: True,
    ) -> None:
        """Deliver messages until every named queue is empty, nothing is in flight and
        ``until()`` says no more messages are coming (the replay's hubs are done).

        A queue found empty is asked again after a wait that doubles while it stays empty
        (``POLL_MIN_S`` to ``POLL_MAX_S``), or as soon as an invocation finished (its
        outputs may be the next stage's messages): on a local backend every poll costs the
        emulator a scan of the queue. ``wake`` ends a wait at once."""
        deadline = time.monotonic() + timeout_s
        self._gathering.clear()  # a drain that failed left its batch in flight: it comes back
        self._waiting.clear()
        quiet_until = dict.fromkeys(functions, 0.0)
        backoff = dict.fromkeys(functions, 0.0)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lambda") as pool:
            running: dict[Future[bool | None], Function] = {}
            while time.monotonic() < deadline:
                _ask_now(self._woken_now(), quiet_until, backoff)
                now = time.monotonic()
                for function in functions:
                    if len(running) >= self.concurrency or now < quiet_until[function]:
                        continue
                    job = self._job(function, lambda: not until(), running.values())
                    if job is not None:
                        running[pool.submit(job)] = function
                    elif function in self._gathering or function in self._waiting:
                        quiet_until[function] = now + GATHER_POLL_S
                    else:
                        backoff[function] = min(POLL_MAX_S, max(POLL_MIN_S, 2 * backoff[function]))
                        quiet_until[function] = now + backoff[function]
                if running:
                    finished = wait(running, timeout=0.05, return_when=FIRST_COMPLETED).done
                    for future in finished:
                        done = running.pop(future)
                        if future.result() is False:  # a drain that took nothing: back off
                            backoff[done] = min(POLL_MAX_S, max(POLL_MIN_S, 2 * backoff[done]))
                            quiet_until[done] = time.monotonic() + backoff[done]
                            continue
                        # what it wrote is the next stage's to take: ask both queues now
                        _ask_now((done, NEXT.get(done)), quiet_until, backoff)
                    continue
                if all(now < quiet for quiet in quiet_until.values()):
                    if until() and self._idle(functions):
                        return
                    # failed messages wait out their visibility timeout
                    self._wakeup.wait(max(0.0, min(quiet_until.values()) - time.monotonic()))
        raise TimeoutError(f"queues {list(functions)} did not drain within {timeout_s:.0f} s")


def _ask_now(
    functions: Iterable[Function | None],
    quiet_until: dict[Function, float],
    backoff: dict[Function, float],
) -> None:
    """Poll these functions' queues at once, their back-off reset (those ``drain`` polls)."""
    for function in functions:
        if function in quiet_until:
            quiet_until[function] = backoff[function] = 0.0
