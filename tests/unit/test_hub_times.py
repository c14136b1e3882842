"""When a reading was observed, as each hub says it (docs/hubs.md's time column, decision
0083): a time a hub sent that cannot be read — a word, a time without a UTC offset, a
month 13, an empty string — refuses what it dates as ``invalid_time``, quarantined with
that reason; never is the arrival time put in its place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hub_support import EXPECTED, HUBS, format_of, hub_city, read_csv_drop
from unit_support import NOW, normalized

from citypipe.core.ingest import Normalized
from citypipe.domain.city import City

EVENTS = Path(__file__).resolve().parents[2] / "events"

BAD_TIMES = {
    "a-word": "yesterday",
    "no-offset": "2026-06-01T10:00:00",
    "month-13": "2026-13-01T10:00:00Z",
    "empty": "",
}

# (payload, the path of a time it sends, what that time dates and is refused — an uplink, a
# report row, a record, an observation — and the readings still given): every format whose
# hub sends a time, each place its adapter reads one from.
DATED = [
    ("tts-v3/webhook-uplink.json", ("received_at",), 1, 0),
    ("tts-v3/webhook-uplink.json", ("uplink_message", "received_at"), 1, 0),
    ("tts-v3/mqtt-uplink.json", ("uplink_message", "rx_metadata", 0, "time"), 1, 0),
    ("chirpstack-v4/up-numbers-as-strings.json", ("time",), 1, 0),
    ("chirpstack-v3/up-protobuf-json.json", ("publishedAt",), 1, 0),
    ("chirpstack-v3/up-json-v3-legacy.json", ("rxInfo", 0, "time"), 1, 0),
    (
        "aws-iot/lorawan-transformed-and-lns.json",
        ("lns_message", "WirelessMetadata", "LoRaWAN", "Timestamp"),
        1,
        0,
    ),
    ("senml/base-fields-relative-time.json", (0, "bt"), 5, 1),  # the last record sets its own
    ("senml/base-fields-relative-time.json", (2, "t"), 1, 5),
    ("ngsi-ld/notification-key-values.json", ("data", 0, "dateObserved"), 1, 0),  # the entity
    ("ngsi-ld/notification-normalized.json", ("data", 0, "no2", "observedAt"), 1, 1),
    ("ngsi-ld/notification-normalized-datetime-value.json", ("data", 0, "dateObserved"), 1, 0),
    (
        "ngsi-ld/notification-normalized-datetime-value.json",
        ("data", 0, "dateObserved", "value", "@value"),
        1,
        0,
    ),
    ("meraki/scanning-v2-devicesseen.json", ("data", "observations", 0, "seenTime"), 1, 1),
    ("meraki/scanning-v2-devicesseen.json", ("data", "observations", 1, "seenEpoch"), 1, 1),
    ("meraki/scanning-v3-wifi.json", ("data", "observations", 0, "latestRecord", "time"), 1, 0),
    ("telraam/traffic-report-hourly.json", ("report", 0, "date"), 1, 4),
]


@pytest.fixture(scope="module")
def fixtures_city(city: City) -> City:
    return hub_city(city)


def with_time(document: Any, path: tuple[Any, ...], value: str) -> Any:
    changed = copy.deepcopy(document)
    node = changed
    for step in path[:-1]:
        node = node[step]
    assert path[-1] in node if isinstance(node, dict) else path[-1] < len(node)
    node[path[-1]] = value
    return changed


def refused_for_time(result: Normalized) -> bool:
    """A refusal for the time is quarantined as invalid_time, at the path of the time."""
    details = [d for row in result.quarantine for d in row["details"]]
    return any(d["reason"] == "invalid_time" and d["path"] for d in details)


@pytest.mark.parametrize("bad", BAD_TIMES.values(), ids=BAD_TIMES.keys())
@pytest.mark.parametrize(
    ("name", "path", "refused", "read"),
    DATED,
    ids=[f"{name}:{'.'.join(map(str, path))}" for name, path, *_ in DATED],
)
def test_a_hub_time_that_cannot_be_read_refuses_what_it_dates(
    fixtures_city: City, name: str, path: tuple[Any, ...], refused: int, read: int, bad: str
) -> None:
    # Given a payload as its hub documents it, which gives readings as sent
    document = json.loads((HUBS / name).read_text("utf-8"))
    assert normalized(fixtures_city, format_of(name), document).accepted > read
    # When the time its readings are dated by cannot be read
    result = normalized(fixtures_city, format_of(name), with_time(document, path, bad))
    # Then what it dates is refused as invalid_time (never dated by its arrival)
    assert dict(result.reasons) == {**EXPECTED[name].refused, "invalid_time": refused}
    assert result.accepted == read
    assert refused_for_time(result)


@pytest.mark.parametrize("bad", BAD_TIMES.values(), ids=BAD_TIMES.keys())
def test_a_canonical_observation_at_a_time_that_cannot_be_read_is_refused(
    city: City, bad: str
) -> None:
    observation = json.loads((EVENTS / "canonical_wifi.json").read_text("utf-8"))[0]
    assert normalized(city, "canonical", observation).accepted == 1
    result = normalized(city, "canonical", {**observation, "observed_at": bad})
    assert (result.accepted, dict(result.reasons)) == (0, {"invalid_time": 1})
    assert refused_for_time(result)


@pytest.mark.parametrize("bad", BAD_TIMES.values(), ids=BAD_TIMES.keys())
def test_a_csv_row_at_a_time_that_cannot_be_read_is_refused(fixtures_city: City, bad: str) -> None:
    good = "station;interval_start;vehicles;bicycles\nVLD-TC-901;2026-06-01T09:00:00+02:00;118;34\n"
    assert read_csv_drop(fixtures_city, good.encode(), NOW).accepted == 2
    body = good.replace("2026-06-01T09:00:00+02:00", bad).encode()
    result = read_csv_drop(fixtures_city, body, NOW)
    assert (result.accepted, dict(result.reasons)) == (0, {"invalid_time": 1})
    assert refused_for_time(result)


def without(document: Any, names: frozenset[str]) -> Any:
    """The document with every time of those names sent as null (as not sent at all)."""
    if isinstance(document, dict):
        return {k: None if k in names else without(v, names) for k, v in document.items()}
    if isinstance(document, list):
        return [without(item, names) for item in document]
    return document


@pytest.mark.parametrize(
    ("name", "times"),
    [
        ("tts-v3/webhook-uplink.json", {"received_at", "time"}),
        ("chirpstack-v4/up-numbers-as-strings.json", {"time"}),
        ("chirpstack-v3/up-protobuf-json.json", {"publishedAt", "time"}),
        ("aws-iot/lorawan-transformed-and-lns.json", {"Timestamp"}),
        ("ngsi-ld/notification-normalized.json", {"observedAt", "dateObserved", "notifiedAt"}),
        ("meraki/scanning-v2-devicesseen.json", {"seenTime", "seenEpoch"}),
    ],
)
def test_a_hub_that_sends_no_time_has_its_readings_dated_by_their_arrival(
    fixtures_city: City, name: str, times: set[str]
) -> None:
    document = json.loads((HUBS / name).read_text("utf-8"))
    result = normalized(fixtures_city, format_of(name), without(document, frozenset(times)))
    assert result.accepted == len(EXPECTED[name].observations)
    assert {r["observed_at"] for r in result.records()} == {"2026-06-02T11:33:20.000000Z"}


def test_formats_whose_hub_sends_no_time_date_readings_by_their_arrival(
    fixtures_city: City,
) -> None:
    # Sensor.Community pushes carry no time; an IoT rule's plain JSON has none citypipe reads
    push = json.loads((HUBS / "sensor-community/push-sds011-bme280.json").read_text("utf-8"))
    rule = json.loads((HUBS / "aws-iot/rule-device-json.json").read_text("utf-8"))
    pushed = normalized(fixtures_city, "sensor-community", push)
    ruled = normalized(fixtures_city, "aws-iot", rule, topic="velden/weather/ws-hoogstraat/data")
    times = {r["observed_at"] for r in pushed.records() + ruled.records()}
    assert times == {"2026-06-02T11:33:20.000000Z"}  # NOW, when they arrived
