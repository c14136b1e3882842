"""Three simulated days of the people counters replayed through the whole stack, then read
as an insider would: no pseudonym older than its key in any zone, nothing about who was
seen in the aggregates, no secret left to recompute a pseudonym with, a people grid
without gaps, an ε ledger that balances per person-day."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from citypipe.adapters.keys import FileKeyStore
from citypipe.core.aggregate import PARTIAL_SCHEMA
from citypipe.domain.city import City
from citypipe.domain.errors import KeyDestroyedError
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
DAYS = (date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3))


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, city: City, keys_dir: Path) -> Path:
    recorded = tmp_path_factory.mktemp("input")
    simulate(city, recorded, hours=72, seed=4, scale=0.02)
    # the people counters' hubs only: the air and traffic sources hold no personal data,
    # and three days of them would triple the objects the stages move
    for capture in recorded.glob("*.jsonl"):
        if capture.stem not in ("meraki", "canonical"):
            capture.unlink()
    shutil.rmtree(recorded / "drops")
    out = tmp_path_factory.mktemp("out")
    replay(CITY_FILE, recorded, out, ReplayOptions(batch_payloads=5_000, keys_dir=keys_dir))
    return out


def parquet_rows(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def test_the_books_and_the_epsilon_ledger_balance(run: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    ledger = [c for c in report["checks"] if c["check"].startswith("ε ledger")]
    assert len(ledger) == 2 and all(c["ok"] for c in ledger)
    assert report["privacy_budget"]["releases"] >= len(DAYS)
    assert (
        report["privacy_budget"]["most_spent"] <= report["privacy_budget"]["budget_per_person_day"]
    )


def test_no_zone_holds_a_pseudonym_after_the_run(run: Path) -> None:
    # Given every object every zone holds once the run is over (every key destroyed)
    clean = parquet_rows(run / "clean")
    raw = [p for p in (run / "raw").rglob("*") if p.is_file()]
    # Then the clean rows are all there, none with a pseudonym, and raw is empty
    people = [r for r in clean if r["quantity"] == "people.presence"]
    assert people
    assert [r for r in clean if r["pseudonym"] is not None] == []
    assert raw == []


def test_every_scrubbed_object_is_recorded_in_the_audit_zone(run: Path) -> None:
    scrubbed = sorted((run / "clean").rglob("*.scrubbed.parquet"))
    records = [
        json.loads(p.read_text()) for p in (run / "audit").rglob("velden/scrubbed/objects/*")
    ]
    assert scrubbed
    assert sorted(r["output"]["key"] for r in records) == sorted(
        f"clean/{p.relative_to(run / 'clean')}"
        for p in scrubbed  # out/clean/<city>/...
    )


def test_the_aggregates_hold_nothing_about_who_was_seen(run: Path) -> None:
    # Given every partial the aggregates zone keeps (two years)
    tables = [pq.read_table(p) for p in sorted((run / "aggregates").rglob("*.parquet"))]
    # Then each holds counts, sums and extremes of readings only: no pseudonym, no sketch
    assert tables
    assert {tuple(t.column_names) for t in tables} == {tuple(PARTIAL_SCHEMA.names)}


def test_no_daily_secret_outlives_the_run(run: Path, keys_dir: Path, city: City) -> None:
    # Given the run's key store, as it is left on disk
    store = FileKeyStore(keys_dir / city.slug)
    # Then no day's secret can be read back (so no MAC can be made a pseudonym again) ...
    for day in DAYS:
        with pytest.raises(KeyDestroyedError):
            store.daily_secret(day)
    assert sorted(p.name for p in (keys_dir / city.slug).glob("*.key")) == []
    # ... while the release secret stays, for a re-run to draw the same noise
    assert len(store.noise_secret()) == 32


def test_every_day_publishes_the_whole_people_grid(run: Path, city: City) -> None:
    zones = city.zones_measuring["people.presence"]
    for day in DAYS:
        path = next((run / "open").rglob(f"people-counts_{day}.csv"))
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert len(rows) == 96 * len(zones)
        assert {r["status"] for r in rows} <= {"published", "suppressed"}
