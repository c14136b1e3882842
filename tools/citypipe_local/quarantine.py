"""``citypipe quarantine --out DIR``: what a run rejected, found where it is.

A run copies the quarantine zone to ``DIR/quarantine/<city>/``: gzip'd JSON Lines named
by a hash, one row per refused payload (``ingest/``), per input a stage could not read,
per queue message that was no claim check (``…/messages/``). This reads them all back and
sums the rejected readings by reason, format, source and arrival hour; ``--rows`` lists
each row's arrival, route, source, format, line and reasons, each with its path and detail.
Quarantine holds no value to print (decision 79): a payload is kept as its shape, a path
names known fields and positions, a detail quotes nothing the hub sent; the report prints
where and why, not the shapes.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Rejected:
    """One quarantine row, as much as may be said of it."""

    reasons: dict[str, int]  # readings (a whole input: what it announced; a message: 1)
    format: str
    source: str
    route: str
    received_at: str  # ISO 8601 UTC, "" where the row does not say
    line: int | None
    paths: list[str]  # each detail: its reason, path (in known names) and what it says

    @property
    def hour(self) -> str:
        return self.received_at[:13] or "-"


def rows_in(out: Path) -> Iterator[Rejected]:
    """Every quarantine row of a run's output folder, in file order."""
    for path in sorted((out / "quarantine").rglob("*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            if line.strip():
                yield _rejected(json.loads(line))


def _rejected(row: dict[str, Any]) -> Rejected:
    if "rejected" in row:  # a payload refused at the edge
        return Rejected(
            reasons=dict(row["rejected"]),
            format=str(row.get("adapter", "")),
            source=str(row.get("source", "")),
            route=str(row.get("route", "")),
            received_at=str(row.get("received_at", "")),
            line=row.get("line"),
            paths=[
                f"{d['reason']} at {d['path'] or '(the payload)'}: {d['detail']}"
                for d in row["details"]
            ],
        )
    message = row.get("message") or {}
    announced = message.get("records", 1) if isinstance(message, dict) else 1
    return Rejected(
        reasons={str(row.get("reason", "unknown")): max(1, int(announced or 1))},
        format=str(message.get("format", "")) if isinstance(message, dict) else "",
        source="",
        route="queue",
        received_at="",
        line=None,
        paths=[],
    )


class NotARun(ValueError):
    """A folder that holds no run's output: a mistyped --out must not read as a clean run."""


def quarantine_report(out: Path, rows: bool = False) -> str:
    """The summary table (and each row, with ``rows``) as text."""
    if not (out / "report.json").is_file():
        raise NotARun(
            f"--out {out}: no run's output there (no report.json); give the folder a demo, "
            "replay, serve or bridge wrote (out/demo, out/replay, …)"
        )
    found = list(rows_in(out))
    if not found:
        return f"nothing quarantined in {out}/quarantine/\n"
    groups: Counter[tuple[str, str, str, str]] = Counter()
    for item in found:
        for reason, count in item.reasons.items():
            groups[reason, item.format or "-", item.source or "-", item.hour] += count
    readings = sum(groups.values())
    lines = [
        f"quarantined in {out}: {readings:,} readings in {len(found):,} rows, by reason, "
        "format, source and arrival hour (UTC); never a value",
        "",
        _table(
            ("reason", "format", "source", "arrival hour", "readings"),
            [(*key, f"{count:,}") for key, count in sorted(groups.items())],
        ),
    ]
    if rows:
        lines += ["", _table(
            ("arrival", "route", "source", "format", "line", "why"),
            [
                (item.received_at or "-", item.route or "-", item.source or "-",
                 item.format or "-", str(item.line or "-"), "; ".join(item.paths) or
                 ", ".join(item.reasons))
                for item in found
            ],
        )]  # fmt: skip
    else:
        lines += ["", f"each row: citypipe quarantine --out {out} --rows"]
    return "\n".join(lines) + "\n"


def _table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    )
