"""Fuzzing the edge: per format, payloads shaped like the hub's (every key kept, dropped or
given any JSON value), cut short, or plain bytes. Whatever arrives, no exception escapes,
every reading is accounted for (accepted, duplicate or quarantined), every rejection has a
reason and a detail, and no adapter fails on an input it did not foresee.

`make test` runs a CI-sized, derandomized search (profile ``ci``); `make fuzz` a long,
random one (``HYPOTHESIS_PROFILE=long``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_support import NOW, normalized

from citypipe.domain.city import City

settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

WHEN = "2026-06-01T10:00:00Z"
# Real-shaped payloads of registered devices of the example city, one per format.
TEMPLATES: dict[str, Any] = {
    "tts-v3": {
        "end_device_ids": {"device_id": "vld-aq-1", "dev_eui": "70B3D5E75E010001"},
        "received_at": WHEN,
        "uplink_message": {
            "f_port": 2,
            "decoded_payload": {"no2": 12.5, "pm10": 20.1, "pm25": 8.0, "battery": 3.6},
            "rx_metadata": [{"gateway_ids": {"eui": "7076FF0056083448"}, "time": WHEN}],
            "settings": {"time": WHEN},
            "received_at": WHEN,
        },
    },
    "chirpstack-v4": {
        "time": WHEN,
        "deviceInfo": {"devEui": "70b3d5e75e010002", "deviceName": "n"},
        "fCnt": 1,
        "object": {"no2": "12.5", "pm10": 20.1, "pm25": 8},
        "rxInfo": [{"gatewayId": "7076ff0056083448", "time": WHEN}],
    },
    "chirpstack-v3": {
        "devEUI": "cLPV514BAAM=",
        "publishedAt": WHEN,
        "object": {"no2": 12.5, "pm10": 20.1, "pm25": 8.0},
    },
    "aws-iot": {
        "transformed_message": {"payload": {"no2": 1.0, "pm10": 2.0}, "DevEui": "70b3d5e75e010004"},
        "lns_message": {
            "WirelessMetadata": {
                "LoRaWAN": {"DevEui": "70b3d5e75e010004", "FPort": 2, "Timestamp": WHEN}
            }
        },
    },
    "senml": [
        {"bn": "2001:db8:7e1d::65/", "bt": 1780308000, "bu": "ug/m3", "bver": 10},
        {"n": "no2", "v": 21.5, "t": 0},
        {"n": "lat", "u": "lat", "v": 51.43},
        {"n": "pm10", "vs": "x", "s": 1},
    ],
    "ngsi-ld": {
        "type": "Notification",
        "notifiedAt": WHEN,
        "data": [
            {
                "id": "urn:ngsi-ld:AirQualityObserved:vld001320e1",
                "type": "AirQualityObserved",
                "no2": {"type": "Property", "value": 22.0, "unitCode": "GQ", "observedAt": WHEN},
                "pm10": 12.0,
                "refDevice": {"type": "Relationship", "object": "urn:x"},
            }
        ],
    },
    "sensor-community": {
        "esp8266id": "11116579",
        "software_version": "NRZ-2020-129",
        "sensordatavalues": [
            {"value_type": "SDS_P1", "value": "18.83"},
            {"value_type": "samples", "value": "1"},
        ],
    },
    "meraki": {
        "version": "2.0",
        "secret": "s",
        "type": "DevicesSeen",
        "data": {
            "apMac": "e0:55:3d:25:5b:01",
            "observations": [
                {
                    "clientMac": "00:26:ab:b8:a9:a4",
                    "seenTime": WHEN,
                    "seenEpoch": 1780308000,
                    "rssi": -60,
                }
            ],
        },
    },
    "telraam": {
        "report": [{"segment_id": 9101053, "date": WHEN, "car": 12.5, "uptime": 0.8, "car_lft": 6}]
    },
    "canonical": {
        "sensor": "wifi-22",
        "quantity": "people.presence",
        "unit": "{device}",
        "value": 1,
        "observed_at": WHEN,
        "personal": {"device_mac": "AA:BB:CC:DD:EE:01", "rssi": -67},
    },
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "1e308", "-1000", "NaN", "12.5", WHEN, "2099-01-01T00:00:00Z", "\u2028"])
)
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def like(template: Any) -> st.SearchStrategy[Any]:
    """Documents shaped like ``template``: each key kept (itself fuzzed), dropped or replaced
    by any JSON value; list items fuzzed alike; scalars kept or replaced."""
    if isinstance(template, dict):
        return st.fixed_dictionaries(
            {}, optional={k: st.one_of(like(v), any_json) for k, v in template.items()}
        )
    if isinstance(template, list):
        return st.lists(st.one_of(*(like(item) for item in template), any_json), max_size=6)
    return st.one_of(st.just(template), any_json)


def bodies(fmt: str) -> st.SearchStrategy[bytes]:
    shaped = like(TEMPLATES[fmt]).map(lambda doc: json.dumps(doc).encode())
    cut = st.tuples(shaped, st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])])
    deep = st.integers(1, 1100).map(lambda d: ('{"a":[' * d + "1" + "]}" * d).encode())
    return st.one_of(shaped, shaped, cut, deep, st.binary(max_size=200))


def accounted(city: City, fmt: str, payloads: list[bytes]) -> None:
    result = normalized(city, fmt, *payloads, now=NOW)
    assert result.payloads == len(payloads)
    assert result.received == result.accepted + result.duplicates + sum(result.reasons.values())
    assert "adapter_error" not in result.reasons, [r["details"] for r in result.quarantine]
    for row in result.quarantine:
        assert row["rejected"] and all(count > 0 for count in row["rejected"].values())
        assert row["details"] and all(d["reason"] and d["detail"] for d in row["details"])
        json.dumps(row)  # a quarantine row is always writable


@pytest.mark.parametrize("fmt", sorted(TEMPLATES))
def test_the_templates_are_read_whole(city: City, fmt: str) -> None:
    # the unfuzzed templates reach the end of the path: fuzzing starts from real shapes
    result = normalized(city, fmt, TEMPLATES[fmt], now=NOW)
    assert result.accepted > 0, [r["details"] for r in result.quarantine]


@pytest.mark.parametrize("fmt", sorted(TEMPLATES))
def test_no_malformed_payload_escapes_the_books(city: City, fmt: str) -> None:
    @given(st.lists(bodies(fmt), min_size=1, max_size=4))
    def check(payloads: list[bytes]) -> None:
        accounted(city, fmt, payloads)

    check()
