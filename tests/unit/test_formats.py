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


# --- NGSI-LD: typed literals, and each reading dated by its own time ---------------------------

T0, T1, T2 = "2026-06-01T10:00:00Z", "2026-06-01T10:05:00Z", "2026-06-01T10:10:00Z"


def dated(notification: dict[str, Any]) -> list[tuple[str, Any, float | str]]:
    """(field, value, time) of each reading; (path, reason, "") of each rejection."""
    return [
        (r.field, r.value, r.at) if isinstance(r, Reading) else (r.path, r.reason, "")
        for r in readings("ngsi-ld", notification)
    ]


def test_an_ngsi_ld_reading_is_dated_by_its_property_then_its_entity_then_the_notification() -> (
    None
):
    own = {"type": "Property", "value": 1.5, "observedAt": T0}
    typed = {"type": "Property", "value": {"@type": "DateTime", "@value": T1}}
    entities = [
        {"id": "urn:a", "type": "T", "own": own, "entity": {"type": "Property", "value": 2}},
        {"id": "urn:b", "type": "T", "dateObserved": typed, "entity": 3},
        {"id": "urn:c", "type": "T", "dateObserved": {"@type": "DateTime", "@value": T1}, "e": 4},
        {"id": "urn:d", "type": "T", "notified": 5},
    ]
    notification = {"type": "Notification", "notifiedAt": T2, "data": entities}
    assert dated(notification) == [
        ("own", 1.5, 1780308000.0),  # its own observedAt
        ("entity", 2, 1780308600.0),  # no entity time: the notification's
        ("entity", 3, 1780308300.0),  # the entity's dateObserved, a typed DateTime (normalized)
        ("e", 4, 1780308300.0),  # the same in key-values
        ("notified", 5, 1780308600.0),
    ]


def test_ngsi_ld_typed_number_literals_are_read_as_their_value() -> None:
    literal = {"@type": "https://schema.org/Number", "@value": 21.5}
    entity = {
        "id": "urn:a",
        "type": "T",
        "observedAt": T0,
        "kv": literal,
        "norm": {"type": "Property", "value": {"@type": "xsd:double", "@value": "22.5"}},
    }
    assert dated({"type": "Notification", "data": [entity]}) == [
        ("kv", 21.5, 1780308000.0),
        ("norm", "22.5", 1780308000.0),  # a numeric string: read as a number by the edge
    ]


def test_an_unreadable_ngsi_ld_time_refuses_what_it_dates_once_per_entity() -> None:
    bad_property = {"type": "Property", "value": 1, "observedAt": "yesterday"}
    entities = [
        {"id": "urn:a", "type": "T", "dateObserved": "2026-06-01T10:00:00", "x": 1, "y": 2},
        {"id": "urn:b", "type": "T", "x": {"type": "Property", "value": 3, "observedAt": T0}},
        {"id": "urn:c", "type": "T", "dateObserved": T1, "x": bad_property, "y": 4},
        {"id": "urn:d", "type": "T", "x": 5, "y": 6},
    ]
    notification = {"type": "Notification", "notifiedAt": "2026-13-01T00:00:00Z", "data": entities}
    assert dated(notification) == [
        ("data[0].dateObserved", "invalid_time", ""),  # no offset: once, not for x and y
        ("x", 3, 1780308000.0),  # its own time: the notification's is not needed
        ("data[2].x.observedAt", "invalid_time", ""),
        ("y", 4, 1780308300.0),
        ("notifiedAt", "invalid_time", ""),  # what only notifiedAt dates
    ]


# --- ChirpStack v3's objectJSON; SenML's base time ---------------------------------------------


@pytest.mark.parametrize(
    ("object_json", "reason"),
    [
        ("", "not_decoded"),
        ("{not json", "invalid_json"),
        ('{"pm10": NaN}', "invalid_json"),
        ("[1, 2]", "not_decoded"),
    ],
    ids=["no-codec", "not-json", "nan-is-not-json", "not-an-object"],
)
def test_a_chirpstack_v3_object_json_that_holds_no_object_is_refused(
    object_json: str, reason: str
) -> None:
    uplink = {"devEUI": "0202020202020202", "objectJSON": object_json}
    assert [r.reason for r in readings("chirpstack-v3", uplink)] == [reason]


def test_a_senml_base_time_that_is_no_number_refuses_each_reading_it_dates() -> None:
    pack = [
        {"bn": "a/", "bt": "2026-06-01T10:00:00Z", "n": "x", "v": 1},
        {"n": "y", "v": 2, "t": 10},
        {"bt": 1.78e9, "n": "z", "v": 3},  # a new base time: read again
    ]
    out = readings("senml", pack)
    assert [(r.reason, r.path) for r in out if isinstance(r, Rejection)] == [
        ("invalid_time", "[0]"),
        ("invalid_time", "[1]"),
    ]
    assert [(r.field, r.at) for r in out if isinstance(r, Reading)] == [("z", 1.78e9)]
