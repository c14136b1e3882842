"""Quarantine keeps a refused payload's shape only (decision 79): its format, the reasons,
the field names the format's schema or the city's registry knows, each value's type and
length; never a value, an unknown key, free text, a CSV row's cells or the bytes of a body
that is no JSON. Rejection details and the webhook's answer name a field by its schema
path or position, never by a key or value it was sent with.

Each leak the privacy review found is planted in a payload that takes the real route (a
webhook push, a drop through the ingest stage, an MQTT message through the edge, a queue
message), and no spelling of any planted value may appear in any zone, log line or answer.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from edge_support import ingest_dropped, quarantine_rows, stored_text
from hub_support import HUBS, hub_city
from unit_support import normalized, post, senml_reading, wifi_observation

from citypipe.core.decode import routed_payload
from citypipe.core.formats import FORMATS, Context
from citypipe.core.shape import body_shape, schema_path, shape
from citypipe.domain.city import City
from citypipe.domain.limits import MAX_DEPTH, MAX_PAYLOAD_BYTES, MAX_SHAPE_NODES
from citypipe.domain.model import Function, Zone
from citypipe.entrypoints.sqs import ClaimCheckConsumer
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop
from citypipe_local.fakes import InMemoryKeyStore

# --- what is planted -----------------------------------------------------------------------------

MAC = "3C:22:FB:A1:B2:C7"
GATEWAY_EUI = "B827EBFFFE8D1C2E"
IP = "10.20.30.40"
EMAIL = "sanne.devries@example.org"
BLE_NAME = "Pixel van Sanne"
HOST = "gw-noord-7.velden.example"
IMSI = "204080123456789"
RSSI = -87
LAT, LON = 52.08117, 6.71543
STATION = "VLD-TC-903"


def mac_spellings(mac: str) -> list[str]:
    """A MAC (or EUI) as hubs and people write it: colons, dashes, spaces, dots, bare."""
    pairs = [mac[i : i + 2] for i in range(0, len(mac.replace(":", "")) * 3 // 2, 3)]
    bare = "".join(pairs)
    return [":".join(pairs), "-".join(pairs), " ".join(pairs), bare, f"{bare[:4]}.{bare[4:8]}."]


SECRETS = [
    *mac_spellings(MAC),
    GATEWAY_EUI,
    "-".join(GATEWAY_EUI[i : i + 2] for i in range(0, 16, 2)),
    IP,
    EMAIL,
    "sanne",
    BLE_NAME,
    HOST,
    "gw-noord-7",
    IMSI,
    str(RSSI),
    "52.081",  # the position to three decimals
    "6.715",
    STATION,
]


def leaked(text: str) -> list[str]:
    """The planted values ``text`` holds, in any of their spellings (case ignored)."""
    lowered = text.lower()
    return [secret for secret in SECRETS if secret.lower() in lowered]


def test_every_planted_value_is_searched_in_the_spellings_it_may_leak_in() -> None:
    assert mac_spellings(MAC)[:4] == [
        "3C:22:FB:A1:B2:C7", "3C-22-FB-A1-B2-C7", "3C 22 FB A1 B2 C7", "3C22FBA1B2C7",
    ]  # fmt: skip


# --- payloads carrying them ---------------------------------------------------------------------

FREE_TEXT = (
    f"seen {MAC.lower()} and {MAC.replace(':', ' ')} near {HOST} ({IP}:1700), "
    f"owner {EMAIL}, imsi {IMSI}"
)


def tts_uplink(dev_eui: str = "70B3D5E75E0F1001") -> dict[str, Any]:
    """A TTS uplink of ``dev_eui`` (registered: tts-aq-01) whose codec and gateway send
    more than the profile reads: free text, a MAC as a key, a device name, an IMSI, a
    client's position, the signal strength; the gateway's EUI, host name and address."""
    uplink = json.loads((HUBS / "tts-v3/webhook-uplink.json").read_text("utf-8"))
    uplink["end_device_ids"]["dev_eui"] = dev_eui
    uplink["uplink_message"]["decoded_payload"].update(
        {
            "note": FREE_TEXT,
            MAC.replace(":", "-"): RSSI,
            "ble": {"name": BLE_NAME, "imsi": int(IMSI), "position": [LAT, LON], "rssi": RSSI},
        }
    )
    gateway = uplink["uplink_message"]["rx_metadata"][0]
    gateway["gateway_ids"] = {"gateway_id": HOST, "eui": GATEWAY_EUI}
    gateway["location"] = {"latitude": LAT, "longitude": LON}
    gateway["packet_broker"] = {"forwarder_cluster_id": f"{IP}:1700", "home_network": EMAIL}
    return uplink


def meraki_post() -> dict[str, Any]:
    """A Scanning API v2 post of an access point the registry does not hold: refused whole."""
    return {
        "version": "2.0",
        "secret": "velden-scanning-2026",
        "type": "BluetoothDevicesSeen",
        "data": {
            "apMac": MAC,
            "observations": [
                {
                    "clientMac": MAC.lower(),
                    "name": BLE_NAME,
                    "ipv4": f"/{IP}",
                    "ssid": EMAIL,
                    "rssi": RSSI,
                    "seenTime": "2026-06-01T10:00:00Z",
                    "location": {"lat": LAT, "lng": LON, "unc": 3.2},
                }
            ],
        },
    }


def protobuf_uplink() -> bytes:
    """An uplink as Protocol Buffers (ChirpStack's binary marshaler): not text, not JSON."""
    mac = bytes.fromhex(MAC.replace(":", ""))
    return (
        b"\x0a\x06" + mac + b"\x12\x0f" + BLE_NAME.encode() + b"\x1a\x0f" + IMSI.encode()
        + b"\x22\x19" + EMAIL.encode() + b"\x2a\x08" + GATEWAY_EUI.encode()[:8] + b"\xff\xfe"
    )  # fmt: skip


UNQUOTED = (
    f"dev_eui={GATEWAY_EUI}; mac={MAC}; rssi={RSSI}; lat={LAT}; lon={LON}; name={BLE_NAME}; "
    f"host={HOST}; ip={IP}:1700; email={EMAIL}; imsi={IMSI}"
)


# --- the routes they take -----------------------------------------------------------------------

Sent = Callable[[Deps], list[str]]  # sends its payload; returns what the sender was told


def push(fmt: str, source: str, body: bytes | str) -> Sent:
    def send(deps: Deps) -> list[str]:
        status, answer = post(deps, InMemoryKeyStore(), source, fmt, body)
        return [str(status), json.dumps(answer)]

    return send


def dropped_csv(body: str) -> Sent:
    def send(deps: Deps) -> list[str]:
        message = drop(deps, "csv", "loop-export/loops.csv", body.encode(), 4)
        ingest_dropped(deps, message)
        deps.store.delete(message.bucket, message.key)  # the drop itself, as received
        return []

    return send


def mqtt_unrouted(body: bytes) -> Sent:
    def send(deps: Deps) -> list[str]:
        ctx = Context(received_at=deps.clock.now().timestamp(), topic=f"velden/{MAC}/up")
        payload = routed_payload(body, ctx, 1, None, FORMATS)
        admit(deps, InMemoryKeyStore(), Inbound([payload], Route.MQTT))
        return []

    return send


def queued(body: str) -> Sent:
    def send(deps: Deps) -> list[str]:
        consumer = ClaimCheckConsumer(Function.INGEST, deps, lambda message: "done")
        consumer.message(body, "message-1")
        return []

    return send


CSV = (
    f"station;interval_start;vehicles;bicycles;{MAC}\n"
    "VLD-TC-901;2026-06-01T09:00:00+02:00;118;34;1\n"
    f"{STATION};2026-06-01T09:15:00+02:00;91;12;{EMAIL};{BLE_NAME}\n"
    f"{STATION};{LAT};95;14;{IMSI}\n"
)
CANONICAL = wifi_observation(
    personal={"device_mac": MAC, MAC: BLE_NAME, EMAIL: RSSI},
    location=[LON, LAT],
)
SENML = [*senml_reading(), {"n": "pm10", "v": 3, f"{MAC.replace(':', '')}_": HOST}]
NGSI = {
    "type": "Notification",
    "data": [
        {
            "id": "urn:ngsi-ld:AirQualityObserved:velden-oost-0071",
            "type": "AirQualityObserved",
            "dateObserved": "2026-06-01T10:00:00Z",
            "no2": 27.4,
            EMAIL: {"type": "Property", "value": RSSI},
            "owner": {"type": "Property", "value": BLE_NAME},
        }
    ],
}

TTS, AQ = "tts-v3", "air-quality"
CASES: dict[str, tuple[str, Sent]] = {
    "tts-registered-unknown-fields": ("hubs", push(TTS, AQ, json.dumps(tts_uplink()))),
    "tts-unregistered-device": ("hubs", push(TTS, AQ, json.dumps(tts_uplink("70B3D5E75E0F9999")))),
    "tts-cut-short": ("hubs", push(TTS, AQ, json.dumps(tts_uplink())[:-40])),
    "meraki-unregistered-access-point": (
        "hubs",
        push("meraki", "wifi-counters", json.dumps(meraki_post())),
    ),
    "protobuf-body": ("hubs", push("chirpstack-v3", AQ, protobuf_uplink())),
    "unquoted-values": ("hubs", push(TTS, AQ, UNQUOTED)),
    "oversized-payload": ("hubs", push("senml", AQ, UNQUOTED + " " * MAX_PAYLOAD_BYTES + "\n{}")),
    "canonical-personal-keys": ("city", push("canonical", "wifi-counters", json.dumps(CANONICAL))),
    "senml-must-understand-key": ("city", push("senml", AQ, json.dumps(SENML))),
    "ngsi-ld-attribute-keys": ("hubs", push("ngsi-ld", AQ, json.dumps(NGSI))),
    "csv-rows-refused": ("hubs", dropped_csv(CSV)),
    "mqtt-unrouted-topic": ("hubs", mqtt_unrouted(UNQUOTED.encode())),
    "queue-message-no-claim-check": ("city", queued(json.dumps(meraki_post()))),
}


@pytest.fixture
def hub_deps(memory_deps: Deps) -> Deps:
    return dataclasses.replace(memory_deps, city=hub_city(memory_deps.city))


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_planted_value_reaches_quarantine_a_log_or_the_answer(
    memory_deps: Deps, hub_deps: Deps, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    # Given a payload carrying identifiers, free text and positions the format never names
    city, send = CASES[case]
    deps = hub_deps if city == "hubs" else memory_deps
    # When it takes its route to the edge (or to a stage's queue)
    with caplog.at_level(logging.DEBUG):
        answered = send(deps)
    # Then it was quarantined, and nothing anywhere holds any planted value
    assert deps.store.list(deps.names.bucket(Zone.QUARANTINE))
    assert leaked("\n".join([stored_text(deps), caplog.text, *answered])) == []


# --- the shape ---------------------------------------------------------------------------------

SCHEMA = frozenset({"uplink_message", "decoded_payload", "no2", "f_port"})


def test_a_shape_keeps_known_names_types_and_lengths_and_numbers_unknown_keys() -> None:
    document = {
        "uplink_message": {"f_port": 3, "decoded_payload": {"no2": 23.5, MAC: BLE_NAME}},
        EMAIL: [True, None, "x" * 17],
    }
    assert shape(document, SCHEMA) == {
        "type": "object",
        "length": 2,
        "fields": {
            "uplink_message": {
                "type": "object",
                "length": 2,
                "fields": {
                    "f_port": {"type": "integer", "length": 1},
                    "decoded_payload": {
                        "type": "object",
                        "length": 2,
                        "fields": {
                            "no2": {"type": "number", "length": 4},
                            "<key 1>": {"type": "string", "length": 15},
                        },
                    },
                },
            },
            "<key 1>": {
                "type": "array",
                "length": 3,
                "items": [
                    {"type": "boolean"},
                    {"type": "null"},
                    {"type": "string", "length": 17},
                ],
            },
        },
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("uplink_message.decoded_payload.no2", "uplink_message.decoded_payload.no2"),
        (f"uplink_message.decoded_payload.{MAC}", "uplink_message.decoded_payload.<key 1>"),
        (f"{EMAIL}[2]", "<key 1>[2]"),
        (f"{EMAIL}.2", "<key 1>[2]"),
        (f"uplink_message.decoded_payload.{IP}", "uplink_message.decoded_payload.<name>"),
        (f"{BLE_NAME}.{MAC}", "<name>"),
        ("", ""),
    ],
    ids=[
        "known", "a-mac-as-key", "an-index", "a-flattened-index", "no-such-key", "unresolved",
        "whole",
    ],
)  # fmt: skip
def test_a_path_names_keys_as_the_shape_does_and_never_as_received(
    path: str, expected: str
) -> None:
    document = {
        "uplink_message": {"f_port": 3, "decoded_payload": {"no2": 23.5, MAC: BLE_NAME}},
        EMAIL: [True, None, "x"],
    }
    assert schema_path(path, document, SCHEMA) == expected


def test_a_shape_is_bounded_in_depth_and_in_values() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH * 2):
        deep = {"a": deep}
    text = json.dumps(shape(deep, frozenset({"a"})))
    assert text.count('"a"') == MAX_DEPTH
    wide = shape([{"a": i} for i in range(10 * MAX_SHAPE_NODES)], frozenset({"a"}))
    assert wide["length"] == 10 * MAX_SHAPE_NODES
    assert json.dumps(wide).count('"integer"') < MAX_SHAPE_NODES


