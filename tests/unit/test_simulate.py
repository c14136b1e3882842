"""The simulator: every hub of the example city, deterministic, and a truth that agrees with
what the pipeline's own cores compute from its captures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from unit_support import NOW, collections_seeing, watched

from citypipe.core.aggregate import cells, merge_partials, partial_of
from citypipe.core.anonymize import anonymize_records
from citypipe.core.decode import csv_payloads
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Normalized, Payload, normalize
from citypipe.core.people import capped_counts, contributions
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import City, load_city
from citypipe.service.edge import Inbound, Route, prepare
from citypipe.service.kernel import Deps
from citypipe_local import replay as replay_module
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.replay import decoded, edge_batches, payloads_of, play_batch, taken
from citypipe_local.simulate import SimulationSummary, scaled_city, simulate

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"

REASONS = {
    "invalid_json",
    "invalid_encoding",
    "unknown_device",
    "unknown_field",
    "unit_mismatch",
    "out_of_range",
    "future_time",
    "missing_personal_field",
}
HUB_FORMATS = {
    "tts-v3", "chirpstack-v4", "chirpstack-v3", "aws-iot", "senml", "ngsi-ld",
    "sensor-community", "meraki", "telraam", "canonical",
}  # fmt: skip


@pytest.fixture(scope="module")
def run(city: City, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("sim")
    return out, _small(city, out)


def _small(city: City, out: Path) -> SimulationSummary:
    """Two hours at 5 % scale, with a high bad rate so that every spoil kind shows."""
    return simulate(city, out, hours=2, scale=0.05, bad_rate=0.05)


def cells_of_contributions(clean: Any) -> dict[tuple[str, str, str], int]:
    """Distinct devices per (window, zone, quantity) of clean rows, uncapped."""
    counted = capped_counts([contributions(clean, ["people.presence"])], 96 * 100, b"k")
    return {(s.strftime("%Y-%m-%dT%H:%M:%SZ"), z, q): n for (s, z, q), n in counted.items()}


def _truth(out: Path) -> dict[str, Any]:
    return json.loads((out / "truth.json").read_text())  # type: ignore[no-any-return]


def _ingested(city: City, out: Path) -> list[Normalized]:
    """Every capture and CSV drop through the normalization path, one key store."""
    keys = day_keys(InMemoryKeyStore(), city.slug)
    results = []
    for path in sorted(out.glob("*.jsonl")):
        lines = path.read_bytes().splitlines()
        results.append(
            normalize(city, FORMATS[path.stem], payloads_of(lines), now=NOW, key_for=keys)
        )
    for path in sorted((out / "drops" / "csv").glob("*/*.csv")):
        payloads = csv_payloads(city, path.read_bytes(), path.parent.name, NOW)
        results.append(normalize(city, FORMATS["csv"], payloads, now=NOW, key_for=keys))
    return results


def test_same_seed_gives_identical_files(city: City, tmp_path: Path) -> None:
    _small(city, tmp_path / "a")
    _small(city, tmp_path / "b")
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_seed_gives_another_day(city: City, tmp_path: Path) -> None:
    simulate(city, tmp_path / "a", hours=0.25, scale=0.05, seed=1)
    simulate(city, tmp_path / "b", hours=0.25, scale=0.05, seed=2)
    assert (tmp_path / "a" / "senml.jsonl").read_bytes() != (
        tmp_path / "b" / "senml.jsonl"
    ).read_bytes()


def test_every_hub_format_is_sent_and_csv_is_dropped(run: tuple[Path, SimulationSummary]) -> None:
    out, summary = run
    assert set(summary.files) == HUB_FORMATS
    assert list((out / "drops" / "csv" / "loop-export").glob("*.csv"))


def test_truth_totals_match_ingest(city: City, run: tuple[Path, SimulationSummary]) -> None:
    # Given two simulated hours with spoiled messages
    out, summary = run
    truth = _truth(out)
    # When ingest normalizes every capture and drop
    results = _ingested(city, out)
    reasons = sum((r.reasons for r in results), Counter())
    # Then its ledger is the truth's, every spoil kind included
    assert sum(r.received for r in results) == truth["readings"] == summary.readings
    assert sum(r.accepted for r in results) == truth["accepted"]
    assert sum(r.duplicates for r in results) == truth["duplicates"] > 0
    assert dict(reasons) == truth["quarantined"] == summary.quarantined
    assert set(reasons) == REASONS


def test_payload_counts_are_the_messages_sent(run: tuple[Path, SimulationSummary]) -> None:
    out, summary = run
    for fmt, path in summary.files.items():
        assert path == out / f"{fmt}.jsonl"
        assert summary.payloads[fmt] == len(path.read_bytes().splitlines()) > 0
    assert _truth(out)["payloads"] == summary.payloads


def test_every_emitted_mac_and_device_id_is_an_identifier_of_truth(
    run: tuple[Path, SimulationSummary], city: City
) -> None:
    out, _ = run
    identifiers = set(_truth(out)["identifiers"])
    clients = set()
    for line in (out / "meraki.jsonl").read_text().splitlines():
        try:
            post = json.loads(json.loads(line)["body"])
        except (KeyError, json.JSONDecodeError):
            continue  # spoiled on purpose
        clients |= {o["clientMac"] for o in post["data"]["observations"]}
    assert clients and clients <= identifiers
    registered = {
        d.id for d in city.registry.devices.values() if d.hub in ("lorawan", "senml", "meraki")
    }
    sent = {i for i in registered if any(i in p.read_text() for p in out.glob("*.jsonl"))}
    assert sent and sent <= identifiers


def test_cells_sum_to_accepted(run: tuple[Path, SimulationSummary]) -> None:
    out, summary = run
    truth = _truth(out)
    assert sum(cell["count"] for cell in truth["cells"]) == truth["accepted"]
    assert summary.cells == len(truth["cells"])


def test_cells_match_anonymize_and_aggregate(
    city: City, run: tuple[Path, SimulationSummary]
) -> None:
    # Given two simulated hours, ingested
    out, _ = run
    records = [r for result in _ingested(city, out) for r in result.records()]
    # When the pipeline's own anonymize and aggregate cores run over it
    clean = anonymize_records(city, records)
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
    # And the clean rows' day pseudonyms count the truth's distinct phones per zone cell
    people = cells_of_contributions(clean.table())
    assert people == {
        (c["window_start"], c["zone"], c["quantity"]): c["distinct_devices"]
        for c in truth_cells
        if c["distinct_devices"]
    }


def test_scaled_run_has_publishable_and_suppressed_people_cells(
    city: City, run: tuple[Path, SimulationSummary]
) -> None:
    out, _ = run
    people = [c["distinct_devices"] for c in _truth(out)["cells"] if c["distinct_devices"]]
    assert any(n >= city.disclosure.k for n in people)
    assert any(n < city.disclosure.k for n in people)


def test_a_scaled_city_registers_every_device_factor_times(tmp_path: Path) -> None:
    # Given the example city three times as large
    scaled = load_city(scaled_city(CITY_FILE, 3, tmp_path / "city"))
    original = load_city(CITY_FILE)
    # Then every device is there with two copies of it: same profile, hub and zone, a name
    # and hub id of their own (the registry refuses two devices with one id)
    assert len(scaled.registry.devices) == 3 * len(original.registry.devices)
    for name, device in original.registry.devices.items():
        copies = [scaled.registry.devices[n] for n in (name, f"{name}-c1", f"{name}-c2")]
        assert {(c.profile, c.hub) for c in copies} == {(device.profile, device.hub)}
        assert len({c.id for c in copies}) == 3
        zones = {scaled.device(c.hub, c.id).zone for c in copies}  # type: ignore[union-attr]
        assert zones == {original.device(device.hub, device.id).zone}  # type: ignore[union-attr]


def test_a_scaled_citys_hubs_send_readings_the_pipeline_accepts(tmp_path: Path) -> None:
    # Given twenty minutes of the example city twice as large
    scaled = load_city(scaled_city(CITY_FILE, 2, tmp_path / "city"))
    summary = simulate(scaled, tmp_path / "input", hours=1 / 3, scale=1.0)
    # When every capture goes through the normalization path with the scaled city
    results = _ingested(scaled, tmp_path / "input")
    # Then the copies' readings are accepted as the originals' are
    truth = _truth(tmp_path / "input")
    assert (
        sum(r.accepted for r in results)
        == truth["accepted"]
        == summary.readings - sum(truth["quarantined"].values()) - truth["duplicates"]
    )
    sensors = {row["sensor"] for r in results for row in r.records()}
    assert any(sensor.endswith("-c1") for sensor in sensors)


def test_the_replays_bridge_hands_the_edge_each_message_as_it_is_decoded(
    run: tuple[Path, SimulationSummary], memory_deps: Deps
) -> None:
    # Given the captures of every hub, merged into one batch as the replay's bridges send it
    out, _ = run
    lines = next(edge_batches(out, 1 << 62))
    keys = InMemoryKeyStore()
    # When the edge prepares it from the decoded list, and from the messages taken one at a
    # time from the batch (a worker's copy of it), each decoded as the edge asks for it
    listed = prepare(memory_deps, keys, Inbound(payloads_of(lines), Route.REPLAY))
    batch = list(lines)
    taken_one_by_one = prepare(memory_deps, keys, Inbound(decoded(taken(batch)), Route.REPLAY))
    # Then the edge would write the very same: identity, raw objects byte for byte, counts
    # and quarantine rows; and the batch is let go as it is read
    assert batch == []
    assert taken_one_by_one.ident == listed.ident
    assert taken_one_by_one.write.outcome == listed.write.outcome
    assert listed.normalized.payloads == len(lines) and listed.write.outcome.outputs


def test_the_replays_bridge_lets_a_batch_go_before_the_collector_wakes(
    run: tuple[Path, SimulationSummary], memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    admitted = watched(monkeypatch, replay_module, "admit", lambda result: result.normalized)
    out, _ = run
    lines = next(edge_batches(out, 50))
    sent = len(lines)
    # Given collections as eager as can be, when a worker plays a batch
    with collections_seeing(admitted) as seen:
        played = play_batch(memory_deps, InMemoryKeyStore(), lines)
    # Then the collector ran, but never while the batch was alive
    assert played == sent and len(admitted) == 1
    assert seen and not any(seen)


def test_an_inbound_read_once_cannot_be_prepared_again(
    run: tuple[Path, SimulationSummary], memory_deps: Deps
) -> None:
    """An ``Inbound`` built on an iterator is spent after one ``prepare``: a second would
    admit an empty batch and write its lineage, so it is refused."""
    out, _ = run
    lines = next(edge_batches(out, 50))
    inbound = Inbound(decoded(taken(list(lines))), Route.REPLAY)
    keys = InMemoryKeyStore()
    assert prepare(memory_deps, keys, inbound).normalized.payloads == len(lines)
    with pytest.raises(ValueError, match="read once"):
        prepare(memory_deps, keys, inbound)
    listed = Inbound(payloads_of(lines), Route.REPLAY)  # a list may be read again
    assert prepare(memory_deps, keys, listed).ident == prepare(memory_deps, keys, listed).ident


PINNED_BATCH = [  # a reading of aq-101 (SenML), a reading it refuses, a body that is no JSON
    json.dumps(
        [
            {"bn": "2001:db8:7e1d::65/", "bt": 1780308000, "bu": "ug/m3"},
            {"n": "no2", "v": 21.5},
            {"n": "no2", "v": "high"},
        ]
    ).encode(),
    b"{not json",
]


@pytest.mark.parametrize(
    ("salt", "ident"),
    [
        ("", "20f56bd8c2be961237cb9268"),  # as computed before decision 107 (b36bef5)
        ("bridge-7", "ccd488921876acdaf419c88e"),
    ],
)
def test_a_batchs_content_identity_is_pinned(memory_deps: Deps, salt: str, ident: str) -> None:
    """A batch without an identity of its own is known by its content: a retried batch
    is recognised by it, so a change that re-keys it (what is hashed, or in what order)
    would write every batch retried across the change twice. Pinned: a reading, a refused
    reading and a refused body (quarantine rows), with and without a sender's salt."""
    payloads = [
        Payload(body, Context(1780308060.0), number, fmt=FORMATS["senml"])
        for number, body in enumerate(PINNED_BATCH, start=1)
    ]
    batch = prepare(memory_deps, None, Inbound(payloads, Route.REPLAY, salt=salt))
    assert batch.normalized.quarantine and batch.write.outcome.outputs
    assert batch.ident == ident
