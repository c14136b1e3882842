"""Redaction: what quarantine may keep of a rejected payload.

A parsed payload keeps its shape; the values of its format's identifier fields (device,
network and subject identifiers, positions, hub secrets) are replaced, and so is any
string anywhere that looks like one (a MAC, an EUI-64, an IP address, a URN) or holds an
image (base64 of an image format's magic bytes: images are never kept). A payload
that could not be parsed keeps its punctuation and its field names only: every string
value and every long number is replaced.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from citypipe.domain.limits import MAX_DEPTH

MARK = "<redacted>"
ALWAYS = frozenset(
    {
        "mac", "clientmac", "apmac", "device_mac", "ip", "ipv4", "ipv6", "ssid", "secret",
        "password", "token", "imsi", "imei", "plate", "serial", "latitude", "longitude",
        "lat", "lng", "lon", "altitude", "gps", "position", "email", "userid", "username",
    }
)  # fmt: skip
LOOKS_LIKE_ID = re.compile(
    r"""^(?:
        [0-9a-f]{2}(?:[:.-]?[0-9a-f]{2}){5,7}      # MAC-48 / EUI-64, any spelling
      | [0-9a-f]{10,}                              # a long hex run (ids, keys)
      | [0-9a-f:]*:[0-9a-f:]*:[0-9a-f:./]*           # IPv6
      | \d{1,3}(?:\.\d{1,3}){3}(?:/\d+)?           # IPv4
      | urn:.*                                     # device and entity URNs
      | (?:esp8266|esp32|eui)-.*                   # ids that embed a chip id or an EUI
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|$)', re.DOTALL)
_LONG_NUMBER = re.compile(r"\d{6,}")
_FIELD_NAME = re.compile(r"^[A-Za-z_@$][A-Za-z0-9_@$ .-]{0,39}$")


# --- images: never processed, never kept ------------------------------------------------------

MIN_IMAGE_CHARS = 64  # no image is shorter; a short string starting like one is no image
# Where a payload's text may hold a base64 image: a string starting as an image's magic
# bytes encode (JPEG /9j/, PNG, GIF, RIFF/WebP, TIFF, BMP, ISO-BMFF/HEIC, a data: URI),
# JSON's escaped slash and base64url included. A cheap look at the raw bytes (one regular
# expression, about what parsing costs); ``looks_like_image`` decides.
IMAGE_HINT = re.compile(
    rb'"(?:/9j/|\\/9j\\/|_9j_|iVBORw0KGgo|R0lGOD|UklGR|SUkq|TU0A|Qk|AAAA|data:image)'
)
IMAGE_HINT_TEXT = re.compile(IMAGE_HINT.pattern.decode())
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")


def _decoded_head(text: str) -> bytes:
    head = text[:24].replace("\\/", "/")
    for alphabet in (None, b"-_"):
        try:
            return base64.b64decode(head, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
    return b""


def looks_like_image(text: str) -> bool:
    """A string that holds an image: a ``data:image/`` URI, or base64 (standard or URL-safe)
    whose first bytes are an image format's magic number."""
    if len(text) < MIN_IMAGE_CHARS:
        return False
    if text[:11].lower() == "data:image/":
        return True
    raw = _decoded_head(text)
    return (
        raw.startswith(_MAGIC)
        or (raw[:2] == b"BM" and raw[6:10] == b"\x00\x00\x00\x00")  # BMP: reserved bytes 0
        or (raw[:4] == b"RIFF" and raw[8:12] in (b"WEBP", b"AVI ", b"WAVE"))
        or raw[4:8] == b"ftyp"  # HEIC, AVIF, MP4
    )


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def image_path(document: Any, path: str = "", depth: int = 0) -> str | None:
    """The JSON path of the first string of a document that holds an image, or None."""
    if depth >= MAX_DEPTH:
        return None
    if isinstance(document, str):
        return path if looks_like_image(document) else None
    items = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else ()
    )
    for key, value in items:
        found = image_path(value, _child(path, key), depth + 1)
        if found is not None:
            return found
    return None


def redact(document: Any, identifiers: frozenset[str], depth: int = 0) -> Any:
    """A copy of a parsed payload with identifier fields (keys compared lower-cased) and
    identifier-looking strings replaced by ``MARK``; nesting below MAX_DEPTH is replaced."""
    if depth >= MAX_DEPTH and isinstance(document, dict | list):
        return MARK
    if isinstance(document, dict):
        out: dict[str, Any] = {}
        for key, value in document.items():
            name = key.lower()
            if name in identifiers or name in ALWAYS:
                out[key] = MARK
            else:
                out[key] = redact(value, identifiers, depth + 1)
        return out
    if isinstance(document, list):
        return [redact(item, identifiers, depth + 1) for item in document]
    if isinstance(document, str) and (
        LOOKS_LIKE_ID.match(document.strip()) or looks_like_image(document)
    ):
        return MARK
    return document


def redact_text(text: str) -> str:
    """What may be kept of a payload that is not JSON (or not readable): field names (a
    string followed by ``:`` that looks like one) and punctuation; every other string and
    every run of six or more digits is replaced."""

    def string(match: re.Match[str]) -> str:
        literal = match.group(0)
        after = text[match.end() : match.end() + 40].lstrip()
        inner = literal[1:-1] if literal.endswith('"') and len(literal) > 1 else literal[1:]
        if after.startswith(":") and _FIELD_NAME.match(inner) and not LOOKS_LIKE_ID.match(inner):
            return literal
        return f'"{MARK}"'

    outside = _STRING.split(text)
    strings = [string(m) for m in _STRING.finditer(text)]
    parts = [_LONG_NUMBER.sub(MARK, outside[0])]
    for literal, rest in zip(strings, outside[1:], strict=True):
        parts.append(literal)
        parts.append(_LONG_NUMBER.sub(MARK, rest))
    return "".join(parts)
