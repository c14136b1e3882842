"""Hub formats as the hubs document them: every reference payload
($CITYPIPE_REFERENCE_DIR/payloads, never copied here) is read into the right observations
or rejected for a stated reason, and what each adapter must know of its format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CITY_FILE
from unit_support import NOW, normalized, raw_rows

from citypipe.core.formats import FORMATS, Context
from citypipe.core.formats.common import Reading, Rejection, flatten
from citypipe.domain.city import City, parse_city

REGISTRY = Path(__file__).with_name("reference_registry.yaml")
FOLDER_FORMAT = {
    "tts-v3": "tts-v3",
    "chirpstack-v4": "chirpstack-v4",
    "aws-iot": "aws-iot",
    "senml": "senml",
    "fiware-ngsi-ld": "ngsi-ld",
    "sensor-community": "sensor-community",
    "telraam": "telraam",
    "wifi-ble-presence": "meraki",
}
Obs = tuple[str, str, float, str]  # (sensor, quantity, value, observed_at)

# Each reference payload: the observations it gives, or the reasons it is rejected for.
EXPECTED: dict[str, list[Obs] | dict[str, int]] = {
    "aws-iot/iot-core-lorawan-docs-uplink-with-gateways.json": {"not_decoded": 1},
    "aws-iot/iot-core-lorawan-lambda-event-transformed-plus-lns-message.json": [
        ("iot-lht65", "weather.temperature", 29.7, "2020-12-09T16:33:19.000000Z"),
        ("iot-lht65", "weather.humidity", 52.41, "2020-12-09T16:33:19.000000Z"),
    ],
    "aws-iot/iot-core-lorawan-uplink-dragino-lht65.json": {"not_decoded": 1},
    # the device only in the MQTT topic: read with the topic in the next test
    "aws-iot/iot-rule-tutorial-device-message-weather-sensor.json": {"missing_device_id": 1},
    "chirpstack-v4/jena-dragino-lse01-soil-up.json": [
        ("jena-soil", "soil.temperature", 13.25, "2024-06-20T08:48:38.863512Z"),
        ("jena-soil", "soil.conductivity", 35.0, "2024-06-20T08:48:38.863512Z"),
        ("jena-soil", "soil.moisture", 13.74, "2024-06-20T08:48:38.863512Z"),
    ],
    # not registered (an ADC board the city does not read): every field refused
    "chirpstack-v4/jena-dragino-sn50v3-forest-weather-up.json": {"unknown_device": 4},
    "chirpstack-v4/jena-sensecap-s2120-weather-up.json": [
        ("jena-weather", "weather.temperature", 24.4, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.humidity", 36.0, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.illuminance", 83405.0, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.uv_index", 5.3, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.wind_speed", 4.1, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.wind_direction", 354.0, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.precipitation", 0.0, "2025-07-03T14:07:30.917000Z"),
        ("jena-weather", "weather.pressure", 100540.0, "2025-07-03T14:07:30.917000Z"),
    ],
    "fiware-ngsi-ld/tutorial-subscriptions-notification-keyvalues.json": [
        ("filling-001", "waste.filling", 0.59, "2020-12-09T15:55:46.520000Z"),
    ],
    "fiware-ngsi-ld/tutorial-subscriptions-notification-normalized.json": [
        ("filling-001", "waste.filling", 0.25, "2020-12-09T16:25:12.000000Z"),
    ],
    "senml/rfc8428-5.1.2-bn-bt-bu-bver-relative-t.json": [
        ("ow-node-6", "energy.voltage", 120.1, "2010-06-08T18:01:16.001000Z"),
        ("ow-node-6", "energy.current", 1.2, "2010-06-08T18:01:11.001000Z"),
        ("ow-node-6", "energy.current", 1.3, "2010-06-08T18:01:12.001000Z"),
        ("ow-node-6", "energy.current", 1.4, "2010-06-08T18:01:13.001000Z"),
        ("ow-node-6", "energy.current", 1.5, "2010-06-08T18:01:14.001000Z"),
        ("ow-node-6", "energy.current", 1.6, "2010-06-08T18:01:15.001000Z"),
        ("ow-node-6", "energy.current", 1.7, "2010-06-08T18:01:16.001000Z"),
    ],
    # no time at all: relative to when the pack was received (NOW)
    "senml/rfc8428-5.1.2-multiple-datapoints-bn.json": [
        ("ow-node-63", "energy.voltage", 120.1, "2026-06-02T11:33:20.000000Z"),
        ("ow-node-63", "energy.current", 1.2, "2026-06-02T11:33:20.000000Z"),
    ],
    # a moving device: its GPS track (lat, lon) and battery (%EL) are not readings
    "senml/rfc8428-5.1.3-multiple-measurements-lat-lon.json": [
        ("ow-node-63", "weather.humidity", 20.0, "2011-10-31T13:24:24.000000Z"),
        ("ow-node-63", "weather.humidity", 20.3, "2011-10-31T13:25:24.000000Z"),
        ("ow-node-63", "weather.humidity", 20.7, "2011-10-31T13:26:24.000000Z"),
        ("ow-node-63", "weather.humidity", 21.2, "2011-10-31T13:27:24.000000Z"),
    ],
    # vs, vb, vd: fields the profile ignores
    "senml/rfc8428-5.1.5-vs-vb-vd-types.json": [
        ("ow-node-63", "weather.temperature", 23.1, "2026-06-02T11:33:20.000000Z"),
    ],
    "senml/rfc8428-5.1.6-collection-ipv6-basenames.json": [
        ("coap-2", "weather.temperature", 25.2, "2011-10-31T16:27:09.000000Z"),
        ("coap-2", "weather.humidity", 30.0, "2011-10-31T16:27:09.000000Z"),
        ("coap-1", "weather.temperature", 12.3, "2011-10-31T16:27:09.000000Z"),
        ("coap-1", "weather.humidity", 67.0, "2011-10-31T16:27:09.000000Z"),
    ],
    "sensor-community/air-quality-bridge-test-measurement.json": [
        ("airrohr-a", "air.pm10", 18.83, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-a", "air.pm25", 10.6, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-a", "weather.temperature", 17.0, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-a", "weather.pressure", 101001.28, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-a", "weather.humidity", 66.66, "2026-06-02T11:33:20.000000Z"),
    ],
    "sensor-community/airrohr-custom-api-nrz-2020-129-sds011-bme280.json": [
        ("airrohr-b", "air.pm10", 0.4, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-b", "air.pm25", 0.2, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-b", "weather.temperature", 20.47, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-b", "weather.pressure", 100613.25, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-b", "weather.humidity", 69.02, "2026-06-02T11:33:20.000000Z"),
    ],
    # no esp8266id and no X-Sensor header sent with it here (the next test sends one)
    "sensor-community/airrohr-debuglog-nrz-2024-136-no-esp8266id.json": {"missing_device_id": 1},
    "telraam/telraam-rs-test-reports-traffic-hourly-segment-348917.json": [
        ("telraam-348917", "traffic.heavy_vehicles", 78.0821917808, "2020-10-30T07:00:00.000000Z"),
        ("telraam-348917", "traffic.vehicles", 619.1780821918, "2020-10-30T07:00:00.000000Z"),
        ("telraam-348917", "traffic.bicycles", 263.0136986301, "2020-10-30T07:00:00.000000Z"),
        ("telraam-348917", "traffic.pedestrians", 72.602739726, "2020-10-30T07:00:00.000000Z"),
        ("telraam-348917", "traffic.heavy_vehicles", 64.6087580761, "2020-10-30T08:00:00.000000Z"),
        ("telraam-348917", "traffic.vehicles", 462.5987078248, "2020-10-30T08:00:00.000000Z"),
        ("telraam-348917", "traffic.bicycles", 95.6209619526, "2020-10-30T08:00:00.000000Z"),
        ("telraam-348917", "traffic.pedestrians", 14.2139267767, "2020-10-30T08:00:00.000000Z"),
    ],
    "tts-v3/data-formats-uplink-example-current-MALFORMED.json": {"invalid_json": 1},
    "tts-v3/data-formats-uplink-example.json": [
        ("tts-dev1", "weather.temperature", 1.0, "2020-02-12T15:15:45.789585Z"),
        ("tts-dev1", "weather.illuminance", 0.64, "2020-02-12T15:15:45.789585Z"),
    ],
    # an MQTT uplink without a payload formatter: frm_payload only
    "tts-v3/mqtt-uplink-example.json": {"not_decoded": 1},
    "tts-v3/starter-kit-webhook-uplink-mclimate-button.json": [
        ("tts-button", "weather.temperature", 21.5, "2025-04-16T11:54:13.787593Z"),
    ],
    # Scanning API v2 without data.apMac: no access point to count the clients at
    "wifi-ble-presence/meraki-scanning-v2-devicesseen-homeassistant-test.json": {
        "missing_device_id": 2
    },
}


@pytest.fixture(scope="module")
def reference_city() -> City:
    """The example city with the reference payloads' devices registered."""
    data = yaml.safe_load(CITY_FILE.read_text("utf-8"))
    data["registry"] = yaml.safe_load(REGISTRY.read_text("utf-8"))
    return parse_city(data)


