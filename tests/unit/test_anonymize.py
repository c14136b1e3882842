"""anonymize: the privacy guarantees first, then generalization of time and place."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest
from conftest import load_event
from unit_support import city_data

from citypipe.core.anonymize import CLEAN_SCHEMA, Anonymized, KeyFor, anonymize_records, sensor_keys
from citypipe.core.columnar import parquet_bytes
from citypipe.domain.city import City, parse_city
from citypipe.domain.model import Observation
from citypipe_local.fakes import InMemoryKeyStore

MAC = "AA:BB:CC:DD:EE:01"
CENTRUM = (5.4448, 51.4305)
DAY = date(2026, 6, 1)


def wifi_record(
    mac: str = MAC,
    sensor: str = "wifi-012",
    at: str = "2026-06-01T10:03:17Z",
    location: tuple[float, float] | None = CENTRUM,
    zone: str | None = None,
    **personal: Any,
) -> dict[str, Any]:
    """A raw-zone record of a Wi-Fi counter, as ingest writes it."""
    return Observation(
        source="wifi-counters",
        sensor=sensor,
        quantity="people.presence",
        unit="{device}",
        value=1,
        observed_at=datetime.fromisoformat(at),
        location=location,
        zone=zone,
        personal={"device_mac": mac, "rssi": -67, **personal},
    ).to_record()


def air_record(at: str = "2026-06-01T10:07:31.500Z") -> dict[str, Any]:
    return Observation(
        source="air-quality",
        sensor="aq-007",
        quantity="air.no2",
        unit="ug/m3",
        value=21.5,
        observed_at=datetime.fromisoformat(at),
        location=CENTRUM,
    ).to_record()


@pytest.fixture
def keys() -> InMemoryKeyStore:
    return InMemoryKeyStore()


@pytest.fixture
def key_for(keys: InMemoryKeyStore) -> KeyFor:
    return sensor_keys(keys, "velden")


def anonymize(city: City, key_for: KeyFor, *records: dict[str, Any]) -> Anonymized:
    return anonymize_records(city, records, key_for)


def pseudonyms(city: City, key_for: KeyFor, *records: dict[str, Any]) -> list[str]:
    return anonymize(city, key_for, *records).table()["pseudonym"].to_pylist()


def city_with_policy(**policy: Any) -> City:
    """The example city with the Wi-Fi counters' privacy policy changed."""
    data = city_data()
    data["sources"]["wifi-counters"]["policy"].update(policy)
    return parse_city(data)


# --- personal data never reaches the clean zone ------------------------------------------


def test_the_mac_never_appears_in_the_clean_table(city: City, key_for: KeyFor) -> None:
    # Given readings of one device, its MAC spelled three ways
    spellings = [MAC, MAC.lower().replace(":", "-"), MAC.replace(":", "").lower()]
    # When they are anonymized and written as the clean zone's Parquet
    result = anonymize(city, key_for, *(wifi_record(mac=s) for s in spellings))
    body = parquet_bytes(result.table())
    # Then no spelling of the MAC is in any cell nor anywhere in the file
    cells = {str(v) for column in result.table().to_pylist() for v in column.values()}
    for spelling in [*spellings, MAC.replace(":", "")]:
        assert spelling not in cells
        assert spelling.encode() not in body
        assert spelling.upper().encode() not in body


def test_the_clean_table_has_no_personal_columns(city: City, key_for: KeyFor) -> None:
    # When a reading with a pseudonymized MAC and a dropped RSSI is anonymized
    table = anonymize(city, key_for, wifi_record()).table()
    # Then only the clean schema's columns exist: the MAC and the RSSI are gone
    assert table.schema == CLEAN_SCHEMA
    assert not {"personal", "device_mac", "rssi", "location"} & set(table.column_names)


def test_the_pseudonym_is_an_hmac_under_the_sensors_daily_key(city: City, key_for: KeyFor) -> None:
    [alias] = pseudonyms(city, key_for, wifi_record())
    expected = hmac.new(key_for("wifi-012", DAY), b"aabbccddee01", hashlib.sha256).hexdigest()
    assert alias == expected


@pytest.mark.parametrize(
    "guess",
    [
        lambda secret: hashlib.sha256(MAC.encode()).hexdigest(),
        lambda secret: hashlib.sha256(b"aabbccddee01").hexdigest(),
        lambda secret: hashlib.sha256(secret + b"aabbccddee01").hexdigest(),
        lambda secret: hashlib.sha256(b"aabbccddee01" + secret).hexdigest(),
        lambda secret: hmac.new(secret, b"aabbccddee01", hashlib.sha256).hexdigest(),
    ],
    ids=[
        "sha256-of-the-mac",
        "sha256-of-the-normalized-mac",
        "secret-salted-sha256",
        "secret-peppered-sha256",
        "hmac-under-the-day-secret-itself",
    ],
)
def test_the_pseudonym_is_not_a_plain_or_salted_hash(
    city: City, keys: InMemoryKeyStore, key_for: KeyFor, guess: Any
) -> None:
    # Given the day's secret (what an attacker holding the key store would have)
    [alias] = pseudonyms(city, key_for, wifi_record())
    # Then the pseudonym is none of the usual guesses
    assert alias != guess(keys.daily_secret(DAY))


