"""The citypipe command line, its commands in the order of a first run: demo, simulate,
replay, quarantine, check-city, serve, api, bridge, stack, preflight, webhook-token, push,
request-export.

Every expected failure — a city file, residency, missing settings, an unknown choice, an
input that is not there — prints one line naming what is wrong and how to fix it, and
exits 2 (``main``); ``--debug`` shows the traceback instead. Every command that runs a
stack writes to ``--out`` (``out/<command>`` by default) and ends by saying where its
output is.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer._click import exceptions as click_exceptions  # typer's own click (0.29+)
from typer.core import TyperGroup

from citypipe.adapters.apikeys import FileApiKeys
from citypipe.bootstrap import city_from, deps_from
from citypipe.bootstrap.export import export_ports
from citypipe.bootstrap.ingest import api_keys_from, file_tokens, poller_from, tokens_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.core.api import ROOT
from citypipe.domain.city import ConfigError, load_city
from citypipe.domain.city_checks import check_city
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.entrypoints.polls import polled
from citypipe.service.api import OpenData
from citypipe.service.export.withdrawal import carry_out
from citypipe.service.partners import WithdrawalRefusedError, withdraw
from citypipe.settings import Settings
from citypipe_bridge.main import BridgeFailed
from citypipe_bridge.main import run as bridge_run
from citypipe_bridge.settings import BridgeSettings, MqttSettings
from citypipe_local import preflight
from citypipe_local import stack as stack_ops
from citypipe_local.api_server import ApiServer, OpenZoneDirectory
from citypipe_local.backends import backend as start_backend
from citypipe_local.cliout import (
    CliError,
    city_file,
    cloud_settings,
    counted,
    one_line,
    progress_bar,
    settings_for,
    summary,
    where,
)
from citypipe_local.faults import Faults
from citypipe_local.quarantine import NotARun, quarantine_report
from citypipe_local.replay import (
    Played,
    Player,
    ReplayOptions,
    Session,
    push,
    replay,
    request_export,
    run_local,
)
from citypipe_local.report import BridgeRun
from citypipe_local.serve import ServerOptions, WebhookServer
from citypipe_local.simulate import scaled_city, simulate

# The commands in the order of a first run (help lists them so).
FIRST_RUN = (
    "demo", "simulate", "replay", "quarantine", "check-city", "serve", "api", "bridge", "stack",
    "preflight", "webhook-token", "api-key", "push", "poll", "request-export", "partner",
)  # fmt: skip


class _FirstRunOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(self.commands, key=lambda n: FIRST_RUN.index(n) if n in FIRST_RUN else 99)


app = typer.Typer(
    cls=_FirstRunOrder,
    no_args_is_help=True,
    help="Anonymized, trustworthy open data from city sensors. Start with `citypipe demo`.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
stack_app = typer.Typer(no_args_is_help=True, help="Provision or remove a city stack.")
bridge_app = typer.Typer(no_args_is_help=True, help="Bridge a hub transport into a city stack.")
partner_app = typer.Typer(no_args_is_help=True, help="A partner's permission, withdrawn.")
# A line is a line: the terminal wraps it. Piped, a summary row is as wide as it needs.
console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


class Backend(StrEnum):
    EMBEDDED = "embedded"
    LOCALSTACK = "localstack"


class StackBackend(StrEnum):
    EMBEDDED = "embedded"
    LOCALSTACK = "localstack"
    ENV = "env"


class Cloud(StrEnum):
    AWS = "aws"
    SCALEWAY = "scaleway"


class Via(StrEnum):
    DIRECT = "direct"
    MQTT = "mqtt"
    HTTP = "http"


class TokenStore(StrEnum):
    OBJECT = "object"
    SECRETSMANAGER = "secretsmanager"
    FILE = "file"


CityOpt = Annotated[
    Path | None,
    typer.Option(
        "--city",
        help="the city file (YAML); default: the example city, infra/cities/velden.yaml of "
        "this checkout",
    ),
]
InputOpt = Annotated[
    Path,
    typer.Option(
        "--input", help="captures (<format>.jsonl) and drops/csv/, as `citypipe simulate` writes"
    ),
]
BackendOpt = Annotated[
    Backend,
    typer.Option("--backend", help="embedded: a moto server started here; localstack: LocalStack"),
]
StackBackendOpt = Annotated[
    StackBackend,
    typer.Option(
        "--backend",
        help="embedded | localstack (started here) | env (the endpoints and credentials in "
        "the CITYPIPE_* settings: a real cloud)",
    ),
]
CloudOpt = Annotated[
    Cloud,
    typer.Option(
        "--cloud",
        help="aws | scaleway: whose semantics the functions and the storage follow",
    ),
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, max=16, help="worker processes per function")
]


def _out(command: str) -> Any:
    return typer.Option(
        "--out", help=f"where the zones, the report and the logs go (default: out/{command})"
    )


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of a failure, not one line")
    ] = False,
) -> None:
    """Anonymized, trustworthy open data from city sensors."""


# --- the main job ---------------------------------------------------------------------------


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, _out("demo")] = Path("out/demo"),
    city: CityOpt = None,
    backend: BackendOpt = Backend.EMBEDDED,
    hours: Annotated[float, typer.Option(min=0.25, max=168, help="hours of the day")] = 24,
    scale: Annotated[
        float, typer.Option(min=0.01, max=1, help="the share of the city's devices")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="the simulation's seed")] = 7,
    concurrency: ConcurrencyOpt = 4,
) -> None:
    """Simulate one city day and run it through the stack: the main job, end to end."""
    path = city_file(city)
    city_model = load_city(path)
    started = time.perf_counter()
    with console.status("simulating the city day"):
        simulated = simulate(city_model, out / "input", hours=hours, seed=seed, scale=scale)
    payloads = sum(simulated.payloads.values())
    elapsed = time.perf_counter() - started
    console.print(
        f"simulated {simulated.readings:,} readings in {payloads:,} payloads ({elapsed:.1f} s)"
    )
    replay_started = time.perf_counter()
    messages = payloads - simulated.payloads.get("csv", 0)  # CSV rows are drops, not messages
    report = _replayed(path, out / "input", out, _options(backend, concurrency, path), messages)
    _ended(report, replay_started, out, city_model.slug)


@app.command("simulate")
def simulate_cmd(
    out: Annotated[Path, typer.Option("--out", help="where the captures and truth.json go")],
    city: CityOpt = None,
    hours: Annotated[float, typer.Option(min=0.25, max=24 * 31, help="hours to simulate")] = 24,
    seed: Annotated[int, typer.Option(help="the simulation's seed")] = 7,
    scale: Annotated[
        float,
        typer.Option(
            help="shrink the city (0.05 = 5 % of its devices) or grow it (4 = every device "
            "and three copies of it, in a city file written to OUT/city/)"
        ),
    ] = 1.0,
) -> None:
    """Write a city day as its hubs send it (a capture per format, CSV drops) and truth.json."""
    path = city_file(city)
    if scale > 1:
        if scale != int(scale):
            raise CliError("--scale: a bigger city is a whole multiple of it (--scale 4)")
        path = scaled_city(path, int(scale), out / "city")
        console.print(f"a city {int(scale)} times as large: replay with --city {path}")
        scale = 1.0
    simulated = simulate(load_city(path), out, hours=hours, seed=seed, scale=scale)
    total = sum(simulated.payloads.values())
    console.print(f"{simulated.readings:,} readings in {total:,} payloads")
    console.print(f"captures in {out}: replay them with `citypipe replay --input {out}`")


FAULTY_VISIBILITY_S = 5  # a crashed batch comes back this soon in a run with faults
FAULTY_MAX_RECEIVES = 10  # a good message outlives several crashes before the DLQ


@app.command("replay")
def replay_cmd(
    input_dir: InputOpt,
    out: Annotated[Path, _out("replay")] = Path("out/replay"),
    city: CityOpt = None,
    backend: BackendOpt = Backend.EMBEDDED,
    concurrency: ConcurrencyOpt = 4,
    cloud: CloudOpt = Cloud.AWS,
    via: Annotated[
        Via,
        typer.Option(
            help="direct: the edge in worker processes; mqtt: published on a broker, through "
            "the MQTT bridge; http: posted to the local webhook server"
        ),
    ] = Via.DIRECT,
    broker: Annotated[
        str | None,
        typer.Option(help="--via mqtt: mqtt://host:port (default: a Mosquitto started here)"),
    ] = None,
    faults: Annotated[
        str,
        typer.Option(
            help="faults on demand, e.g. duplicate=1.0,crash=0.05,throttle=0.05,lost=0.02,"
            "poison=4: messages delivered twice, workers killed mid-batch, storage and queue "
            "requests throttled or their answers lost, poison messages (queues then redeliver "
            f"after {FAULTY_VISIBILITY_S} s and dead-letter after {FAULTY_MAX_RECEIVES} tries)"
        ),
    ] = "",
    simulated_clock: Annotated[
        bool,
        typer.Option(
            help="play the captures in their own time (days of them) on a simulated clock, "
            "the hourly job firing on it — publishing, destroying keys, sweeping — instead "
            "of one export at the end (embedded backend)"
        ),
    ] = False,
    job_every_hours: Annotated[
        int, typer.Option(min=1, help="with --simulated-clock: how often the hourly job fires")
    ] = 1,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            help="a file key store here: its release secret (the noise of people counts) "
            "outlives the run, so two replays publish the same bytes; every daily secret is "
            "destroyed at the end either way; default: the stack's keys bucket"
        ),
    ] = None,
) -> None:
    """Push recorded payloads through a fresh stack; exit 1 if the books don't balance."""
    path = city_file(city)
    slug = load_city(path).slug
    payloads = _captures(input_dir)
    started = time.perf_counter()
    every = timedelta(hours=job_every_hours) if simulated_clock else None
    options = _options(backend, concurrency, path, cloud, via, broker, faults, every, keys_dir)
    report = _replayed(path, input_dir, out, options, payloads)
    _ended(report, started, out, slug)