def reference(reference_dir: Path, name: str) -> tuple[str, bytes]:
    path = reference_dir / "payloads" / name
    return FOLDER_FORMAT[name.split("/", 1)[0]], path.read_bytes()


def observations(result: Any) -> list[Obs]:
    return [(r["sensor"], r["quantity"], r["value"], r["observed_at"]) for r in raw_rows(result)]


def test_every_reference_payload_has_a_test_case(reference_dir: Path) -> None:
    files = sorted(
        str(p.relative_to(reference_dir / "payloads"))
        for p in (reference_dir / "payloads").glob("*/*.json")
    )
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_reference_payload_gives_the_right_observations_or_a_stated_reason(
    reference_dir: Path, reference_city: City, name: str
) -> None:
    # Given a payload exactly as its hub documents it
    fmt, body = reference(reference_dir, name)
    # When it reaches the edge
    result = normalized(reference_city, fmt, body)
    # Then it gives the expected observations, or is refused for the expected reasons
    expected = EXPECTED[name]
    if isinstance(expected, dict):
        assert (result.accepted, dict(result.reasons)) == (0, expected)
        assert all(d["detail"] for row in result.quarantine for d in row["details"])
    else:
        assert dict(result.reasons) == {}
        assert observations(result) == expected


def test_an_iot_rule_output_is_read_with_the_device_of_its_topic(
    reference_dir: Path, reference_city: City
) -> None:
    fmt, body = reference(
        reference_dir, "aws-iot/iot-rule-tutorial-device-message-weather-sensor.json"
    )
    result = normalized(reference_city, fmt, body, topic="device/32/data")
    # barometer in hPa, scaled to Pa by the profile; wind.velocity from the nested object
    assert observations(result) == [
        ("iot-weather-32", "weather.temperature", 28.0, "2026-06-02T11:33:20.000000Z"),
        ("iot-weather-32", "weather.humidity", 80.0, "2026-06-02T11:33:20.000000Z"),
        ("iot-weather-32", "weather.pressure", 101300.0, "2026-06-02T11:33:20.000000Z"),
        ("iot-weather-32", "weather.wind_speed", 22.0, "2026-06-02T11:33:20.000000Z"),
        ("iot-weather-32", "weather.wind_direction", 255.0, "2026-06-02T11:33:20.000000Z"),
    ]


