"""The citypipe command line: stack, simulate, replay, demo."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from citypipe.bootstrap import city_from, deps_from
from citypipe.bootstrap.ingest import file_tokens, tokens_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.city import ConfigError, load_city
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.ports import TOKEN_HEADER
from citypipe.settings import Settings
from citypipe_bridge.main import BridgeFailed
from citypipe_bridge.main import run as bridge_run
from citypipe_bridge.settings import BridgeSettings, MqttSettings
from citypipe_local import stack as stack_ops
from citypipe_local.backends import backend as start_backend
from citypipe_local.faults import Faults
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

app = typer.Typer(no_args_is_help=True, help="Anonymized, trustworthy open data from city sensors.")
stack_app = typer.Typer(no_args_is_help=True, help="Provision or remove a city stack.")
app.add_typer(stack_app, name="stack")
bridge_app = typer.Typer(no_args_is_help=True, help="Bridge a hub transport into a city stack.")
app.add_typer(bridge_app, name="bridge")
console = Console(stderr=True)

DEFAULT_CITY = Path("infra/cities/velden.yaml")
CityOpt = Annotated[Path, typer.Option("--city", help="the city file (YAML)")]
BackendOpt = Annotated[str, typer.Option("--backend", help="embedded | localstack")]
StackBackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="embedded | localstack | env (the endpoints and credentials in the CITYPIPE_* "
        "settings: a real cloud)",
    ),
]
ProviderOpt = Annotated[
    str, typer.Option("--provider", help="aws | scaleway: which calls the object storage takes")
]


def _settings(city: Path) -> Settings:
    settings = Settings()
    return settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"city_file": city})}
    )


def _provision(settings: Settings, where: str, action: str, provider: str) -> None:
    if provider not in ("aws", "scaleway"):
        raise typer.BadParameter(f"unknown provider {provider!r}: aws or scaleway")
    deps = deps_from(settings)
    clients = stack_ops.clients_for(settings)
    if action == "up":
        state = stack_ops.up(deps.city, deps.names, clients, settings.stack, provider=provider)  # type: ignore[arg-type]
        buckets, queues = len(state["buckets"]), len(state["queues"])
        console.print(f"[green]stack up[/] on {where}: {buckets} buckets, {queues} queues")
    else:
        stack_ops.down(deps.names, clients)
        console.print(f"[green]stack down[/] on {where}")


def _stack(city: Path, backend: str, action: str, provider: str) -> None:
    settings = _settings(city)
    if backend == "env":
        _provision(settings, "the configured endpoints", action, provider)
        return
    with start_backend(backend, settings.localstack_endpoint) as endpoint:
        local = settings.model_copy(update={"backend": endpoint.settings})
        _provision(local, endpoint.name, action, provider)


@stack_app.command("up")
def stack_up(
    city: CityOpt = DEFAULT_CITY,
    backend: StackBackendOpt = "embedded",
    provider: ProviderOpt = "aws",
) -> None:
    """Create the city's buckets (zones and keys) and function queues (idempotent)."""
    _stack(city, backend, "up", provider)


@stack_app.command("down")
def stack_down(
    city: CityOpt = DEFAULT_CITY,
    backend: StackBackendOpt = "embedded",
    provider: ProviderOpt = "aws",
) -> None:
    """Remove the city's buckets (with their objects: the secrets die) and queues."""
    _stack(city, backend, "down", provider)


@app.command("webhook-token")
def webhook_token_cmd(
    source: Annotated[str, typer.Option("--source", help="a source of the city file")],
    city: CityOpt = DEFAULT_CITY,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="object | secretsmanager | file (default: CITYPIPE_WEBHOOK__TOKENS)"
        ),
    ] = None,
    revoke_previous: Annotated[
        bool, typer.Option(help="the source's earlier tokens stop working at once")
    ] = False,
) -> None:
    """Mint a webhook token for one source. The token is printed once, on stdout; only its
    SHA-256 digest is stored (in the stack's keys bucket, with your credentials and the
    CITYPIPE_* endpoints). The previous token keeps working until the next mint, unless
    --revoke-previous."""
    settings = _settings(city)
    if store is not None:
        webhook = settings.webhook.model_copy(update={"tokens": store})
        settings = settings.model_copy(update={"webhook": webhook})
    try:
        # the digests go to the city's stack only (the residency guard of the functions)
        local = settings.webhook.tokens == "file"
        city_model = load_city(city) if local else city_from(settings)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if source not in city_model.sources:
        console.print(f"[red]no source {source!r}[/]: one of {sorted(city_model.sources)}")
        raise typer.Exit(2)
    tokens = (
        file_tokens(settings, city_model.slug)
        if local
        else tokens_from(settings, deps_from(settings))
    )
    token = tokens.mint(source, revoke_previous)
    console.print(
        f"webhook token for [bold]{source}[/] minted ({settings.webhook.tokens}); it is shown "
        f"once. Hubs send it in the {TOKEN_HEADER} header to POST /ingest/{source}/<format>."
    )
    print(token)  # noqa: T201 (stdout: the one place the token is ever shown)


