"""What quarantine keeps of a payload, on its own (``core/shape.py``, decision 79): swept over
every shape an identifier may take and every place in a payload it may sit, none survives
in a shape; names are kept only where known; the budget of values described, the depth and
the paths are exact. The routes that take a payload there: test_quarantine_allowlist.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from citypipe.core.shape import UNRESOLVED, body_shape, schema_path, shape, text_shape
from citypipe.domain.limits import MAX_DEPTH, MAX_SHAPE_ITEMS, MAX_SHAPE_NODES

KNOWN = frozenset({"uplink_message", "decoded_payload", "no2", "device_mac", "rssi"})

# Every shape an identifier, a position or free text may take in a payload
IDENTIFIERS = {
    "mac-colons": "3C:22:FB:A1:B2:C7",
    "mac-dashes": "3c-22-fb-a1-b2-c7",
    "mac-dots": "3c22.fba1.b2c7",
    "mac-bare": "3C22FBA1B2C7",
    "eui-64": "70B3D5E75E0F1001",
    "ipv4": "10.20.30.40",
    "ipv4-port": "10.20.30.40:1700",
    "ipv6": "2001:db8:7e1d::65",
    "email": "sanne.devries@example.org",
    "phone": "+31 6 1234 5678",
    "imsi": "204080123456789",
    "imei": "356938035643809",
    "device-name": "Pixel van Sanne",
    "host-name": "gw-noord-7.velden.example",
    "url": "https://velden.example/sanne?id=42",
    "position-text": "52.08117,6.71543",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "licence-plate": "XK-123-B",
    "free-text": "Sanne passed the station at 10:03",
}
NUMBERS = {"latitude": 52.08117, "longitude": 6.71543, "rssi": -87, "imsi": 204080123456789}


def placements(secret: Any) -> dict[str, Any]:
    """Where in a payload a value may sit: as a value, a key, an item, deep, beside a known
    name, as a known name's value, in a key of an item of an array."""
    text = str(secret)
    return {
        "value": {"note": secret},
        "root": secret,
        "key": {text: 1},
        "item": [1, secret, "x"],
        "deep": {"uplink_message": {"decoded_payload": {"ble": [{"name": secret}]}}},
        "deep-key": {"uplink_message": {"decoded_payload": {text: {"no2": 3}}}},
        "known-name-value": {"device_mac": secret, "rssi": secret},
        "key-in-array": [{text: secret}, {text: [secret]}],
        "past-the-items-shown": [0] * (MAX_SHAPE_ITEMS + 3) + [secret, {text: secret}],
    }


def spellings(secret: Any) -> list[str]:
    text = str(secret)
    return [text, text.lower(), text.upper(), json.dumps(text)[1:-1], text.replace(":", "")]


SWEEP = [
    (name, where, secret, document)
    for name, secret in {**IDENTIFIERS, **NUMBERS}.items()
    for where, document in placements(secret).items()
]


@pytest.mark.parametrize(
    ("secret", "document"),
    [(secret, document) for _, _, secret, document in SWEEP],
    ids=[f"{name}-as-{where}" for name, where, _, _ in SWEEP],
)
def test_no_identifier_survives_in_a_shape_wherever_it_sits(secret: Any, document: Any) -> None:
    kept = json.dumps(shape(document, KNOWN))
    assert [s for s in spellings(secret) if s and s in kept] == []


@pytest.mark.parametrize("name", IDENTIFIERS)
def test_no_identifier_survives_in_the_shape_of_a_text_that_is_no_json(name: str) -> None:
    secret = IDENTIFIERS[name]
    text = f"seen {secret}; {secret},{secret}\n"
    kept = json.dumps(text_shape(text, KNOWN)) + json.dumps(body_shape(text.encode()))
    assert [s for s in spellings(secret) if s in kept] == []


