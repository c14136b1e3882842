"""The simulator: deterministic payloads whose truth agrees with what the pipeline computes."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from citypipe.core.aggregate import cells, merge_partials, partial_of
from citypipe.core.anonymize import anonymize_records
from citypipe.core.ingest import normalize
from citypipe.domain.city import City, load_city
from citypipe_local.simulate import SimulationSummary, simulate

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
MAC = re.compile(r"[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}")
REASONS = {
    "invalid_json",
    "unknown_sensor",
    "unknown_quantity",
    "unit_mismatch",
    "relative_time",
    "missing_personal_field",
}


@pytest.fixture(scope="module")
def city() -> City:
    return load_city(CITY_FILE)


@pytest.fixture(scope="module")
def run(city: City, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("sim")
    return out, _small(city, out)


def _small(city: City, out: Path) -> SimulationSummary:
    """One hour at 5 % scale, with a high bad rate so that every spoil kind shows."""
    return simulate(city, out, hours=1, scale=0.05, bad_rate=0.05)


def _truth(out: Path) -> dict[str, Any]:
    return json.loads((out / "truth.json").read_text())  # type: ignore[no-any-return]


def _lines(out: Path, fmt: str) -> list[str]:
    return (out / f"{fmt}.jsonl").read_text().splitlines()


def test_same_seed_gives_identical_files(city: City, tmp_path: Path) -> None:
    # Given two runs with the same arguments
    _small(city, tmp_path / "a")
    _small(city, tmp_path / "b")

    # Then every file is byte for byte the same
    for name in ("senml.jsonl", "canonical.jsonl", "truth.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_seed_gives_another_day(city: City, tmp_path: Path) -> None:
    # Given runs with different seeds
    simulate(city, tmp_path / "a", hours=0.25, scale=0.05, seed=1)
    simulate(city, tmp_path / "b", hours=0.25, scale=0.05, seed=2)

    # Then the payloads differ
    a = (tmp_path / "a" / "senml.jsonl").read_bytes()
    assert a != (tmp_path / "b" / "senml.jsonl").read_bytes()


def test_truth_totals_match_ingest(city: City, run: tuple[Path, SimulationSummary]) -> None:
    # Given a simulated hour with spoiled payloads
    out, summary = run
    truth = _truth(out)

    # When ingest normalizes both files
    received = accepted = 0
    reasons: Counter[str] = Counter()
    for fmt in ("senml", "canonical"):
        result = normalize(city, fmt, _lines(out, fmt))
        received += result.received
        accepted += result.accepted
        reasons.update(result.reasons)

    # Then its ledger is the truth's, every spoil kind included
    assert received == truth["readings"] == summary.readings
    assert accepted == truth["accepted"]
    assert dict(reasons) == truth["quarantined"] == summary.quarantined
    assert set(reasons) == REASONS


def test_payload_counts_are_the_lines_written(run: tuple[Path, SimulationSummary]) -> None:
    # Given a simulated hour
    out, summary = run

    # Then the counts are the lines in the files, and the truth agrees
    for fmt, path in summary.files.items():
        assert path == out / f"{fmt}.jsonl"
        assert summary.payloads[fmt] == len(_lines(out, fmt)) > 0
    assert _truth(out)["payloads"] == summary.payloads


def test_payloads_are_compact_json(run: tuple[Path, SimulationSummary]) -> None:
    # Given a simulated hour
    out, _ = run

    # Then every parsable line is compact JSON, as a hub sends it
    for fmt in ("senml", "canonical"):
        for line in _lines(out, fmt):
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue  # a truncated payload, on purpose
            assert json.dumps(document, separators=(",", ":")) == line


def test_every_emitted_mac_is_an_identifier(run: tuple[Path, SimulationSummary]) -> None:
    # Given a simulated hour of Wi-Fi detections
    out, summary = run
    identifiers = _truth(out)["identifiers"]

    # When the MACs are read back from the payloads
    emitted = {m.group(0) for line in _lines(out, "canonical") for m in MAC.finditer(line)}

    # Then the truth lists exactly those, sorted, in both vendor spellings
    assert set(identifiers) == emitted
    assert identifiers == sorted(identifiers)
    assert summary.identifiers == len(identifiers)
    assert any(":" in m and m.isupper() for m in emitted)
    assert any("-" in m and m.islower() for m in emitted)


def test_cells_sum_to_accepted(run: tuple[Path, SimulationSummary]) -> None:
    # Given a simulated hour
    out, summary = run
    truth = _truth(out)

    # Then every accepted reading is in exactly one cell
    assert sum(cell["count"] for cell in truth["cells"]) == truth["accepted"]
    assert summary.cells == len(truth["cells"])


def test_cells_match_anonymize_and_aggregate(
    city: City, run: tuple[Path, SimulationSummary]
) -> None:
    # Given a simulated hour, ingested
    out, _ = run
    records = []
    for fmt in ("senml", "canonical"):
        for rows in normalize(city, fmt, _lines(out, fmt)).by_partition.values():
            records.extend(rows)

    # When the pipeline's own anonymize and aggregate cores run over it
    clean = anonymize_records(city, records, lambda sensor, day: f"{sensor}/{day}".encode())
    merged = cells(merge_partials([partial_of(clean.table())]))

    # Then they find the truth's cells
    found = {(c.window_start.strftime("%Y-%m-%dT%H:%M:%SZ"), c.zone, c.quantity): c for c in merged}
    truth_cells = _truth(out)["cells"]
    assert len(found) == len(truth_cells)
    for cell in truth_cells:
        row = found[cell["window_start"], cell["zone"], cell["quantity"]]
        assert (row.unit, row.count) == (cell["unit"], cell["count"])
        assert (row.min, row.max) == (cell["min"], cell["max"])
        assert row.sum == pytest.approx(cell["sum"], abs=1e-6)
        assert row.distinct_devices == cell["distinct_devices"]
        assert row.min_people == cell["min_distinct_people"]


def test_scaled_run_has_publishable_and_suppressed_people_cells(
    city: City, run: tuple[Path, SimulationSummary]
) -> None:
    # Given a small simulated hour
    out, _ = run

    # Then some people cells reach k distinct devices and some do not
    people = [c["distinct_devices"] for c in _truth(out)["cells"] if c["distinct_devices"]]
    assert any(n >= city.disclosure.k for n in people)
    assert any(n < city.disclosure.k for n in people)
