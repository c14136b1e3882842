"""ingest: the one normalization path every format shares, the edge that writes what it gives,
the webhook and drops. Each payload, line and reading is judged on its own."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from repo import load_event
from unit_support import NOW, lines, normalized, post, raw_rows, senml_reading, wifi_observation

from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import (
    MAX_DETAILS,
    MAX_PAYLOAD_BYTES,
    Payload,
    as_record,
    iso_utc,
    normalize,
)
from citypipe.domain.books import IngestCounts
from citypipe.domain.city import City
from citypipe.domain.limits import MAX_BODY_BYTES, MAX_DROP_BYTES
from citypipe.domain.model import Function, Message, Zone
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop, drop_lines
from citypipe_local.fakes import InMemoryKeyStore

T0 = 1780308000  # 2026-06-01T10:00:00Z, the base time of senml_reading
DEEP_NESTING = "[" * 100_000 + "]" * 100_000  # past any parser's depth, under 256 KiB
MAC = "AA:BB:CC:DD:EE:01"


def reasons(result: Any) -> dict[str, int]:
    return dict(result.reasons)


# --- the normalization path: what a reading becomes ---------------------------------------


def test_the_senml_fixture_normalizes_to_the_expected_raw_records(city: City) -> None:
    # Given the SenML fixture and the raw records it should give
    expected = load_event("expected/senml_pack.raw.json")
    # When it is normalized
    result = normalized(city, "senml", load_event("senml_pack.json"))
    # Then the records are exactly the expected ones, in one (source, day) partition: the
    # registered sensor and zone, no base name, no claimed position
    assert [
        {
            "source": source,
            "day": f"{datetime.fromtimestamp(day, UTC):%Y-%m-%dT%H:%M:%SZ}",
            "records": [as_record(row) for row in rows],
        }
        for (source, day), rows in result.by_partition.items()
    ] == expected["partitions"]
    assert reasons(result) == expected["quarantined"]


def test_a_raw_record_holds_no_hub_identifier_and_no_claimed_position(city: City) -> None:
    # Given a pack named by the device's IPv6 address, claiming a position
    result = normalized(city, "senml", senml_reading())
    # Then the record names the registered sensor and zone, nothing of the hub's
    [record] = raw_rows(result)
    assert record == {
        "source": "air-quality",
        "sensor": "aq-101",
        "quantity": "air.no2",
        "unit": "ug/m3",
        "value": 21.5,
        "observed_at": "2026-06-01T10:00:00.000000Z",
        "zone": "noord",
        "pseudonym": None,
    }


def test_readings_are_grouped_per_source_and_observation_day(city: City) -> None:
    # Given readings at 10:00, 11:00 and 10:00 the next day (T0 is 10:00 UTC)
    air = normalized(
        city, "senml", senml_reading(t=0), senml_reading(t=3600), senml_reading(t=86_400)
    )
    # Then the two hours of the first day share a partition; the next day has its own
    midnight = T0 - 10 * 3600
    assert sorted((s, d - midnight, len(rows)) for (s, d), rows in air.by_partition.items()) == [
        ("air-quality", 0, 2),
        ("air-quality", 86_400, 1),
    ]


def test_the_hub_unit_is_checked_and_the_ucum_unit_written(city: City) -> None:
    # Given a traffic counter reporting in its hub's unit "count"
    pack = [
        {"bn": "urn:dev:mac:0024befffe80000d/", "bt": T0, "n": "vehicles", "u": "count", "v": 12}
    ]
    # When it is normalized, Then the reading is in the quantity's UCUM unit
    [record] = raw_rows(normalized(city, "senml", pack))
    assert (record["sensor"], record["quantity"], record["unit"], record["value"]) == (
        "tc-013",
        "traffic.vehicles",
        "{vehicle}",
        12.0,
    )


def test_a_field_the_profile_ignores_is_no_reading(city: City) -> None:
    # The fixture sends lat and lon records: aq-senml ignores them
    result = normalized(city, "senml", load_event("senml_pack.json"))
    assert (result.received, result.accepted, reasons(result)) == (6, 6, {})


# --- reasons: each payload or reading judged alone ----------------------------------------


@pytest.mark.parametrize(
    ("fmt", "payload", "reason"),
    [
        ("canonical", '{"sensor": "wifi-22", ', "invalid_json"),
        ("senml", "not json at all", "invalid_json"),
        ("senml", b'[{"bn": "aq\xff-101/"}]', "invalid_encoding"),
        ("canonical", '{"personal": {"device_mac": "\\ud800"}}', "invalid_json"),
        ("senml", "x" * (MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
        ("senml", {"bn": "2001:db8:7e1d::65/"}, "invalid_payload"),
        ("senml", [{"bn": "2001:db8:7e1d::65/", "bt": T0}], "no_readings"),
        ("senml", [{"bn": "x/", "n": "no2", "v": 1, "bad_": 1}], "unsupported_extension"),
        ("canonical", wifi_observation(sensor="cam-001"), "unknown_device"),
        ("senml", [{"bn": "aq-EVIL-9999/", "bt": T0, "n": "no2", "v": 1}], "unknown_device"),
        ("senml", senml_reading("co2"), "unknown_field"),
        ("senml", senml_reading(u="ppm"), "unit_mismatch"),
        ("canonical", wifi_observation(unit="devices"), "unit_mismatch"),
        ("senml", senml_reading(value=1e308), "out_of_range"),
        ("senml", senml_reading(value=-1000), "out_of_range"),
        ("senml", senml_reading(value="12"), "invalid_value"),
        ("canonical", wifi_observation(value="many"), "invalid_value"),
        ("canonical", wifi_observation(value=10**400), "invalid_json"),
        ("senml", senml_reading(t=4_070_908_800 - T0), "future_time"),
        ("senml", senml_reading(t=NOW + 301 - T0), "future_time"),
        ("canonical", wifi_observation(observed_at="2099-06-01T10:00:00Z"), "future_time"),
        (
            "canonical",
            wifi_observation(observed_at="1999-12-31T23:59:59.999999Z"),
            "implausible_time",
        ),
        (
            "canonical",
            wifi_observation(observed_at="0001-01-01T00:00:00+01:00"),
            "implausible_time",
        ),
        ("canonical", wifi_observation(observed_at="2026-06-01T10:03:17"), "invalid_time"),
        ("canonical", wifi_observation(observed_at=[]), "invalid_time"),
        (
            "canonical",
            wifi_observation(personal={"device_mac": MAC, "imsi": "26201123"}),
            "undeclared_personal_field",
        ),
        ("canonical", wifi_observation(personal={"rssi": -67}), "missing_personal_field"),
        ("canonical", wifi_observation(personal={"device_mac": 42}), "invalid_identifier"),
        ("canonical", wifi_observation(x=1), "unknown_field"),
        ("canonical", DEEP_NESTING, "invalid_json"),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "a-non-utf8-byte",
        "a-lone-surrogate",
        "payload-over-256-kib",
        "senml-object-not-pack",
        "senml-base-fields-only",
        "senml-must-understand",
        "device-not-registered",
        "what-a-glob-once-let-in",
        "field-the-profile-lacks",
        "senml-unit-mismatch",
        "canonical-unit-mismatch",
        "1e308",
        "negative-count",
        "a-string-where-senml-needs-a-number",
        "a-word-for-a-number",
        "an-integer-beyond-a-double",
        "year-2099",
        "six-minutes-ahead-of-the-clock",
        "canonical-in-2099",
        "just-before-2000",
        "year-1-with-an-offset",
        "time-without-offset",
        "time-not-a-string",
        "undeclared-personal-field",
        "subject-field-missing",
        "subject-not-a-string",
        "unknown-canonical-field",
        "nesting-beyond-the-parsers-depth",
    ],
)
def test_a_bad_payload_or_reading_is_quarantined_with_its_reason(
    city: City, fmt: str, payload: Any, reason: str
) -> None:
    # When a bad payload is normalized
    result = normalized(city, fmt, payload)
    # Then nothing is accepted and the one quarantine row says why
    assert result.accepted == 0
    assert [q["rejected"] for q in result.quarantine] == [{reason: 1}]
    assert reasons(result) == {reason: 1}
    [detail] = result.quarantine[0]["details"]
    assert detail["reason"] == reason
    assert detail["detail"]


@pytest.mark.parametrize("fmt", ["tts-v3", "canonical", "ngsi-ld", "senml"])
def test_a_payload_nested_as_deep_as_json_allows_is_quarantined_not_a_crash(
    city: City, fmt: str
) -> None:
    # orjson reads 1,000 levels; Python's recursion limit is about as deep
    deep = "[" + '{"a":' * 1000 + "1" + "}" * 1000 + "]"
    result = normalized(city, fmt, deep)
    assert result.accepted == 0
    assert sum(result.reasons.values()) == 1


def test_a_quarantine_row_names_the_adapter_the_reason_and_the_json_path(city: City) -> None:
    pack = [*senml_reading(), {"n": "pm10", "u": "ppm", "v": 3}]
    [row] = normalized(city, "senml", pack).quarantine
    assert (row["line"], row["adapter"], row["rejected"]) == (1, "senml@2", {"unit_mismatch": 1})
    assert row["details"] == [
        {"reason": "unit_mismatch", "detail": "aq-101.pm10 is in 'ug/m3'", "path": "[4]"}
    ]


def test_a_payload_with_one_bad_reading_keeps_its_good_readings(city: City) -> None:
    # Given a pack of three readings, one of them out of range
    pack = [*senml_reading(), {"n": "pm10", "v": 1e308}, {"n": "pm25", "v": 7.5}]
    # When it is normalized
    result = normalized(city, "senml", pack)
    # Then two are accepted, one quarantined, and the payload is kept once (its shape)
    assert (result.accepted, reasons(result)) == (2, {"out_of_range": 1})
    assert len(result.quarantine) == 1


def test_a_pack_of_many_bad_readings_is_one_quarantine_row_counting_each(city: City) -> None:
    pack = [
        *senml_reading(),
        *[{"n": f"x{i}", "v": 1} for i in range(6000)],
        {"n": "no2", "u": "ppm", "v": 1, "t": 1},
    ]
    result = normalized(city, "senml", pack)
    [row] = result.quarantine
    assert row["rejected"] == {"unknown_field": 6000, "unit_mismatch": 1}
    assert (result.accepted, result.received) == (1, 6002)
    assert len(row["details"]) <= MAX_DETAILS + 1
    assert {d["reason"] for d in row["details"]} == {"unknown_field", "unit_mismatch"}


def test_every_reading_received_is_accepted_duplicate_or_quarantined(city: City) -> None:
    batch = lines(
        wifi_observation(),
        "{broken",
        wifi_observation(sensor="cam-001"),
        [wifi_observation(observed_at="2026-06-01T12:05:00+02:00"), wifi_observation(value="x")],
        load_event("canonical_wifi.json"),
    )
    result = normalized(city, "canonical", *batch)
    assert result.payloads == 5
    assert (result.accepted, result.duplicates, reasons(result)) == (
        5,
        1,
        {"invalid_json": 1, "unknown_device": 1, "invalid_value": 1},
    )
    assert result.received == result.accepted + result.duplicates + sum(result.reasons.values())


def test_one_non_utf8_line_of_a_drop_is_quarantined_alone(memory_deps: Deps) -> None:
    # Given a drop of 1,000 payloads, one of them with a byte that is not UTF-8
    good = [json.dumps(senml_reading(t=i)).encode() for i in range(999)]
    body = b"\n".join([*good, b'[{"bn": "\xe9"}]'])
    message = drop(memory_deps, "senml", "latin1.jsonl", body, 1000)
    # When ingest reads it
    outcome = partial(ingest_drop, keys=InMemoryKeyStore())(
        memory_deps.store.get(message.bucket, message.key), message, memory_deps, "t"
    )
    # Then 999 are accepted and the one line is quarantined for its encoding
    counts = outcome.counts
    assert isinstance(counts, IngestCounts)
    assert counts.payloads == 1000
    assert counts.quarantined == {"invalid_encoding": 1}
    assert counts.accepted == 999


def test_a_gzip_drop_that_inflates_past_the_bound_is_refused_unread(memory_deps: Deps) -> None:
    # Given a small gzip drop that inflates beyond the drop bound (a zip bomb)
    bomb = gzip.compress(b"\n" * (MAX_DROP_BYTES + 1), compresslevel=9)
    assert len(bomb) < 200_000
    message = drop(memory_deps, "senml", "bomb.jsonl.gz", bomb, 1)
    # When ingest runs it, Then it is quarantined whole without inflating it all
    from citypipe.service.stage import run_stage

    run_stage(Function.INGEST, message, memory_deps, partial(ingest_drop, keys=InMemoryKeyStore()))
    bucket = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(bucket, "quarantine/velden/ingest/")
    [row] = [
        json.loads(x)
        for x in gzip.decompress(memory_deps.store.get(bucket, info.key).body).splitlines()
    ]
    assert row["reason"] == "drop_too_large"


# --- duplicates: per reading, not per byte string --------------------------------------------


def test_a_re_serialized_pack_in_the_same_batch_counts_once(city: City) -> None:
    pack = load_event("senml_pack.json")
    result = normalized(city, "senml", json.dumps(pack), json.dumps(pack, indent=2, sort_keys=True))
    assert (result.accepted, result.duplicates, reasons(result)) == (6, 6, {})


def test_the_same_readings_sent_again_re_serialized_are_written_once(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a pack received once by the edge
    pack = load_event("senml_pack.json")
    ctx = Context(received_at=NOW)
    first = admit(
        memory_deps,
        memory_keys,
        Inbound([Payload(json.dumps(pack).encode(), ctx)], Route.REPLAY, FORMATS["senml"]),
    )
    # When the hub resends it, pretty-printed
    again = json.dumps(pack, indent=4).encode()
    second = admit(
        memory_deps, memory_keys, Inbound([Payload(again, ctx)], Route.REPLAY, FORMATS["senml"])
    )
    # Then the second is found done: one raw object, one lineage record, one notice
    assert (first.duplicate, second.duplicate) == (False, True)
    raw = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW), "raw/"))
    lineage = list(
        memory_deps.store.list(memory_deps.names.bucket(Zone.AUDIT), "lineage/velden/ingest/")
    )
    assert (len(raw), len(lineage)) == (1, 1)
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


def test_readings_of_one_device_at_another_time_are_no_duplicates(city: City) -> None:
    result = normalized(city, "senml", senml_reading(t=0), senml_reading(t=1))
    assert (result.accepted, result.duplicates) == (2, 0)


def test_two_devices_seen_at_the_same_second_are_two_readings(city: City) -> None:
    two = [wifi_observation(), wifi_observation(personal={"device_mac": "AA:BB:CC:DD:EE:02"})]
    assert normalized(city, "canonical", two).accepted == 2


# --- the webhook ------------------------------------------------------------------------------


def test_a_good_webhook_push_is_accepted_with_its_counts(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = json.dumps(load_event("senml_pack.json"))
    status, response = post(memory_deps, memory_keys, "air-quality", "senml", body)
    assert (status, response) == (
        202,
        {
            "accepted": 6,
            "duplicates": 0,
            "quarantined": 0,
            "reasons": {},
            "rejected": [],
            "rejected_total": 0,
        },
    )
    raw = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW), "raw/velden/"))
    assert len(raw) == 1
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


def test_a_webhook_push_with_nothing_usable_is_a_400_with_every_reason(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = "\n".join(lines([*senml_reading(u="ppm"), {"n": "pm10", "u": "ppm", "v": 1}], "{x"))
    status, response = post(memory_deps, memory_keys, "air-quality", "senml", body)
    assert status == 400
    assert response["error"] == "no_usable_reading"
    assert [(r["line"], r["reason"], r["count"]) for r in response["rejected"]] == [
        (1, "unit_mismatch", 2),
        (2, "invalid_json", 1),
    ]
    assert all(r["detail"] for r in response["rejected"])


def test_a_rejected_webhook_push_is_quarantined_all_the_same(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    post(memory_deps, memory_keys, "air-quality", "senml", json.dumps(senml_reading(u="ppm")))
    quarantine = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(quarantine, "quarantine/velden/ingest/")
    rows = gzip.decompress(memory_deps.store.get(quarantine, info.key).body).decode().splitlines()
    assert [json.loads(r)["rejected"] for r in rows] == [{"unit_mismatch": 1}]


def test_a_webhook_answer_lists_at_most_twenty_rejections(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = "\n".join([json.dumps(senml_reading(u="ppm")), *["{broken"] * 499])
    status, response = post(memory_deps, memory_keys, "air-quality", "senml", body)
    assert (status, len(response["rejected"]), response["rejected_total"]) == (400, 20, 500)


def test_one_document_over_the_payload_bound_is_refused_as_too_large(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    pack = [*senml_reading(), *[{"n": "no2", "v": 1, "t": i} for i in range(20_000)]]
    status, response = post(memory_deps, memory_keys, "air-quality", "senml", json.dumps(pack))
    assert (status, [r["reason"] for r in response["rejected"]]) == (400, ["payload_too_large"])


def test_a_broken_pretty_printed_document_is_one_payload_kept_once(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = json.dumps(load_event("canonical_wifi.json"), indent=2)[:-40]
    status, response = post(memory_deps, memory_keys, "wifi-counters", "canonical", body)
    assert (status, [(r["line"], r["reason"]) for r in response["rejected"]]) == (
        400,
        [(1, "invalid_json")],
    )


def test_a_pretty_printed_webhook_push_is_one_payload(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = json.dumps(load_event("canonical_wifi.json"), indent=2)
    status, response = post(memory_deps, memory_keys, "wifi-counters", "canonical", body)
    assert (status, response["accepted"]) == (202, 4)


def test_a_webhook_push_over_the_body_bound_is_a_413_and_writes_nothing(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    status, response = post(
        memory_deps, memory_keys, "air-quality", "senml", "x" * (MAX_BODY_BYTES + 1)
    )
    assert (status, response["error"]) == (413, "body_too_large")
    assert list(memory_deps.store.list(memory_deps.names.bucket(Zone.AUDIT))) == []


@pytest.mark.parametrize("fmt", ["xml", "csv"])
def test_a_webhook_push_in_an_unknown_format_is_a_404(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, fmt: str
) -> None:
    status, response = post(memory_deps, memory_keys, "air-quality", fmt, "<reading/>")
    assert (status, response["error"]) == (404, "unknown_format")


def test_a_reading_of_another_sources_device_is_quarantined_as_wrong_source(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given the air-quality source's token, and a push naming a Wi-Fi counter
    body = json.dumps(load_event("canonical_wifi.json"))
    # When it is pushed on the air-quality route
    status, response = post(memory_deps, memory_keys, "air-quality", "canonical", body)
    # Then nothing of it is accepted: a leaked token cannot feed another source
    assert (status, response["accepted"]) == (400, 0)
    assert {r["reason"] for r in response["rejected"]} == {"wrong_source"}


@pytest.mark.parametrize(
    "body",
    ["", "null", "[]", "{}", "[1, 2", "\x00\x01\x02", "💥", '{"bn": "x/"}\n42\n"x"', DEEP_NESTING],
    ids=[
        "empty",
        "null",
        "empty-pack",
        "object",
        "truncated",
        "binary",
        "emoji",
        "mixed-lines",
        "deep",
    ],
)
def test_a_garbage_webhook_push_is_a_400_never_an_exception(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, body: str
) -> None:
    status, response = post(memory_deps, memory_keys, "air-quality", "senml", body)
    assert (status, response["error"]) == (400, "no_usable_reading")


def test_a_sensor_community_push_takes_its_device_from_the_x_sensor_header(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = json.dumps(
        {
            "software_version": "NRZ-2024-136",
            "sensordatavalues": [{"value_type": "SDS_P1", "value": "3.5"}],
        }
    )
    status, response = post(
        memory_deps,
        memory_keys,
        "air-quality",
        "sensor-community",
        body,
        headers={"X-Sensor": "esp8266-11116579"},
    )
    assert (status, response["accepted"]) == (202, 1)


# --- drops in the inbox -------------------------------------------------------------------


def test_a_csv_drop_is_read_with_its_mapping_row_by_row(memory_deps: Deps) -> None:
    # Given the loop controller's export: a good row, a row of an unknown station, a short row
    body = (
        b"station;interval_start;vehicles;bicycles\n"
        b"VLD-TC-091;2026-06-01T10:00:00Z;41;3\n"
        b"VLD-TC-999;2026-06-01T10:00:00Z;12;0\n"
        b"VLD-TC-092;2026-06-01T10:00:00Z\n"
    )
    message = drop(memory_deps, "csv", "loop-export/loops-2026-06-01T10.csv", body, 3)
    # When ingest reads it
    outcome = partial(ingest_drop, keys=None)(
        memory_deps.store.get(message.bucket, message.key), message, memory_deps, "t"
    )
    # Then the good row gives two readings and each bad row is quarantined alone
    counts = outcome.counts
    assert isinstance(counts, IngestCounts)
    assert (counts.payloads, counts.accepted) == (3, 2)
    assert counts.quarantined == {"unknown_device": 2, "invalid_csv": 1}


def test_a_csv_drop_without_a_known_mapping_is_quarantined_whole(memory_deps: Deps) -> None:
    message = drop(memory_deps, "csv", "nope/x.csv", b"a;b\n1;2\n", 1)
    from citypipe.service.stage import run_stage

    run_stage(Function.INGEST, message, memory_deps, partial(ingest_drop, keys=None))
    bucket = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(bucket, "quarantine/velden/ingest/")
    assert b"unknown_mapping" in gzip.decompress(memory_deps.store.get(bucket, info.key).body)


def test_a_drop_message_is_a_claim_check_for_ingest(memory_deps: Deps) -> None:
    message = drop_lines(memory_deps, "senml", lines(load_event("senml_pack.json")), "trace-1")
    assert message.key.startswith("inbox/velden/senml/")
    assert (message.stage, message.bucket, message.format) == ("inbox", "velden-raw", "senml")
    assert (message.records, message.trace_id) == (1, "trace-1")


def test_a_pretty_printed_payload_in_a_drop_is_one_line(memory_deps: Deps) -> None:
    pretty = json.dumps(load_event("senml_pack.json"), indent=2)
    message: Message = drop_lines(memory_deps, "senml", [pretty, "\r\n"])
    outcome = partial(ingest_drop, keys=None)(
        memory_deps.store.get(message.bucket, message.key), message, memory_deps, "t"
    )
    counts = outcome.counts
    assert isinstance(counts, IngestCounts)
    assert (counts.payloads, counts.accepted, counts.quarantined) == (1, 6, {})


def test_a_unicode_line_separator_inside_a_string_does_not_split_a_payload(
    memory_deps: Deps,
) -> None:
    mac = "AA:BB:CC:DD:EE:01\u2028"
    payload = json.dumps(
        wifi_observation(personal={"device_mac": mac, "rssi": -67}), ensure_ascii=False
    )
    message = drop_lines(memory_deps, "canonical", [payload])
    outcome = partial(ingest_drop, keys=InMemoryKeyStore())(
        memory_deps.store.get(message.bucket, message.key), message, memory_deps, "t"
    )
    counts = outcome.counts
    assert isinstance(counts, IngestCounts)
    assert (counts.payloads, counts.accepted) == (1, 1)


def test_normalize_takes_bytes_and_text_alike(city: City) -> None:
    payload = json.dumps(senml_reading())
    ctx = Context(received_at=NOW)
    as_text = normalize(city, FORMATS["senml"], [Payload(payload, ctx)], now=NOW, key_for=None)
    as_bytes = normalize(
        city, FORMATS["senml"], [Payload(payload.encode(), ctx)], now=NOW, key_for=None
    )
    assert raw_rows(as_text) == raw_rows(as_bytes)


@given(st.floats(min_value=946_684_800, max_value=4_102_444_800, allow_nan=False))
def test_an_observation_time_is_written_as_iso_8601_utc_with_microseconds(at: float) -> None:
    # Given any time from 2000 to 2100, as epoch seconds
    # When the edge writes it
    text = iso_utc(at)
    # Then it is the UTC time rounded to the microsecond, as datetime writes it
    micros = round(at * 1_000_000)
    expected = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(
        microsecond=micros % 1_000_000
    )
    assert text == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
