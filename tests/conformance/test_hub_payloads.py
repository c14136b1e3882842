"""Hub formats as the hubs document them: every reference payload
($CITYPIPE_REFERENCE_DIR/payloads, never copied here) is read into the right observations
or rejected for a stated reason. (Moved from tests/unit/test_formats.py; the project's own
payloads of every format are checked by tests/unit/test_hub_fixtures.py in make test.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from unit_support import NOW, normalized, raw_rows

from citypipe.domain.city import City
from conformance.reference import EXPECTED, FOLDER_FORMAT, Obs, arrival
from conformance.reference import reference_city as with_reference_devices


@pytest.fixture(scope="module")
def reference_city(city: City) -> City:
    """The example city with the reference payloads' devices registered."""
    return with_reference_devices(city)


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
    result = normalized(reference_city, fmt, body, now=arrival(name, NOW))
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
    seen = datetime(2016, 9, 12, 16, 24, tzinfo=UTC).timestamp()  # the post's day
    result = normalized(reference_city, "meraki", post, now=seen)
    rows = raw_rows(result)
    # Then each client is one presence reading at its seenTime, keyed by a pseudonym
    assert [(r["sensor"], r["quantity"], r["value"], r["observed_at"]) for r in rows] == [
        ("meraki-ap-1", "people.presence", 1.0, "2016-09-12T16:23:13.000000Z"),
        ("meraki-ap-1", "people.presence", 1.0, "2016-09-12T16:21:13.000000Z"),
    ]
    assert all(len(r["pseudonym"]) == 64 for r in rows)
    assert "00:26:ab" not in json.dumps(rows)