@app.command("quarantine")
def quarantine_cmd(
    out: Annotated[
        Path, typer.Option("--out", help="a run's output folder (of demo, replay or serve)")
    ] = Path("out/demo"),
    rows: Annotated[
        bool, typer.Option("--rows", help="list every rejected row: when, where, which line")
    ] = False,
) -> None:
    """What a run rejected: readings by reason, format, source and arrival hour (and each
    row's arrival, source and line with --rows); never a value."""
    try:
        report = quarantine_report(out, rows)
    except NotARun as exc:
        raise CliError(str(exc)) from None
    print(report, end="")  # noqa: T201 (stdout: the report itself)


@app.command("check-city")
def check_city_cmd(
    file: Annotated[Path, typer.Argument(help="the city file to check")],
) -> None:
    """Load a city file as every function does: every problem that refuses it, a line each
    (exit 2), or that it loads, after what it says but probably does not mean (warnings)."""
    checked = check_city(city_file(file, warn=False, option=""))
    for problem in checked.errors:
        _say(f"error: {problem}")
    for problem in checked.warnings:
        _say(f"warning: {problem}")
    city = checked.city
    if city is None:
        raise typer.Exit(2)
    counts = [
        counted(len(city.zones.features), "zone"),
        counted(len(city.sources), "source"),
        counted(len(city.registry.devices), "device"),
    ]
    _say(f"{file}: {city.slug} ({city.name}) in {city.region}: {', '.join(counts)} — loads")


