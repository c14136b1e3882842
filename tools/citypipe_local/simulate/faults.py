"""The deliberate faults: which messages are spoiled, and the reason ingest must give.

A small, seeded fraction of each hub's messages is spoiled the ways hubs really fail. The
constants are ingest's quarantine reasons for the spoiled readings; ``DUPLICATE`` is a
hub's resend, re-serialized, which ingest counts as duplicates (never quarantined). Each hub
module spoils its own shape (an unknown device, a unit its firmware got wrong); the three
generic faults of a body (truncated, a non-UTF-8 byte, a resend) are here.
"""

from __future__ import annotations

import math
import random

import orjson

INVALID_JSON = "invalid_json"
INVALID_ENCODING = "invalid_encoding"
UNKNOWN_DEVICE = "unknown_device"
UNKNOWN_FIELD = "unknown_field"
UNIT_MISMATCH = "unit_mismatch"
OUT_OF_RANGE = "out_of_range"
FUTURE_TIME = "future_time"
MISSING_PERSONAL = "missing_personal_field"
DUPLICATE = "duplicate"
FUTURE = 4_070_908_800  # 2099-01-01T00:00:00Z


class Spoiler:
    """Chooses which messages of a stream to spoil (geometric gaps) and how (round robin)."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self._rng = rng
        self._rate = rate
        self._left = self._gap()
        self._turn: dict[tuple[str, ...], int] = {}

    def _gap(self) -> int:
        if self._rate <= 0:
            return -1
        if self._rate >= 1:
            return 1
        gap = math.log1p(-self._rng.random()) / math.log1p(-self._rate)
        return 1 + int(min(gap, 2.0**62))

    def next(self, kinds: tuple[str, ...]) -> str | None:
        """The fault of the next message of a hub that can fail in ``kinds`` (None: sent
        as is). The turn is kept per ``kinds``: hubs that fail alike share it."""
        if self._left < 0:
            return None
        self._left -= 1
        if self._left > 0:
            return None
        self._left = self._gap()
        turn = self._turn.get(kinds)
        if turn is None:
            turn = self._rng.randrange(len(kinds))
        self._turn[kinds] = turn + 1
        return kinds[turn % len(kinds)]

    def cut(self, text: str) -> str:
        """A truncated body: a proper, non-blank prefix of a JSON document is never valid."""
        return text[: self._rng.randint(1, len(text) - 1)]


def misencoded(body: str) -> bytes:
    """The body with a byte that is never UTF-8 in its middle."""
    cut = len(body) // 2
    return body[:cut].encode() + b"\xff" + body[cut:].encode()


def resent(body: str) -> str:
    """The body as a hub's resend carries it: the same document, re-serialized."""
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
