"""ingest: payloads in, observations grouped per (source, hour) or quarantined with a reason."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import load_event
from pydantic import ValidationError
from unit_support import lines, senml_reading, wifi_observation

from citypipe.core.formats import PARSERS, Reading, Rejection
from citypipe.core.ingest import MAX_DETAILS, MAX_PAYLOAD_BYTES, normalize
from citypipe.domain.books import IngestCounts
from citypipe.domain.city import City
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Function, Message, Observation, Zone
from citypipe.service.ingest import drop_message, ingest_drop, ingest_webhook
from citypipe.service.stage import Deps

HOUR_10 = datetime(2026, 6, 1, 10, tzinfo=UTC)
T0 = 1780308000  # 2026-06-01T10:00:00Z, the base time of senml_reading
LONG_INTEGER = "1" * 5000  # past Python's 4,300-digit limit on int("...")
SENML_LONG_INTEGER = f'[{{"bn": "aq-007/", "bt": {T0}, "n": "no2", "v": {LONG_INTEGER}}}]'
DEEP_NESTING = "[" * 100_000 + "]" * 100_000  # past the recursion limit, under 256 KiB


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
        ("senml", SENML_LONG_INTEGER, "invalid_payload"),
        ("canonical", DEEP_NESTING, "invalid_payload"),
        ("canonical", wifi_observation(value=10**400), "invalid_value"),
        ("senml", senml_reading(value=10**400), "invalid_value"),
        (
            "canonical",
            wifi_observation(observed_at="0001-01-01T00:00:00+01:00"),
            "implausible_time",
        ),
        (
            "canonical",
            wifi_observation(observed_at="9999-12-31T23:59:59-05:00"),
            "implausible_time",
        ),
        ("canonical", wifi_observation(observed_at="0999-06-01T10:00:00Z"), "implausible_time"),
        (
            "canonical",
            wifi_observation(observed_at="1999-12-31T23:59:59.999999Z"),
            "implausible_time",
        ),
        (
            "canonical",
            wifi_observation(observed_at="2000-01-01T00:30:00+01:00"),
            "implausible_time",
        ),
        ("canonical", wifi_observation(observed_at="2100-01-01T00:00:00Z"), "implausible_time"),
        ("senml", senml_reading(t=2**28 - T0), "implausible_time"),
        ("senml", senml_reading(t=10**11), "implausible_time"),
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
        "integer-of-5000-digits",
        "nesting-beyond-the-recursion-limit",
        "canonical-value-beyond-float-range",
        "senml-value-beyond-float-range",
        "year-1-with-an-offset",
        "year-9999-with-a-negative-offset",
        "year-999",
        "just-before-2000",
        "before-2000-in-utc-only",
        "from-2100",
        "senml-time-in-1978",
        "senml-time-in-year-5000",
    ],
)
def test_a_bad_payload_is_quarantined_with_its_reason(
    city: City, fmt: str, payload: Any, reason: str
) -> None:
    # When a bad payload is normalized
    result = normalize(city, fmt, [_raw(payload)])
    # Then nothing is accepted and the one quarantine row says why
    assert result.accepted == 0
    assert [q["rejected"] for q in result.quarantine] == [{reason: 1}]
    assert dict(result.reasons) == {reason: 1}
    assert [d["reason"] for d in result.quarantine[0]["details"]] == [reason]
    assert result.quarantine[0]["details"][0]["detail"]


@pytest.mark.parametrize(
    "observed_at",
    ["2000-01-01T00:00:00Z", "2000-01-01T00:30:00-01:00", "2099-12-31T23:59:59.999999Z"],
    ids=["first-instant-of-2000", "2000-in-utc-only", "last-instant-before-2100"],
)
def test_times_within_2000_to_2100_are_plausible(city: City, observed_at: str) -> None:
    result = normalize(city, "canonical", lines(wifi_observation(observed_at=observed_at)))
    assert (result.accepted, dict(result.reasons)) == (1, {})


def test_a_quarantine_row_keeps_the_line_and_the_payload_as_received(city: City) -> None:
    batch = lines(wifi_observation(), "{broken")
    result = normalize(city, "canonical", batch)
    assert result.quarantine == [
        {
            "line": 2,
            "payload": "{broken",
            "rejected": {"invalid_json": 1},
            "details": [
                {"reason": "invalid_json", "detail": result.quarantine[0]["details"][0]["detail"]}
            ],
        }
    ]


def test_a_pack_of_many_bad_readings_is_one_quarantine_row_counting_each(city: City) -> None:
    # Given one SenML pack of 6,000 readings of undeclared measures and one in a wrong unit
    pack = [
        *senml_reading(),
        *[{"n": f"x{i}", "v": 1} for i in range(6000)],
        {"n": "no2", "u": "ppm", "v": 1},
    ]
    # When it is normalized
    result = normalize(city, "senml", lines(pack))
    # Then the payload is kept once, with the readings counted per reason
    [row] = result.quarantine
    assert row["line"] == 1
    assert row["payload"] == lines(pack)[0]
    assert row["rejected"] == {"unknown_quantity": 6000, "unit_mismatch": 1}
    # And the books count readings
    assert dict(result.reasons) == {"unknown_quantity": 6000, "unit_mismatch": 1}
    assert (result.accepted, result.received) == (1, 6002)
    # And the row gives the first few distinct details, every reason among them
    assert len(row["details"]) <= MAX_DETAILS + 1
    assert len({(d["reason"], d["detail"]) for d in row["details"]}) == len(row["details"])
    assert {d["reason"] for d in row["details"]} == {"unknown_quantity", "unit_mismatch"}


def test_a_payload_that_breaks_its_parser_is_quarantined_whole(city: City) -> None:
    # Given a parser that reads an array of observations, then fails on something unforeseen
    def fragile(document: Any) -> Iterator[Reading | Rejection]:
        yield from PARSERS["canonical"](document)
        if isinstance(document, list):
            raise OverflowError("an input no one foresaw")

    batch = lines(wifi_observation(), [wifi_observation(), wifi_observation()])
    # When a batch is normalized with it
    result = normalize(city, "canonical", batch, parsers={"canonical": fragile})
    # Then the other payload is accepted and the failing one quarantined whole, nothing of
    # it accepted
    assert result.accepted == 1
    assert [(q["line"], q["rejected"]) for q in result.quarantine] == [(2, {"invalid_payload": 1})]
    assert result.received == 2


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
    assert sum(result.reasons.values()) == 4
    assert result.received == result.accepted + sum(result.reasons.values()) == 10
    # And each payload with a rejected reading is one quarantine row
    assert [q["line"] for q in result.quarantine] == [2, 3, 4]


def test_blank_lines_are_not_payloads(city: City) -> None:
    result = normalize(city, "canonical", ["", "  ", *lines(wifi_observation()), "\t"])
    assert (result.payloads, result.received, result.accepted) == (1, 1, 1)


def test_an_unknown_format_is_a_terminal_error(city: City) -> None:
    with pytest.raises(TerminalError) as error:
        normalize(city, "xml", ["<reading/>"])
    assert error.value.reason == "unknown_format"


# --- the observation ---------------------------------------------------------------------


def test_an_observation_at_a_time_out_of_range_is_a_validation_error() -> None:
    # Given a time UTC cannot hold (year 1 at +01:00 is year 0 in UTC)
    at = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    # When an observation is made of it, Then it is a validation error, not an overflow
    with pytest.raises(ValidationError):
        Observation(
            source="air-quality",
            sensor="aq-007",
            quantity="air.no2",
            unit="ug/m3",
            value=1.0,
            observed_at=at,
            zone="centrum",
        )


def test_an_observation_outside_2000_to_2100_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Observation(
            source="air-quality",
            sensor="aq-007",
            quantity="air.no2",
            unit="ug/m3",
            value=1.0,
            observed_at=datetime(1999, 12, 31, 23, tzinfo=UTC),
            zone="centrum",
        )


def test_a_record_time_is_iso_8601_in_utc_with_a_four_digit_year(city: City) -> None:
    observed_at = "2000-01-01T00:00:00.5+00:00"
    result = normalize(city, "canonical", lines(wifi_observation(observed_at=observed_at)))
    [[record]] = result.by_partition.values()
    assert record["observed_at"] == "2000-01-01T00:00:00.500000Z"
    assert datetime.fromisoformat(record["observed_at"]) == datetime.fromisoformat(observed_at)


# --- ingest_webhook: inline processing of a hub's HTTP push ---------------------------------


def test_a_good_webhook_push_is_accepted_with_its_counts(memory_deps: Deps) -> None:
    # Given the SenML fixture as a request body
    body = json.dumps(load_event("senml_pack.json"))
    # When a hub pushes it
    status, response = ingest_webhook(memory_deps, "air-quality", body)
    # Then it is accepted, counted, and written to the raw zone for anonymize
    assert (status, response) == (
        202,
        {"accepted": 6, "quarantined": 0, "reasons": {}, "rejected": [], "rejected_total": 0},
    )
    raw = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW), "raw/velden/"))
    assert len(raw) == 1
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


def test_a_webhook_push_with_nothing_usable_is_a_400_with_every_reason(
    memory_deps: Deps,
) -> None:
    body = json.dumps(senml_reading(u="ppm"))
    status, response = ingest_webhook(memory_deps, "air-quality", body)
    assert status == 400
    assert response["error"] == "no_usable_reading"
    assert [r["reason"] for r in response["rejected"]] == ["unit_mismatch"]


def test_a_400_lists_line_reason_count_and_detail_of_each_rejection(memory_deps: Deps) -> None:
    # Given a push of two payloads: a pack with two readings in a wrong unit, and garbage
    body = "\n".join(lines([*senml_reading(u="ppm"), {"n": "pm10", "u": "ppm", "v": 1}], "{x"))
    # When a hub pushes it
    status, response = ingest_webhook(memory_deps, "air-quality", body)
    # Then the sender is told, per line, each reason with its count and a detail
    assert status == 400
    assert [(r["line"], r["reason"], r["count"]) for r in response["rejected"]] == [
        (1, "unit_mismatch", 2),
        (2, "invalid_json", 1),
    ]
    assert all(r["detail"] for r in response["rejected"])


def test_a_webhook_push_of_a_time_out_of_range_is_a_400(memory_deps: Deps) -> None:
    body = json.dumps(wifi_observation(observed_at="0001-01-01T00:00:00+01:00"))
    status, response = ingest_webhook(memory_deps, "wifi-counters", body)
    assert status == 400
    assert [r["reason"] for r in response["rejected"]] == ["implausible_time"]


def test_a_rejected_webhook_push_is_quarantined_all_the_same(memory_deps: Deps) -> None:
    ingest_webhook(memory_deps, "air-quality", json.dumps(senml_reading(u="ppm")))
    quarantine = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(quarantine, "quarantine/velden/ingest/")
    rows = gzip.decompress(memory_deps.store.get(quarantine, info.key).body).decode().splitlines()
    assert [json.loads(r)["rejected"] for r in rows] == [{"unit_mismatch": 1}]


def test_a_webhook_push_of_json_lines_accepts_the_good_and_lists_the_bad(
    memory_deps: Deps,
) -> None:
    body = "\n".join(lines(wifi_observation(), wifi_observation(sensor="cam-001")))
    status, response = ingest_webhook(memory_deps, "wifi-counters", body)
    assert status == 202
    assert (response["accepted"], response["quarantined"]) == (1, 1)
    assert response["rejected"][0]["reason"] == "unknown_sensor"
    assert response["rejected"][0]["line"] == 2


def test_a_pretty_printed_webhook_push_is_one_payload(memory_deps: Deps) -> None:
    body = json.dumps(load_event("canonical_wifi.json"), indent=2)
    status, response = ingest_webhook(memory_deps, "wifi-counters", body)
    assert (status, response["accepted"]) == (202, 4)


def test_a_partly_rejected_webhook_push_counts_the_quarantined_readings(
    memory_deps: Deps,
) -> None:
    body = json.dumps([wifi_observation(), wifi_observation(value="x"), wifi_observation(x=1)])
    status, response = ingest_webhook(memory_deps, "wifi-counters", body)
    assert (status, response["accepted"], response["quarantined"]) == (202, 1, 2)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        "{}",
        "[1, 2",
        "\x00\x01\x02",
        "💥",
        '{"bn": "aq-007/"}\n42\n"x"',
        SENML_LONG_INTEGER,
        SENML_LONG_INTEGER.replace(", ", ",\n  "),
        DEEP_NESTING,
        json.dumps(senml_reading(value=10**400)),
    ],
    ids=[
        "empty",
        "null",
        "empty-pack",
        "object",
        "truncated",
        "binary",
        "emoji",
        "mixed-lines",
        "integer-of-5000-digits",
        "pretty-printed-integer-of-5000-digits",
        "nesting-beyond-the-recursion-limit",
        "value-beyond-float-range",
    ],
)
def test_a_garbage_webhook_push_is_a_400_never_an_exception(memory_deps: Deps, body: str) -> None:
    status, response = ingest_webhook(memory_deps, "air-quality", body)
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


def ingest_dropped(deps: Deps, message: Message) -> IngestCounts:
    """The counts ingest gives a dropped batch."""
    obj = deps.store.get(message.bucket, message.key)
    counts = ingest_drop(obj, message, deps, "test").counts
    assert isinstance(counts, IngestCounts)
    return counts


def test_a_pretty_printed_payload_dropped_in_the_inbox_is_one_payload(
    memory_deps: Deps,
) -> None:
    # Given the SenML fixture pretty-printed, as some hubs send it
    pretty = json.dumps(load_event("senml_pack.json"), indent=2)
    # When it is dropped in the inbox and ingested
    counts = ingest_dropped(memory_deps, drop_message(memory_deps, "senml", [pretty, "\r\n"]))
    # Then it is one payload of six readings, all accepted
    assert (counts.payloads, counts.accepted, counts.quarantined) == (1, 6, {})


def test_a_payload_with_a_unicode_line_separator_in_a_string_stays_one_payload(
    memory_deps: Deps,
) -> None:
    # Given an observation whose device MAC holds U+2028, raw (valid JSON inside a string)
    mac = "AA:BB:CC:DD:EE:01\u2028"
    payload = json.dumps(
        wifi_observation(personal={"device_mac": mac, "rssi": -67}), ensure_ascii=False
    )
    # When it is dropped and ingested
    counts = ingest_dropped(memory_deps, drop_message(memory_deps, "canonical", [payload]))
    # Then it is read as one payload, not split at the separator
    assert (counts.payloads, counts.accepted) == (1, 1)


def test_a_dropped_batch_is_kept_as_received(memory_deps: Deps) -> None:
    batch = ['{"sensor":  "wifi-012"}', "{broken"]
    message = drop_message(memory_deps, "canonical", batch)
    body = memory_deps.store.get(message.bucket, message.key).body
    assert gzip.decompress(body).decode().splitlines() == batch