# --- hubs in front of a stack -------------------------------------------------------------


LocalBackendOpt = Annotated[
    StackBackend,
    typer.Option(
        "--backend",
        help="embedded | localstack: a fresh local stack, its functions run here, the day "
        "exported to --out on Ctrl-C; env: the stack the CITYPIPE_* settings name",
    ),
]


@app.command("serve")
def serve_cmd(
    city: CityOpt = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8080,
    host: Annotated[str, typer.Option(help="0.0.0.0 to take hubs on the LAN")] = "127.0.0.1",
    backend: LocalBackendOpt = StackBackend.EMBEDDED,
    out: Annotated[Path, _out("serve")] = Path("out/serve"),
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this certificate")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="and its private key")] = None,
    concurrency: ConcurrencyOpt = 2,
    max_connections: Annotated[
        int, typer.Option(min=1, help="connections served at once; beyond, 503")
    ] = ServerOptions.max_connections,
    max_writes: Annotated[
        int, typer.Option(min=1, help="requests written through the edge at once; beyond, 503")
    ] = ServerOptions.max_writes,
    request_deadline: Annotated[
        float, typer.Option(min=0.1, help="seconds a request's headers and body have to arrive")
    ] = ServerOptions.request_deadline_s,
) -> None:
    """Hubs' webhooks on this machine: POST /ingest/{source}/{format}, the very checks and
    answers of the cloud's ingest function (token per source, bounds), 2xx once written;
    GET / says what it takes."""
    if (tls_cert is None) != (tls_key is None):
        raise CliError("--tls-cert and --tls-key go together: give both, or neither")
    path = city_file(city)
    options = ServerOptions(
        host=host, port=port, tls_cert=tls_cert, tls_key=tls_key,
        max_connections=max_connections, max_writes=max_writes,
        request_deadline_s=request_deadline,
    )  # fmt: skip
    _port_free(host, port)  # before a stack is started for nothing
    if backend is StackBackend.ENV:
        settings = cloud_settings(path, "serve")
        deps = deps_from(settings)
        server = WebhookServer(
            deps, tokens_from(settings, deps), key_store_from(settings, deps), options
        )
        console.print(f"webhook for {deps.city.slug} on {server.url}/ingest/<source>/<format>")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.server_close()
        return

    def serving(session: Session) -> Played:
        deps = session.deps
        tokens = tokens_from(session.settings, deps)
        server = WebhookServer(deps, tokens, key_store_from(session.settings, deps), options)
        console.print(f"webhook for {deps.city.slug} on {server.url}/ingest/<source>/<format>")
        console.print("a token per source (sent as docs/hubs.md says), for this run only:")
        print(f"url {server.url}")  # noqa: T201
        for source in sorted(deps.city.sources):
            print(f"{source} {tokens.mint(source)}", flush=True)  # noqa: T201 (shown once)
        console.print("Ctrl-C exports the day and writes the run report")
        server.start()
        session.stop.wait()
        server.shutdown()
        server.server_close()
        return Played(None, resent=server.resent)

    _local_run(path, Backend(backend.value), out, serving, concurrency)


