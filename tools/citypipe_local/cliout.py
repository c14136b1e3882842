"""What the command line says and checks before it runs: one-line errors, the city file
and settings it takes, a run's progress, its summary and where its output is."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from citypipe.domain.city import ConfigError, load_city
from citypipe.domain.city_checks import check_city
from citypipe.settings import Settings

# The example city of this checkout: the default --city wherever the command runs from.
EXAMPLE_CITY = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"


class CliError(Exception):
    """An expected failure of a command: its message says what is wrong and how to fix it."""


def one_line(exc: BaseException | str) -> str:
    """An error as one line: the first problem of a settings error, named by its variable."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        first = errors[0]
        name = "CITYPIPE_" + "__".join(str(part) for part in first["loc"]).upper()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = first["msg"].replace("Value error, ", "")
        return f"setting {name}: {message}{more}" if first["loc"] else f"{message}{more}"
    return " ".join(str(exc).split())


def city_file(given: Path | None, warn: bool = True, option: str = "--city ") -> Path:
    """The city file a command works on — the one given, else the example city — checked:
    refused in one line when it cannot load, its warnings said (``warn``) when it can; the
    runtime settings are checked too (a mistake there is found before any work)."""
    path = EXAMPLE_CITY if given is None else given
    if not path.is_file():
        if given is None:
            raise CliError(f"no --city given, and no example city at {path}: pass --city FILE")
        raise CliError(f"{option}{given}: no such file")
    Settings()  # CITYPIPE_* settings that cannot be read fail now, in one line
    if warn:
        checked = check_city(path)
        if checked.errors:
            raise ConfigError(checked.errors, str(path))
        for problem in checked.warnings:
            print(f"warning: {problem}", file=sys.stderr)  # noqa: T201
    return path


def settings_for(city: Path) -> Settings:
    """The runtime settings (CITYPIPE_*), with this city file."""
    settings = Settings()
    return settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"city_file": city})}
    )


CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
)  # fmt: skip


def cloud_settings(city: Path, command: str) -> Settings:
    """The settings of a deployed city's stack, refused up front when they cannot reach
    it: a region (the residency guard checks it is the city's) and credentials."""
    settings = settings_for(city)
    region = settings.service("storage").region
    if region is None:
        expected = load_city(city).region
        raise CliError(
            f"{command}: no region for the city's stack: set AWS_REGION (or "
            f"CITYPIPE_BACKEND__REGION) to {expected}, the city file's region"
        )
    if settings.service("storage").access_key_id is None and not _credentials_configured():
        raise CliError(
            f"{command}: no credentials for the city's stack: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or CITYPIPE_BACKEND__ACCESS_KEY_ID and "
            "CITYPIPE_BACKEND__SECRET_ACCESS_KEY), or AWS_PROFILE"
        )
    return settings


def _credentials_configured() -> bool:
    """Credentials the SDK would find without asking the network (the environment, the
    shared files)."""
    if any(os.environ.get(name) for name in CREDENTIAL_VARIABLES):
        return True
    named = [os.environ.get("AWS_SHARED_CREDENTIALS_FILE"), os.environ.get("AWS_CONFIG_FILE")]
    files = [Path(p) for p in named if p] + [
        Path.home() / ".aws" / n for n in ("credentials", "config")
    ]
    return any(p.is_file() for p in files)


# --- a run's progress ------------------------------------------------------------------------


class _Counted(ProgressColumn):
    """``done/total`` where the total is known, else the count alone (never ``n/?``)."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        shown = f"{done:,}/{int(task.total):,}" if task.total is not None else f"{done:,}"
        return Text(shown)


class RunProgress:
    """Progress bars of a replay: the payloads played, and each function's messages."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def callback(self, payloads: int) -> Callable[[str, int], None]:
        def advance(what: str, n: int) -> None:
            edge = what.startswith("dropped")
            name = "payloads" if edge else f"{what} messages"
            if name not in self.tasks:
                total = payloads if edge else None
                self.tasks[name] = self.progress.add_task(name, total=total)
            if edge:
                self.progress.update(self.tasks[name], completed=n)
            else:
                self.progress.advance(self.tasks[name], n)

        return advance