def test_the_same_device_at_the_same_sensor_on_the_same_day_keeps_its_pseudonym(
    city: City, key_for: KeyFor
) -> None:
    morning = wifi_record(at="2026-06-01T06:00:00Z")
    evening = wifi_record(at="2026-06-01T21:45:10Z")
    first, second = pseudonyms(city, key_for, morning, evening)
    assert first == second


@pytest.mark.parametrize(
    "other",
    [
        wifi_record(sensor="wifi-013"),
        wifi_record(at="2026-06-02T10:03:17Z"),
        wifi_record(mac="AA:BB:CC:DD:EE:02"),
    ],
    ids=["another-sensor", "another-day", "another-device"],
)
def test_another_sensor_day_or_device_gives_another_pseudonym(
    city: City, key_for: KeyFor, other: dict[str, Any]
) -> None:
    first, second = pseudonyms(city, key_for, wifi_record(), other)
    assert first != second


@pytest.mark.parametrize(
    "spelling",
    ["aa-bb-cc-dd-ee-01", "aabb.ccdd.ee01", "AABBCCDDEE01", " aa:BB:cc:DD:ee:01 "],
    ids=["dashes-lower", "cisco-dots", "bare-upper", "mixed-case-padded"],
)
def test_every_spelling_of_a_mac_gives_the_same_pseudonym(
    city: City, key_for: KeyFor, spelling: str
) -> None:
    first, second = pseudonyms(city, key_for, wifi_record(mac=MAC), wifi_record(mac=spelling))
    assert first == second


def test_the_key_day_is_the_utc_day(city: City, key_for: KeyFor) -> None:
    # Given a reading at 01:30 in Velden (CEST), which is still the previous day in UTC
    late = wifi_record(at="2026-06-02T01:30:00+02:00")
    # Then it shares its pseudonym with that UTC day's readings, not the local day's
    same_utc_day, late_alias, next_utc_day = pseudonyms(
        city,
        key_for,
        wifi_record(at="2026-06-01T12:00:00Z"),
        late,
        wifi_record(at="2026-06-02T12:00:00Z"),
    )
    assert late_alias == same_utc_day != next_utc_day


def test_destroying_a_days_secret_makes_its_pseudonyms_unrecoverable(city: City) -> None:
    # Given a pseudonym made on 1 June
    keys = InMemoryKeyStore()
    [before] = pseudonyms(city, sensor_keys(keys, "velden"), wifi_record())
    # When the key store destroys the secrets of days before 2 June
    destroyed = keys.destroy_before(date(2026, 6, 2))
    # Then that day's secret is gone, and a late reading of that day is refused rather
    # than pseudonymized under a fresh secret (the device would be counted twice)
    assert destroyed == 1
    assert DAY not in keys.secrets
    late = anonymize_records(city, [wifi_record()], sensor_keys(keys, "velden"))
    assert (late.count, dict(late.refused)) == (0, {"key_destroyed": 1})
    assert before


def test_destroying_old_secrets_keeps_the_current_days(city: City) -> None:
    keys = InMemoryKeyStore()
    [before] = pseudonyms(city, sensor_keys(keys, "velden"), wifi_record())
    assert keys.destroy_before(DAY) == 0
    [after] = pseudonyms(city, sensor_keys(keys, "velden"), wifi_record())
    assert after == before


def test_a_reading_carrying_a_refused_field_is_refused_whole(key_for: KeyFor) -> None:
    # Given a policy that refuses readings carrying the probed SSIDs (they identify homes)
    city = city_with_policy(
        personal={"device_mac": "pseudonymize", "rssi": "drop", "probe_ssids": "refuse"}
    )
    # When a reading with the field and one without are anonymized
    result = anonymize(
        city, key_for, wifi_record(probe_ssids="HomeNet-42"), wifi_record(mac="AA:BB:CC:DD:EE:02")
    )
    # Then the first is refused with a reason naming the field, the second goes through
    assert dict(result.refused) == {"refused_field:probe_ssids": 1}
    assert result.count == 1


def test_a_record_of_a_personal_source_without_its_subject_is_refused(
    city: City, key_for: KeyFor
) -> None:
    # Given a raw record without the MAC (the policy changed between ingest and anonymize)
    record = wifi_record()
    del record["personal"]["device_mac"]
    # When it is anonymized, it is refused with a reason instead of failing the batch
    result = anonymize(city, key_for, record)
    assert (result.count, dict(result.refused)) == (0, {"missing_personal_field": 1})


