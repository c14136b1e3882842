"""Every hub format, every documented variant, from the project's own payloads
(events/hubs/, written from each format's public documentation with Velden's ids and
values): each gives the exact observations (sensor, quantity, value, time) or is refused for
the stated reasons. (make conformance runs the same checks over third-party payloads.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hub_support import (
    EXPECTED,
    HUBS,
    NOW_ISO,
    Obs,
    format_of,
    hub_city,
    read_csv_drop,
)
from unit_support import NOW, normalized, raw_rows

from citypipe.core.formats import FORMATS
from citypipe.core.ingest import Normalized
from citypipe.domain.city import City

FORMATS_COVERED = {
    "tts-v3", "chirpstack-v4", "chirpstack-v3", "aws-iot", "senml", "ngsi-ld",
    "sensor-community", "sensor-community-api", "telraam", "meraki", "csv",
}  # fmt: skip


@pytest.fixture(scope="module")
def fixtures_city(city: City) -> City:
    """Velden with the payloads' devices registered (events/hubs/registry.yaml)."""
    return hub_city(city)


def read(city: City, name: str, **transport: Any) -> Normalized:
    """A payload file through the edge's normalization path as it arrives at NOW: a CSV drop
    with the city file's loop-export mapping, anything else as one message of its format."""
    body = (HUBS / name).read_bytes()
    if format_of(name) == "csv":
        return read_csv_drop(city, body, NOW)
    return normalized(city, format_of(name), body, **transport)


def observations(result: Normalized) -> list[Obs]:
    return [(r["sensor"], r["quantity"], r["value"], r["observed_at"]) for r in raw_rows(result)]


def test_every_payload_file_has_a_test_case_and_every_format_a_payload() -> None:
    files = sorted(str(p.relative_to(HUBS)) for p in HUBS.glob("*/*") if p.is_file())
    assert files == sorted(EXPECTED)
    assert {format_of(name) for name in files} == FORMATS_COVERED
    assert set(FORMATS) - {"canonical"} == FORMATS_COVERED  # canonical: events/canonical_wifi


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_hub_payload_gives_its_observations_or_its_stated_reasons(
    fixtures_city: City, name: str
) -> None:
    # Given a payload as its hub documents it
    # When it reaches the edge
    result = read(fixtures_city, name)
    # Then it gives the expected raw records, and refuses what it refuses for the stated reasons
    expected = EXPECTED[name]
    assert observations(result) == expected.observations
    assert dict(result.reasons) == expected.refused
    # and each refusal says why, without quoting an identifier
    details = [d for row in result.quarantine for d in row["details"]]
    assert all(d["reason"] in expected.refused and d["detail"] for d in details)
    assert len(result.quarantine) == expected.quarantine_rows


def test_every_payload_that_gives_readings_gives_them_from_a_registered_device(
    fixtures_city: City,
) -> None:
    sensors = {o[0] for e in EXPECTED.values() for o in e.observations}
    assert sensors <= set(fixtures_city.registry.devices)


# --- what the transport adds: an MQTT topic, an HTTP header -----------------------------------


def test_an_iot_rule_output_is_read_with_the_device_of_its_topic(fixtures_city: City) -> None:
    result = read(
        fixtures_city, "aws-iot/rule-device-json.json", topic="velden/weather/ws-hoogstraat/data"
    )
    # pressure in hPa, scaled to Pa by the profile; wind from the nested object
    assert observations(result) == [
        ("iot-weather-01", "weather.temperature", 16.8, NOW_ISO),
        ("iot-weather-01", "weather.humidity", 77.0, NOW_ISO),
        ("iot-weather-01", "weather.pressure", 101160.0, NOW_ISO),
        ("iot-weather-01", "weather.wind_speed", 5.4, NOW_ISO),
        ("iot-weather-01", "weather.wind_direction", 230.0, NOW_ISO),
    ]


def test_an_iot_rule_output_on_a_topic_the_city_does_not_know_is_refused(
    fixtures_city: City,
) -> None:
    result = read(fixtures_city, "aws-iot/rule-device-json.json", topic="velden/weather/other")
    assert (result.accepted, dict(result.reasons)) == (0, {"unknown_device": 5})


def test_a_push_without_esp8266id_takes_the_chip_id_from_the_x_sensor_header(
    fixtures_city: City,
) -> None:
    headers = {"X-Sensor": "esp8266-2718281", "X-MAC-ID": "esp8266-a4cf12e07b3d"}
    result = read(fixtures_city, "sensor-community/push-no-esp8266id.json", headers=headers)
    assert observations(result) == [
        ("airrohr-302", "air.pm25", 4.05, NOW_ISO),
        ("airrohr-302", "air.pm10", 4.71, NOW_ISO),
        ("airrohr-302", "weather.temperature", 19.4, NOW_ISO),
        ("airrohr-302", "weather.humidity", 58.7, NOW_ISO),
    ]


# --- what the fixtures show of each format ----------------------------------------------------


def load(name: str) -> Any:
    return json.loads((HUBS / name).read_text("utf-8"))


def test_the_payloads_keep_the_quirks_their_documentation_shows() -> None:
    # TTS omits empty fields (an MQTT uplink: no received_at, f_cnt 0 left out) and writes
    # nanoseconds
    mqtt = load("tts-v3/mqtt-uplink.json")
    assert "received_at" not in mqtt and "f_cnt" not in mqtt["uplink_message"]
    assert load("tts-v3/webhook-uplink.json")["received_at"].endswith("418337021Z")
    # ChirpStack codecs send numbers as strings; some gateways give no time, only GPS time
    up = load("chirpstack-v4/up-numbers-as-strings.json")
    assert isinstance(up["object"]["soilTemperature"], str)
    gps = load("chirpstack-v4/up-unregistered-device-gps-time.json")["rxInfo"]
    assert "time" not in gps[0] and "timeSinceGpsEpoch" in gps[0]
    lists = load("chirpstack-v4/up-measurement-lists.json")["object"]["messages"]
    assert " Peak Wind Gust" in [m["type"] for group in lists for m in group]
    # AWS IoT Core spells the port Fport in its documented uplink and FPort elsewhere
    assert "Fport" in load("aws-iot/lorawan-uplink-gateways.json")["WirelessMetadata"]["LoRaWAN"]
    assert (
        "FPort" in load("aws-iot/lorawan-uplink-decoder-name.json")["WirelessMetadata"]["LoRaWAN"]
    )
    # Sensor.Community sends every value as a string; Meraki v2 relays may too
    push = load("sensor-community/push-sds011-bme280.json")
    assert all(isinstance(v["value"], str) for v in push["sensordatavalues"])
    seen = load("meraki/scanning-v2-no-apmac-strings.json")["data"]["observations"]
    assert all(isinstance(o["seenEpoch"], str) for o in seen)
    # SenML base fields change inside one pack
    pack = load("senml/collection-ipv6-base-names.json")
    assert len({r["bn"] for r in pack if "bn" in r}) == 2


def test_a_people_counter_reading_carries_a_pseudonym_never_the_mac(fixtures_city: City) -> None:
    result = read(fixtures_city, "meraki/scanning-v2-devicesseen.json")
    rows = raw_rows(result)
    assert [len(r["pseudonym"]) for r in rows] == [64, 64]
    assert rows[0]["pseudonym"] != rows[1]["pseudonym"]
    assert "f2:6b:1c" not in json.dumps(rows) and "3a:91:d7" not in json.dumps(rows)
