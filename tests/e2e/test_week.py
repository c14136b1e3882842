"""A week in the life: seven simulated days replayed on a simulated clock.

The captures of a small city's week are played in their own time: up to each firing of
the hourly job (once a simulated day here, at 01:00, the run that publishes yesterday),
the messages that arrived before it; then the job fires on that clock — the functions'
and the embedded backend's, so yesterday's objects are a day old. It publishes each day
once (its people counts by the run that destroys its secret, none falling in their
release hour), destroys the secrets past the key retention, and sweeps raw objects older than 24 h,
quarantine rows past the quarantine retention (two days in this city) and clean objects
past the clean retention (three days here): no lifecycle rule runs on the embedded backend,
the job alone keeps each zone's retention. The books balance across the seven days.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from citypipe.domain.city import load_city
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # a full replay: `make test-fast` skips it

VELDEN = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
FIRST = date(2026, 6, 1)
DAYS = [(FIRST + timedelta(days=n)).isoformat() for n in range(7)]
THEMES = ["air-quality", "people-counts", "traffic-flow", "weather"]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("week")
    # Given Velden keeping quarantine rows two days and clean objects three (so a week
    # sweeps some)
    retention = yaml.safe_load(VELDEN.read_text())["retention_days"]
    city_file = folder / "velden-week.yaml"
    kept = {**retention, "quarantine": 2, "clean": 3}
    city_file.write_text(yaml.safe_dump({"extends": str(VELDEN), "retention_days": kept}))
    # and a week of its hubs, 2 % of its devices
    captures = folder / "input"
    simulate(load_city(city_file), captures, hours=7 * 24, seed=3, scale=0.02)
    # and a file a city system dropped on the first day for a CSV mapping nobody declared:
    # ingest quarantines it and leaves it where it was dropped, in the raw bucket
    stray = captures / "drops" / "csv" / "no-such-mapping"
    stray.mkdir(parents=True)
    (stray / "loops-2026-06-01T03.csv").write_text(
        "station;interval_start;vehicles\nVLD-TC-001;2026-06-01T03:00:00Z;5\n"
    )
    # When the week is replayed with the hourly job at 01:00 each simulated day
    out = folder / "out"
    report = replay(city_file, captures, out, ReplayOptions(job_every=timedelta(days=1)))
    return out, report


def test_the_books_balance_across_the_week(week: tuple[Path, dict[str, Any]]) -> None:
    _, report = week
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert report["days"] == DAYS
    assert report["datasets"] == THEMES
    assert report["quarantined"]["unknown_mapping"] == 1  # the stray drop's row


def test_the_hourly_job_publishes_each_day_once(week: tuple[Path, dict[str, Any]]) -> None:
    out, report = week
    published = [job["day"] for job in report["hourly_jobs"] if job["result"] == "done"]
    assert published == DAYS
    versions = {
        (record["theme"], record["day"]): record["version"]
        for record in map(
            json.loads, map(Path.read_text, (out / "open").rglob("versions/*/*.json"))
        )
    }
    assert versions == {(theme, day): 1 for theme in THEMES for day in DAYS}


def test_the_hourly_job_destroys_each_days_secret_after_the_key_retention(
    week: tuple[Path, dict[str, Any]],
) -> None:
    out, report = week
    # the job at 01:00 keeps yesterday's and today's secrets (retention 2 days), and first
    # releases the people counts of the day whose secret it destroys: the run goes on to
    # the job that releases the seventh day (9 June), which destroys its secret too
    destroyed = [job["keys_destroyed"] for job in report["hourly_jobs"]]
    assert sum(destroyed) == 7
    records = [json.loads(p.read_text()) for p in (out / "audit").rglob("velden/keys/destroyed/*")]
    by_jobs = [r for r in records if r["at"] < "2026-06-09T02"]
    assert max(r["destroyed_before"] for r in by_jobs) == "2026-06-08"


def test_the_end_of_the_week_is_on_the_simulated_clock(
    week: tuple[Path, dict[str, Any]],
) -> None:
    out, report = week
    # the replay ends at the simulated clock's time (just after the last job, which
    # destroyed the seventh day's secret): nothing is left to destroy, nothing is destroyed
    # at the real date
    assert report["end_of_run"]["keys_destroyed"] == 0
    records = [json.loads(p.read_text()) for p in (out / "audit").rglob("velden/keys/destroyed/*")]
    assert max(r["destroyed_before"] for r in records) == "2026-06-08"


def test_the_hourly_job_sweeps_raw_and_quarantine(week: tuple[Path, dict[str, Any]]) -> None:
    out, report = week
    jobs = report["hourly_jobs"]
    # the stray drop, dropped on the first day, went with the first job a day later
    assert sum(job["raw_swept"] for job in jobs) == 1
    assert [p for p in (out / "raw").rglob("*") if p.is_file()] == []
    # quarantine rows go two days after they were written; the last two days' remain.
    # Every input with rejections wrote one quarantine object: each is swept or still there
    lineage = [json.loads(p.read_text()) for p in (out / "audit").rglob("velden/lineage/ingest/*")]
    written = sum(1 for record in lineage if record["counts"]["quarantined"])
    swept = sum(job["quarantine_swept"] for job in jobs)
    remaining = len([p for p in (out / "quarantine").rglob("*") if p.is_file()])
    assert swept > 0 and remaining > 0
    assert swept + remaining == written


def test_the_hourly_job_sweeps_clean_objects_past_the_clean_retention(
    week: tuple[Path, dict[str, Any]],
) -> None:
    out, report = week
    jobs = report["hourly_jobs"]
    # clean objects go three days after they were written (a scrubbed copy: after it was
    # rewritten); the last days' remain. Nothing else was kept past its zone's retention
    swept = sum(job["clean_swept"] for job in jobs)
    remaining = [p for p in (out / "clean").rglob("*.parquet")]
    assert swept > 0 and remaining
    assert sum(job["aggregates_swept"] + job["audit_swept"] for job in jobs) == 0