def test_a_body_that_is_no_json_keeps_its_length_and_byte_classes_only() -> None:
    assert body_shape(b"ab 12;\xff\n") == {
        "type": "binary",
        "length": 8,
        "lines": 2,
        "bytes": {"letters": 2, "digits": 2, "spaces": 2, "punctuation": 1, "other": 1},
    }
    assert body_shape(UNQUOTED)["type"] == "text"


# --- what a quarantine row and an answer say -----------------------------------------------------


def test_a_row_keeps_where_and_why_and_the_shape_of_what_was_refused(hub_deps: Deps) -> None:
    status, answer = post(
        hub_deps, InMemoryKeyStore(), "air-quality", "tts-v3", json.dumps(tts_uplink())
    )
    [row] = quarantine_rows(hub_deps)
    assert (status, answer["accepted"]) == (202, 3)
    assert {k: row[k] for k in ("line", "adapter", "source", "route", "rejected")} == {
        "line": 1,
        "adapter": "tts-v3@2",
        "source": "air-quality",
        "route": "webhook",
        "rejected": {"unknown_field": 7},  # note, the MAC, the ble object's five
    }
    decoded = row["payload"]["fields"]["uplink_message"]["fields"]["decoded_payload"]
    assert set(decoded["fields"]) == {
        "no2", "pm10", "pm25", "battery", "<key 4>", "<key 5>", "<key 6>",
    }  # fmt: skip
    assert decoded["fields"]["<key 5>"] == {"type": "integer", "length": 3}
    paths = [d["path"] for d in row["details"]]
    assert paths[:2] == [
        "uplink_message.decoded_payload.<key 4>",
        "uplink_message.decoded_payload.<key 5>",
    ]
    assert [r["path"] for r in answer["rejected"]] == paths[:1]
    assert {d["detail"] for d in row["details"]} == {"tts-aq-01's profile has no such field"}