@contextlib.contextmanager
def progress_bar(console: Console) -> Iterator[RunProgress]:
    columns = (TextColumn("{task.description:<20}"), BarColumn(), _Counted(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield RunProgress(progress)


# --- a run's summary ------------------------------------------------------------------------


def summary(report: dict[str, Any], wall: float, out: Path) -> Table:
    """The run's books, one row each, the books' balance first."""
    table = Table(title=f"citypipe run on {report['backend']}", show_header=False, box=None)
    for name, value in _rows(report, wall, out):
        table.add_row(name, value)
    for check in report["checks"]:
        if not check["ok"]:
            table.add_row(
                "[red]unbalanced[/]", f"{check['check']}: {check['left']} != {check['right']}"
            )
    return table


def _rows(report: dict[str, Any], wall: float, out: Path) -> list[tuple[str, str]]:
    quarantined = report["quarantined"]
    rows = [
        ("books balance", "[green]yes[/]" if report["balanced"] else "[red]NO[/]"),
        ("readings received", f"{report['received']:,}"),
        ("  accepted", f"{report['accepted']:,}"),
        ("  duplicate readings", f"{report['duplicates']:,}"),
        (
            "  quarantined",
            f"{sum(quarantined.values()):,}"
            + (f"  (where: citypipe quarantine --out {out})" if quarantined else ""),
        ),
        *(
            (f"    {reason}", f"{count:,}")
            for reason, count in sorted(quarantined.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        ("  dead-lettered", f"{report['dead_lettered']:,}"),
        *_resent(report),
        ("refused by policy", f"{sum(report['refused'].values()):,}"),
        (
            "messages quarantined / dead-lettered",
            f"{report['messages_quarantined']:,} / {report['messages_dead_lettered']:,}",
        ),
        ("cells", _cells(report)),
        ("datasets published", ", ".join(report["datasets"]) or "none"),
        *_extra_rows(report),
        ("wall time", _wall(report, wall)),
    ]
    return rows


def _resent(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Bodies a webhook answered "resent": posted before, written once."""
    resent = report.get("resent", 0)
    return [("bodies posted again", f"{resent:,} (written once)")] if resent else []


def _cells(report: dict[str, Any]) -> str:
    text = (
        f"{report['published_cells']:,} published, {report['suppressed_cells']:,} suppressed, "
        f"{report['flagged_cells']:,} flagged"
    )
    refused = sum(report["refused_cells"].values())
    return f"{text}, {refused:,} refused (privacy budget spent)" if refused else text


def _extra_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    budget = report.get("privacy_budget")
    if budget:
        rows.append(("privacy budget", _budget(budget)))
    faults = report.get("faults", {})
    if faults.get("asked"):
        rows.append(("faults", _faults_line(faults)))
    if "hourly_jobs" in report:
        rows.append(("hourly jobs", _jobs_line(report["hourly_jobs"])))
    end = report.get("end_of_run")
    if end:
        rows.append(
            (
                "end of run",
                f"{counted(end['keys_destroyed'], 'daily secret')} destroyed, "
                f"{counted(end['clean_scrubbed'], 'clean object')} scrubbed of pseudonyms",
            )
        )
    return rows


def _budget(budget: dict[str, Any]) -> str:
    releases = counted(budget["releases"], "release") + " of people counts"
    if not budget["days"]:
        return f"{releases}, no day charged"
    return (
        f"{releases}; the most one person's day spent: ε = {budget['most_spent']:g} of "
        f"{budget['budget_per_person_day']:g} ({counted(budget['days'], 'day')} charged)"
    )


def counted(n: int, thing: str) -> str:
    """``n thing`` or ``n things``."""
    return f"{n:,} {thing}" if n == 1 else f"{n:,} {thing}s"


def _wall(report: dict[str, Any], wall: float) -> str:
    received = report["received"]
    return f"{wall:.1f} s ({received / wall:,.0f} readings/s)" if received else f"{wall:.1f} s"


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
        f"{sum(j['keys_destroyed'] for j in jobs)} days' keys destroyed, objects past their "
        "retention swept: "
        + ", ".join(
            f"{sum(j.get(f'{zone}_swept', 0) for j in jobs)} {zone}"
            for zone in ("raw", "quarantine", "clean", "aggregates", "audit")
        )
    )


def where(out: Path, slug: str) -> str:
    """Where a run's output is."""
    return (
        f"output in {out}/: the portal {out}/open/{slug}/index.html, the report "
        f"{out}/report.json, the logs {out}/logs.jsonl, every zone {out}/<zone>/{slug}/"
    )
