"""A resident's opt-out through the whole stack on the embedded backend: the people
counters' captures replayed three times with the same keys — as recorded, with the most
seen phone opted out, and with that phone's detections taken out of the captures. The
opted-out phone leaves no trace in any zone or log, its detections are counted as
``opted_out`` (how many, never which), and what is aggregated and published is what a
city that never saw the phone publishes."""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import shutil
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from citypipe.adapters.keys import FileKeyStore
from citypipe.core.pseudonyms import normalize_identifier
from citypipe.domain.books import OPTED_OUT, IngestCounts
from citypipe.domain.city import City
from citypipe_local import stack
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
DAY = date(2026, 6, 1)
PEOPLE = ("meraki", "canonical")


def _detections(line: bytes) -> list[str]:
    """The device addresses a captured line's payload detects (normalized)."""
    body = json.loads(json.loads(line)["body"])
    if "data" in body:  # Meraki: a post of observations
        return [normalize_identifier(o["clientMac"]) for o in body["data"]["observations"]]
    return [normalize_identifier(body["personal"]["device_mac"])]


def _without(line: bytes, address: str) -> bytes | None:
    """A captured line with the address's detections taken out (None: nothing left)."""
    capture = json.loads(line)
    body = json.loads(capture["body"])
    if "data" not in body:
        return None if normalize_identifier(body["personal"]["device_mac"]) == address else line
    seen = body["data"]["observations"]
    kept = [o for o in seen if normalize_identifier(o["clientMac"]) != address]
    if len(kept) == len(seen):
        return line
    if not kept:
        return None
    body["data"]["observations"] = kept
    capture["body"] = json.dumps(body, separators=(",", ":"))
    return json.dumps(capture, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    """Two hours of the people counters (the other hubs hold no personal data)."""
    folder = tmp_path_factory.mktemp("input")
    simulate(city, folder, hours=2.0, seed=5, scale=0.1)
    for capture in folder.glob("*.jsonl"):
        if capture.stem not in PEOPLE:
            capture.unlink()
    shutil.rmtree(folder / "drops")
    return folder


@pytest.fixture(scope="module")
def phone(recorded: Path) -> tuple[str, int]:
    """The most seen phone's address (normalized) and its detections in the captures."""
    seen: Counter[str] = Counter()
    for name in PEOPLE:
        for line in (recorded / f"{name}.jsonl").read_bytes().splitlines():
            seen.update(_detections(line))
    [(address, detections)] = seen.most_common(1)
    assert detections >= 5
    return address, detections


@pytest.fixture(scope="module")
def never_seen(
    recorded: Path, phone: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The captures as a city that never saw the phone would have recorded them."""
    folder = tmp_path_factory.mktemp("never-seen")
    for name in PEOPLE:
        lines = (recorded / f"{name}.jsonl").read_bytes().splitlines()
        kept = [k for k in (_without(line, phone[0]) for line in lines) if k is not None]
        (folder / f"{name}.jsonl").write_bytes(b"".join(k + b"\n" for k in kept))
    return folder


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A key store and a copy of it made before any run: the day's secret, the release
    secret and the opt-outs' key, the same for every run."""
    folder = tmp_path_factory.mktemp("keys")
    store = FileKeyStore(folder / "velden")
    store.daily_secret(DAY)
    store.noise_secret()
    store.optout_secret()
    kept = tmp_path_factory.mktemp("keys-kept") / "velden"
    shutil.copytree(folder / "velden", kept)
    return folder, kept


Runner = Any


@pytest.fixture(scope="module")
def run(keys: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """A replay with the same keys as every other (a run destroys its daily secrets: each
    starts from the copy)."""
    folder, kept = keys

    def restored(directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(kept, directory)

    def replayed(captures: Path, *opt_outs: str) -> Path:
        out = tmp_path_factory.mktemp("out")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stack, "reset_file_keys", restored)
            options = ReplayOptions(batch_payloads=2_000, keys_dir=folder, opt_outs=opt_outs)
            report = replay(CITY_FILE, captures, out, options)
        assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
        return out

    return replayed


@pytest.fixture(scope="module")
def runs(run: Runner, recorded: Path, never_seen: Path, phone: tuple[str, int]) -> dict[str, Path]:
    return {
        "as-recorded": run(recorded),
        "opted-out": run(recorded, "-".join(phone[0][i : i + 2] for i in range(0, 12, 2)).upper()),
        "never-seen": run(never_seen),
    }


def ingest_counts(out: Path) -> IngestCounts:
    counted = [
        IngestCounts.model_validate(json.loads(p.read_text())["counts"])
        for p in (out / "audit" / "velden" / "lineage" / "ingest").rglob("*.json")
    ]
    return sum(counted[1:], counted[0])


def aggregated(out: Path) -> Counter[tuple[str, str, str, str]]:
    """Readings per window, zone, quantity and sensor, over every partial."""
    cells: Counter[tuple[str, str, str, str]] = Counter()
    for path in (out / "aggregates").rglob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            key = (str(row["window_start"]), row["zone"], row["quantity"], row["sensor"])
            cells[key] += row["count"]
    return cells


def open_tables(out: Path) -> dict[str, list[dict[str, str]]]:
    return {
        str(p.relative_to(out)): list(csv.DictReader(io.StringIO(p.read_text())))
        for p in sorted((out / "open").rglob("*.csv"))
        if "register" not in p.parts
    }


def test_the_opted_out_phone_leaves_no_trace_in_any_zone_or_log(
    runs: dict[str, Path], phone: tuple[str, int], keys: tuple[Path, Path]
) -> None:
    address = phone[0]
    spellings = {address, ":".join(address[i : i + 2] for i in range(0, 12, 2)),
                 "-".join(address[i : i + 2] for i in range(0, 12, 2))}  # fmt: skip
    day_key = hmac.digest(
        (keys[1] / f"{DAY.isoformat()}.key").read_bytes(),
        b"citypipe/v1/person-day/velden",
        "sha256",
    )
    alias = hmac.new(day_key, address.encode(), hashlib.sha256).hexdigest()
    opt_key = (keys[1] / "optout.secret").read_bytes()
    digest = hmac.new(opt_key, address.encode(), hashlib.sha256).hexdigest()
    out = runs["opted-out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "logs.jsonl" for p in files)
    for path in files:  # raw, quarantine, clean, aggregates, open, audit, logs, the report
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.lower()
        found = [s for s in (*spellings, alias, digest) if s.encode() in text]
        assert found == [], path
    # what leaves no trace of it does not hide its counting: its detections are booked
    assert ingest_counts(out).quarantined.get(OPTED_OUT) == phone[1]


def test_the_counts_drop_by_the_phones_detections_as_if_it_was_never_seen(
    runs: dict[str, Path], phone: tuple[str, int]
) -> None:
    recorded, opted, never = (
        aggregated(runs[k]) for k in ("as-recorded", "opted-out", "never-seen")
    )

    def people(cells: Counter[tuple[str, str, str, str]]) -> int:
        return sum(n for cell, n in cells.items() if cell[2] == "people.presence")

    assert people(recorded) - people(opted) == phone[1]
    assert opted == never
    # the books: as recorded, those detections were accepted; opted out, booked as such
    as_recorded, opted_out = ingest_counts(runs["as-recorded"]), ingest_counts(runs["opted-out"])
    assert as_recorded.accepted - opted_out.accepted == phone[1]
    assert as_recorded.received == opted_out.received


def test_the_open_data_is_what_a_city_that_never_saw_the_phone_publishes(
    runs: dict[str, Path],
) -> None:
    opted, never = open_tables(runs["opted-out"]), open_tables(runs["never-seen"])
    assert opted and opted == never
    assert open_tables(runs["as-recorded"]) != opted