@app.command("api")
def api_cmd(
    open_dir: Annotated[
        Path,
        typer.Option(
            "--open", help="a run's open zone: the open/ folder of its --out (out/demo/open)"
        ),
    ],
    city: CityOpt = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8081,
    host: Annotated[str, typer.Option(help="0.0.0.0 to serve the LAN")] = "127.0.0.1",
) -> None:
    """The open-data API (OGC API - Features) over a run's open zone: GET /features/ (the
    landing page), /features/collections/<dataset>/items, /features/api (OpenAPI 3)."""
    loaded = load_city(city_file(city))
    if not (open_dir / loaded.slug).is_dir():
        raise CliError(
            f"--open {open_dir}: no open zone of {loaded.slug} there (give the open/ folder of "
            "a run's --out, e.g. out/demo/open)"
        )
    _port_free(host, port)
    data = OpenData(loaded, StackNames(loaded.slug), OpenZoneDirectory(open_dir))
    server = ApiServer(data, host, port)
    print(f"api {server.url}{ROOT}/", flush=True)  # noqa: T201 (what a script reads)
    console.print("Ctrl-C stops it")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


app.add_typer(bridge_app, name="bridge")  # listed after serve, as a first run meets them
app.add_typer(stack_app, name="stack")


@bridge_app.command("mqtt")
def bridge_mqtt_cmd(
    city: CityOpt = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host[:1883] or mqtts://host[:8883] (CITYPIPE_MQTT__BROKER)"),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="stable: the broker keeps the session by it")
    ] = None,
    backend: LocalBackendOpt = StackBackend.EMBEDDED,
    out: Annotated[Path, _out("bridge")] = Path("out/bridge"),
    concurrency: ConcurrencyOpt = 2,
) -> None:
    """Subscribe to the topics the city file declares (QoS 1, a persistent session) and
    write what the broker delivers through the edge, acknowledging each message once it is
    written. Credentials and certificates: CITYPIPE_MQTT__USERNAME, __PASSWORD, __CA_FILE,
    __CERT_FILE, __KEY_FILE. Ctrl-C writes what is batched and stops; the books are shown."""
    path = city_file(city)
    settings = BridgeSettings()
    overrides = {"broker": broker, "client_id": client_id}
    try:
        mqtt = MqttSettings.model_validate(
            {**settings.mqtt.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ValidationError as exc:
        given = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v)
        raise CliError(f"{given}: {one_line(exc).split(': ', 1)[-1]}") from None
    if backend is StackBackend.ENV:
        stop = threading.Event()
        try:
            books = bridge_run(BridgeSettings.of(settings_for(path), mqtt), stop)
        except KeyboardInterrupt:
            stop.set()
            raise
        console.print_json(books.model_dump_json())
        return

    def bridging(session: Session) -> Played:
        settings = BridgeSettings.of(session.settings, mqtt)
        keys = key_store_from(settings, session.deps)
        console.print(f"bridging {mqtt.broker} into {session.deps.city.slug}; Ctrl-C stops")
        books = bridge_run(settings, session.stop, session.deps, keys)
        return Played(None, {"via": "mqtt", "broker": mqtt.broker}, BridgeRun(None, books))

    _local_run(path, Backend(backend.value), out, bridging, concurrency)


# --- a stack, and a deployed one ------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    city: CityOpt = None,
    backend: StackBackendOpt = StackBackend.EMBEDDED,
    cloud: CloudOpt = Cloud.AWS,
) -> None:
    """Create the city's buckets (zones and keys) and function queues (idempotent)."""
    _stack(city_file(city), backend, "up", cloud)


