"""Keyed pseudonyms: HMAC-SHA-256 of a normalized identifier under the city's key for the
day, derived from the day's secret.

The city's key for a day is ``HMAC(day's secret, "citypipe/v1/person-day/<city>")``; a data
subject's pseudonym is ``HMAC(day key, normalized identifier)``: one device has one
pseudonym for a whole UTC day, at every sensor of the city, and another on every other day.
That is what bounds one person's contribution to a day's people counts (export caps each
pseudonym's cells, ``core.people``): the unit of privacy is one device over one day
(decision 0078). The link lives only as long as the key: the hourly job destroys the day's
secret after ``key_retention_days`` and, in the same run, takes every pseudonym of that day
out of the clean zone (``service.housekeeping.scrub_clean``); no pseudonym reaches the
aggregates or the open zone. Made at the edge, before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from citypipe.ports import KeyStore

KeyFor = Callable[[date], bytes]


def day_keys(keys: KeyStore, city: str) -> KeyFor:
    """The city's key of each day, cached per invocation. Raises KeyDestroyedError for a
    day whose secret is destroyed."""
    cache: dict[date, bytes] = {}
    label = f"citypipe/v1/person-day/{city}".encode()

    def key_for(day: date) -> bytes:
        key = cache.get(day)
        if key is None:
            key = cache[day] = hmac.digest(keys.daily_secret(day), label, "sha256")
        return key

    return key_for


def journal_key(keys: KeyStore, city: str, day: date) -> bytes:
    """The key of the day's message digests in a long-running edge's journal: a message
    holding a MAC cannot be found again by hashing guesses, and once the day's secret is
    destroyed no digest of that day can be recomputed."""
    return hmac.digest(keys.daily_secret(day), f"citypipe/v1/journal/{city}".encode(), "sha256")


_SEPARATORS = ":-. "


def normalize_identifier(value: str) -> str:
    """One device, one pseudonym: 'AA-BB-..' and 'aa:bb:..' are the same MAC."""
    text = bare = value.strip().lower()
    for separator in _SEPARATORS:  # str.replace: a third of str.translate's cost
        bare = bare.replace(separator, "")
    if bare.isalnum():
        return bare
    return "".join(ch for ch in text if ch.isalnum()) or text


def pseudonym(key: bytes, value: str) -> str:
    """Raises UnicodeEncodeError for a string no UTF-8 can hold (a lone surrogate)."""
    return hmac.digest(key, normalize_identifier(value).encode(), "sha256").hex()


def pseudonyms(key: bytes) -> Callable[[str], str]:
    """``pseudonym`` under one key, for the many identifiers of a batch: HMAC-SHA-256 as RFC
    2104 defines it, its inner and outer hashes begun once on the padded key and each
    identifier's finished on copies of them (``hashlib``'s, in C): 0.6 µs an identifier,
    where ``hmac.HMAC.copy``'s Python wrapper took 1.5 and a whole ``hmac.digest`` 1.6."""
    block = _SHA256_BLOCK
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    outer = hashlib.sha256(key.translate(_OPAD))

    def of(value: str) -> str:
        mac = inner.copy()
        mac.update(normalize_identifier(value).encode())
        done = outer.copy()
        done.update(mac.digest())
        return done.hexdigest()

    return of


_SHA256_BLOCK = 64  # bytes: the key's padded length (RFC 2104's B)
_IPAD = bytes(byte ^ 0x36 for byte in range(256))  # each key byte XOR its pad, as a table
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


# A Wi-Fi or Bluetooth device address (EUI-48) once normalized: twelve hex digits
ADDRESS = re.compile(r"[0-9a-f]{12}")


def opt_out_address(text: str) -> str | None:
    """A resident's address as the edge normalizes a subject's (``normalize_identifier``),
    or None when it is no EUI-48 address (``aa:bb:cc:dd:ee:ff``, ``AA-BB-..``,
    ``aabb.ccdd.eeff``)."""
    normalized = normalize_identifier(text)
    return normalized if ADDRESS.fullmatch(normalized) else None


@dataclass(frozen=True)
class OptOuts:
    """Residents' opt-outs as the edge holds them: the opt-outs' key and the HMAC of each
    address under it (``service.optout``), never an address. A subject whose HMAC is
    among them is dropped before any pseudonym of it is made (``core.ingest``)."""

    key: bytes
    digests: frozenset[str]

    def digest(self, value: str) -> str:
        """Raises UnicodeEncodeError for a string no UTF-8 can hold (a lone surrogate)."""
        return pseudonym(self.key, value)

    def digester(self) -> Callable[[str], str]:
        """``digest`` for the many subjects of a batch: the key's HMAC begun once
        (``pseudonyms``)."""
        return pseudonyms(self.key)
