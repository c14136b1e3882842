"""Keyed pseudonyms: HMAC-SHA-256 of a normalized identifier under a per-sensor, per-window
key derived from the day's secret.

The sensor's key for a day is ``HMAC(day's secret, "citypipe/v1/sensor-key/<city>/<sensor>")``;
its key for a 15-minute window is ``HMAC(sensor key, "citypipe/v1/window/<window start>")``.
A data subject's pseudonym is ``HMAC(window key, normalized identifier)``: the same device
has one pseudonym within a window at a sensor (so distinct devices can be counted, and
partials of that window merge exactly), and another in every other window, at every other
sensor, on every other day. Nothing written links two windows, even while the day's secret
lives; destroying it (the hourly job) destroys every key derived from it, so a pseudonym
can neither be reversed nor recomputed. Made at the edge, before anything is written.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import date

from citypipe.ports import KeyStore

KeyFor = Callable[[str, date], bytes]


def sensor_keys(keys: KeyStore, city: str) -> KeyFor:
    """Per-sensor daily keys, cached per invocation. Raises KeyDestroyedError for a day
    whose secret is destroyed."""
    cache: dict[tuple[str, date], bytes] = {}

    def key_for(sensor: str, day: date) -> bytes:
        key = cache.get((sensor, day))
        if key is None:
            label = f"citypipe/v1/sensor-key/{city}/{sensor}".encode()
            key = cache[sensor, day] = hmac.digest(keys.daily_secret(day), label, "sha256")
        return key

    return key_for


def journal_key(keys: KeyStore, city: str, day: date) -> bytes:
    """The key of the day's message digests in a long-running edge's journal: a message
    holding a MAC cannot be found again by hashing guesses, and once the day's secret is
    destroyed no digest of that day can be recomputed."""
    return hmac.digest(keys.daily_secret(day), f"citypipe/v1/journal/{city}".encode(), "sha256")


def window_key(sensor_key: bytes, window_start: int) -> bytes:
    """A sensor's key for the window starting at ``window_start`` (epoch seconds, UTC)."""
    return hmac.digest(sensor_key, f"citypipe/v1/window/{window_start}".encode(), "sha256")


_SEPARATORS = str.maketrans("", "", ":-. ")


def normalize_identifier(value: str) -> str:
    """One device, one pseudonym: 'AA-BB-..' and 'aa:bb:..' are the same MAC."""
    text = value.strip().lower()
    bare = text.translate(_SEPARATORS)
    if bare.isalnum():
        return bare
    return "".join(ch for ch in text if ch.isalnum()) or text


def pseudonym(key: bytes, value: str) -> str:
    """Raises UnicodeEncodeError for a string no UTF-8 can hold (a lone surrogate)."""
    return hmac.digest(key, normalize_identifier(value).encode(), "sha256").hex()