@stack_app.command("down")
def stack_down(
    city: CityOpt = None,
    backend: StackBackendOpt = StackBackend.EMBEDDED,
    cloud: CloudOpt = Cloud.AWS,
) -> None:
    """Remove the city's buckets (with their objects: the secrets die) and queues."""
    _stack(city_file(city), backend, "down", cloud)


@app.command("preflight")
def preflight_cmd(
    city: CityOpt = None,
    generation: Annotated[
        int,
        typer.Option(min=1, help="of the names, as packaged (2+: beside a removed stack's)"),
    ] = 1,
) -> None:
    """Whether the AWS account of your credentials can take the city's stack, before
    anything is created: its concurrency quota, your permissions, names already taken.
    Exit 1 if it cannot."""
    loaded = load_city(city_file(city))
    account = preflight.gather(loaded, generation)
    findings = preflight.assess(account, preflight.stack_concurrency())
    for finding in findings:
        mark = "[green]ok[/]" if finding.ok else "[red]refused[/]"
        console.print(f"{mark} {finding.what}: {escape(finding.detail)}", highlight=False)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@app.command("webhook-token")
def webhook_token_cmd(
    source: Annotated[str, typer.Option("--source", help="a source of the city file")],
    city: CityOpt = None,
    store: Annotated[
        TokenStore | None,
        typer.Option(help="where the digest goes (default: CITYPIPE_WEBHOOK__TOKENS, object)"),
    ] = None,
    revoke_previous: Annotated[
        bool, typer.Option(help="the source's earlier tokens stop working at once")
    ] = False,
) -> None:
    """Mint a webhook token for one source. The token is printed once, on stdout; only its
    SHA-256 digest is stored (in the stack's keys bucket, with your credentials and the
    CITYPIPE_* endpoints). The previous token keeps working until the next mint, unless
    --revoke-previous."""
    path = city_file(city)
    settings = settings_for(path)
    if store is not None:
        webhook = settings.webhook.model_copy(update={"tokens": store.value})
        settings = settings.model_copy(update={"webhook": webhook})
    local = settings.webhook.tokens == TokenStore.FILE.value
    # the digests go to the city's stack only (the residency guard of the functions)
    city_model = load_city(path) if local else city_from(cloud_settings(path, "webhook-token"))
    if source not in city_model.sources:
        raise CliError(f"--source {source}: no such source; one of {sorted(city_model.sources)}")
    tokens = (
        file_tokens(settings, city_model.slug)
        if local
        else tokens_from(settings, deps_from(settings))
    )
    token = tokens.mint(source, revoke_previous)
    console.print(
        f"webhook token for {source} minted ({settings.webhook.tokens}); it is shown once. "
        f"Hubs send it to POST /ingest/{source}/<format> as the source's webhook takes it "
        f"({city_model.sources[source].webhook.auth.value}: docs/hubs.md)."
    )
    print(token)  # noqa: T201 (stdout: the one place the token is ever shown)


