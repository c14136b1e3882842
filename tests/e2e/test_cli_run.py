"""A small demo run as a user runs it (the ``citypipe`` command in a subprocess): where its
output goes, what its summary says, that the report and ``citypipe quarantine`` agree
with it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from citypipe.domain.model import Zone

pytestmark = pytest.mark.slow

COMMAND = "import sys; from citypipe_local.cli import main; sys.exit(main())"


def citypipe(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", COMMAND, *argv],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``citypipe demo`` of an hour of a small share of the example city, its output in
    ``out/demo`` under an empty working directory."""
    cwd = tmp_path_factory.mktemp("work")
    done = citypipe("demo", "--hours", "1", "--scale", "0.1", "--seed", "3", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd / "out" / "demo", done.stderr


@pytest.fixture(scope="module")
def report(demo: tuple[Path, str]) -> dict[str, Any]:
    return json.loads((demo[0] / "report.json").read_text())  # type: ignore[no-any-return]


def test_every_zone_is_under_out_zone_city(demo: tuple[Path, str]) -> None:
    out, _ = demo
    for zone in Zone:
        assert [p.name for p in (out / zone.value).iterdir()] in ([], ["velden"]), zone
    assert (out / "open" / "velden" / "index.html").is_file()
    assert list((out / "audit" / "velden" / "lineage").rglob("*.json"))


def test_the_run_ends_saying_where_its_output_is(demo: tuple[Path, str]) -> None:
    _, said = demo
    last = said.strip().splitlines()[-1]
    assert last.startswith("output in out/demo/")
    assert "out/demo/open/velden/index.html" in last


def test_the_summary_has_a_row_per_reason_and_no_dict(
    demo: tuple[Path, str], report: dict[str, Any]
) -> None:
    _, said = demo
    assert report["quarantined"]  # the simulator spoils a few payloads on purpose
    for reason, count in report["quarantined"].items():
        assert any(line.split() == [reason, f"{count:,}"] for line in said.splitlines()), reason
    assert "{" not in said


def test_the_report_holds_the_books_first(report: dict[str, Any]) -> None:
    assert list(report)[:4] == ["city", "balanced", "received", "resent"]
    assert report["balanced"]


def test_quarantine_finds_every_rejected_reading_without_a_value(
    demo: tuple[Path, str], report: dict[str, Any]
) -> None:
    out, _ = demo
    done = citypipe("quarantine", "--out", str(out), "--rows", cwd=out)
    assert done.returncode == 0, done.stderr
    total = sum(report["quarantined"].values())
    assert f"{total:,} readings" in done.stdout.splitlines()[0]
    rows = done.stdout.split("\n\narrival")[1].splitlines()[1:]
    assert rows and all(row.startswith("2026-") for row in rows)
    assert "replay" in done.stdout  # the route each came by
    kept = [row["payload"] for row in quarantine_rows(out)]
    assert kept  # the quarantine keeps the shape of each payload (decision 79) and no value
    assert beyond_shape(kept) == []


def quarantine_rows(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in (out / "quarantine").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]


SHAPE_TYPES = {
    "object",
    "array",
    "string",
    "number",
    "integer",
    "boolean",
    "null",
    "text",
    "binary",
}


def beyond_shape(kept: Any) -> list[Any]:
    """Whatever a kept payload holds but its shape's words: every leaf that is neither a
    type nor a count (a length, the lines and byte classes of a body that was no JSON)."""
    if isinstance(kept, dict):
        return [
            leaf
            for key, value in kept.items()
            for leaf in ([] if key == "type" and value in SHAPE_TYPES else beyond_shape(value))
        ]
    if isinstance(kept, list):
        return [leaf for item in kept for leaf in beyond_shape(item)]
    return [] if isinstance(kept, int) and not isinstance(kept, bool) else [kept]
