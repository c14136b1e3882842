"""Bytes to payloads (``core.decode``): the one place every route's framing is unwrapped,
within the bounds of ``domain.limits``."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from repo import load_event
from unit_support import post

from citypipe.core.decode import (
    BOM,
    Undecodable,
    drop_payloads,
    gunzip,
    http_body,
    routed_payload,
    webhook_payloads,
)
from citypipe.core.formats import FORMATS, Context
from citypipe.domain.city import City, MqttRoute
from citypipe.domain.limits import MAX_BODY_BYTES, MAX_BODY_LINES
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryKeyStore


def test_every_member_of_a_multi_member_gzip_is_read() -> None:
    # Given two gzip files concatenated (``cat a.gz b.gz``), as a hub's batching may send
    body = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"b": 2}\n')
    # When it is unwrapped, Then both members' lines are there
    assert gunzip(body, 1024) == b'{"a": 1}\n{"b": 2}\n'


def test_gzip_zero_padding_after_the_last_member_is_allowed() -> None:
    assert gunzip(gzip.compress(b"x") + b"\x00" * 16, 1024) == b"x"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gzip.compress(b"x" * 2048), "too_large"),  # inflates beyond the bound
        (gzip.compress(b"x" * 512) + gzip.compress(b"y" * 600), "too_large"),  # together
        (gzip.compress(b"x")[:-4], "invalid_gzip"),  # truncated
        (gzip.compress(b"x") + gzip.compress(b"y")[:-4], "invalid_gzip"),  # the last, truncated
        (gzip.compress(b"x") + b"trailing", "invalid_gzip"),  # not gzip after the member
        (b"not gzip at all", "invalid_gzip"),
        (b"", "invalid_gzip"),
    ],
    ids=[
        "bomb",
        "members-together",
        "truncated",
        "last-member-truncated",
        "trailing",
        "not-gzip",
        "empty",
    ],
)
def test_a_gzip_body_that_cannot_be_read_whole_within_the_bound_is_refused(
    body: bytes, reason: str
) -> None:
    with pytest.raises(Undecodable) as refused:
        gunzip(body, 1024)
    assert refused.value.reason == reason


def test_an_http_body_is_base64_decoded_then_gunzipped_as_the_request_says() -> None:
    sent = base64.b64encode(gzip.compress(b'{"n": 1}')).decode()
    assert http_body(sent, base64_encoded=True, content_encoding="GZIP ") == b'{"n": 1}'


@pytest.mark.parametrize(
    ("body", "base64_encoded", "encoding", "reason"),
    [
        ("x" * (MAX_BODY_BYTES + 1), False, "", "too_large"),
        ("%%%", True, "", "invalid_base64"),
        ("\ud800", False, "", "invalid_encoding"),
        ("{}", False, "br", "unsupported_encoding"),
        ("{}", False, "gzip", "invalid_gzip"),
    ],
    ids=["too-large", "base64", "lone-surrogate", "brotli", "not-gzip"],
)
def test_an_http_body_that_cannot_be_unwrapped_is_refused_with_its_reason(
    body: str, base64_encoded: bool, encoding: str, reason: str
) -> None:
    with pytest.raises(Undecodable) as refused:
        http_body(body, base64_encoded, encoding)
    assert refused.value.reason == reason


def test_a_webhook_body_is_one_document_or_json_lines() -> None:
    ctx = Context(received_at=0.0)
    [pretty] = webhook_payloads(b'{\n  "a": 1\n}', ctx)
    assert (pretty.parsed, pretty.body) == (True, {"a": 1})
    lines = webhook_payloads(b'{"a": 1}\n\n{"b": 2}\n', ctx)
    assert [(p.line, p.body) for p in lines] == [(1, b'{"a": 1}'), (3, b'{"b": 2}')]


def test_a_webhook_body_of_too_many_payloads_is_refused() -> None:
    with pytest.raises(Undecodable) as refused:
        webhook_payloads(b"{}\n" * (MAX_BODY_LINES + 1), Context(received_at=0.0))
    assert refused.value.reason == "too_many_lines"


def test_a_corrupt_or_cut_member_before_the_last_refuses_the_body_naming_it() -> None:
    # Given three members, the second corrupt (its deflate data flipped) or cut short
    first, second, third = (gzip.compress(b"%d\n" % i * 100) for i in range(3))
    corrupt = second[:10] + bytes(b ^ 0xFF for b in second[10:-8]) + second[-8:]
    for body in (first + corrupt + third, first + second[:-12] + third):
        # When it is unwrapped, Then it is refused whole, saying which member is broken
        with pytest.raises(Undecodable) as refused:
            gunzip(body, 1 << 20)
        assert (refused.value.reason, refused.value.detail[:9]) == ("invalid_gzip", "member 2:")


# --- a byte-order mark (RFC 8259 §8.1: a parser may ignore it), as Windows tools write ---------


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1}', b'{\n  "a": 1\n}', b'{"a": 1}\n{"b": 2}\n', b'{"a": 1}\n\xef\xbb\xbf{"b": 2}'],
    ids=["document", "pretty", "json-lines", "concatenated-files"],
)
def test_a_byte_order_mark_before_a_webhook_body_or_line_is_ignored(body: bytes) -> None:
    ctx = Context(received_at=0.0)
    plain = body.replace(BOM, b"")
    assert webhook_payloads(BOM + body, ctx) == webhook_payloads(plain, ctx)
    assert all(
        not isinstance(p.body, bytes) or BOM not in p.body
        for p in webhook_payloads(BOM + body, ctx)
    )


def test_a_webhook_push_with_a_byte_order_mark_is_accepted(memory_deps: Deps) -> None:
    pack = json.dumps(load_event("senml_pack.json")).encode()
    for body in (BOM + pack, gzip.compress(BOM + pack)):
        headers = {"content-encoding": "gzip"} if body[:2] == b"\x1f\x8b" else {}
        status, answer = post(
            memory_deps, InMemoryKeyStore(), "air-quality", "senml", body, headers
        )
        assert (status, answer.get("rejected_total")) == (202, 0)


def test_a_byte_order_mark_before_a_drop_or_an_mqtt_message_is_ignored(city: City) -> None:
    lines = drop_payloads(city, FORMATS["senml"], "inbox/velden/senml/a.jsonl", BOM + b"[]\n[]", 0)
    assert [p.body for p in lines] == [b"[]", b"[]"]
    route = MqttRoute(topic="t", source="air-quality", format="senml")
    message = routed_payload(BOM + b"[]", Context(received_at=0.0), 1, route, FORMATS)
    assert message.body == b"[]"
