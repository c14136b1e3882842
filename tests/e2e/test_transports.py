"""The simulated hubs over real transports, end to end: a replay through a Mosquitto broker
and the MQTT bridge publishes the very bytes a replay straight through the edge publishes;
a replay through the local webhook server balances its books the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from citypipe.domain.city import City
from citypipe_local.cli import main
from citypipe_local.faults import Faults
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # full replays: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("hour")
    simulate(city, directory, hours=1.0, seed=5, scale=0.05)
    return directory


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory, hour: Path, keys_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("direct")
    replay(CITY_FILE, hour, out, ReplayOptions(keys_dir=keys_dir, concurrency=2))
    return out


@pytest.fixture(scope="module")
def via_mqtt(tmp_path_factory: pytest.TempPathFactory, hour: Path, keys_dir: Path) -> Path:
    """The same hour published on a Mosquitto the replay starts, through the bridge (the
    command line, as a user runs it)."""
    out = tmp_path_factory.mktemp("mqtt")
    code = main([
        "replay", "--input", str(hour), "--out", str(out), "--via", "mqtt",
        "--keys-dir", str(keys_dir), "--concurrency", "2",
    ])  # fmt: skip
    assert code == 0
    return out


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_an_hour_through_mqtt_publishes_the_bytes_the_direct_replay_publishes(
    direct: Path, via_mqtt: Path
) -> None:
    published = tree(via_mqtt / "open")

    assert len(published) > 20
    assert published == tree(direct / "open")


def test_an_hour_through_mqtt_balances_its_books_as_the_direct_replay_does(
    direct: Path, via_mqtt: Path, hour: Path
) -> None:
    mqtt, straight = report_of(via_mqtt), report_of(direct)
    truth = json.loads((hour / "truth.json").read_text())

    assert mqtt["balanced"], [c for c in mqtt["checks"] if not c["ok"]]
    for figure in ("received", "accepted", "duplicates", "quarantined", "published_cells"):
        assert mqtt[figure] == straight[figure], figure
    assert (mqtt["received"], mqtt["duplicates"]) == (truth["readings"], truth["duplicates"])
    # every message published was written by the bridge, once
    assert mqtt["transport"]["published"] == mqtt["bridge"]["written"]
    assert mqtt["bridge"]["redelivered"] == 0


def test_the_bridges_journal_leaves_nothing_in_the_raw_zone(via_mqtt: Path) -> None:
    assert tree(via_mqtt / "raw") == {}


@pytest.fixture(scope="module")
def quarter(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("quarter")
    simulate(city, directory, hours=0.25, seed=7, scale=0.05)  # a hub's resend among them
    return directory


def test_a_quarter_hour_posted_to_the_webhook_server_balances_its_books(
    tmp_path: Path, quarter: Path, keys_dir: Path
) -> None:
    out = tmp_path / "http"
    report = replay(
        CITY_FILE, quarter, out, ReplayOptions(via="http", keys_dir=keys_dir, concurrency=2)
    )
    truth = json.loads((quarter / "truth.json").read_text())
    assert truth["duplicates"] > 0

    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert report["quarantined"] == truth["quarantined"]
    assert report["accepted"] == truth["accepted"]
    # a hub's resend is its own request: recognized by its content (the webhook buffers it,
    # its batch finds the content written before: service.buffer), nothing written again
    assert report["received"] == truth["readings"] - truth["duplicates"]
    assert report["resent"] == 1
    assert set(report["transport"]["statuses"]) <= {"202", "400"}


def test_a_quarter_hour_posted_through_crashes_and_redeliveries_is_counted_once(
    tmp_path: Path, quarter: Path, keys_dir: Path
) -> None:
    """The buffer's batches on a misbehaving backend (decision 65): batchers killed mid-batch
    (before or after their manifest), every message delivered twice — each request still
    counted once, each reading accepted once. (A batch fails whole with any of its requests,
    and a visibility timeout shorter than a batch takes on a loaded machine delivers it
    again while it is written: a cloud's queue allows hours of retries, decision 90.)"""
    out = tmp_path / "http-faults"
    faults = Faults.parse("duplicate=1.0,crash=0.3,seed=3")
    options = ReplayOptions(
        via="http", keys_dir=keys_dir, concurrency=2, faults=faults,
        visibility_timeout_s=15, max_receive_count=50,
    )  # fmt: skip
    report = replay(CITY_FILE, quarter, out, options)
    truth = json.loads((quarter / "truth.json").read_text())

    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    # workers died mid-batch (which function's is the draw's: the batcher's own crash
    # points, before and after its manifest, are proven in tests/unit/test_buffer.py)
    assert sum(report["faults"]["crashes"].values()) > 0
    assert (report["accepted"], report["quarantined"]) == (truth["accepted"], truth["quarantined"])
    assert report["received"] == truth["readings"] - truth["duplicates"]
    assert report["resent"] == 1