def test_a_record_of_an_unknown_source_is_refused(city: City, key_for: KeyFor) -> None:
    record = {**air_record(), "source": "decommissioned"}
    assert dict(anonymize(city, key_for, record).refused) == {"unknown_source": 1}


def test_a_non_personal_reading_has_no_pseudonym(city: City, key_for: KeyFor) -> None:
    assert pseudonyms(city, key_for, air_record()) == [None]


def test_the_fixture_anonymizes_to_the_expected_clean_rows(city: City, key_for: KeyFor) -> None:
    # Given the Wi-Fi fixture as raw records, and the clean rows it should give
    # (pseudonyms are random per key; the expected file names devices device-1, device-2..)
    expected = load_event("expected/canonical_wifi.clean.json")
    records = [
        Observation(
            source="wifi-counters",
            **{k: v for k, v in o.items() if k != "value"},
            value=o["value"],
        ).to_record()
        for o in load_event("canonical_wifi.json")
    ]
    # When they are anonymized
    result = anonymize(city, key_for, *records)
    # Then the rows match, with one label per distinct pseudonym
    labels: dict[str, str] = {}
    rows = []
    for row in result.table().to_pylist():
        alias = row["pseudonym"]
        labels.setdefault(alias, f"device-{len(labels) + 1}")
        rows.append(
            {
                **row,
                "observed_at": row["observed_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pseudonym": labels[alias],
            }
        )
    assert rows == expected["rows"]
    assert dict(result.refused) == expected["refused"]


# --- generalization: time to the policy's resolution, points to zones ----------------------


@pytest.mark.parametrize(
    ("minutes", "at", "floored"),
    [
        (1, "2026-06-01T10:07:31.500Z", "2026-06-01T10:07:00Z"),
        (3, "2026-06-01T00:08:59Z", "2026-06-01T00:06:00Z"),
        (5, "2026-06-01T10:07:31Z", "2026-06-01T10:05:00Z"),
        (5, "2026-06-01T10:05:00Z", "2026-06-01T10:05:00Z"),
        (5, "2026-06-01T10:04:59.999Z", "2026-06-01T10:00:00Z"),
        (15, "2026-06-01T10:44:00Z", "2026-06-01T10:30:00Z"),
        (15, "2026-06-01T23:59:59Z", "2026-06-01T23:45:00Z"),
    ],
    ids=[
        "1-min",
        "3-min",
        "5-min",
        "5-min-on-the-edge",
        "5-min-just-before",
        "15-min",
        "15-min-end-of-day",
    ],
)
def test_time_is_floored_to_the_policys_resolution(
    key_for: KeyFor, minutes: int, at: str, floored: str
) -> None:
    city = city_with_policy(time_resolution_minutes=minutes)
    [row] = anonymize(city, key_for, wifi_record(at=at)).table().to_pylist()
    assert row["observed_at"] == datetime.fromisoformat(floored)


def test_a_source_without_policy_is_floored_to_the_minute(city: City, key_for: KeyFor) -> None:
    [row] = anonymize(city, key_for, air_record("2026-06-01T10:07:31.500Z")).table().to_pylist()
    assert row["observed_at"] == datetime(2026, 6, 1, 10, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("location", "zone", "expected"),
    [
        (CENTRUM, None, "centrum"),
        ((5.41, 51.45), None, "west-noord"),
        ((5.48, 51.41), None, "oost-zuid"),
        (None, "noord", "noord"),
        ((5.48, 51.41), "centrum", "centrum"),
        ((5.48, 51.41), "atlantis", "oost-zuid"),
    ],
    ids=[
        "point-in-centrum",
        "point-in-west-noord",
        "point-in-oost-zuid",
        "declared-zone",
        "declared-zone-wins",
        "unknown-zone-falls-back-to-the-point",
    ],
)
def test_a_point_becomes_the_zone_holding_it(
    city: City,
    key_for: KeyFor,
    location: tuple[float, float] | None,
    zone: str | None,
    expected: str,
) -> None:
    [row] = anonymize(city, key_for, wifi_record(location=location, zone=zone)).table().to_pylist()
    assert row["zone"] == expected


@pytest.mark.parametrize(
    ("location", "zone"),
    [((4.9, 52.37), None), ((5.5, 51.43), None), (None, "atlantis")],
    ids=["point-far-away", "point-just-east-of-the-city", "unknown-zone-without-point"],
)
def test_a_reading_outside_all_zones_is_refused(
    city: City, key_for: KeyFor, location: tuple[float, float] | None, zone: str | None
) -> None:
    result = anonymize(city, key_for, wifi_record(location=location, zone=zone))
    assert (result.count, dict(result.refused)) == (0, {"outside_zones": 1})


def test_an_empty_input_gives_an_empty_clean_table(city: City, key_for: KeyFor) -> None:
    table = anonymize(city, key_for).table()
    assert table.num_rows == 0
    assert table.schema == CLEAN_SCHEMA
    assert isinstance(table, pa.Table)