def test_a_csv_row_keeps_its_known_columns_and_a_refused_line_its_length(hub_deps: Deps) -> None:
    dropped_csv(CSV)(hub_deps)
    rows = {row["line"]: row for row in quarantine_rows(hub_deps)}
    assert sorted(rows) == [2, 3, 4]
    assert set(rows[2]["payload"]["fields"]["values"]["fields"]) == {
        "vehicles", "bicycles", "<key 2>",
    }  # fmt: skip
    assert rows[2]["details"][0]["path"] == "values.<key 2>"
    assert rows[3]["payload"]["type"] == "text"
    assert rows[3]["details"][0]["detail"] == "6 cells, header has 5"


@pytest.mark.parametrize(
    ("fmt", "payload", "reason", "path"),
    [
        ("canonical", CANONICAL, "undeclared_personal_field", ""),
        ("senml", SENML, "unsupported_extension", "[4]"),
    ],
    ids=["a-personal-field-named-by-a-mac", "a-must-understand-field-named-by-a-mac"],
)
def test_a_detail_names_no_field_it_received(
    city: City, fmt: str, payload: Any, reason: str, path: str
) -> None:
    [row] = normalized(city, fmt, payload).quarantine
    [detail] = row["details"]
    assert (detail["reason"], detail["path"]) == (reason, path)
    assert leaked(json.dumps(row)) == []