@app.command("api-key")
def api_key_cmd(
    name: Annotated[str, typer.Option("--name", help="the api_key a poll of the city file names")],
    city: CityOpt = None,
    store: Annotated[
        TokenStore | None,
        typer.Option(help="where the key goes (default: CITYPIPE_POLL__KEYS, object)"),
    ] = None,
) -> None:
    """Store the key of a hub API the city polls (its poll's api_key names it), read from
    stdin (never an argument: shells keep those), in the stack's secrets (its keys bucket
    by default, with your credentials and the CITYPIPE_* endpoints). Never in the city file."""
    path = city_file(city)
    settings = settings_for(path)
    if store is not None:
        settings = settings.model_copy(
            update={"poll": settings.poll.model_copy(update={"keys": store.value})}
        )
    city_model = load_city(path)
    named = {p.api_key for s in city_model.sources.values() for p in s.poll if p.api_key}
    if name not in named:
        raise CliError(f"--name {name}: no poll of the city file names it; one of {sorted(named)}")
    key = sys.stdin.readline().strip()
    if not key:
        raise CliError("api-key: give the key on stdin (echo -n $KEY | citypipe api-key ...)")
    if settings.poll.keys == TokenStore.FILE.value:
        FileApiKeys(settings.poll.directory / city_model.slug).put(name, key)
    else:  # the key goes to the city's stack only (the residency guard of the functions)
        cloud = cloud_settings(path, "api-key").model_copy(update={"poll": settings.poll})
        api_keys_from(cloud, deps_from(cloud)).put(name, key)
    console.print(f"the {name} API key is stored ({settings.poll.keys}); it is never shown again")


@app.command("poll")
def poll_cmd(
    city: CityOpt = None,
    at: Annotated[str | None, typer.Option(help="the tick's time, RFC 3339 (default: now)")] = None,
) -> None:
    """Run the poller's tick once against a stack (the CITYPIPE_* endpoints), as its
    schedule does every 5 minutes: the hub APIs the city polls that are due at that tick."""
    settings = cloud_settings(city_file(city), "poll")
    deps = deps_from(settings)
    poller = poller_from(settings, deps, key_store_from(settings, deps))
    answer = polled(poller, {"time": at} if at else {})
    for name, counts in answer["polls"].items():
        console.print(f"{name}: {counts}")
    if not answer["polls"]:
        console.print("no poll due at this tick")


@app.command("push")
def push_cmd(
    input_dir: InputOpt,
    city: CityOpt = None,
    batch: Annotated[int, typer.Option(min=1, help="hub messages per raw object")] = 20_000,
) -> None:
    """Play recorded hub messages into a deployed stack (endpoints and credentials from the
    CITYPIPE_* settings) as a bridge would: through the edge, here, with the stack's key
    store; then drop the CSV files in its inbox for its ingest function. A first run."""
    path = city_file(city)
    _captures(input_dir)
    settings = cloud_settings(path, "push")
    deps = deps_from(settings)
    sent = push(deps, key_store_from(settings, deps), input_dir, batch)
    console.print(f"pushed {sent:,} payloads and rows to {deps.city.slug}'s stack")


