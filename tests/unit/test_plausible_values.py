"""Ingest refuses values no sensor can measure, so they never reach a sum: a negative
count, 1e308 ug/m3. Each is quarantined as ``implausible_value`` with its range."""

from __future__ import annotations

from typing import Any

import pytest
from unit_support import lines, senml_reading, wifi_observation

from citypipe.core.ingest import normalize
from citypipe.domain.city import City
from citypipe.domain.model import plausible_value


def traffic_pack(vehicles: float) -> list[dict[str, Any]]:
    """A pack of one traffic counter reading of ``vehicles``."""
    return [
        {"bn": "urn:dev:id:tc-007:", "bt": 1780308000, "bu": "count"},
        {"n": "lat", "u": "lat", "v": 51.4312},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": "vehicles", "v": vehicles},
    ]


@pytest.mark.parametrize(
    ("fmt", "payload", "detail"),
    [
        ("senml", senml_reading(value=1e308), "air.no2 outside [0.0, 5000.0] ug/m3"),
        ("senml", senml_reading(value=-0.5), "air.no2 outside [0.0, 5000.0] ug/m3"),
        ("senml", traffic_pack(-5), "traffic.vehicles outside [0.0, 100000.0] {vehicle}"),
        (
            "canonical",
            wifi_observation(value=-1),
            "people.presence outside [0.0, 1000000.0] {device}",
        ),
    ],
    ids=["no2-of-1e308", "negative-no2", "negative-vehicle-count", "negative-presence"],
)
def test_an_implausible_value_is_quarantined_with_its_range(
    city: City, fmt: str, payload: Any, detail: str
) -> None:
    result = normalize(city, fmt, lines(payload))
    assert result.accepted == 0
    assert result.quarantine[0]["details"] == [{"reason": "implausible_value", "detail": detail}]


@pytest.mark.parametrize("value", [0.0, 250.0, 5_000.0], ids=["zero", "high", "upper-bound"])
def test_a_plausible_concentration_is_accepted(city: City, value: float) -> None:
    assert normalize(city, "senml", lines(senml_reading(value=value))).accepted == 1


@pytest.mark.parametrize(
    ("quantity", "value", "plausible"),
    [
        ("energy.active", -120.5, True),  # energy fed back to the grid
        ("parking.occupancy", 100.0, True),
        ("parking.occupancy", 100.5, False),
        ("noise.laeq", float("nan"), False),
        ("weather.temperature", 21.0, True),  # a quantity without a range of its own
        ("weather.temperature", 1e10, False),
    ],
)
def test_plausible_ranges(quantity: str, value: float, plausible: bool) -> None:
    assert plausible_value(quantity, value) is plausible