@app.command("simulate")
def simulate_cmd(
    out: Annotated[Path, typer.Option("--out", help="where the payload files go")],
    city: CityOpt = DEFAULT_CITY,
    hours: float = 24,
    seed: int = 7,
    scale: Annotated[
        float,
        typer.Option(
            help="shrink the city (0.05 = 5 % of its devices) or grow it (4 = every device "
            "and three copies of it, in a city file written to OUT/city/)"
        ),
    ] = 1.0,
) -> None:
    """Write a city day as its hubs send it (a capture per format, CSV drops) and truth.json."""
    if scale > 1:
        if scale != int(scale):
            raise typer.BadParameter("a bigger city is a whole multiple of it (--scale 4)")
        city = scaled_city(city, int(scale), out / "city")
        console.print(f"a city {int(scale)} times as large: replay with --city {city}")
        scale = 1.0
    summary = simulate(load_city(city), out, hours=hours, seed=seed, scale=scale)
    console.print(
        f"{summary.readings:,} readings in {sum(summary.payloads.values()):,} payloads -> {out}"
    )


def _run(
    city: Path, input_dir: Path, out: Path, options: ReplayOptions, payloads: int
) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(what: str, n: int) -> None:
            edge = what.startswith("dropped")
            name = "payloads" if edge else f"{what} msgs"
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=payloads if edge else None)
            if edge:
                bar.update(tasks[name], completed=n)
            else:
                bar.advance(tasks[name], n)

        return replay(city, input_dir, out, options, progress)


def _faults_line(faults: dict[str, Any]) -> str:
    injected = ", ".join(f"{n:,} {kind}" for kind, n in faults["injected"].items())
    return (
        f"{faults['asked']}: {sum(faults['crashes'].values())} workers killed, "
        f"{injected or 'no request faults'}, {faults['failed_deliveries']:,} deliveries "
        f"failed, {faults['bridge_retries']} batches resent by bridges"
    )


def _jobs_line(jobs: list[dict[str, Any]]) -> str:
    published = [job["day"] for job in jobs if job["result"] == "done"]
    return (
        f"{len(jobs)} fired on the simulated clock: {len(published)} days published, "
        f"{sum(j['keys_destroyed'] for j in jobs)} days' keys destroyed, "
        f"{sum(j['raw_swept'] for j in jobs)} raw and "
        f"{sum(j['quarantine_swept'] for j in jobs)} quarantine objects swept"
    )