@app.command("request-export")
def request_export_cmd(city: CityOpt = None) -> None:
    """Ask a deployed stack's export to publish every day it has partials for now, rather
    than waiting for the hourly job (which publishes yesterday)."""
    deps = deps_from(cloud_settings(city_file(city), "request-export"))
    request_export(deps)
    console.print(f"export requested on {deps.names.queue(Function.EXPORT)}")


app.add_typer(partner_app, name="partner")


@partner_app.command("withdraw")
def partner_withdraw_cmd(
    name: Annotated[str, typer.Argument(help="a partner of the city file")],
    city: CityOpt = None,
) -> None:
    """Withdraw a partner's permission on a deployed stack (the CITYPIPE_* endpoints and
    credentials): recorded in its audit zone, its sources refused by the edge from now on,
    its readings deleted from the clean and aggregate zones and every day that held them
    published again, now (the stack's hourly job does the same for every withdrawal
    recorded: docs/partners.md)."""
    settings = cloud_settings(city_file(city), "partner withdraw")
    deps = deps_from(settings)
    try:
        request = withdraw(deps, name)
        run = carry_out(deps, export_ports(settings, deps), name)
    except WithdrawalRefusedError as exc:
        raise CliError(f"partner withdraw: {exc}") from None
    console.print(f"{name}'s permission is withdrawn (recorded {request.at:%Y-%m-%d %H:%M} UTC): "
                  f"its sources {', '.join(request.sources)} are refused from now on")  # fmt: skip
    if run is None:
        console.print(f"nothing of {name} is left in the clean and aggregate zones")
        return
    console.print(
        f"deleted {len(run.clean)} clean objects and {len(run.aggregates)} partials "
        f"({run.readings:,} readings); published again: {', '.join(run.days)}"
    )


# --- shared steps -------------------------------------------------------------------------


def _port_free(host: str, port: int) -> None:
    """A port the server can take (0: any free one), or a refusal that says so."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"--port {port}: {host}:{port} is taken ({exc.strerror}); pass another "
                "--port, or --port 0 for any free one"
            ) from None


def _captures(input_dir: Path) -> int:
    """The hub messages (capture lines) in a folder of captures; a folder that holds none,
    nor any CSV drop, is refused (a mistyped --input must not look like an empty city)."""
    if not input_dir.is_dir():
        raise CliError(
            f"--input {input_dir}: no such folder; make captures with "
            f"`citypipe simulate --out {input_dir}`"
        )
    captures = sorted(input_dir.glob("*.jsonl"))
    drops = sorted((input_dir / "drops" / "csv").glob("*/*.csv"))
    count = sum(1 for p in captures for line in p.open("rb") if line.strip())
    if count == 0 and not drops:
        raise CliError(
            f"--input {input_dir}: no captures (<format>.jsonl) or CSV drops "
            f"(drops/csv/<mapping>/*.csv) in it; make some with `citypipe simulate --out DIR`"
        )
    return count


def _options(
    backend: Backend,
    concurrency: int,
    city: Path,
    cloud: Cloud = Cloud.AWS,
    via: Via = Via.DIRECT,
    broker: str | None = None,
    faults: str = "",
    job_every: timedelta | None = None,
    keys_dir: Path | None = None,
) -> ReplayOptions:
    if job_every is not None and via is not Via.DIRECT:
        raise CliError("--simulated-clock plays the captures directly: leave --via out")
    try:
        asked = Faults.parse(faults)
    except ValueError as exc:
        raise CliError(f"--faults: {exc}") from None
    return ReplayOptions(
        backend=backend.value,
        concurrency=concurrency,
        localstack_endpoint=settings_for(city).localstack_endpoint,
        platform="scaleway" if cloud is Cloud.SCALEWAY else "aws",
        faults=asked,
        visibility_timeout_s=FAULTY_VISIBILITY_S if asked.any else 30,
        max_receive_count=FAULTY_MAX_RECEIVES if asked.any else 3,
        job_every=job_every,
        via=via.value,
        broker=broker,
        keys_dir=keys_dir,
    )


def _replayed(
    city: Path, input_dir: Path, out: Path, options: ReplayOptions, payloads: int
) -> dict[str, Any]:
    with progress_bar(console) as progress:
        return replay(city, input_dir, out, options, progress.callback(payloads))


def _ended(report: dict[str, Any], started: float, out: Path, slug: str) -> None:
    """The run's summary and where its output is; exit 1 when the books do not balance."""
    console.print(summary(report, time.perf_counter() - started, out))
    console.print(where(out, slug))
    raise typer.Exit(0 if report["balanced"] else 1)


