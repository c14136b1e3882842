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
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.domain.city import City
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import aggregates_prefix, journal_prefix
from citypipe.ports import KeyStore
from citypipe.service.edge import receive
from citypipe.service.export import days_with_partials
from citypipe.service.housekeeping import retire_keys
from citypipe.service.stage import Deps
from citypipe.settings import KeySettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint, backend
from citypipe_local.drops import announce, drop
from citypipe_local.fakes import InMemoryWebhookTokens
from citypipe_local.hubs import Captured, MqttHub, post, routed
from citypipe_local.logs import written_to
from citypipe_local.report import BridgeRun, build_report
from citypipe_local.runner import Invoker, LocalRunner, Platform

PIPELINE = (Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE)
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
    duplicate_deliveries: bool = False
    # None: the secrets live in the stack's keys bucket, as in a cloud. A directory: a file
    # key store there, whose release secret (the noise of people counts) outlives the run,
    # e.g. for tests comparing two runs' open data byte for byte. Either way every daily
    # secret is destroyed at the end of the run.
    keys_dir: Path | None = None
    visibility_timeout_s: int = 30
    localstack_endpoint: str | None = None
    name_prefix: str = ""  # a stack of its own on a shared backend (tests, two clones)
    platform: Platform = "aws"  # whose entry points the functions run through


def _at(line: bytes) -> float:
    """The arrival time of a captured message (``{"at":<n>,...``: read without parsing it)."""
    return float(line[6 : line.find(b",")])


def _captured(path: Path) -> Iterator[tuple[float, str, bytes]]:
    fmt = path.stem
    if fmt not in FORMATS:
        raise ValueError(f"{path.name}: no format {fmt!r}; formats: {sorted(FORMATS)}")
    with path.open("rb") as source:
        for raw in source:
            line = raw.rstrip(b"\n")
            if line.strip():
                yield _at(line), fmt, line


def edge_batches(input_dir: Path, batch: int) -> Iterator[list[tuple[str, bytes]]]:
    """Every capture in ``input_dir``, merged in arrival order, in batches of about
    ``batch`` messages — as one bridge receives several hubs and batches by count and time.
    A batch never splits messages that arrived in the same instant (a hub's resend stays
    with what it resends)."""
    streams = [_captured(p) for p in sorted(input_dir.glob("*.jsonl"))]
    lines: list[tuple[str, bytes]] = []
    last = None
    for at, fmt, line in heapq.merge(*streams, key=lambda item: item[0]):
        if len(lines) >= batch and at != last:
            yield lines
            lines = []
        lines.append((fmt, line))
        last = at
    if lines:
        yield lines


def payloads_of(lines: Iterable[bytes | tuple[str, bytes]]) -> list[Payload]:
    """Captured messages as the edge receives them: format (where given), body, arrival,
    topic, headers."""
    payloads = []
    for number, item in enumerate(lines, start=1):
        fmt, line = item if isinstance(item, tuple) else (None, item)
        envelope = orjson.loads(line)
        body = envelope.get("body")
        data = base64.b64decode(envelope["body_base64"]) if body is None else body.encode()
        headers = {k.lower(): v for k, v in (envelope.get("headers") or {}).items()}
        ctx = Context(float(envelope["at"]), envelope.get("topic"), headers)
        payloads.append(Payload(data, ctx, number, fmt=FORMATS[fmt] if fmt else None))
    return payloads


def play_batch(deps: Deps, keys: KeyStore, lines: list[tuple[str, bytes]]) -> int:
    """One batch of captured messages (of any hub formats) through the edge, as a bridge
    sends it. Returns the payloads it held. A bridge retries a batch that failed: the edge
    writes it once."""
    payloads = payloads_of(lines)
    receive(deps, keys, None, payloads)
    return len(payloads)