def _summary(report: dict[str, Any], wall: float) -> None:
    table = Table(title=f"citypipe run on {report['backend']}", show_header=False)
    received = report["received"]
    rows = [
        ("readings received", f"{received:,}"),
        ("accepted", f"{report['accepted']:,}"),
        ("duplicates (resends)", f"{report['duplicates']:,}"),
        ("quarantined", f"{sum(report['quarantined'].values()):,} {report['quarantined']}"),
        ("refused by policy", f"{sum(report['refused'].values()):,}"),
        ("dead-lettered", f"{report['dead_lettered']:,}"),
        (
            "messages quarantined / dead-lettered",
            f"{report['messages_quarantined']:,} / {report['messages_dead_lettered']:,}",
        ),
        (
            "cells published / suppressed / flagged",
            f"{report['published_cells']:,} / {report['suppressed_cells']:,} / "
            f"{report['flagged_cells']:,}",
        ),
        ("datasets", ", ".join(report["datasets"])),
        ("books balance", "[green]yes[/]" if report["balanced"] else "[red]NO[/]"),
        *([("faults", _faults_line(report["faults"]))] if report["faults"]["asked"] else []),
        *([("hourly jobs", _jobs_line(report["hourly_jobs"]))] if "hourly_jobs" in report else []),
    ]
    budget = report.get("privacy_budget")
    if budget:
        rows.append(
            (
                "ε ledger",
                f"{budget['releases']} releases, at most ε = {budget['most_spent']:g} of "
                f"{budget['budget_per_sensor_day']:g} spent per sensor-day",
            )
        )
    end = report.get("end_of_run")
    if end:
        rows.append(
            (
                "end of run",
                f"{end['keys_destroyed']} daily secrets destroyed, "
                f"{end['clean_scrubbed']} clean objects scrubbed of pseudonyms",
            )
        )
    rows += [
        ("wall time", f"{wall:.1f} s ({received / wall:,.0f} readings/s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for check in report["checks"]:
        if not check["ok"]:
            console.print(
                f"[red]unbalanced:[/] {check['check']}: {check['left']} != {check['right']}"
            )


FAULTY_VISIBILITY_S = 5  # a crashed batch comes back this soon in a run with faults
FAULTY_MAX_RECEIVES = 10  # a good message outlives several crashes before the DLQ


def _options(
    backend: str,
    concurrency: int,
    city: Path,
    platform: str = "aws",
    via: str = "direct",
    broker: str | None = None,
    faults: str = "",
    job_every: timedelta | None = None,
) -> ReplayOptions:
    if platform not in ("aws", "scaleway"):
        raise typer.BadParameter(f"unknown platform {platform!r}: aws or scaleway")
    if via not in ("direct", "mqtt", "http"):
        raise typer.BadParameter(f"unknown transport {via!r}: direct, mqtt or http")
    if job_every is not None and via != "direct":
        raise typer.BadParameter("--simulated-clock plays the captures directly (--via direct)")
    try:
        asked = Faults.parse(faults)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return ReplayOptions(
        backend=backend,
        concurrency=concurrency,
        localstack_endpoint=_settings(city).localstack_endpoint,
        platform="scaleway" if platform == "scaleway" else "aws",
        faults=asked,
        visibility_timeout_s=FAULTY_VISIBILITY_S if asked.any else 30,
        max_receive_count=FAULTY_MAX_RECEIVES if asked.any else 3,
        job_every=job_every,
        via=via,  # type: ignore[arg-type]  # checked above
        broker=broker,
    )


@app.command("replay")
def replay_cmd(
    input_dir: Annotated[Path, typer.Option("--input", help="payload files from `simulate`")],
    out: Annotated[Path, typer.Option("--out")] = Path("out"),
    city: CityOpt = DEFAULT_CITY,
    backend: BackendOpt = "embedded",
    concurrency: int = 4,
    platform: Annotated[
        str,
        typer.Option(help="aws: Lambda's SQS batches; scaleway: one queue message per POST"),
    ] = "aws",
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
        int, typer.Option(help="with --simulated-clock: how often the hourly job fires")
    ] = 1,
    via: Annotated[
        str,
        typer.Option(
            help="direct: the edge in worker processes; mqtt: published on a broker, through "
            "the MQTT bridge; http: posted to the local webhook server"
        ),
    ] = "direct",
    broker: Annotated[
        str | None,
        typer.Option(help="--via mqtt: mqtt://host:port (default: a Mosquitto started here)"),
    ] = None,
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
    payloads = sum(1 for p in input_dir.glob("*.jsonl") for line in p.open() if line.strip())
    started = time.perf_counter()
    every = timedelta(hours=job_every_hours) if simulated_clock else None
    options = _options(backend, concurrency, city, platform, via, broker, faults, every)
    if keys_dir is not None:
        options = dataclasses.replace(options, keys_dir=keys_dir)
    report = _run(city, input_dir, out, options, payloads)
    _summary(report, time.perf_counter() - started)
    raise typer.Exit(0 if report["balanced"] else 1)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out")] = Path("out"),
    city: CityOpt = DEFAULT_CITY,
    backend: BackendOpt = "embedded",
    hours: float = 24,
    scale: float = 1.0,
    seed: int = 7,
    concurrency: int = 4,
) -> None:
    """Simulate one city day and replay it: the main job, end to end."""
    try:
        city_model = load_city(city)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    started = time.perf_counter()
    with console.status("simulating the city day"):
        summary = simulate(city_model, out / "input", hours=hours, seed=seed, scale=scale)
    payloads = sum(summary.payloads.values())
    elapsed = time.perf_counter() - started
    console.print(
        f"simulated {summary.readings:,} readings in {payloads:,} payloads ({elapsed:.1f} s)"
    )
    replay_started = time.perf_counter()
    report = _run(
        city,
        out / "input",
        out,
        _options(backend, concurrency, city),
        sum(summary.payloads.values()),
    )
    _summary(report, time.perf_counter() - replay_started)
    console.print(
        f"open data in {out / 'open'} "
        f"(the portal: {out / 'open' / StackNames(city_model.slug).portal_key()}), "
        f"report in {out / 'report.json'}"
    )
    raise typer.Exit(0 if report["balanced"] else 1)


@app.command("push")
def push_cmd(
    input_dir: Annotated[
        Path, typer.Option("--input", help="captures (<format>.jsonl) and drops/csv/, as simulated")
    ],
    city: CityOpt = DEFAULT_CITY,
    batch: Annotated[int, typer.Option(help="hub messages per raw object")] = 20_000,
) -> None:
    """Play recorded hub messages into a deployed stack (endpoints and credentials from the
    CITYPIPE_* settings) as a bridge would: through the edge, here, with the stack's key
    store; then drop the CSV files in its inbox for its ingest function. A first run."""
    settings = _settings(city)
    deps = deps_from(settings)
    sent = push(deps, key_store_from(settings, deps), input_dir, batch)
    console.print(f"[green]pushed[/] {sent:,} payloads and rows to {deps.city.slug}'s stack")


@app.command("request-export")
def request_export_cmd(city: CityOpt = DEFAULT_CITY) -> None:
    """Ask a deployed stack's export to publish every day it has partials for now, rather
    than waiting for the hourly job (which publishes yesterday)."""
    deps = deps_from(_settings(city))
    request_export(deps)
    console.print(f"[green]export requested[/] on {deps.names.queue(Function.EXPORT)}")


LocalBackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="embedded | localstack: a fresh local stack, its functions run here, the day "
        "exported to --out on Ctrl-C; env: the stack the CITYPIPE_* settings name",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", help="a local stack's zones and run report")]


def _local_run(city: Path, backend: str, out: Path, player: Player, concurrency: int) -> None:
    """A fresh local stack fed by ``player`` until Ctrl-C; then the day exported, the report
    written and summed up."""
    started = time.perf_counter()
    options = _options(backend, concurrency, city)
    report = run_local(city, out, options, lambda session: session.alongside(player))
    _summary(report, time.perf_counter() - started)
    console.print(f"zones and report in {out}")
    raise typer.Exit(0 if report["balanced"] else 1)


@app.command("serve")
def serve_cmd(
    city: CityOpt = DEFAULT_CITY,
    port: Annotated[int, typer.Option(help="0: any free port")] = 8080,
    host: Annotated[str, typer.Option(help="0.0.0.0 to take hubs on the LAN")] = "127.0.0.1",
    backend: LocalBackendOpt = "embedded",
    out: OutOpt = Path("out-serve"),
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this certificate")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="and its private key")] = None,
    concurrency: int = 2,
) -> None:
    """Hubs' webhooks on this machine: POST /ingest/{source}/{format}, the very checks and
    answers of the cloud's ingest function (token per source, bounds), 2xx once written."""
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    options = ServerOptions(host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
    if backend == "env":
        settings = _settings(city)
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
        console.print(f"a token per source ({TOKEN_HEADER}), valid for this run only:")
        print(f"url {server.url}")  # noqa: T201
        for source in sorted(deps.city.sources):
            print(f"{source} {tokens.mint(source)}", flush=True)  # noqa: T201 (shown once)
        console.print("Ctrl-C exports the day and writes the run report")
        server.start()
        session.stop.wait()
        server.shutdown()
        server.server_close()
        return Played(None)

    _local_run(city, backend, out, serving, concurrency)


@bridge_app.command("mqtt")
def bridge_mqtt_cmd(
    city: CityOpt = DEFAULT_CITY,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host[:1883] or mqtts://host[:8883] (CITYPIPE_MQTT__BROKER)"),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="stable: the broker keeps the session by it")
    ] = None,
    backend: LocalBackendOpt = "embedded",
    out: OutOpt = Path("out-bridge"),
    concurrency: int = 2,
) -> None:
    """Subscribe to the topics the city file declares (QoS 1, a persistent session) and
    write what the broker delivers through the edge, acknowledging each message once it is
    written. Credentials and certificates: CITYPIPE_MQTT__USERNAME, __PASSWORD, __CA_FILE,
    __CERT_FILE, __KEY_FILE. Ctrl-C writes what is batched and stops; the books are shown."""
    try:
        settings = BridgeSettings()
        overrides = {"broker": broker, "client_id": client_id}
        mqtt = MqttSettings.model_validate(
            {**settings.mqtt.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ValidationError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if backend == "env":
        stop = threading.Event()
        try:
            books = bridge_run(BridgeSettings.of(_settings(city), mqtt), stop)
        except KeyboardInterrupt:
            stop.set()
            raise
        except BridgeFailed as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        console.print_json(books.model_dump_json())
        return

    def bridging(session: Session) -> Played:
        settings = BridgeSettings.of(session.settings, mqtt)
        keys = key_store_from(settings, session.deps)
        console.print(f"bridging {mqtt.broker} into {session.deps.city.slug}; Ctrl-C stops")
        books = bridge_run(settings, session.stop, session.deps, keys)
        return Played(None, {"via": "mqtt", "broker": mqtt.broker}, BridgeRun(None, books))

    _local_run(city, backend, out, bridging, concurrency)
