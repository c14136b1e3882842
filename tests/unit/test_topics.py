"""MQTT topics in the city file: filters validated on load, each message routed one way."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from repo import CITY_FILE

from citypipe.core.formats import FORMATS
from citypipe.domain.city import MESSAGE_FORMATS, City, ConfigError, MqttRoute, parse_city
from citypipe.domain.topics import filter_problem, matches, overlap


def city_with(**mqtt: list[dict[str, str]]) -> City:
    """The example city with the sources' ``mqtt`` sections replaced."""
    data: dict[str, Any] = yaml.safe_load(CITY_FILE.read_text())
    data["registry"] = yaml.safe_load((CITY_FILE.parent / data["registry"]).read_text())
    for source in data["sources"].values():
        source.pop("mqtt", None)
    for source, topics in mqtt.items():
        data["sources"][source.replace("_", "-")]["mqtt"] = topics
    return parse_city(data, "test-city.yaml")


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("v3/app@tenant/devices/+/up", "v3/app@tenant/devices/aq-1/up", True),
        ("v3/app@tenant/devices/+/up", "v3/app@tenant/devices/aq-1/join", False),
        ("v3/app@tenant/devices/+/up", "v3/app@tenant/devices/up", False),
        ("application/+/device/+/event/up", "application/7/device/70b3d5/event/up", True),
        ("city/#", "city", True),  # '#' also matches the parent level
        ("city/#", "city/a/b/c", True),
        ("city/+", "city/a/b", False),
        ("+/status", "$SYS/status", False),  # the broker's own topics need their own filter
        ("#", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("a/b", "a/b", True),
        ("a/b", "a/b/", False),
    ],
)
def test_a_topic_matches_a_filter_as_mqtt_says(
    topic_filter: str, topic: str, expected: bool
) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("topic_filter", "problem"),
    [
        ("", "empty"),
        ("a/#/b", "'#' stands alone"),
        ("a/b#", "'#' stands alone"),
        ("a/b+/c", "'+' stands alone"),
        ("$share/group/a/b", "shared subscription"),
        ("a\x00b", "NUL"),
    ],
)
def test_a_malformed_filter_is_named_for_what_is_wrong(topic_filter: str, problem: str) -> None:
    found = filter_problem(topic_filter)

    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("city/+/counts", "city/radar-1/counts", True),
        ("city/+/counts", "city/radar-1/status", False),
        ("city/#", "city/a/b", True),
        ("city/a", "city/a/b", False),
        ("+/a", "b/+", True),
        ("#", "$SYS/x", False),
        ("application/1/device/+/event/up", "application/2/device/+/event/up", False),
    ],
)
def test_two_filters_overlap_when_one_topic_matches_both(
    first: str, second: str, expected: bool
) -> None:
    assert overlap(first, second) is expected
    assert overlap(second, first) is expected


# --- the city file ------------------------------------------------------------------------------


def test_the_formats_a_city_file_may_name_are_the_hub_formats_but_csv() -> None:
    assert sorted(MESSAGE_FORMATS) == sorted(name for name in FORMATS if name != "csv")


def test_each_message_routes_to_the_source_and_format_its_topic_is_declared_for(
    city: City,
) -> None:
    route = city.route("v3/velden-air@velden/devices/vld-aq-010005/up")

    assert route == MqttRoute("v3/velden-air@velden/devices/+/up", "air-quality", "tts-v3")
    assert city.route("velden/traffic/loop-5a00e8cd/counts") == MqttRoute(
        "velden/traffic/+/counts", "traffic-counters", "aws-iot"
    )
    assert city.route("velden/somewhere/else") is None


def test_a_filter_that_is_no_filter_refuses_the_city_file_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sources\.air-quality\.mqtt\.0\.topic.*'\+' stands"):
        city_with(air_quality=[{"topic": "v3/app+/up", "format": "tts-v3"}])


def test_a_format_no_hub_speaks_refuses_the_city_file() -> None:
    with pytest.raises(ConfigError, match=r"sources\.air-quality\.mqtt\.0\.format.*unknown format"):
        city_with(air_quality=[{"topic": "v3/app/up", "format": "csv"}])


def test_two_sources_on_overlapping_topics_refuse_the_city_file() -> None:
    with pytest.raises(ConfigError, match="match the same topics"):
        city_with(
            air_quality=[{"topic": "velden/+/senml", "format": "senml"}],
            traffic_counters=[{"topic": "velden/traffic/senml", "format": "senml"}],
        )


def test_one_source_may_declare_overlapping_filters_for_one_format() -> None:
    city = city_with(
        air_quality=[
            {"topic": "velden/air/#", "format": "senml"},
            {"topic": "velden/air/+/senml", "format": "senml"},
        ]
    )

    assert city.route("velden/air/north/senml") == MqttRoute("velden/air/#", "air-quality", "senml")


def test_a_city_without_mqtt_topics_is_still_a_city() -> None:
    assert city_with().mqtt_routes == []