# --- a batch's identity: what it refused, hashed, never kept -------------------------------------


def test_two_refused_payloads_of_one_shape_are_two_batches(hub_deps: Deps) -> None:
    first = tts_uplink("70B3D5E75E0F9998")
    second = tts_uplink("70B3D5E75E0F9997")
    assert shape(first, SCHEMA) == shape(second, SCHEMA)
    for uplink in (first, second):
        post(hub_deps, InMemoryKeyStore(), "air-quality", "tts-v3", json.dumps(uplink))
    assert len(quarantine_rows(hub_deps)) == 2


def test_a_refused_payload_sent_again_is_one_batch(hub_deps: Deps) -> None:
    uplink = tts_uplink("70B3D5E75E0F9998")
    answers = [
        post(hub_deps, InMemoryKeyStore(), "air-quality", "tts-v3", body)[1]
        for body in (json.dumps(uplink), json.dumps(uplink, indent=2))
    ]
    assert [a.get("resent", False) for a in answers] == [False, True]
    assert len(quarantine_rows(hub_deps)) == 1


def test_a_queue_message_keeps_the_claim_check_names_only(memory_deps: Deps) -> None:
    body = json.dumps({"city": "velden", "bucket": IP, "key": EMAIL, MAC: 1})
    queued(body)(memory_deps)
    bucket = memory_deps.names.bucket(Zone.QUARANTINE)
    [info] = memory_deps.store.list(bucket)
    [row] = [json.loads(gzip.decompress(memory_deps.store.get(bucket, info.key).body))]
    assert row["reason"] == "invalid_message"
    assert set(row["body"]["fields"]) == {"city", "bucket", "key", "<key 3>"}
    assert leaked(json.dumps(row)) == []
