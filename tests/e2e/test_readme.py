"""What the docs say about the demo, against the demo: ``make demo``'s command run as the
Makefile runs it, its summary compared line by line with the one the README shows; and
the people counts' guarantee and utility ``docs/privacy.md`` states, rebuilt from the
simulator's truth (each phone's privacy loss over the day, from its cells and the ε
ledger) and from what was published."""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE, ROOT

from citypipe.domain.city import load_city

pytestmark = pytest.mark.slow

README = ROOT / "README.md"


def shown_summary() -> list[str]:
    """The lines of the README's block of the demo's summary."""
    text = README.read_text()
    block = re.search(r"```\n( books balance.*?)```", text, re.S)
    assert block is not None, "the README shows the demo's summary"
    return block.group(1).splitlines()


def squeezed(line: str) -> str:
    return " ".join(line.split())


PRIVACY = ROOT / "docs" / "privacy.md"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


@pytest.fixture(scope="module")
def demo(folder: Path) -> subprocess.CompletedProcess[str]:
    """``citypipe demo --out out/demo``, as ``make demo`` runs it, in an empty folder."""
    cwd = folder
    makefile = (ROOT / "Makefile").read_text()
    command = re.search(r"^demo: .*\n\t\$\(BIN\)/citypipe (demo[^\n]*)", makefile, re.M)
    assert command is not None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from citypipe_local.cli import main; sys.exit(main())",
         *command.group(1).split()],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def test_the_demo_prints_every_summary_line_the_readme_shows(
    demo: subprocess.CompletedProcess[str],
) -> None:
    assert demo.returncode == 0, demo.stderr
    printed = [squeezed(line) for line in demo.stderr.splitlines()]
    for line in shown_summary():
        if "…" in line:
            head = squeezed(line.split("…")[0])
            if head:
                assert any(p.startswith(head) for p in printed), line
            continue
        assert squeezed(line) in printed, line


def test_the_example_city_has_the_devices_the_readme_says() -> None:
    said = re.search(r"`infra/cities/velden.yaml`: (\d+) devices", README.read_text())
    assert said is not None
    assert int(said.group(1)) == len(load_city(CITY_FILE).registry.devices)


# --- the people counts' guarantee, per person and day, accounted from the truth ------------


@pytest.fixture(scope="module")
def run(demo: subprocess.CompletedProcess[str], folder: Path) -> Path:
    assert demo.returncode == 0, demo.stderr
    return folder / "out" / "demo"


def ledger(run: Path) -> list[dict[str, Any]]:
    """Every release of people counts the demo charged, from its audit zone."""
    return [json.loads(p.read_text()) for p in sorted((run / "audit").rglob("epsilon/*/*.json"))]


def declared(run: Path) -> float:
    """The ε per person-day the published record of processing states."""
    [path] = (run / "open").rglob("register/records-of-processing.json")
    noise = json.loads(path.read_text())["privacy"]["noise"]
    return float(noise["epsilon_per_person_day"])


def published_releases(run: Path) -> list[dict[str, Any]]:
    """The ledger entries of every people release whose files were published: each export
    lineage that wrote a people dataset's open files names the entry it was charged to."""
    ledger = {
        f"epsilon/velden/{p.relative_to(run / 'audit' / 'velden' / 'epsilon')}": json.loads(
            p.read_text()
        )
        for p in (run / "audit").rglob("epsilon/*/*.json")
    }  # fmt: skip
    named = []
    for path in (run / "audit").rglob("lineage/export/*.json"):
        record = json.loads(path.read_text())
        keys = [o["key"] for o in record["outputs"]]
        if any(k.startswith("open/") and "/people-counts/" in k for k in keys):
            [charged] = [k for k in keys if k.startswith("epsilon/")]  # exactly one
            named.append(charged)
    assert set(named) <= set(ledger), "every published release names an entry that is there"
    return [ledger[k] for k in sorted(set(named))]


def test_no_phone_loses_more_than_the_declared_epsilon_of_its_day(run: Path) -> None:
    # Given each phone's cells of the day (the simulator's truth), and every release whose
    # people files were published — found through the exports' lineage, each naming the
    # ledger entry it was charged to — with its ε and the cap C it was computed with
    truth = json.loads((run / "input" / "truth.json").read_text())
    releases = published_releases(run)
    assert releases and truth["contributions"]
    # And as many published versions of the day's people counts as charged releases
    [record] = (run / "open").rglob("versions/people-counts/*.json")
    assert json.loads(record.read_text())["version"] == len(releases) == len(ledger(run))
    # When each phone's worst-case loss is added up: a release costs a phone seen in n
    # cells ε·min(n, C)/C (it counts in at most C cells, each of sensitivity ε/C)
    losses = [
        sum(r["epsilon"] * min(n, r["contributions_per_day"]) / r["contributions_per_day"]
            for r in releases)
        for n in truth["contributions"]
    ]  # fmt: skip
    # Then none exceeds the ε per person-day the city declares, nor the goal of 2 — and
    # the cap bites: the busiest phones are charged the full release
    assert max(losses) <= declared(run) <= 2.0
    assert max(losses) == pytest.approx(sum(r["epsilon"] for r in releases))
    assert all(r["spent"] <= r["budget"] == declared(run) for r in releases)
    # and as many phones are capped as the docs say
    cap = releases[0]["contributions_per_day"]
    capped = 100 * sum(n > cap for n in truth["contributions"]) / len(truth["contributions"])
    stated = re.search(r"In the example day (\d+) % of the phones", PRIVACY.read_text())
    assert stated is not None and round(capped) == int(stated.group(1))


def test_the_guarantee_is_stated_per_person_day_wherever_the_data_is_described(
    run: Path,
) -> None:
    said = f"ε = {declared(run)} per person per day"
    opened = run / "open" / "velden"
    catalogue = (opened / "catalog.jsonld").read_text()
    register = (opened / "register" / "transparency-register.json").read_text()
    record = (opened / "register" / "records-of-processing.json").read_text()
    portal = (opened / "index.html").read_text()
    for text in (catalogue, register, record, portal):
        assert said in text
    for text in (record, portal):
        assert "Article 11" in text and "Autoriteit Persoonsgegevens" in text
        assert "VLD-DPIA-2026-03" in text and "privacy@velden.example" in text


def test_the_people_counts_are_as_useful_as_docs_privacy_says(run: Path) -> None:
    # Given the published people cells and the true distinct devices of each
    truth = json.loads((run / "input" / "truth.json").read_text())
    true = {
        (c["window_start"], c["zone"]): c["distinct_devices"]
        for c in truth["cells"]
        if c["quantity"] == "people.presence"
    }
    [path] = (run / "open").rglob("people-counts_*.csv")
    rows = list(csv.DictReader(path.open()))
    published = [r for r in rows if r["status"] == "published"]
    errors = [
        abs(int(r["distinct_devices"]) - true[r["window_start"], r["zone"]])
        / true[r["window_start"], r["zone"]]
        for r in published
        if true.get((r["window_start"], r["zone"]))
    ]
    # Then the median relative error and the share published are those the docs state
    # (within what another release secret's noise moves them by)
    stated = re.search(
        r"median relative error of the published cells is about (\d+) %, (\d+) % of the "
        r"cells are published",
        " ".join(PRIVACY.read_text().split()),
    )
    assert stated is not None, "docs/privacy.md states the utility measured on the example day"
    error, share = int(stated.group(1)), int(stated.group(2))
    assert abs(100 * statistics.median(errors) - error) <= 3
    assert abs(100 * len(published) / len(rows) - share) <= 4
