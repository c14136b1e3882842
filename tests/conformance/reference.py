"""What the conformance tests know of the reference set: the official files' names, the
Smart Data Models' remote schemas mapped to local files, and what each reference payload
must give (read from ``CITYPIPE_REFERENCE_DIR``, never copied here)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from referencing import Registry
from validation import Validator, local_registry, schema_errors

from citypipe.domain.city import City, parse_city

DCAT_AP_SHAPES = [
    "3.0.1-shapes.ttl",
    "3.0.1-shapes_recommended.ttl",
    "3.0.1-range.ttl",
    "3.0.1-dcat-ap-SHACL.ttl",
]
HVD_SHAPES = "3.0.0-hvd-hvd-SHACL.ttl"
REMOTE = {
    "https://smart-data-models.github.io/data-models/common-schema.json": "common-schema.json",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "Environment-schema.json": "Environment-schema.json",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json": (
        "Weather-schema.json"
    ),
}
# The devices of the reference payloads, registered as a city would register them
REGISTRY = Path(__file__).with_name("reference_registry.yaml")


@cache
def registry(reference_dir: Path) -> Registry:  # type: ignore[type-arg]
    """The Smart Data Models' remote schemas, from the local reference files."""
    models = reference_dir / "smart-data-models"
    return local_registry((url, models / name) for url, name in REMOTE.items())


def sdm_validator(reference_dir: Path, entity_type: str) -> Validator:
    path = reference_dir / "smart-data-models" / entity_type / "schema.json"
    return Validator(
        json.loads(path.read_text("utf-8")),
        registry=registry(reference_dir),
        format_checker=Validator.FORMAT_CHECKER,
    )


def sdm_errors(reference_dir: Path, entities: list[dict[str, Any]]) -> list[str]:
    """Every error of these entities against the official Smart Data Models schemas."""
    return schema_errors(lambda kind: sdm_validator(reference_dir, kind), entities)


def reference_city(city: City) -> City:
    """The example city with the reference payloads' devices registered (in place of its
    own)."""
    data = city.model_dump(mode="json")
    data["registry"] = yaml.safe_load(REGISTRY.read_text("utf-8"))
    return parse_city(data)


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


# Identifiers the reference payloads carry (their README says where): device and gateway
# EUIs, DevAddrs, device names and ids, gateway positions, IPv6 and IPv4 addresses, MACs.
REFERENCE_IDENTIFIERS = (
    "0004A30B001C0530", "800000000000000C", "00BCB929", "9C5C8E00001A05C4", "37.97155556731436",
    "4200000000000000", "01DA1F15", "0242020000247803", "70B3D52DD600035A", "EC656E0000000001",
    "27FE87F6", "58A0CBFFFE8052EC", "58a0cb000202c99", "00b96cd4", "80029cfffe5cf1cc",
    "5b58245e-146c-4c30-9703-0ca942e3ff35", "a84041d55182720b", "dca632fffe45b3c0",
    "904d63b1-ed1d-42ad-8cb4-6778dd03e86c", "57728ff8-5d1d-4130-9de2-f004d8722bc2",
    "a8404187d187106e", "01acdec6", "LST25628782", "a84041ffff1f4b70", "50.949717",
    "fcc23dfffe2ea641", "a8404168e1824892", "7076ff0056083448", "ac1f09fffe01662d",
    "2cf7f1c0443002c8", "SenseCAP_S2120_003", "7076ff0056083451", "50.96432113647461",
    "urn:ngsi-ld:Device:filling001", "10e2073a01080063", "10e2073a0108006", "2001:db8::2",
    "2001:db8::1", "9372054", "12331981", "00:26:ab:b8:a9:a4", "00:26:ab:b8:a9:a5",
    "2607:f0d0:1002:51::4", "192.168.0.1", "51.5355157",
)  # fmt: skip


def arrival(name: str, default: float) -> float:
    """When a reference payload is taken to arrive: ``default``, unless its observations are
    not of the day before it — then a minute after its latest. Most come from years past,
    and the edge refuses a reading of a day whose key is gone (``too_old``, tested with the
    project's own payloads)."""
    expected = EXPECTED[name]
    if isinstance(expected, dict):
        return default
    latest = max(datetime.fromisoformat(at).timestamp() for *_, at in expected)
    if default - 86_400 < latest <= default:  # dated at arrival, or just before it
        return default
    return latest + 60
