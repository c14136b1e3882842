"""SenML JSON (RFC 8428): base fields resolved, absolute times, numeric values only."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_event

from citypipe.core.formats.common import Reading, Rejection
from citypipe.core.formats.senml import parse

T0 = 1780308000  # 2026-06-01T10:00:00Z
AT_T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def readings(pack: Any) -> list[Reading]:
    out = parse(pack)
    assert all(isinstance(r, Reading) for r in out), out
    return [r for r in out if isinstance(r, Reading)]


def test_the_fixture_pack_resolves_to_six_readings_of_one_sensor() -> None:
    # Given a pack from an air quality monitor: base name, time and unit, a position
    pack = load_event("senml_pack.json")
    # When it is parsed
    result = readings(pack)
    # Then every record is a reading of aq-007, the urn prefix stripped
    assert [(r.sensor, r.measure) for r in result] == [
        ("aq-007", "no2"),
        ("aq-007", "pm10"),
        ("aq-007", "pm25"),
        ("aq-007", "no2"),
        ("aq-007", "pm10"),
        ("aq-007", "pm25"),
    ]


def test_base_time_plus_record_time_gives_the_observation_time() -> None:
    result = readings(load_event("senml_pack.json"))
    assert [r.observed_at for r in result] == [AT_T0] * 3 + [
        datetime(2026, 6, 1, 10, 1, tzinfo=UTC)
    ] * 3


def test_the_base_unit_applies_to_records_without_a_unit() -> None:
    result = readings(load_event("senml_pack.json"))
    assert {r.unit for r in result} == {"ug/m3"}


def test_lat_and_lon_records_give_the_location_not_readings() -> None:
    result = readings(load_event("senml_pack.json"))
    assert {r.location for r in result} == {(5.4451, 51.4312)}
    assert "lat" not in {r.measure for r in result}


def test_a_position_given_after_the_readings_still_locates_them() -> None:
    pack = [
        {"bn": "aq-007/", "bt": T0, "bu": "ug/m3"},
        {"n": "no2", "v": 21.5},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": "lat", "u": "lat", "v": 51.4312},
    ]
    assert readings(pack)[0].location == (5.4451, 51.4312)


def test_a_position_locates_only_its_own_sensor() -> None:
    pack = [
        {"bn": "aq-007/", "bt": T0, "bu": "ug/m3"},
        {"n": "lat", "u": "lat", "v": 51.4312},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": "no2", "v": 21.5},
        {"bn": "aq-008/", "n": "no2", "v": 19.0},
    ]
    assert [(r.sensor, r.location) for r in readings(pack)] == [
        ("aq-007", (5.4451, 51.4312)),
        ("aq-008", None),
    ]


def test_half_a_position_gives_no_location() -> None:
    pack = [{"bn": "aq-007/", "bt": T0}, {"n": "lat", "u": "lat", "v": 51.43}, {"n": "no2", "v": 1}]
    assert readings(pack)[0].location is None


def test_a_slash_base_name_and_a_urn_base_name_name_the_same_sensor() -> None:
    slash = readings([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": 1}])
    urn = readings([{"bn": "urn:dev:id:aq-007:", "bt": T0, "n": "no2", "v": 1}])
    assert (slash[0].sensor, slash[0].measure) == ("aq-007", "no2")
    assert (urn[0].sensor, urn[0].measure) == ("aq-007", "no2")


def test_a_full_name_without_base_name_is_split_at_the_last_separator() -> None:
    result = readings([{"n": "tc-113/vehicles", "t": T0, "u": "count", "v": 12}])
    assert (result[0].sensor, result[0].measure, result[0].unit) == ("tc-113", "vehicles", "count")


def test_the_base_value_is_added_to_each_value() -> None:
    pack = [{"bn": "tc-113/", "bt": T0, "bv": 100}, {"n": "vehicles", "v": 12}]
    assert readings(pack)[0].value == 112.0


def test_a_record_unit_overrides_the_base_unit() -> None:
    pack = [{"bn": "tc-113/", "bt": T0, "bu": "ug/m3"}, {"n": "vehicles", "u": "count", "v": 12}]
    assert readings(pack)[0].unit == "count"


def test_a_later_base_time_applies_to_the_records_after_it() -> None:
    pack = [
        {"bn": "tc-113/", "bt": T0, "n": "vehicles", "v": 12},
        {"bt": T0 + 900, "n": "vehicles", "v": 9},
        {"n": "vehicles", "v": 7, "t": 60},
    ]
    assert [r.observed_at.isoformat() for r in readings(pack)] == [
        "2026-06-01T10:00:00+00:00",
        "2026-06-01T10:15:00+00:00",
        "2026-06-01T10:16:00+00:00",
    ]


def test_an_absolute_time_without_base_time_is_read_as_is() -> None:
    result = readings([{"bn": "tc-113/", "n": "vehicles", "t": T0 + 0.5, "v": 1}])
    assert result[0].observed_at == datetime(2026, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)


def test_unknown_fields_without_underscore_are_ignored() -> None:
    # RFC 8428 §12.3.1: ignore what is not understood, unless its label ends in "_"
    pack = [{"bn": "aq-007/", "bt": T0, "bver": 10}, {"n": "no2", "v": 1, "ut": 60, "x-hub": 1}]
    assert len(readings(pack)) == 1


def test_a_record_of_base_fields_only_yields_nothing() -> None:
    assert parse([{"bn": "aq-007/", "bt": T0, "bu": "ug/m3"}]) == []


def test_a_bad_record_is_rejected_alone_and_the_others_are_read() -> None:
    pack = [{"bn": "aq-007/", "bt": T0}, {"n": "no2", "vs": "high"}, {"n": "pm10", "v": 14}]
    result = parse(pack)
    assert [type(r).__name__ for r in result] == ["Rejection", "Reading"]


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        ({"bn": "aq-007/", "n": "no2", "v": 1}, "invalid_payload"),
        ([], "invalid_payload"),
        (None, "invalid_payload"),
        (["aq-007/no2"], "invalid_payload"),
        ([{"bn": "aq-007/", "n": "no2", "v": 1}], "relative_time"),
        ([{"bn": "aq-007/", "n": "no2", "v": 1, "t": -30}], "relative_time"),
        ([{"bn": "aq-007/", "bt": 2**28 - 1, "n": "no2", "v": 1}], "relative_time"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "vs": "21.5"}], "non_numeric_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "vb": True}], "non_numeric_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "vd": "aGk"}], "non_numeric_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "s": 42}], "non_numeric_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": "21.5"}], "invalid_record"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": True}], "invalid_record"),
        ([{"bn": 7, "bt": T0, "n": "no2", "v": 1}], "invalid_record"),
        ([{"bn": "aq-007/", "bt": "today", "n": "no2", "v": 1}], "invalid_record"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": 1, "t": "now"}], "invalid_record"),
        ([{"bt": T0, "n": "no2", "v": 1}], "invalid_record"),
        ([{"bn": "aq-007/", "bt": T0, "v": 1}], "invalid_record"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": math.nan}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": math.inf}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": math.inf, "n": "no2", "v": 1}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": 10**400}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": T0, "bv": -(10**400), "n": "no2", "v": 1}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": 10**400, "n": "no2", "v": 1}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": T0, "n": "no2", "v": 1, "t": -(10**400)}], "invalid_value"),
        ([{"bn": "aq-007/", "bt": 1e20, "n": "no2", "v": 1}], "invalid_time"),
        (
            [{"bn": "aq-007/", "bt": T0, "bct_": "text/csv"}, {"n": "no2", "v": 1}],
            "unsupported_extension",
        ),
    ],
    ids=[
        "an-object-not-a-pack",
        "an-empty-pack",
        "null",
        "a-record-that-is-not-an-object",
        "no-time-means-now",
        "negative-time-is-relative",
        "time-below-2^28-is-relative",
        "string-value",
        "boolean-value",
        "data-value",
        "sum-only",
        "v-as-string",
        "v-as-boolean",
        "bn-not-a-string",
        "bt-not-a-number",
        "t-not-a-number",
        "name-without-sensor",
        "base-name-without-measure",
        "nan-value",
        "infinite-value",
        "infinite-time",
        "integer-value-beyond-float-range",
        "integer-base-value-beyond-float-range",
        "integer-base-time-beyond-float-range",
        "integer-time-beyond-float-range",
        "time-out-of-range",
        "must-understand-field",
    ],
)
def test_a_bad_pack_or_record_is_rejected_with_its_reason(pack: Any, reason: str) -> None:
    # When a bad pack is parsed
    result = parse(pack)
    # Then it yields one rejection, with a machine-readable reason and a detail
    assert len(result) == 1
    assert isinstance(result[0], Rejection)
    assert result[0].reason == reason
    assert result[0].detail
