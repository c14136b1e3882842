"""Nothing lost, nothing double-counted — with faults on demand.

The same small city is replayed twice on the embedded backend: once cleanly, once with
``--faults``: every message delivered twice, workers killed mid-batch (SIGKILL, after a
random number of their requests took effect), storage and queue requests throttled or
their answers lost (the write happened, the function heard a timeout), the hubs' bridges
hurt the same way, and poison messages in the queues. Failed messages come back after
their visibility timeout; bridges send a failed batch again. The books must balance, the
poison be counted (quarantined or dead-lettered) and the open data be byte-identical to
the clean run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citypipe.domain.city import City
from citypipe_local.faults import Faults
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # full replays: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
# Rates high enough that every kind of fault happens in a run of ~70 invocations and
# ~2,000 requests (no crash at all: 0.9^70 < 0.1 %; no lost answer: 0.98^2000), low
# enough, with ten deliveries before the DLQ, that no good message is dead-lettered. Each
# throttled request costs the SDK's backoff (half a second on average): that is most of
# the run's time.
FAULTS = Faults(duplicate=1.0, crash=0.1, throttle=0.05, lost=0.02, poison=6, seed=11)
BOOKS = ("received", "accepted", "duplicates", "quarantined", "dead_lettered")


def open_tree(out: Path) -> dict[str, bytes]:
    files = sorted((out / "open").rglob("*"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files if p.is_file()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("input")
    simulate(city, directory, hours=1.0, seed=5, scale=0.05)
    return directory


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, recorded: Path) -> dict[str, Any]:
    """The clean run and the run with faults, on the same daily secrets."""
    keys = tmp_path_factory.mktemp("keys")
    options = ReplayOptions(batch_payloads=200, keys_dir=keys, concurrency=3)
    clean = tmp_path_factory.mktemp("clean")
    faulty = tmp_path_factory.mktemp("faulty")
    return {
        "clean": (clean, replay(CITY_FILE, recorded, clean, options)),
        "faulty": (
            faulty,
            replay(
                CITY_FILE,
                recorded,
                faulty,
                ReplayOptions(
                    batch_payloads=200,
                    keys_dir=keys,
                    concurrency=3,
                    faults=FAULTS,
                    visibility_timeout_s=2,
                    max_receive_count=10,
                ),
            ),
        ),
    }


def test_the_faults_asked_for_really_happen(runs: dict[str, Any]) -> None:
    _, report = runs["faulty"]
    faults = report["faults"]
    assert faults["asked"] == str(FAULTS)
    assert sum(faults["crashes"].values()) > 0, "workers must be killed"
    assert faults["injected"]["throttle"] > 0
    assert faults["injected"]["lost"] > 0
    assert faults["failed_deliveries"] > 0


def test_with_faults_the_open_data_is_the_clean_runs_byte_for_byte(runs: dict[str, Any]) -> None:
    (clean, _), (faulty, _) = runs["clean"], runs["faulty"]
    assert open_tree(faulty) == open_tree(clean)
    assert open_tree(clean)


def test_with_faults_the_books_balance_and_count_every_reading_once(
    runs: dict[str, Any],
) -> None:
    (_, clean), (faulty_out, faulty) = runs["clean"], runs["faulty"]
    assert faulty["balanced"], [c for c in faulty["checks"] if not c["ok"]]
    assert {k: faulty[k] for k in BOOKS} == {k: clean[k] for k in BOOKS}
    assert [p for p in (faulty_out / "raw").rglob("*") if p.is_file()] == []


def test_every_poison_message_is_quarantined_or_dead_lettered(runs: dict[str, Any]) -> None:
    _, report = runs["faulty"]
    # two kinds in three are no usable claim check (quarantined with a reason), one in
    # three fails its consumer every time (dead-lettered after ten deliveries)
    assert report["messages_quarantined"] == 4
    assert report["messages_dead_lettered"] == 2
    assert report["dead_lettered"] == 0  # they announced no readings