def push(deps: Deps, keys: KeyStore, input_dir: Path, batch: int) -> int:
    """Every capture through the edge in this process, as one bridge in front of a deployed
    stack, then the CSV drops into its inbox. Returns the payloads and rows sent."""
    sent = sum(play_batch(deps, keys, lines) for lines in edge_batches(input_dir, batch))
    return sent + drop_csv(deps, input_dir)


_edge: tuple[Deps, KeyStore] | None = None


def edge_worker(lines: list[tuple[str, bytes]]) -> int:
    """``play_batch`` in a worker process, on its own composition (as a bridge has)."""
    global _edge  # noqa: PLW0603  (one composition per worker process)
    if _edge is None:
        settings = Settings()
        deps = deps_from(settings)
        _edge = (deps, key_store_from(settings, deps))
    return play_batch(*_edge, lines)


def drop_csv(deps: Deps, input_dir: Path) -> int:
    """Every CSV file under ``drops/csv/<mapping>/``: into the inbox, then a claim check to
    ingest, as a city's own system drops it. Returns the rows dropped."""
    rows = 0
    for path in sorted((input_dir / "drops" / "csv").glob("*/*.csv")):
        body = path.read_bytes()
        count = max(0, len(body.decode("utf-8", errors="replace").splitlines()) - 1)
        announce(deps, drop(deps, "csv", f"{path.parent.name}/{path.name}", body, count))
        rows += count
    return rows


def play_hubs(
    invoker: Invoker, input_dir: Path, batch: int, workers: int, progress: Progress | None
) -> int:
    """Every capture through the edge, batches in the worker processes, a few at a time."""
    sent = 0
    running: set[Future[int]] = set()
    for lines in edge_batches(input_dir, batch):
        if len(running) >= 2 * workers:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            sent += sum(f.result() for f in done)
            if progress:
                progress("dropped captures", sent)
        running.add(invoker.submit(edge_worker, lines))
    sent += sum(f.result() for f in running)
    if progress:
        progress("dropped captures", sent)
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
        city=deps.city.city,
        stage="export",
        bucket=deps.names.bucket(Zone.AGGREGATES),
        key=aggregates_prefix(deps.city.city),
    )
    deps.queue.send_json(deps.names.queue(Function.EXPORT), [request.model_dump(exclude_none=True)])


@dataclass
class Session:
    """A fresh local stack the functions are draining, for a player to send hubs' messages
    into. ``stop`` is set when the run is asked to end (Ctrl-C): a player that serves until
    then returns."""

    settings: Settings
    deps: Deps
    invoker: Invoker
    options: ReplayOptions
    progress: Progress | None
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Played:
    sent: int | None  # payloads the hubs sent; None: not known (a server that took what came)
    transport: dict[str, Any] | None = None  # how they travelled (``report["transport"]``)
    bridge: BridgeRun | None = None  # the MQTT bridge's books, checked by the report
    resent: int = 0  # payloads the webhook recognized as received before: nothing written


Player = Callable[[Session], Played]


