"""The floor `make bench` compares the pipeline with does the pipeline's job.

``bench/floor.py`` is a plain script; a ratio against it means something only if it
publishes what the pipeline publishes from the same hub messages: the same readings
accepted and rejected, the same cells with the same figures, the same people cells
suppressed under k.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from citypipe.core.publish.tables import columns
from citypipe.domain.city import City
from citypipe_local.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
sys.path.insert(0, str(ROOT / "bench"))
from floor import floor  # noqa: E402  (bench/ is scripts, not a package)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("input")
    simulate(city, directory, hours=2.0, seed=3, scale=0.05)
    return directory


@pytest.fixture(scope="module")
def truth(recorded: Path) -> dict[str, Any]:
    return dict(json.loads((recorded / "truth.json").read_text()))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, recorded: Path) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("floor")
    return floor(recorded, CITY_FILE, out), out


def rows(out: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    found = {}
    for path in sorted(out.rglob("*.csv")):
        for row in csv.DictReader(path.read_text().splitlines()):
            found[row["window_start"], row["zone"], row["quantity"]] = row
    return found


def test_the_floor_counts_what_the_simulated_hubs_sent(
    published: tuple[Any, Path], truth: dict[str, Any]
) -> None:
    run, _ = published
    assert (run.received, run.accepted, run.duplicates) == (
        truth["readings"],
        truth["accepted"],
        truth["duplicates"],
    )
    assert run.rejected == truth["quarantined"]


def test_the_floor_publishes_the_true_cells(
    published: tuple[Any, Path], truth: dict[str, Any], city: City
) -> None:
    _, out = published
    found = rows(out)
    true = {(c["window_start"], c["zone"], c["quantity"]): c for c in truth["cells"]}
    assert set(true) <= set(found)
    for key, cell in true.items():
        row = found[key]
        devices = cell["distinct_devices"]
        if devices is not None:  # a people cell: distinct devices, bounded, noisy
            if row["status"] == "suppressed":
                assert row["distinct_devices"] == ""
                continue
            assert (row["status"], row["count"], row["sum"]) == ("published", "", "")
            assert int(row["distinct_devices"]) >= city.disclosure.k
            assert abs(int(row["distinct_devices"]) - devices) <= 160
            continue
        assert row["status"] == "published"
        assert (int(row["count"]), row["unit"]) == (cell["count"], cell["unit"])
        assert float(row["sum"]) == pytest.approx(cell["sum"], abs=1e-6)
        assert (float(row["min"]), float(row["max"])) == (cell["min"], cell["max"])


def test_the_floor_publishes_the_complete_people_grid(
    published: tuple[Any, Path], truth: dict[str, Any], city: City
) -> None:
    _, out = published
    found = rows(out)
    true = {(c["window_start"], c["zone"], c["quantity"]) for c in truth["cells"]}
    people = [key for key in found if key[2] in city.personal_quantities]
    zones = {zone for _, zone, _ in people}
    assert zones == {z for q in city.personal_quantities for z in city.zones_measuring.get(q, ())}
    assert len(people) == 96 * len(zones)
    # an empty window is a noisy figure like any other: mostly under k, never flagged
    empty = [found[key]["status"] for key in people if key not in true]
    assert set(empty) <= {"suppressed", "published"}
    assert empty.count("suppressed") > len(empty) // 2


def test_the_floor_writes_the_open_datas_csv_columns(published: tuple[Any, Path]) -> None:
    _, out = published
    for theme, personal in (("people-counts", True), ("air-quality", False)):
        [path] = (out / theme).rglob("*.csv")
        header = path.read_text().splitlines()[0].split(",")
        assert header == [column.name for column in columns(personal)]