def test_known_names_are_kept_unknown_ones_named_by_position() -> None:
    document = {"no2": 1, "3C:22:FB:A1:B2:C7": 2, "device_mac": "x", "Pixel van Sanne": 4}
    assert list(shape(document, KNOWN)["fields"]) == [
        "no2",
        "<key 1>",
        "device_mac",
        "<key 3>",
    ]


def test_a_name_known_to_another_format_is_unknown_here() -> None:
    assert list(shape({"no2": 1}, frozenset())["fields"]) == ["<key 0>"]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (None, {"type": "null"}),
        (True, {"type": "boolean"}),
        (False, {"type": "boolean"}),
        (0, {"type": "integer", "length": 1}),
        (-87, {"type": "integer", "length": 3}),
        (52.08117, {"type": "number", "length": 8}),
        ("", {"type": "string", "length": 0}),
        ("Pixel van Sanne", {"type": "string", "length": 15}),
        ([], {"type": "array", "length": 0, "items": []}),
        ({}, {"type": "object", "length": 0, "fields": {}}),
        (b"bytes", {"type": "unknown"}),  # not JSON (a decoder's own type): no length either
        ((1, 2), {"type": "unknown"}),
    ],
    ids=repr,
)
def test_a_value_keeps_its_type_and_length_only(value: Any, kept: dict[str, Any]) -> None:
    assert shape(value, KNOWN) == kept


def test_a_text_that_is_json_keeps_its_shape() -> None:
    assert text_shape('{"no2": 21.5}', KNOWN) == shape({"no2": 21.5}, KNOWN)


# --- the budget of values described -------------------------------------------------------------


def test_an_object_describes_as_many_members_as_the_budget_leaves() -> None:
    # the object itself is one value of the budget: its first MAX_SHAPE_NODES - 1 members
    kept = shape({f"k{i}": i for i in range(MAX_SHAPE_NODES + 50)}, KNOWN)
    assert kept["length"] == MAX_SHAPE_NODES + 50
    assert len(kept["fields"]) == MAX_SHAPE_NODES - 1


def test_arrays_describe_values_until_the_budget_runs_out() -> None:
    # the root, 8 numbers and 29 arrays of MAX_SHAPE_ITEMS numbers leave 10 values: the
    # 30th array and 9 of its items; the arrays after it are not described
    document: dict[str, Any] = {f"n{i}": i for i in range(8)}
    document |= {f"k{i}": [0] * MAX_SHAPE_ITEMS for i in range(40)}
    kept = list(shape(document, KNOWN)["fields"].values())
    described = [len(inner.get("items", [])) for inner in kept]
    assert 1 + len(kept) + sum(described) == MAX_SHAPE_NODES
    assert described[8:] == [MAX_SHAPE_ITEMS] * 29 + [9]


def test_an_array_describes_its_first_items_only() -> None:
    kept = shape(list(range(100)), KNOWN)
    assert (kept["length"], len(kept["items"])) == (100, MAX_SHAPE_ITEMS)


def test_a_container_reached_with_no_budget_left_is_counted_not_opened() -> None:
    # the root and MAX_SHAPE_NODES - 2 numbers leave one value: the last member, an
    # object, is described by its type and length, its own members not at all
    members: dict[str, Any] = {f"k{i}": i for i in range(MAX_SHAPE_NODES - 2)}
    members["last"] = {"no2": 1}
    kept = shape(members, KNOWN)["fields"]
    assert kept["<key 510>"] == {"type": "object", "length": 1}
    members["last"] = [1]
    assert shape(members, KNOWN)["fields"]["<key 510>"] == {"type": "array", "length": 1}


def test_a_container_reached_with_one_value_left_is_opened_on_nothing() -> None:
    members: dict[str, Any] = {f"k{i}": i for i in range(MAX_SHAPE_NODES - 3)}
    members["last"] = {"no2": 1}
    kept = shape(members, KNOWN)["fields"]
    assert kept["<key 509>"] == {
        "type": "object",
        "length": 1,
        "fields": {"no2": {"type": "integer", "length": 1}},
    }
    assert len(kept) == MAX_SHAPE_NODES - 2