def local_settings(endpoint: Endpoint, city_file: Path, options: ReplayOptions) -> Settings:
    """A laptop's settings for a stack on ``endpoint``."""
    return Settings(
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


def run_local(
    city_file: Path,
    out: Path,
    options: ReplayOptions,
    player: Player,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A fresh stack on the options' backend, the functions running in the local runner
    while ``player`` sends the hubs' messages; then every day exported, the zones copied
    to ``out``, the run report written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs.jsonl").unlink(missing_ok=True)  # this run's logs only
    with backend(options.backend, options.localstack_endpoint) as endpoint:
        settings = local_settings(endpoint, city_file, options)
        deps = deps_from(settings)
        clients = stack.make_clients(settings.backend)
        stack.down(deps.names, clients)  # a replay starts from an empty stack
        if options.keys_dir is not None:  # ... and a key store of its own: no secret, no horizon
            stack.reset_file_keys(options.keys_dir / deps.city.city)
        stack.up(deps.city, deps.names, clients, settings.stack)
        started = time.perf_counter()
        with written_to(out / "logs.jsonl"):
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
            session = Session(settings, deps, invoker, options, progress)
            try:
                # the hubs play while the functions run, as they would
                with (
                    ThreadPoolExecutor(1, thread_name_prefix="hubs") as hubs,
                    stopped_by_sigterm(session.stop),
                ):
                    playing = hubs.submit(player, session)
                    while not playing.done():
                        try:
                            runner.drain(PIPELINE)
                            time.sleep(0.2)
                        except KeyboardInterrupt:  # the player stops; the run finishes
                            session.stop.set()
                    played = playing.result()
                edge_seconds = time.perf_counter() - started
                runner.drain(PIPELINE)
                request_export(deps)
                runner.drain([Function.EXPORT])
            finally:
                invoker.close()
            seconds = {f: s.seconds for f, s in runner.stats.items()}
            report = build_report(deps, played.sent, seconds, played.bridge, played.resent)
            report["end_of_run"] = end_of_run(deps, key_store_from(settings, deps))
        if played.transport is not None:
            report["transport"] = played.transport
        report["seconds"] = {
            "edge": round(edge_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        }
        report["backend"] = endpoint.name
        copy_zones(deps, out)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


@contextlib.contextmanager
def stopped_by_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (a container stopping, ``kill``) ends the play as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def replay(
    city_file: Path,
    input_dir: Path,
    out: Path,
    options: ReplayOptions = ReplayOptions(),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every capture of ``input_dir`` through a fresh stack, the way ``options.via`` says,
    then the CSV drops through the inbox."""
    players: dict[Via, Player] = {
        "direct": lambda s: Played(
            play_hubs(s.invoker, input_dir, options.batch_payloads, options.concurrency, progress)
        ),
        "mqtt": lambda s: play_mqtt(s, input_dir),
        "http": lambda s: play_http(s, input_dir),
    }
    play = players[options.via]

    def captures_then_drops(session: Session) -> Played:
        played = play(session)
        sent = (played.sent or 0) + drop_csv(session.deps, input_dir)
        return Played(sent, played.transport, played.bridge, played.resent)

    return run_local(city_file, out, options, captures_then_drops, progress)


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
                hub.publish(message)
                if session.progress and number % 1000 == 0:
                    session.progress("dropped captures", number)
            bridge = running.bridge
            assert bridge is not None
            wait_for(
                lambda: bridge.books.written + bridge.books.redelivered >= len(messages),
                bridged,
                timeout_s,
                "the bridge writing every message",
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
    for info in deps.store.list(bucket, journal_prefix(deps.city.city, client_id)):
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
    server = WebhookServer(deps, tokens, keys, ServerOptions(port=0, trust_received_at=True))
    server.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    statuses: Counter[int] = Counter()
    resent = 0

    def send(message: Captured) -> tuple[int, bool]:
        for attempt in range(10):
            status, answer = post(host, port, message, minted[message.route.source])
            if status < 500:
                return status, bool(answer.get("resent"))
            time.sleep(min(5.0, 0.2 * 2**attempt))
        raise RuntimeError(f"the webhook answered {status} ten times")

    try:
        with ThreadPoolExecutor(session.options.concurrency, thread_name_prefix="hub") as pool:
            for number, (status, again) in enumerate(pool.map(send, messages), start=1):
                statuses[status] += 1
                resent += again
                if session.progress and number % 1000 == 0:
                    session.progress("dropped captures", number)
    finally:
        server.shutdown()
        server.server_close()
    transport = {
        "via": "http",
        "requests": len(messages),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "resent": resent,
    }
    return Played(len(messages), transport, resent=resent)


def wait_for(check: Callable[[], T | None], worker: Future[Any], timeout_s: float, what: str) -> T:
    """``check()``'s first true value, polled; fails when ``worker`` ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if worker.done():
            worker.result()  # its exception, if any
            raise RuntimeError(f"{what}: the bridge stopped")
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
