"""A partner end to end (issue 21), on the embedded backend: its source feeds only the
datasets it permits; its withdrawal removes its contribution from every published day — the
files published again are those of a run that never had it, at the same keys (with the same
release secret) — and the books balance before and after; the catalogue, with provenance
and policies, conforms to DCAT-AP 3.0.1."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from validation import DCAT_AP, shacl_report

from citypipe.domain.city import City
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # replays: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
PARTNER = "velden-mobility"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("input")
    simulate(city, directory, hours=2.0, seed=11, scale=0.1)
    return directory


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


def run(factory: pytest.TempPathFactory, recorded: Path, keys: Path, **options: Any) -> Path:
    out = factory.mktemp("out")
    report = replay(
        CITY_FILE, recorded, out, ReplayOptions(batch_payloads=2_000, keys_dir=keys, **options)
    )
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, recorded: Path, keys_dir: Path) -> Path:
    return run(tmp_path_factory, recorded, keys_dir)


@pytest.fixture(scope="module")
def withdrawn(tmp_path_factory: pytest.TempPathFactory, recorded: Path, keys_dir: Path) -> Path:
    return run(tmp_path_factory, recorded, keys_dir, withdraw_after=(PARTNER,))


@pytest.fixture(scope="module")
def never(tmp_path_factory: pytest.TempPathFactory, recorded: Path, keys_dir: Path) -> Path:
    return run(tmp_path_factory, recorded, keys_dir, withdrawn=(PARTNER,))


def data_files(out: Path) -> dict[str, bytes]:
    """Every dataset's daily files (the records, catalogue and portal say versions too)."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted((out / "open").rglob("date=*/*"))
        if p.is_file()
    }


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def csv_rows(out: Path, theme: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted((out / "open").rglob(f"{theme}/date=*/*.csv")):
        rows += list(csv.DictReader(io.StringIO(path.read_text())))
    return rows


def test_a_partners_source_feeds_only_the_datasets_it_permits(shared: Path) -> None:
    lineage = [json.loads(p.read_text()) for p in (shared / "audit").rglob("lineage/ingest/*.json")]
    partner_raw = [
        o["key"] for r in lineage for o in r["outputs"] if "/operator-counters/" in o["key"]
    ]
    assert partner_raw  # its CSV drops came in
    graph = rdflib.Graph().parse(shared / "open" / "velden" / "catalog.jsonld", format="json-ld")
    odrl = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
    with_policy = {str(s).rsplit("/", 1)[-1] for s in graph.subjects(odrl.hasPolicy, None)
                   if "/datasets/" in str(s)}  # fmt: skip
    assert with_policy == {"traffic-flow"}


def test_the_catalogue_with_provenance_and_policies_conforms_to_dcat_ap(shared: Path) -> None:
    graph = rdflib.Graph().parse(shared / "open" / "velden" / "catalog.jsonld", format="json-ld")
    prov = rdflib.Namespace("http://www.w3.org/ns/prov#")
    assert len(set(graph.subjects(prov.wasDerivedFrom, None))) >= 3
    conforms, report = shacl_report(graph, DCAT_AP)
    assert conforms, report
    assert (shared / "open" / "velden" / "partners" / f"{PARTNER}.jsonld").is_file()
    assert (shared / "open" / "velden" / "partners" / f"{PARTNER}.md").is_file()


def test_a_withdrawal_publishes_every_day_again_as_a_run_that_never_had_the_partner(
    shared: Path, withdrawn: Path, never: Path
) -> None:
    # the partner's contribution was published
    assert data_files(shared) != data_files(never)
    # once withdrawn, every dataset's files are those of a run that never had it, same keys
    assert data_files(withdrawn) == data_files(never)
    # each day that held it is a new version
    records = sorted((withdrawn / "open").rglob("versions/traffic-flow/*.json"))
    assert records and all(json.loads(p.read_text())["version"] == 2 for p in records)
    assert all(json.loads(p.read_text())["history"][-1]["note"] for p in records)
    # nothing of it is left in the clean and aggregate zones
    for zone in ("clean", "aggregates"):
        assert not [p for p in (withdrawn / zone).rglob("*") if "operator-counters" in str(p)]


def test_the_books_balance_before_and_after_and_the_audit_zone_says_what_was_done(
    shared: Path, withdrawn: Path, never: Path
) -> None:
    before, after, refused = report_of(shared), report_of(withdrawn), report_of(never)
    assert before["balanced"] and after["balanced"] and refused["balanced"]
    assert after["published_cells"] < before["published_cells"]
    [run_record] = list((withdrawn / "audit").rglob(f"withdrawn/{PARTNER}/*.json"))
    done = json.loads(run_record.read_text())
    assert done["readings"] > 0 and done["days"] and done["aggregates"] and done["clean"]
    assert list((withdrawn / "audit").rglob(f"withdrawals/{PARTNER}.json"))
    # a run that never had the partner: its readings refused at the edge, with a reason
    assert refused["quarantined"].get("partner_withdrawn", 0) > 0
    assert "partner_withdrawn" not in before["quarantined"]