def test_a_sensor_community_push_without_chip_id_takes_it_from_the_x_sensor_header(
    reference_dir: Path, reference_city: City
) -> None:
    fmt, body = reference(
        reference_dir, "sensor-community/airrohr-debuglog-nrz-2024-136-no-esp8266id.json"
    )
    headers = {"X-Sensor": "esp8266-15555555", "X-MAC-ID": "esp8266-a4cf12f1e2d3"}
    result = normalized(reference_city, fmt, body, headers=headers)
    assert observations(result) == [
        ("airrohr-c", "weather.temperature", 35.2, "2026-06-02T11:33:20.000000Z"),
        ("airrohr-c", "weather.humidity", 45.3, "2026-06-02T11:33:20.000000Z"),
    ]


def test_a_meraki_post_with_its_access_point_counts_each_client_once_pseudonymously(
    reference_dir: Path, reference_city: City
) -> None:
    # Given the Scanning API v2 post with the access point a Meraki network names in it
    _, body = reference(
        reference_dir, "wifi-ble-presence/meraki-scanning-v2-devicesseen-homeassistant-test.json"
    )
    post = json.loads(body)
    post["data"]["apMac"] = "00:18:0a:13:dd:b0"
    # When it reaches the edge
    result = normalized(reference_city, "meraki", post)
    rows = raw_rows(result)
    # Then each client is one presence reading at its seenTime, keyed by a pseudonym
    assert [(r["sensor"], r["quantity"], r["value"], r["observed_at"]) for r in rows] == [
        ("meraki-ap-1", "people.presence", 1.0, "2016-09-12T16:23:13.000000Z"),
        ("meraki-ap-1", "people.presence", 1.0, "2016-09-12T16:21:13.000000Z"),
    ]
    assert all(len(r["pseudonym"]) == 64 for r in rows)
    assert "00:26:ab" not in json.dumps(rows)


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