def nested_arrays(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_arrays_are_described_to_the_deepest_level_only() -> None:
    text = json.dumps(shape(nested_arrays(2 * MAX_DEPTH), KNOWN))
    assert text.count('"items"') == MAX_DEPTH
    # the deepest array opened is at depth MAX_DEPTH - 1: its item is described
    assert json.dumps(shape(nested_arrays(MAX_DEPTH + 1), KNOWN)).count('"integer"') == 0
    assert json.dumps(shape(nested_arrays(MAX_DEPTH), KNOWN)).count('"integer"') == 1


def test_a_body_that_is_text_with_a_lone_surrogate_is_counted_as_bytes() -> None:
    # a str no UTF-8 can hold (a queue message's lone surrogate): its bytes as Python keeps them
    assert body_shape("a\udc80b") == {
        "type": "binary",
        "length": 5,
        "lines": 1,
        "bytes": {"letters": 2, "digits": 0, "spaces": 0, "punctuation": 0, "other": 3},
    }


# --- paths ------------------------------------------------------------------------------------

DOCUMENT = {
    "uplink_message": {"f_port": 3, "decoded_payload": {"no2": 23.5}},
    "sanne@example.org": [{"no2": 1}, [5, 6], "x", "y"],
    "a": {"b": 1},
    "a.b": {"rssi": 2},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("uplink_message.decoded_payload.no2", "uplink_message.decoded_payload.no2"),
        (".uplink_message.decoded_payload.no2", "uplink_message.decoded_payload.no2"),
        ("sanne@example.org[0].no2", "<key 1>[0].no2"),
        ("sanne@example.org.0.no2", "<key 1>[0].no2"),
        ("sanne@example.org[1][0]", "<key 1>[1][0]"),
        ("sanne@example.org.1.0", "<key 1>[1][0]"),
        ("sanne@example.org[3]", "<key 1>[3]"),
        ("sanne@example.org[4]", f"<key 1>.{UNRESOLVED}"),  # one past the last item
        ("sanne@example.org[9]", f"<key 1>.{UNRESOLVED}"),
        ("sanne@example.org[x]", f"<key 1>.{UNRESOLVED}"),
        ("sanne@example.org[٣]", f"<key 1>.{UNRESOLVED}"),  # a digit, but not an ASCII one
        ("sanne@example.org[0]x", f"<key 1>.{UNRESOLVED}"),
        ("sanne@example.org.0x", f"<key 1>.{UNRESOLVED}"),
        ("sanne@example.org.rssi", "<key 1>.rssi"),  # a known name, no key: kept
        ("a.b.rssi", "<key 3>.rssi"),  # the longest key the path starts with
        ("a.b", "<key 3>"),
        ("a.c", f"<key 2>.{UNRESOLVED}"),
        ("no2", "no2"),
        ("no", UNRESOLVED),
        ("uplink_message.f_portx", f"uplink_message.{UNRESOLVED}"),
        ("uplink_message.f_port.no2", "uplink_message.<key 0>.no2"),
    ],
)
def test_a_path_names_each_step_as_the_shape_does(path: str, expected: str) -> None:
    assert schema_path(path, DOCUMENT, KNOWN) == expected


def test_a_path_that_names_a_known_field_the_payload_lacks_keeps_the_name() -> None:
    assert schema_path("no2", {"no": 1}, KNOWN) == "no2"
    assert schema_path("no2x", {"no2": 1}, KNOWN) == UNRESOLVED


def test_a_path_of_an_unparsed_payload_keeps_known_names_only() -> None:
    assert schema_path("no2", None, KNOWN) == "no2"
    assert schema_path("sanne@example.org", None, KNOWN) == UNRESOLVED