def _local_run(city: Path, backend: Backend, out: Path, player: Player, concurrency: int) -> None:
    """A fresh local stack fed by ``player`` until Ctrl-C; then the day exported, the report
    written and summed up."""
    started = time.perf_counter()
    options = _options(backend, concurrency, city)
    report = run_local(city, out, options, lambda session: session.alongside(player))
    _ended(report, started, out, load_city(city).slug)


def _stack(city: Path, backend: StackBackend, action: str, cloud: Cloud) -> None:
    if backend is StackBackend.ENV:
        _provision(
            cloud_settings(city, f"stack {action}"), "the configured endpoints", action, cloud
        )
        return
    settings = settings_for(city)
    with start_backend(backend.value, settings.localstack_endpoint) as endpoint:
        local = settings.model_copy(update={"backend": endpoint.settings})
        _provision(local, endpoint.name, action, cloud)
        if action == "up" and endpoint.pid is not None:
            console.print(
                f"the {endpoint.name} backend was started by this command and ends with it: "
                "so does the stack. To keep one, run LocalStack yourself, set "
                "LOCALSTACK_ENDPOINT and use --backend localstack (or run `citypipe serve`)."
            )


def _provision(settings: Settings, where_to: str, action: str, cloud: Cloud) -> None:
    deps = deps_from(settings)
    clients = stack_ops.clients_for(settings)
    try:
        if action == "up":
            state = stack_ops.up(
                deps.city, deps.names, clients, settings.stack, provider=cloud.value
            )
            buckets, queues = len(state["buckets"]), len(state["queues"])
            console.print(f"stack up on {where_to}: {buckets} buckets, {queues} queues")
            return
        kept = stack_ops.down(deps.names, clients, provider=cloud.value)
    except stack_ops.StackError as exc:
        raise CliError(str(exc)) from None
    done = f"stack down on {where_to}"
    console.print(f"{done}; kept, its records locked: {', '.join(kept)}" if kept else done)


# --- the entry point ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The ``citypipe`` command (its console script exits with what this returns): an
    expected failure is one line on stderr and exit code 2 (``--debug``: the traceback)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if debug:  # wherever it is given: it is the command line's, not a command's
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        result = app(args=args, prog_name="citypipe", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _say("citypipe: stopped")
        return 130
    except click_exceptions.NoArgsIsHelpError as exc:
        _say(exc.ctx.get_help() if exc.ctx is not None else "citypipe --help")
        return 0
    except click_exceptions.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "citypipe"
        message = one_line(exc.format_message()).replace("Value error, ", "")
        _say(f"{command}: {message} (`{command} --help` says what it takes)")
        return 2
    except (CliError, ConfigError, ValidationError, BridgeFailed) as exc:
        if debug:
            raise
        _say(f"citypipe: {one_line(exc)}")
        return 1 if isinstance(exc, BridgeFailed) else 2
    except Exception as exc:
        if debug:
            raise
        _say(
            f"citypipe: unexpected {type(exc).__name__}: {one_line(exc)} — run it again with "
            "--debug for the traceback, and report it"
        )
        return 1
    return result if isinstance(result, int) else 0


def _say(line: str) -> None:
    """One line on stderr, never wrapped (a terminal wraps it, not us)."""
    print(line, file=sys.stderr)  # noqa: T201
