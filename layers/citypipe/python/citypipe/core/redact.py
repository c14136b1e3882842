"""Redaction: what quarantine may keep of a rejected payload.

A parsed payload keeps its shape; the values of its format's identifier fields (device,
network and subject identifiers, positions, hub secrets) are replaced, and so is any
string anywhere that looks like one (a MAC, an EUI-64, an IP address, a URN). A payload
that could not be parsed keeps its punctuation and its field names only: every string
value and every long number is replaced.
"""

from __future__ import annotations

import re
from typing import Any

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


MAX_DEPTH = 64  # deeper than any hub's payload: what lies below is replaced whole


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
    if isinstance(document, str) and LOOKS_LIKE_ID.match(document.strip()):
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
