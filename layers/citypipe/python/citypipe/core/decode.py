"""Bytes in, payloads out: every route's body made into the payloads the edge judges.

A route hands over bytes in its own framing — a webhook body (base64 by the platform,
gzip by the hub, one document or JSON Lines), an inbox drop (JSON Lines or a CSV file,
gzip or not), an IoT rule's event, an MQTT message — and this module alone unwraps them,
within the bounds of ``domain.limits``. What cannot be unwrapped raises ``Undecodable``
with a machine-readable reason; what unwraps into something that is not a payload is
still a payload, refused by the edge one at a time (never the whole body for one line).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from citypipe.core.formats import Context, Format, Rejection, csv_drop
from citypipe.core.ingest import Payload
from citypipe.domain.city import City, MqttRoute
from citypipe.domain.limits import MAX_BODY_BYTES, MAX_BODY_LINES, MAX_PAYLOAD_BYTES

# UTF-8's byte-order mark: Excel's "CSV UTF-8" and some Windows tools begin a file with it;
# RFC 8259 lets a JSON parser ignore it, and so does citypipe (at the start of a body, of a
# JSON line, of a CSV file in a UTF-8 encoding) — never a reason to refuse.
BOM = b"\xef\xbb\xbf"
# The MQTT topic a message was published on, where an HTTP sender knows it (an AWS IoT rule's
# HTTP action: ``X-Citypipe-Topic: ${topic()}``); the aws-iot format names a device by it.
TOPIC_HEADER = "x-citypipe-topic"


class Undecodable(ValueError):
    """A body that cannot be unwrapped. ``reason``: ``too_large`` (over its bound),
    ``too_many_lines``, ``invalid_base64``, ``invalid_encoding`` (not UTF-8),
    ``invalid_gzip``, ``unsupported_encoding``, ``unknown_mapping`` (a CSV drop's)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes, all members together
    (a small body that inflates to gigabytes is refused at once). Every member of a
    multi-member stream is read (``cat a.gz b.gz`` is one valid gzip file); a member that is
    corrupt or cut short refuses the whole body, naming the member; anything after the last
    member but gzip's zero padding makes it invalid."""
    out = bytearray()
    rest = data
    member = 0
    while True:
        member += 1
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise Undecodable("invalid_gzip", f"member {member}: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise Undecodable("too_large", f"more than {limit} bytes once gunzipped")
        if not inflater.eof:
            raise Undecodable("invalid_gzip", f"member {member}: cut short")
        rest = inflater.unused_data
        if not rest.strip(b"\x00"):
            return bytes(out)


def http_body(body: str, base64_encoded: bool, content_encoding: str) -> bytes:
    """A webhook body as bytes, as the platform handed it over (text, or base64) and as the
    hub encoded it (``Content-Encoding``: gzip or none), within ``MAX_BODY_BYTES``."""
    limit = MAX_BODY_BYTES * 4 // 3 + 4 if base64_encoded else MAX_BODY_BYTES
    if len(body) > limit:
        raise Undecodable("too_large", f"at most {MAX_BODY_BYTES} bytes")
    if base64_encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Undecodable("invalid_base64", str(exc)) from None
    else:
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from a platform's decoding
            raise Undecodable("invalid_encoding", f"not UTF-8: {exc.reason}") from None
    if len(data) > MAX_BODY_BYTES:
        raise Undecodable("too_large", f"at most {MAX_BODY_BYTES} bytes")
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        return gunzip(data, MAX_BODY_BYTES)
    if encoding not in ("identity", ""):
        raise Undecodable("unsupported_encoding", "Content-Encoding: gzip or none")
    return data


def json_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """JSON Lines split at line feeds only (U+2028 and friends are valid inside JSON
    strings); a CR before the LF is JSON whitespace, a byte-order mark before a line is
    ignored (files concatenated). Blank lines are no payloads."""
    for number, line in enumerate(body.split(b"\n"), start=1):
        text = line.removeprefix(BOM)
        if text.strip():
            yield number, text


def _is_payload_line(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict | list)
    except orjson.JSONDecodeError:
        return False


def webhook_payloads(body: bytes, ctx: Context) -> list[Payload]:
    """One (possibly pretty-printed) document; else JSON Lines when any line is a payload
    (an object or an array) on its own; else one broken document (kept once, not line by
    line). At most ``MAX_BODY_LINES`` payloads. A byte-order mark before it is ignored."""
    body = body.removeprefix(BOM)
    if len(body) <= MAX_PAYLOAD_BYTES:  # a larger one is refused as such by the edge
        try:
            return [Payload(orjson.loads(body), ctx, 1, parsed=True)]
        except orjson.JSONDecodeError:
            pass
    lines = list(json_lines(body))
    if len(lines) > MAX_BODY_LINES:
        raise Undecodable("too_many_lines", f"at most {MAX_BODY_LINES} payloads")
    if len(lines) > 1 and not any(_is_payload_line(line) for _, line in lines):
        return [Payload(body, ctx, 1)]
    return [Payload(line, ctx, number) for number, line in lines]


def headers_context(received_at: float, headers: Mapping[str, str]) -> Context:
    """What a webhook request's headers tell the edge: the topic (``TOPIC_HEADER``) and
    the headers themselves (names in lower case: a format may read one, e.g. X-Sensor)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return Context(received_at=received_at, topic=lowered.get(TOPIC_HEADER), headers=lowered)


def csv_payloads(city: City, body: bytes, mapping_name: str, at: float) -> list[Payload]:
    """A CSV drop's rows as payloads, each judged alone (a line not in the mapping's
    encoding, not CSV or of the wrong width is rejected as it is); ``unknown_mapping`` for
    a mapping the city file does not have. A UTF-8 file's byte-order mark is ignored."""
    mapping = city.csv.get(mapping_name)
    if mapping is None:
        raise Undecodable("unknown_mapping", f"no CSV mapping {mapping_name!r} in the city file")
    ctx = Context(received_at=at)
    if mapping.encoding.startswith("utf-8"):
        body = body.removeprefix(BOM)
    raw = body.split(b"\n")
    texts: list[str] = []
    payloads: list[Payload] = []
    for number, line in enumerate(raw, start=1):
        try:
            texts.append(line.rstrip(b"\r").decode(mapping.encoding))
        except UnicodeDecodeError:  # this line alone
            texts.append("")
            refused = Rejection("invalid_encoding", f"a line that is not {mapping.encoding}")
            payloads.append(Payload(line, ctx, number, rejection=refused))
    for number, doc in csv_drop.documents(texts, mapping):
        if isinstance(doc, Rejection):
            payloads.append(Payload(raw[number - 1], ctx, number, rejection=doc))
        else:
            payloads.append(Payload(doc, ctx, number, parsed=True))
    return sorted(payloads, key=lambda p: p.line)


def drop_payloads(city: City, fmt: Format, key: str, body: bytes, at: float) -> list[Payload]:
    """An inbox drop's payloads: a CSV file read with the mapping its key names
    (``inbox/<city>/csv/<mapping>/<file>.csv``), else JSON Lines, a payload a line."""
    if fmt is csv_drop.FORMAT:
        parts = key.split("/")
        return csv_payloads(city, body, parts[3] if len(parts) > 4 else "", at)
    ctx = Context(received_at=at)
    return [Payload(line, ctx, number) for number, line in json_lines(body)]


def iot_payload(document: Mapping[str, Any], topic: str, at: float) -> Payload:
    """An AWS IoT rule's output — a device's JSON, or a LoRaWAN uplink with its decoder's
    ``transformed_message`` — and the MQTT topic it came on. Kept as the JSON the rule
    gave (the standard library's encoder: integers beyond 64 bits too)."""
    return Payload(json.dumps(document).encode(), Context(received_at=at, topic=topic))


def routed_payload(
    body: bytes, ctx: Context, line: int, route: MqttRoute | None, formats: Mapping[str, Format]
) -> Payload:
    """A message on an MQTT topic: of the format and source the city file declares for the
    topic (``route``), or refused (``unknown_topic``) where no source declares it; a
    byte-order mark before it is ignored."""
    if route is None:
        refused = Rejection("unknown_topic", "no source of the city file declares this topic")
        return Payload(body, ctx, line, rejection=refused)
    return Payload(
        body.removeprefix(BOM), ctx, line, fmt=formats[route.format], source=route.source
    )
