"""The whole path, hub message -> open data, on real backends.

A small simulated city (2 hours, 5 % of the devices, every hub format, bad messages and
resends included) is replayed through the edge and the real handlers; the open data must
show what the simulator says it must, the books must balance, and no identifier the
simulator emitted may appear in any zone — raw and quarantine included — or in the logs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from citypipe.domain.city import City
from citypipe.domain.model import Zone
from citypipe_local.cli import main
from citypipe_local.faults import Faults
from citypipe_local.replay import Played, ReplayOptions, Session, replay, run_local
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # full replays: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
HOURS, SCALE, SEED = 2.0, 0.05, 3
ZONES = ("raw", "quarantine", "clean", "aggregates", "open", "audit")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("input")
    simulate(city, directory, hours=HOURS, seed=SEED, scale=SCALE)
    return directory


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def truth(recorded: Path) -> dict[str, Any]:
    return json.loads((recorded / "truth.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, recorded: Path, keys_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("out")
    replay(CITY_FILE, recorded, out, ReplayOptions(batch_payloads=2_000, keys_dir=keys_dir))
    return out


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def open_csv(out: Path) -> list[dict[str, str]]:
    """Every row of every dataset's daily CSV (not the register's)."""
    rows: list[dict[str, str]] = []
    for path in sorted((out / "open").rglob("date=*/*.csv")):
        rows += list(csv.DictReader(io.StringIO(path.read_text())))
    return rows


def text_of(path: Path) -> str:
    """What a file says, decoded: gzip and Parquet pages are compressed on disk."""
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=repr)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def spellings(identifier: str) -> set[str]:
    bare = "".join(ch for ch in identifier if ch.isalnum())
    return {identifier, identifier.lower(), identifier.upper(), bare.lower(), bare.upper()}


def open_tree(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted((out / "open").rglob("*"))
        if p.is_file()
    }


def test_books_balance_and_match_what_was_sent(run: Path, truth: dict[str, Any]) -> None:
    report = report_of(run)

    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert report["received"] == truth["readings"]
    assert report["accepted"] == truth["accepted"]
    assert report["duplicates"] == truth["duplicates"] > 0
    assert report["quarantined"] == truth["quarantined"]
    assert report["dead_lettered"] == 0


def test_bad_payloads_are_quarantined_with_reasons(run: Path, truth: dict[str, Any]) -> None:
    rows = [
        (path, json.loads(line))
        for path in (run / "quarantine").rglob("*.jsonl.gz")
        for line in text_of(path).splitlines()
    ]

    # One row per payload, counting its rejected readings by reason
    reasons: dict[str, int] = {}
    for _, row in rows:
        for reason, count in row["rejected"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    assert reasons == truth["quarantined"]
    assert all(row["payload"] and row["details"] for _, row in rows)
    assert len({(path, row["line"]) for path, row in rows}) == len(rows)


def test_published_cells_show_the_true_values(run: Path, truth: dict[str, Any], city: City) -> None:
    expected = {(c["window_start"], c["zone"], c["quantity"]): c for c in truth["cells"]}
    rows = open_csv(run)
    published = [r for r in rows if r["status"] == "published"]
    people = "people.presence"

    assert published
    # every cell measured has a row; people rows cover the whole grid besides
    assert {(r["window_start"], r["zone"], r["quantity"]) for r in rows} >= set(expected)
    extra = {(r["window_start"], r["zone"], r["quantity"]) for r in rows} - set(expected)
    assert {q for _, _, q in extra} <= {people}
    for row in published:
        place = (row["window_start"], row["zone"], row["quantity"])
        if row["quantity"] == people:
            # the zone's distinct devices (none in an empty window) plus noise (scale C/ε = 5:
            # within 160 but once in ~10^7 cells), published at k or more; nothing else
            devices = expected[place]["distinct_devices"] if place in expected else 0
            assert int(row["distinct_devices"]) >= city.disclosure.k
            assert abs(int(row["distinct_devices"]) - devices) <= 160
            assert row["count"] == row["sum"] == row["mean"] == ""
            continue
        cell = expected[place]
        assert int(row["count"]) == cell["count"]
        assert float(row["sum"]) == pytest.approx(cell["sum"], rel=1e-9, abs=1e-6)
        assert float(row["min"]) == pytest.approx(cell["min"])
        assert float(row["max"]) == pytest.approx(cell["max"])
        assert float(row["mean"]) == pytest.approx(cell["mean"], rel=1e-6)


def test_people_cells_are_decided_on_noisy_figures_over_the_whole_grid(
    run: Path, truth: dict[str, Any], city: City
) -> None:
    k = city.disclosure.k
    seen = {
        (c["window_start"], c["zone"]): c["distinct_devices"]
        for c in truth["cells"]
        if c["quantity"] == "people.presence"
    }
    people = [r for r in open_csv(run) if r["quantity"] == "people.presence"]
    # every window of every zone with a counter has a row, published or suppressed
    zones = city.zones_measuring["people.presence"]
    assert len(people) == len({r["window_start"] for r in people}) * len(zones)
    suppressed = [r for r in people if r["status"] == "suppressed"]
    assert suppressed, "the simulated night should leave some cells under k"
    assert {r["status"] for r in people} == {"published", "suppressed"}
    for row in suppressed:
        assert row["count"] == row["sum"] == row["distinct_devices"] == ""
    # a cell far above k is published (its noise would have to be below -100: e^-10 / 2)
    crowded = [r for r in people if seen.get((r["window_start"], r["zone"]), 0) >= k + 100]
    assert all(r["status"] == "published" for r in crowded)


def test_raw_zone_is_empty_after_the_run(run: Path) -> None:
    assert [p for p in (run / "raw").rglob("*") if p.is_file()] == []


def test_open_zone_holds_csv_and_dcat_catalog(run: Path) -> None:
    catalog = json.loads(next((run / "open").rglob("catalog.jsonld")).read_text())

    assert catalog["@type"] == "dcat:Catalog"
    assert catalog["dcat:dataset"][0]["dcat:distribution"]
    assert list((run / "open").rglob("*.csv"))


def test_no_identifier_reaches_any_zone_or_the_logs(run: Path, truth: dict[str, Any]) -> None:
    # Given every identifier the simulated hubs sent (MACs, DevEUIs, gateway EUIs, IPv6 base
    # names, chip ids, device names, thing names, the Meraki secret), in every spelling
    forbidden = set().union(*(spellings(i) for i in truth["identifiers"]))
    # When every object of every zone and every log line of the run is read
    files = [p for zone in ZONES for p in (run / zone).rglob("*") if p.is_file()]
    files.append(run / "logs.jsonl")
    texts = {p: text_of(p) for p in files}
    # Then none holds any of them
    assert forbidden
    assert any("quarantine" in str(p) for p in texts), "rejected messages are quarantined"
    leaks = [
        (str(p.relative_to(run)), i) for p, text in texts.items() for i in forbidden if i in text
    ]
    assert leaks == [], f"{len(leaks)} identifiers leaked"  # names files, never identifiers


def test_the_csv_drops_went_through_the_ingest_function(run: Path) -> None:
    lineage = [
        json.loads(p.read_text()) for p in (run / "audit").rglob("velden/lineage/ingest/*.json")
    ]
    dropped = [r for r in lineage if r["input"]["key"].startswith("inbox/velden/csv/loop-export/")]
    assert dropped and all(r["counts"]["accepted"] > 0 for r in dropped)


def test_every_message_delivered_twice_gives_byte_identical_open_data(
    tmp_path: Path, run: Path, recorded: Path, keys_dir: Path
) -> None:
    options = ReplayOptions(batch_payloads=2_000, keys_dir=keys_dir, faults=Faults(duplicate=1.0))

    replay(CITY_FILE, recorded, tmp_path, options)

    assert open_tree(tmp_path) == open_tree(run)
    twice, once = report_of(tmp_path), report_of(run)
    assert twice["balanced"]
    assert {k: twice[k] for k in ("received", "accepted", "duplicates", "quarantined")} == {
        k: once[k] for k in ("received", "accepted", "duplicates", "quarantined")
    }


def test_the_scaleway_entry_points_give_the_same_open_data(
    tmp_path: Path, run: Path, recorded: Path, keys_dir: Path
) -> None:
    # Given the same input replayed through the Scaleway entry points: a queue trigger
    # POSTing one message per request, retrying a status >= 300 (ingest's queue drained by
    # its CRON)
    options = ReplayOptions(batch_payloads=2_000, keys_dir=keys_dir, platform="scaleway")
    # When the run is over
    report = replay(CITY_FILE, recorded, tmp_path, options)
    # Then the books balance and the open data is byte for byte the AWS entry points'
    assert report["balanced"]
    assert report["dead_lettered"] == 0
    assert open_tree(tmp_path) == open_tree(run)


@pytest.mark.localstack
@pytest.mark.xdist_group("localstack")
def test_localstack_gives_the_same_open_data(
    tmp_path: Path, run: Path, recorded: Path, keys_dir: Path, localstack: Any
) -> None:
    options = ReplayOptions(
        backend="localstack",
        batch_payloads=2_000,
        keys_dir=keys_dir,
        localstack_endpoint=localstack.settings.endpoint_url,
        name_prefix=f"e2e{uuid.uuid4().hex[:8]}-",  # LocalStack may be shared by other runs
    )

    report = replay(CITY_FILE, recorded, tmp_path, options)

    assert report["backend"] == "localstack"
    assert report["balanced"]
    assert [p for p in (tmp_path / "raw").rglob("*") if p.is_file()] == []
    assert open_tree(tmp_path) == open_tree(run)


def test_the_register_and_every_notice_are_public_before_any_hub_sends(
    tmp_path: Path, city: City
) -> None:
    # Given a stack just deployed, and hubs that look at the open zone before they send
    published: set[str] = set()

    def hubs(session: Session) -> Played:
        store, names = session.deps.store, session.deps.names
        published.update(i.key for i in store.list(names.bucket(Zone.OPEN), "open/velden/"))
        return Played(0)

    # When the stack runs
    report = run_local(CITY_FILE, tmp_path, ReplayOptions(), hubs)
    # Then the register and a notice for every sensor were public before the first message
    notices = {k for k in published if k.startswith("open/velden/register/notices/")}
    assert len(notices) == len(city.registry.devices)
    assert "open/velden/register/sensors.html" in published
    assert report["seconds"]["deploy"] > 0


def test_demo_command_runs_the_main_job(tmp_path: Path) -> None:
    code = main(["demo", "--out", str(tmp_path), "--hours", "0.5", "--scale", "0.02"])

    assert code == 0
    assert report_of(tmp_path)["balanced"]
    assert list((tmp_path / "open").rglob("*.csv"))
