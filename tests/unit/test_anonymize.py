"""anonymize: the rest of the privacy policy on the edge's pseudonymous raw records —
refusal, and time floored to the source's resolution. (Pseudonyms are the edge's:
tests/unit/test_edge_privacy.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from repo import load_event
from unit_support import city_data, normalized, raw_rows, senml_reading, wifi_observation

from citypipe.core.anonymize import CLEAN_SCHEMA, Anonymized, anonymize_records
from citypipe.domain.city import City, parse_city

WIFI_RULES = city_data()["sources"]["wifi-counters"]["policy"]["personal"]


def city_with_policy(**policy: Any) -> City:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"].update(policy)
    return parse_city(data)


def wifi_raw(city: City, **changes: Any) -> dict[str, Any]:
    """A Wi-Fi counter's raw record, as the edge writes it."""
    [row] = raw_rows(normalized(city, "canonical", wifi_observation(**changes)))
    return row


def anonymize(city: City, *records: dict[str, Any]) -> Anonymized:
    return anonymize_records(city, records)


def test_the_fixture_anonymizes_to_the_expected_clean_rows(city: City) -> None:
    # Given the Wi-Fi fixture through the edge, and the clean rows it should give
    # (pseudonyms are random per key; the expected file names devices device-1, device-2..)
    expected = load_event("expected/canonical_wifi.clean.json")
    records = raw_rows(normalized(city, "canonical", *load_event("canonical_wifi.json")))
    # When they are anonymized
    result = anonymize(city, *records)
    # Then the rows match, with one label per distinct pseudonym
    labels: dict[str, str] = {}
    rows = []
    for row in result.table().to_pylist():
        labels.setdefault(row["pseudonym"], f"device-{len(labels) + 1}")
        rows.append(
            {
                **row,
                "observed_at": row["observed_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pseudonym": labels[row["pseudonym"]],
            }
        )
    assert rows == expected["rows"]
    assert dict(result.refused) == expected["refused"]


def test_a_reading_that_carried_a_refused_field_is_refused_whole() -> None:
    # Given a source that refuses probe SSIDs (they name people's homes)
    city = city_with_policy(personal={**WIFI_RULES, "probe_ssids": "refuse"})
    personal = {"device_mac": "AA:BB:CC:DD:EE:01", "probe_ssids": "HomeNet-42"}
    refused = wifi_raw(city, personal=personal)
    kept = wifi_raw(city)
    # When both are anonymized
    result = anonymize(city, refused, kept)
    # Then the one that carried the field is refused, the other kept; the edge never wrote
    # the refused value
    assert (result.count, dict(result.refused)) == (1, {"refused_field:probe_ssids": 1})
    assert "HomeNet-42" not in repr(refused)


def test_a_record_of_a_personal_source_without_its_pseudonym_is_refused(city: City) -> None:
    record = {**wifi_raw(city), "pseudonym": None}
    assert dict(anonymize(city, record).refused) == {"missing_personal_field": 1}


def test_a_record_of_an_unknown_source_is_refused(city: City) -> None:
    record = {**wifi_raw(city), "source": "cameras"}
    assert dict(anonymize(city, record).refused) == {"unknown_source": 1}


def test_a_record_in_a_zone_the_city_no_longer_has_is_refused(city: City) -> None:
    record = {**wifi_raw(city), "zone": "atlantis"}
    result = anonymize(city, record)
    assert (result.count, dict(result.refused)) == (0, {"outside_zones": 1})


def test_a_non_personal_reading_has_no_pseudonym(city: City) -> None:
    [record, *_] = raw_rows(normalized(city, "senml", senml_reading()))
    assert anonymize(city, record).table()["pseudonym"].to_pylist() == [None]


def air_quality_at(minutes: int) -> City:
    """The example city with its air-quality source kept at ``minutes`` (a people counter
    may not be finer than 5: tests/unit/test_policy_protection.py)."""
    data = city_data()
    data["sources"]["air-quality"]["policy"] = {"time_resolution_minutes": minutes}
    return parse_city(data)


@pytest.mark.parametrize(
    ("minutes", "at", "floored"),
    [(1, 451.5, "2026-06-01T10:07:00Z"), (3, -61, "2026-06-01T09:57:00Z")],
    ids=["1-min", "3-min"],
)
def test_a_source_about_no_one_may_be_floored_finer_than_5_minutes(
    minutes: int, at: float, floored: str
) -> None:
    city = air_quality_at(minutes)
    [record, *_] = raw_rows(normalized(city, "senml", senml_reading(t=at)))
    [row] = anonymize(city, record).table().to_pylist()
    assert row["observed_at"] == datetime.fromisoformat(floored)


@pytest.mark.parametrize(
    ("minutes", "at", "floored"),
    [
        (5, "2026-06-01T10:07:31Z", "2026-06-01T10:05:00Z"),
        (5, "2026-06-01T10:05:00Z", "2026-06-01T10:05:00Z"),
        (5, "2026-06-01T10:04:59.999Z", "2026-06-01T10:00:00Z"),
        (15, "2026-06-01T10:44:00Z", "2026-06-01T10:30:00Z"),
        (15, "2026-06-01T23:59:59Z", "2026-06-01T23:45:00Z"),
    ],
    ids=[
        "5-min",
        "5-min-on-the-edge",
        "5-min-just-before",
        "15-min",
        "15-min-end-of-day",
    ],
)
def test_time_is_floored_to_a_people_counters_resolution(
    minutes: int, at: str, floored: str
) -> None:
    city = city_with_policy(time_resolution_minutes=minutes)
    [row] = anonymize(city, wifi_raw(city, observed_at=at)).table().to_pylist()
    assert row["observed_at"] == datetime.fromisoformat(floored)


def test_a_source_without_policy_is_floored_to_the_minute(city: City) -> None:
    [record, *_] = raw_rows(normalized(city, "senml", senml_reading(t=451.5)))
    [row] = anonymize(city, record).table().to_pylist()
    assert row["observed_at"] == datetime(2026, 6, 1, 10, 7, tzinfo=UTC)


def test_the_zone_is_the_registered_devices_whatever_the_payload_claims(city: City) -> None:
    # Given a Wi-Fi counter registered in zone "west" that claims a point in oost-zuid
    claimed = wifi_raw(city, location=[5.48, 51.41], zone="oost-zuid")
    # When it is anonymized, Then it counts in its registered zone
    [row] = anonymize(city, claimed).table().to_pylist()
    assert row["zone"] == "west"


def test_an_empty_input_gives_an_empty_clean_table(city: City) -> None:
    table = anonymize(city).table()
    assert table.num_rows == 0
    assert table.schema == CLEAN_SCHEMA
    assert isinstance(table, pa.Table)


def test_clean_rows_keep_no_arrival_order_finer_than_the_resolution(city: City) -> None:
    # Given detections of three phones at two counters within one 5-minute bucket, and an
    # air-quality reading, arriving in one order and in the reverse
    seen = [
        ("wifi-22", "2026-06-01T12:04:59+02:00", "AA:BB:CC:DD:EE:03"),
        ("wifi-23", "2026-06-01T12:03:10+02:00", "AA:BB:CC:DD:EE:01"),
        ("wifi-22", "2026-06-01T12:00:01+02:00", "AA:BB:CC:DD:EE:02"),
        ("wifi-22", "2026-06-01T12:02:30+02:00", "AA:BB:CC:DD:EE:01"),
    ]
    observations = [
        wifi_observation(sensor=s, observed_at=at, personal={"device_mac": mac})
        for s, at, mac in seen
    ]
    records = raw_rows(normalized(city, "canonical", *observations))
    records += raw_rows(normalized(city, "senml", senml_reading()))
    # When each order is anonymized
    forward = anonymize(city, *records).table()
    backward = anonymize(city, *reversed(records)).table()
    # Then the clean rows are the same rows in the same order: by time bucket, then by
    # every other column, so the order says nothing of when within the bucket each came
    assert forward.equals(backward)
    order = [
        (r["observed_at"], r["sensor"], r["quantity"], r["value"], r["pseudonym"] or "~",
         r["source"], r["unit"], r["zone"])
        for r in forward.to_pylist()
    ]  # fmt: skip
    assert order == sorted(order)
    assert forward.num_rows == 5
