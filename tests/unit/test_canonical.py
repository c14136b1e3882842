"""citypipe's canonical form: one observation object or an array; bad ones rejected."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import load_event
from unit_support import wifi_observation

from citypipe.core.formats.canonical import parse
from citypipe.core.formats.common import Reading, Rejection


def test_the_fixture_array_gives_one_reading_per_observation() -> None:
    # Given four Wi-Fi observations as a hub sends them
    # When they are parsed
    result = parse(load_event("canonical_wifi.json"))
    # Then each is a reading of wifi-012 carrying its personal fields
    assert all(isinstance(r, Reading) for r in result)
    assert [r.sensor for r in result if isinstance(r, Reading)] == ["wifi-012"] * 4


def test_a_single_object_is_one_observation() -> None:
    assert len(parse(wifi_observation())) == 1


def test_an_observation_keeps_its_fields() -> None:
    [reading] = parse(wifi_observation())
    assert reading == Reading(
        sensor="wifi-012",
        measure="people.presence",
        unit="{device}",
        value=1.0,
        observed_at=datetime(2026, 6, 1, 12, 3, 17, tzinfo=timezone(timedelta(hours=2))),
        location=(5.4448, 51.4305),
        zone=None,
        personal={"device_mac": "AA:BB:CC:DD:EE:01", "rssi": -67},
    )


def test_a_zone_may_stand_for_the_location() -> None:
    [reading] = parse(wifi_observation(location=None, zone="centrum"))
    assert isinstance(reading, Reading)
    assert (reading.location, reading.zone) == (None, "centrum")


@pytest.mark.parametrize(
    "observed_at",
    ["2026-06-01T10:03:17Z", "2026-06-01T12:03:17+02:00", "2026-06-01T10:03:17.000+00:00"],
    ids=["zulu", "offset", "fraction"],
)
def test_rfc_3339_times_with_an_offset_are_read_as_the_same_instant(observed_at: str) -> None:
    [reading] = parse(wifi_observation(observed_at=observed_at))
    assert isinstance(reading, Reading)
    assert reading.observed_at == datetime(2026, 6, 1, 10, 3, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "invalid_payload"),
        (["wifi-012"], "invalid_payload"),
        (None, "invalid_payload"),
        (wifi_observation(sensor=None), "missing_field"),
        (wifi_observation(quantity=None), "missing_field"),
        (wifi_observation(unit=None), "missing_field"),
        (wifi_observation(value=None), "missing_field"),
        (wifi_observation(observed_at=None), "missing_field"),
        (wifi_observation(ssid="CityWiFi"), "unknown_field"),
        (wifi_observation(value="1"), "invalid_value"),
        (wifi_observation(value=True), "invalid_value"),
        (wifi_observation(value=math.nan), "invalid_value"),
        (wifi_observation(value=math.inf), "invalid_value"),
        (wifi_observation(value=10**400), "invalid_value"),
        (wifi_observation(value=-(10**400)), "invalid_value"),
        (wifi_observation(observed_at="2026-06-01T10:03:17"), "invalid_time"),
        (wifi_observation(observed_at="2026-06-01"), "invalid_time"),
        (wifi_observation(observed_at=1780308197), "invalid_time"),
        (wifi_observation(observed_at="yesterday"), "invalid_time"),
        (wifi_observation(location=[5.4448]), "invalid_location"),
        (wifi_observation(location=["5.4448", "51.4305"]), "invalid_location"),
        (wifi_observation(location=[True, False]), "invalid_location"),
        (wifi_observation(location={"lon": 5.4448, "lat": 51.4305}), "invalid_location"),
        (wifi_observation(location=[10**400, 51.4305]), "invalid_location"),
        (wifi_observation(personal={"device_mac": ["AA", "BB"]}), "invalid_personal"),
        (wifi_observation(personal={"device_mac": True}), "invalid_personal"),
        (wifi_observation(personal="AA:BB:CC:DD:EE:01"), "invalid_personal"),
    ],
    ids=[
        "empty-array",
        "array-of-strings",
        "null",
        "no-sensor",
        "no-quantity",
        "no-unit",
        "no-value",
        "no-time",
        "unknown-field",
        "value-as-string",
        "value-as-boolean",
        "nan-value",
        "infinite-value",
        "integer-value-beyond-float-range",
        "negative-integer-value-beyond-float-range",
        "time-without-offset",
        "date-only",
        "epoch-seconds",
        "not-a-time",
        "location-of-one-coordinate",
        "location-of-strings",
        "location-of-booleans",
        "location-as-object",
        "location-beyond-float-range",
        "personal-list",
        "personal-boolean",
        "personal-not-an-object",
    ],
)
def test_a_bad_observation_is_rejected_with_its_reason(payload: Any, reason: str) -> None:
    # When a bad observation is parsed
    result = parse(payload)
    # Then it yields one rejection with a machine-readable reason and a detail
    assert len(result) == 1
    assert isinstance(result[0], Rejection)
    assert result[0].reason == reason
    assert result[0].detail


def test_a_bad_observation_in_an_array_is_rejected_alone() -> None:
    result = parse([wifi_observation(), wifi_observation(value="many"), wifi_observation()])
    assert [type(r).__name__ for r in result] == ["Reading", "Rejection", "Reading"]
