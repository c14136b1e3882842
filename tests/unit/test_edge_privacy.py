"""The edge: identifiers never reach durable storage in clear. The data subject's identifier
becomes a keyed pseudonym (the city's key of the day) before the first write; device and
network identifiers are dropped once the device is resolved; quarantine keeps a payload's
shape only (tests/unit/test_quarantine_allowlist.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date

import pytest
from unit_support import NOW, normalized, raw_rows, senml_reading, wifi_observation

from citypipe.core.formats.common import iso_epoch
from citypipe.core.pseudonyms import day_keys
from citypipe.core.shape import body_shape, shape
from citypipe.domain.city import City, parse_city
from citypipe_local.fakes import InMemoryKeyStore

MAC = "AA:BB:CC:DD:EE:01"
DAY = date(2026, 6, 1)

# --- pseudonyms --------------------------------------------------------------------------------


def test_the_pseudonym_is_an_hmac_under_the_citys_key_of_the_day(city: City) -> None:
    # Given the fixture's reading of wifi-22 at 10:03:17 on 1 June
    keys = InMemoryKeyStore()
    [row] = raw_rows(normalized(city, "canonical", wifi_observation(), keys=keys))
    # Then its pseudonym is HMAC(day key, normalized MAC), the day key derived from the
    # day's secret for this city
    secret = keys.daily_secret(DAY)
    key = hmac.new(secret, b"citypipe/v1/person-day/velden", hashlib.sha256).digest()
    assert key == day_keys(keys, "velden")(DAY)
    assert row["pseudonym"] == hmac.new(key, b"aabbccddee01", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "guess",
    [b"aabbccddee01", b"AA:BB:CC:DD:EE:01", b"velden/wifi-22/aabbccddee01"],
    ids=["bare", "as-sent", "salted-with-public-names"],
)
def test_the_pseudonym_is_not_a_plain_or_salted_hash(city: City, guess: bytes) -> None:
    [row] = raw_rows(normalized(city, "canonical", wifi_observation()))
    assert row["pseudonym"] != hashlib.sha256(guess).hexdigest()


@pytest.mark.parametrize(
    "spelling", ["aa:bb:cc:dd:ee:01", "AA-BB-CC-DD-EE-01", "aabb.ccdd.ee01", " AABBCCDDEE01 "]
)
def test_every_spelling_of_a_mac_gives_the_same_pseudonym(city: City, spelling: str) -> None:
    keys = InMemoryKeyStore()
    first = normalized(city, "canonical", wifi_observation(), keys=keys)
    second = normalized(
        city, "canonical", wifi_observation(personal={"device_mac": spelling}), keys=keys
    )
    assert raw_rows(first)[0]["pseudonym"] == raw_rows(second)[0]["pseudonym"]


@pytest.mark.parametrize(
    "other",
    [
        {"observed_at": "2026-06-02T10:03:17Z"},
        {"observed_at": "2026-05-31T23:59:59Z"},
        {"personal": {"device_mac": "AA:BB:CC:DD:EE:02"}},
    ],
    ids=["the-next-day", "the-day-before", "another-device"],
)
def test_another_day_or_device_gives_another_pseudonym(
    city: City, other: dict[str, object]
) -> None:
    keys = InMemoryKeyStore()
    [first] = raw_rows(normalized(city, "canonical", wifi_observation(), keys=keys))
    # received while that day's key lives (the day before is too old a day later)
    seen = other.get("observed_at")
    now = NOW if not isinstance(seen, str) else iso_epoch(seen) + 3_600
    [second] = raw_rows(
        normalized(city, "canonical", wifi_observation(**other), keys=keys, now=now)
    )
    assert first["pseudonym"] != second["pseudonym"]


@pytest.mark.parametrize(
    "other",
    [{"sensor": "wifi-23"}, {"observed_at": "2026-06-01T23:59:59Z"}],
    ids=["another-sensor", "later-that-day"],
)
def test_one_device_has_one_pseudonym_all_day_at_every_sensor(
    city: City, other: dict[str, object]
) -> None:
    # Given the same device seen at 10:03 at wifi-22, and again elsewhere or later that day,
    # in two batches
    keys = InMemoryKeyStore()
    [first] = raw_rows(normalized(city, "canonical", wifi_observation(), keys=keys))
    [later] = raw_rows(normalized(city, "canonical", wifi_observation(**other), keys=keys))
    # Then both carry the same pseudonym: what bounds one device's contribution to the day
    assert first["pseudonym"] == later["pseudonym"]


def test_the_key_day_is_the_utc_day(city: City) -> None:
    # 01:30 at +02:00 on 2 June is 23:30 UTC on 1 June: the key of 1 June, destroyed with it
    keys = InMemoryKeyStore()
    keys.daily_secret(date(2026, 6, 2))
    keys.destroy_before(date(2026, 6, 2))
    late = normalized(
        city, "canonical", wifi_observation(observed_at="2026-06-02T01:30:00+02:00"), keys=keys
    )
    assert dict(late.reasons) == {"key_destroyed": 1}


def test_a_reading_of_a_day_whose_key_is_destroyed_is_quarantined_at_the_edge(city: City) -> None:
    # Given the secrets before 2 June destroyed (and so refused from then on)
    keys = InMemoryKeyStore()
    keys.destroy_before(date(2026, 6, 2))
    # When a late reading of 1 June arrives
    result = normalized(city, "canonical", wifi_observation(), keys=keys)
    # Then it is refused rather than pseudonymized under a fresh secret
    assert (result.accepted, dict(result.reasons)) == (0, {"key_destroyed": 1})


@pytest.mark.parametrize("order", [1, -1], ids=["living-day-first", "destroyed-day-first"])
def test_a_subjects_pseudonym_of_one_day_is_never_taken_for_another_days(
    city: City, order: int
) -> None:
    # Given the secrets before 2 June destroyed
    keys = InMemoryKeyStore()
    keys.destroy_before(date(2026, 6, 2))
    # When one batch holds the same device on 2 June and on 1 June, in either order
    days = [wifi_observation(observed_at=f"2026-06-0{d}T12:03:17+02:00") for d in (2, 1)]
    result = normalized(city, "canonical", *days[::order], keys=keys)
    # Then the reading of 1 June is refused, the pseudonym of 2 June never lent to it
    assert (result.accepted, dict(result.reasons)) == (1, {"key_destroyed": 1})


def test_no_mac_and_no_signal_strength_reach_the_raw_record(city: City) -> None:
    [row] = raw_rows(normalized(city, "canonical", wifi_observation()))
    text = json.dumps(row).lower()
    assert "aa:bb:cc:dd:ee:01" not in text and "aabbccddee01" not in text
    assert "rssi" not in text and "-67" not in text


# --- what quarantine keeps: the shape ------------------------------------------------------------


def test_a_shape_keeps_the_names_it_knows_and_no_value() -> None:
    uplink = {
        "end_device_ids": {"dev_eui": "70B3D52DD600035A"},
        "uplink_message": {"f_port": 2, "decoded_payload": {"t": 21.5}},
    }
    known = frozenset({"end_device_ids", "dev_eui", "uplink_message", "f_port"})
    kept = shape(uplink, known)
    assert kept["fields"]["end_device_ids"]["fields"] == {
        "dev_eui": {"type": "string", "length": 16}
    }
    decoded = kept["fields"]["uplink_message"]["fields"]["<key 1>"]
    assert decoded["fields"] == {"<key 0>": {"type": "number", "length": 4}}
    assert "70B3D52DD600035A" not in json.dumps(kept)


@pytest.mark.parametrize(
    "value",
    [
        "00:26:ab:b8:a9:a4",
        "00-26-AB-B8-A9-A4",
        "70B3D52DD600035A",
        "2001:db8::1/",
        "192.168.0.1",
        "urn:dev:mac:0024befffe804ff1",
        "esp8266-12331981",
        "seen 00 26 ab b8 a9 a4 at the gate",
    ],
)
def test_a_string_is_kept_as_its_length_wherever_it_is(value: str) -> None:
    assert shape({"note": [value]}, frozenset({"note"})) == {
        "type": "object",
        "length": 1,
        "fields": {
            "note": {
                "type": "array",
                "length": 1,
                "items": [{"type": "string", "length": len(value)}],
            }
        },
    }


def test_text_that_is_no_json_keeps_no_field_name_and_no_value() -> None:
    cut = (
        '{"sensor":"wifi-22","personal":{"device_mac":"AA:BB:CC:DD:EE:01","rssi":-67},'
        '"chip":12331981,"n":"temp'
    )
    kept = json.dumps(body_shape(cut))
    assert [v for v in ("wifi-22", "device_mac", "AA:BB", "-67", "12331981") if v in kept] == []
    assert body_shape(cut)["length"] == len(cut)


# --- images: refused at the edge, never kept ---------------------------------------------------

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))).decode()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)).decode()


@pytest.mark.parametrize(
    ("fmt", "payload"),
    [
        ("senml", senml_reading(name="no2", value=None, vs=JPEG)),
        ("canonical", wifi_observation(personal={"device_mac": MAC, "image": PNG})),
        ("canonical", wifi_observation(value=f"data:image/png;base64,{PNG}")),
    ],
    ids=["senml-string-value", "canonical-personal-field", "canonical-data-uri"],
)
def test_a_payload_carrying_an_image_is_refused_whole_and_the_image_not_kept(
    city: City, fmt: str, payload: object
) -> None:
    result = normalized(city, fmt, payload)
    assert (result.accepted, dict(result.reasons)) == (0, {"image_refused": 1})
    [row] = result.quarantine
    kept = json.dumps(row)
    assert JPEG[:40] not in kept and PNG[:40] not in kept
    assert row["details"][0]["path"]


def test_a_payload_carrying_an_escaped_image_is_refused(city: City) -> None:
    text = json.dumps(senml_reading(name="no2", value=None, vs=JPEG)).replace("/", "\\/")
    assert dict(normalized(city, "senml", text).reasons) == {"image_refused": 1}


def test_a_long_base64_string_that_is_no_image_is_not_refused(city: City) -> None:
    noise = base64.b64encode(bytes(range(7, 250))).decode()
    result = normalized(city, "senml", senml_reading(name="no2", value=21.5, vs=noise))
    assert "image_refused" not in result.reasons


# --- the rules of a source's policy, at the edge --------------------------------------------------

MERAKI_POST = {
    "version": "2.0",
    "secret": "s3cr3t",
    "type": "DevicesSeen",
    "data": {
        "apMac": "e0:55:3d:25:5b:01",
        "observations": [
            {"clientMac": MAC, "seenTime": "2026-06-01T10:00:00Z", "rssi": -60,
             "manufacturer": "Apple", "ipv4": "/10.0.0.7"},
        ],
    },
}  # fmt: skip


def with_rules(city: City, **rules: str) -> City:
    data = city.model_dump(mode="json")
    data["sources"]["wifi-counters"]["policy"]["personal"].update(rules)
    return parse_city(data)


def test_a_field_the_policy_refuses_refuses_the_reading_and_names_only_the_field(
    city: City,
) -> None:
    result = normalized(with_rules(city, manufacturer="refuse"), "meraki", MERAKI_POST)
    [row] = raw_rows(result)
    assert row["refused"] == "manufacturer"
    assert "apple" not in json.dumps(row).lower()


@pytest.mark.parametrize(
    ("value", "refused"),
    [(0, "rssi"), (False, "rssi"), (-60, "rssi"), ("", None), ([], None), ({}, None), (None, None)],
)
def test_a_refused_field_sent_as_zero_or_false_is_still_sent(
    city: City, value: object, refused: str | None
) -> None:
    # a signal strength of 0 is a value the hub sent; an empty text, list or object, or
    # null, is no value (the meraki reader tells them apart by type, not by truth)
    post = json.loads(json.dumps(MERAKI_POST))
    post["data"]["observations"][0]["rssi"] = value
    [row] = raw_rows(normalized(with_rules(city, rssi="refuse"), "meraki", post))
    assert row.get("refused") == refused


@pytest.mark.parametrize("count", [1, 64, 65, 130])
def test_each_observation_refused_is_named_by_its_own_path(city: City, count: int) -> None:
    # a post's first 64 paths come from a table, the others are made: both say which
    post = json.loads(json.dumps(MERAKI_POST))
    observations = post["data"]["observations"] = post["data"]["observations"] * count
    observations[-1] = {**observations[-1], "seenTime": "yesterday"}
    result = normalized(city, "meraki", post)
    paths = [d["path"] for row in result.quarantine for d in row["details"]]
    assert paths == [f"data.observations[{count - 1}].seenTime"]


def test_a_data_subject_the_policy_drops_leaves_a_reading_without_a_pseudonym(
    city: City,
) -> None:
    # Given a Bluetooth vehicle counter whose payloads carry the address it saw, in a source
    # that counts vehicles and so may drop it (a people counter may not: it must
    # pseudonymize the device it counts, tests/unit/test_policy_protection.py)
    data = city.model_dump(mode="json")
    data["sources"]["traffic-counters"]["policy"]["personal"] = {"device_mac": "drop"}
    registry = data["registry"]
    registry["profiles"]["tc-bluetooth"] = {
        "source": "traffic-counters", "kind": "Bluetooth vehicle counter", "hubs": ["canonical"],
        "fields": {"traffic.vehicles": {"quantity": "traffic.vehicles"}},
    }  # fmt: skip
    registry["devices"]["tc-bt-1"] = {
        "profile": "tc-bluetooth", "hub": "canonical", "id": "tc-bt-1", "zone": "centrum",
    }  # fmt: skip
    seen = wifi_observation(
        sensor="tc-bt-1", quantity="traffic.vehicles", unit="{vehicle}", location=None,
        personal={"device_mac": MAC},
    )  # fmt: skip
    # When its reading reaches the edge
    result = normalized(parse_city(data), "canonical", seen)
    # Then it is written without a pseudonym, and without the address
    [row] = raw_rows(result)
    assert (row["quantity"], row["pseudonym"]) == ("traffic.vehicles", None)
    assert "aabbccddee01" not in json.dumps(row).lower()
