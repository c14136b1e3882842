"""ingest: payloads in, observations grouped per (source, hour) or quarantined with a reason."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_event
from unit_support import lines, senml_reading, wifi_observation

from citypipe.config import City
from citypipe.domain import Function, TerminalError, Zone
from citypipe.ingest import MAX_PAYLOAD_BYTES, drop_message, ingest_webhook, normalize
from citypipe.stage import Deps

HOUR_10 = datetime(2026, 6, 1, 10, tzinfo=UTC)


def _raw(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload)


# --- normalize: the pure core --------------------------------------------------------------


def test_the_senml_fixture_normalizes_to_the_expected_raw_records(city: City) -> None:
    # Given the SenML fixture and the raw records it should give
    expected = load_event("expected/senml_pack.raw.json")
    # When it is normalized
    result = normalize(city, "senml", lines(load_event("senml_pack.json")))
    # Then the records are exactly the expected ones, in one (source, hour) partition
    assert [
        {"source": source, "hour": hour.strftime("%Y-%m-%dT%H:%M:%SZ"), "records": rows}
        for (source, hour), rows in result.by_partition.items()
    ] == expected["partitions"]
    assert dict(result.reasons) == expected["quarantined"]


def test_readings_are_grouped_per_source_and_hour(city: City) -> None:
    # Given air quality readings at 10:00 and 11:00 and Wi-Fi readings at 10:xx
    air_10 = senml_reading(t=0)
    air_11 = senml_reading(t=3600)
    wifi = load_event("canonical_wifi.json")
    # When each format is normalized
    air = normalize(city, "senml", lines(air_10, air_11))
    people = normalize(city, "canonical", lines(wifi))
    # Then each (source, hour) is its own partition
    assert {k: len(v) for k, v in air.by_partition.items()} == {
        ("air-quality", HOUR_10): 1,
        ("air-quality", HOUR_10.replace(hour=11)): 1,
    }
    assert {k: len(v) for k, v in people.by_partition.items()} == {("wifi-counters", HOUR_10): 4}


def test_an_accepted_observation_is_in_utc_with_its_controlled_quantity(city: City) -> None:
    result = normalize(city, "canonical", lines(wifi_observation()))
    [record] = result.by_partition[("wifi-counters", HOUR_10)]
    assert record["observed_at"] == "2026-06-01T10:03:17.000000Z"
    assert (record["quantity"], record["unit"]) == ("people.presence", "{device}")


def test_the_hub_unit_is_mapped_to_the_ucum_unit(city: City) -> None:
    # Given a traffic counter reporting in the hub's unit "count"
    pack = [
        {"bn": "tc-113/", "bt": 1780308000},
        {"n": "lat", "u": "lat", "v": 51.4312},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": "vehicles", "u": "count", "v": 12},
    ]
    # When it is normalized
    result = normalize(city, "senml", lines(pack))
    # Then the reading is stored in the controlled quantity's UCUM unit
    [record] = result.by_partition[("traffic-counters", HOUR_10)]
    assert (record["quantity"], record["unit"], record["value"]) == (
        "traffic.vehicles",
        "{vehicle}",
        12.0,
    )


@pytest.mark.parametrize(
    ("fmt", "payload", "reason"),
    [
        ("canonical", '{"sensor": "wifi-012", ', "invalid_json"),
        ("senml", "not json at all", "invalid_json"),
        ("senml", "x" * (MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
        ("canonical", '"' + "é" * (MAX_PAYLOAD_BYTES // 2) + '"', "payload_too_large"),
        ("senml", {"bn": "aq-007/"}, "invalid_payload"),
        ("senml", [{"bn": "aq-007/", "bt": 1780308000}], "no_readings"),
        ("canonical", wifi_observation(sensor="cam-001"), "unknown_sensor"),
        (
            "senml",
            [{"bn": "wifi-012/", "bt": 1780308000, "n": "people.presence", "v": 1}],
            "unknown_sensor",
        ),
        ("senml", senml_reading("co2"), "unknown_quantity"),
        ("senml", senml_reading(u="ppm"), "unit_mismatch"),
        ("canonical", wifi_observation(unit="devices"), "unit_mismatch"),
        (
            "canonical",
            wifi_observation(personal={"device_mac": "AA:BB:CC:DD:EE:01", "imsi": "26201123"}),
            "undeclared_personal_field",
        ),
        ("canonical", wifi_observation(personal={"rssi": -67}), "missing_personal_field"),
        ("canonical", wifi_observation(location=None), "missing_location"),
        (
            "senml",
            [{"bn": "aq-007/", "bt": 1780308000, "bu": "ug/m3", "n": "no2", "v": 1}],
            "missing_location",
        ),
        ("canonical", wifi_observation(location=[200.0, 51.43]), "invalid_observation"),
        ("canonical", wifi_observation(location=None, zone=5), "invalid_observation"),
        ("senml", senml_reading(t=-60, bt=0), "relative_time"),
        ("canonical", wifi_observation(observed_at="2026-06-01T10:03:17"), "invalid_time"),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "payload-over-256-kib",
        "payload-over-256-kib-in-utf8-bytes",
        "senml-object-not-pack",
        "senml-base-fields-only",
        "sensor-in-no-source",
        "sensor-of-another-format",
        "quantity-not-declared",
        "senml-unit-mismatch",
        "canonical-unit-mismatch",
        "undeclared-personal-field",
        "subject-field-missing",
        "canonical-without-location-or-zone",
        "senml-without-position",
        "longitude-out-of-range",
        "zone-not-a-string",
        "relative-senml-time",
        "time-without-offset",
    ],
)
def test_a_bad_payload_is_quarantined_with_its_reason(
    city: City, fmt: str, payload: Any, reason: str
) -> None:
    # When a bad payload is normalized
    result = normalize(city, fmt, [_raw(payload)])
    # Then nothing is accepted and the one quarantine row says why
    assert result.accepted == 0
    assert [q["reason"] for q in result.quarantine] == [reason]
    assert dict(result.reasons) == {reason: 1}
    assert result.quarantine[0]["detail"]


def test_a_quarantine_row_keeps_the_line_and_the_payload_as_received(city: City) -> None:
    batch = lines(wifi_observation(), "{broken")
    result = normalize(city, "canonical", batch)
    assert result.quarantine == [
        {
            "reason": "invalid_json",
            "detail": result.quarantine[0]["detail"],
            "line": 2,
            "payload": "{broken",
        }
    ]


def test_an_oversized_payload_is_kept_only_in_part(city: City) -> None:
    result = normalize(city, "senml", ["x" * (MAX_PAYLOAD_BYTES + 1)])
    assert len(result.quarantine[0]["payload"]) == 1024


def test_every_reading_received_is_accepted_or_quarantined(city: City) -> None:
    # Given a batch mixing good payloads, bad payloads and a pack with a bad record
    batch = lines(
        wifi_observation(),
        "{broken",
        wifi_observation(sensor="cam-001"),
        [wifi_observation(), wifi_observation(value="many"), wifi_observation(location=None)],
        load_event("canonical_wifi.json"),
    )
    # When it is normalized
    result = normalize(city, "canonical", batch)
    # Then the ledger balances: received = accepted + quarantined
    assert result.payloads == 5
    assert result.accepted == 6
    assert len(result.quarantine) == 4
    assert result.received == result.accepted + len(result.quarantine) == 10


def test_blank_lines_are_not_payloads(city: City) -> None:
    result = normalize(city, "canonical", ["", "  ", *lines(wifi_observation()), "\t"])
    assert (result.payloads, result.received, result.accepted) == (1, 1, 1)


def test_an_unknown_format_is_a_terminal_error(city: City) -> None:
    with pytest.raises(TerminalError) as error:
        normalize(city, "xml", ["<reading/>"])
    assert error.value.reason == "unknown_format"


# --- ingest_webhook: inline processing of a hub's HTTP push ---------------------------------


def test_a_good_webhook_push_is_accepted_with_its_counts(memory_deps: Deps) -> None:
    # Given the SenML fixture as a request body
    body = json.dumps(load_event("senml_pack.json"))
    # When a hub pushes it
    status, response = ingest_webhook(memory_deps, "senml", body)
    # Then it is accepted, counted, and written to the raw zone for anonymize
    assert (status, response) == (202, {"accepted": 6, "quarantined": 0, "rejected": []})
    raw = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW), "raw/velden/"))
    assert len(raw) == 1
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


def test_a_webhook_push_with_nothing_usable_is_a_400_with_every_reason(
    memory_deps: Deps,
) -> None:
    body = json.dumps(senml_reading(u="ppm"))
    status, response = ingest_webhook(memory_deps, "senml", body)
    assert status == 400
    assert response["error"] == "no_usable_reading"
    assert [r["reason"] for r in response["rejected"]] == ["unit_mismatch"]


def test_a_rejected_webhook_push_is_quarantined_all_the_same(memory_deps: Deps) -> None:
    ingest_webhook(memory_deps, "senml", json.dumps(senml_reading(u="ppm")))
    quarantine = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(quarantine, "quarantine/velden/ingest/")
    rows = gzip.decompress(memory_deps.store.get(quarantine, info.key).body).decode().splitlines()
    assert [json.loads(r)["reason"] for r in rows] == ["unit_mismatch"]


def test_a_webhook_push_of_json_lines_accepts_the_good_and_lists_the_bad(
    memory_deps: Deps,
) -> None:
    body = "\n".join(lines(wifi_observation(), wifi_observation(sensor="cam-001")))
    status, response = ingest_webhook(memory_deps, "canonical", body)
    assert status == 202
    assert (response["accepted"], response["quarantined"]) == (1, 1)
    assert response["rejected"][0]["reason"] == "unknown_sensor"
    assert response["rejected"][0]["line"] == 2


def test_a_pretty_printed_webhook_push_is_one_payload(memory_deps: Deps) -> None:
    body = json.dumps(load_event("canonical_wifi.json"), indent=2)
    status, response = ingest_webhook(memory_deps, "canonical", body)
    assert (status, response["accepted"]) == (202, 4)


def test_a_webhook_push_in_an_unknown_format_is_a_404(memory_deps: Deps) -> None:
    status, response = ingest_webhook(memory_deps, "xml", "<reading/>")
    assert (status, response["error"]) == (404, "unknown_format")


@pytest.mark.parametrize(
    "body",
    ["", "null", "[]", "{}", "[1, 2", "\x00\x01\x02", "💥", '{"bn": "aq-007/"}\n42\n"x"'],
    ids=["empty", "null", "empty-pack", "object", "truncated", "binary", "emoji", "mixed-lines"],
)
def test_a_garbage_webhook_push_is_a_400_never_an_exception(memory_deps: Deps, body: str) -> None:
    status, response = ingest_webhook(memory_deps, "senml", body)
    assert status == 400
    assert response["error"] == "no_usable_reading"


# --- drop_message: the edge that keeps payloads as received ---------------------------------


def test_the_same_batch_dropped_twice_is_stored_once_under_one_key(memory_deps: Deps) -> None:
    # Given a batch of payloads
    batch = lines(*load_event("canonical_wifi.json"))
    # When it is dropped twice
    first = drop_message(memory_deps, "canonical", batch)
    second = drop_message(memory_deps, "canonical", batch)
    # Then both messages name the same object, and the inbox holds one object
    assert (first.key, first.etag) == (second.key, second.etag)
    inbox = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW), "inbox/"))
    assert [i.key for i in inbox] == [first.key]


def test_different_batches_are_stored_under_different_keys(memory_deps: Deps) -> None:
    first = drop_message(memory_deps, "canonical", lines(wifi_observation()))
    second = drop_message(memory_deps, "canonical", lines(wifi_observation(value=2)))
    assert first.key != second.key


def test_a_drop_message_is_a_claim_check_for_ingest(memory_deps: Deps) -> None:
    message = drop_message(memory_deps, "senml", lines(load_event("senml_pack.json")), "trace-1")
    assert message.key.startswith("inbox/velden/senml/")
    assert (message.stage, message.bucket, message.format) == ("inbox", "velden-raw", "senml")
    assert (message.records, message.trace_id) == (1, "trace-1")


def test_a_dropped_batch_is_kept_as_received(memory_deps: Deps) -> None:
    batch = ['{"sensor":  "wifi-012"}', "{broken"]
    message = drop_message(memory_deps, "canonical", batch)
    body = memory_deps.store.get(message.bucket, message.key).body
    assert gzip.decompress(body).decode().splitlines() == batch
