"""What each hub format adapter must know of its format. (Every documented variant of every
format, from the project's own payloads, is in tests/unit/test_hub_fixtures.py; the
third-party reference payloads are checked by make conformance, tests/conformance.)"""

from __future__ import annotations

from typing import Any

import pytest
from unit_support import NOW

from citypipe.core.formats import FORMATS, Context
from citypipe.core.formats.common import Reading, Rejection, flatten

# --- what each adapter must know of its format ------------------------------------------------


def readings(fmt: str, document: Any, **ctx: Any) -> list[Reading | Rejection]:
    return FORMATS[fmt].parse(document, Context(received_at=NOW, **ctx))


def test_senml_base_fields_change_mid_pack() -> None:
    pack = [
        {"bn": "a/", "bt": 1.7e9, "bu": "Cel", "n": "t", "v": 1},
        {"bn": "b/", "n": "t", "v": 2},
        {"bt": 1.8e9, "bu": "%RH", "n": "h", "v": 3},
    ]
    out = [r for r in readings("senml", pack) if isinstance(r, Reading)]
    assert [(r.device, r.field, r.unit, r.at) for r in out] == [
        ("a", "t", "Cel", 1.7e9),
        ("b", "t", "Cel", 1.7e9),
        ("b", "h", "%RH", 1.8e9),
    ]


def test_senml_relative_and_negative_times_count_from_arrival() -> None:
    pack = [{"bn": "a/", "n": "t", "v": 1, "t": -60}, {"n": "t", "v": 2}]
    out = [r for r in readings("senml", pack) if isinstance(r, Reading)]
    assert [r.at for r in out] == [NOW - 60, NOW]


def test_senml_base_value_and_sum_are_added() -> None:
    pack = [{"bn": "a/", "bv": 10, "bs": 100, "n": "x", "v": 1.5}, {"n": "y", "s": 2}]
    out = [r for r in readings("senml", pack) if isinstance(r, Reading)]
    assert [(r.field, r.value) for r in out] == [("x", 11.5), ("y", 102.0)]


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        ([{"bn": "a/", "n": "x", "v": "1"}], "invalid_value"),
        ([{"bn": "a/", "n": "x", "v": 1, "t": "0"}], "invalid_time"),
        ([{"bn": 7, "n": "x", "v": 1}], "invalid_record"),
        ([{"bver": 11, "bn": "a/", "n": "x", "v": 1}], "unsupported_version"),
        ([{"n": "no separator", "v": 1}], "invalid_name"),
        ([{"bn": "a/", "n": "x"}], "invalid_record"),
        ([3], "invalid_record"),
    ],
    ids=[
        "string-value",
        "string-time",
        "bn-not-a-string",
        "bver-above-10",
        "bad-name",
        "no-value",
        "not-a-record",
    ],
)
def test_a_bad_senml_record_is_rejected_alone(pack: list[Any], reason: str) -> None:
    out = readings("senml", [*pack, {"bn": "z/", "n": "ok", "v": 1}])
    assert [r.reason for r in out if isinstance(r, Rejection)] == [reason]
    assert len([r for r in out if isinstance(r, Reading)]) == 1


def test_ngsi_ld_normalized_properties_carry_unit_and_time_relationships_do_not_count() -> None:
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:x",
        "type": "AirQualityObserved",
        "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
        "no2": {
            "type": "Property",
            "value": 22.0,
            "unitCode": "GQ",
            "observedAt": "2026-06-01T10:00:00Z",
        },
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:x"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [5.4, 51.4]}},
    }
    [reading] = readings("ngsi-ld", {"type": "Notification", "data": [entity]})
    assert isinstance(reading, Reading)
    assert (reading.field, reading.value, reading.unit, reading.at) == (
        "no2",
        22.0,
        "GQ",
        1780308000.0,
    )


def test_an_ngsi_ld_attribute_of_an_odd_type_is_rejected_not_a_crash() -> None:
    # found by make fuzz: a "type" that is a list once made the adapter raise TypeError
    entity = {"id": "urn:x", "type": "T", "refDevice": {"type": []}}
    out = readings("ngsi-ld", {"type": "Notification", "data": [entity]})
    assert [r.reason for r in out if isinstance(r, Rejection)] == ["invalid_record"]


def test_an_ngsi_ld_entity_array_without_envelope_is_read_too() -> None:
    out = readings("ngsi-ld", [{"id": "urn:x", "type": "T", "filling": 0.5}])
    assert [(r.device, r.field) for r in out if isinstance(r, Reading)] == [("urn:x", "filling")]


def test_a_chirpstack_v3_uplink_gives_its_devEUI_in_hex_from_base64() -> None:
    uplink = {"devEUI": "AgICAgICAgI=", "object": {"t": 1}, "publishedAt": "2026-06-01T10:00:00Z"}
    [reading] = readings("chirpstack-v3", uplink)
    assert isinstance(reading, Reading)
    assert (reading.hub, reading.device, reading.at) == (
        "lorawan",
        "0202020202020202",
        1780308000.0,
    )


def test_a_meraki_v3_observation_is_counted_at_its_nearest_access_point() -> None:
    post = {
        "version": "3.0", "secret": "s", "type": "WiFi",
        "data": {"networkId": "N_1", "observations": [
            {"clientMac": "aa:bb:cc:dd:ee:ff",
             "latestRecord": {"time": "2026-06-01T10:00:00Z", "nearestApMac": "00:18:0a:13:dd:b0"}},
        ]},
    }  # fmt: skip
    [reading] = readings("meraki", post)
    assert isinstance(reading, Reading)
    assert (reading.device, reading.subject, reading.at) == (
        "00:18:0a:13:dd:b0",
        "aa:bb:cc:dd:ee:ff",
        1780308000.0,
    )


def test_a_tts_event_that_is_no_uplink_is_rejected_as_such() -> None:
    join = {
        "end_device_ids": {"dev_eui": "0004A30B001C0530"},
        "join_accept": {"received_at": "2026-06-01T10:00:00Z"},
    }
    assert [r.reason for r in readings("tts-v3", join) if isinstance(r, Rejection)] == [
        "not_an_uplink"
    ]


def test_an_iot_lorawan_uplink_in_either_spelling_of_fport_is_read_the_same() -> None:
    def uplink(port_key: str) -> dict[str, Any]:
        meta = {"DevEui": "a84041d55182720b", port_key: 2, "Timestamp": "2026-06-01T10:00:00Z"}
        return {
            "transformed_message": {"payload": {"t": 1}},
            "lns_message": {"WirelessMetadata": {"LoRaWAN": meta}},
        }

    def read(port_key: str) -> list[tuple[str, float]]:
        return [
            (r.device, r.at)
            for r in readings("aws-iot", uplink(port_key))
            if isinstance(r, Reading)
        ]

    assert read("Fport") == read("FPort") == [("a84041d55182720b", 1780308000.0)]


def test_decoded_payloads_flatten_nested_objects_and_measurement_lists() -> None:
    decoded = {
        "wind": {"velocity": 3},
        "messages": [[{"type": " Peak Wind Gust", "measurementValue": 7.7}]],
    }
    assert list(flatten(decoded)) == [("wind.velocity", 3), ("Peak Wind Gust", 7.7)]
