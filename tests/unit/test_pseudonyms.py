"""Keyed pseudonyms on their own (``core/pseudonyms.py``): one device, one pseudonym, whatever
the spelling of its MAC; the journal's key bound to the day's secret and to nothing else.
The edge's use of them: tests/unit/test_edge_privacy.py."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core.pseudonyms import (
    OptOuts,
    day_keys,
    journal_key,
    normalize_identifier,
    opt_out_address,
    pseudonym,
    pseudonyms,
)
from citypipe.domain.errors import KeyDestroyedError
from citypipe_local.fakes import InMemoryKeyStore

DAY = date(2026, 6, 1)
KEY = bytes(range(32))
MAC = "aabbccddee01"

# --- one device, one pseudonym -------------------------------------------------------------


@st.composite
def spellings(draw: st.DrawFn, mac: str = MAC) -> str:
    """A spelling of one MAC a hub may send: any case per digit, grouped by 2 or 4 (or not
    at all) with ':', '-', '.', ' ' or '_', padded with blanks."""
    digits = "".join(c.upper() if draw(st.booleans()) else c for c in mac)
    size = draw(st.sampled_from([2, 4, 12]))
    separator = draw(st.sampled_from([":", "-", ".", " ", "_"]))
    grouped = separator.join(digits[i : i + size] for i in range(0, len(digits), size))
    before, after = draw(st.sampled_from(["", " ", "  ", "\t"])), draw(st.sampled_from(["", "\n"]))
    return f"{before}{grouped}{after}"


@settings(max_examples=200)
@given(spelling=spellings())
def test_every_spelling_of_one_mac_gives_one_pseudonym(spelling: str) -> None:
    assert normalize_identifier(spelling) == MAC
    assert pseudonym(KEY, spelling) == hmac.new(KEY, MAC.encode(), hashlib.sha256).hexdigest()


@settings(max_examples=100)
@given(first=spellings(), second=spellings(mac="aabbccddee02"))
def test_two_macs_keep_two_pseudonyms_whatever_their_spelling(first: str, second: str) -> None:
    assert pseudonym(KEY, first) != pseudonym(KEY, second)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("AA_BB_CC_DD_EE_01", MAC),  # a separator citypipe does not strip: letters and digits
        ("Phone of Ana", "phoneofana"),
        ("ÄÖ-01", "äö01"),  # letters of any script count as letters
        ("::", "::"),  # nothing but separators: kept as written, not one empty identifier
        ("--", "--"),
        ("", ""),
    ],
)
def test_an_identifier_is_normalized_to_its_letters_and_digits(value: str, normalized: str) -> None:
    assert normalize_identifier(value) == normalized


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("AA:BB:CC:DD:EE:01", MAC),
        ("aa-bb-cc-dd-ee-01", MAC),
        (" aabb.ccdd.ee01 ", MAC),
        ("aabbccddee0", None),  # eleven digits
        ("aabbccddee012", None),  # thirteen
        ("aa:bb:cc:dd:ee:0g", None),  # no hex digit
        ("phone-of-anna", None),
    ],
)
def test_an_opt_out_is_an_eui48_address_spelled_as_the_edge_spells_a_subject(
    text: str, address: str | None
) -> None:
    assert opt_out_address(text) == address
    if address is not None:
        assert address == normalize_identifier(text)


def test_identifiers_of_separators_only_are_not_one_device() -> None:
    assert pseudonym(KEY, "::") != pseudonym(KEY, "--")


def test_a_pseudonym_is_the_hmac_of_the_normalized_identifier_under_the_key() -> None:
    expected = hmac.new(KEY, b"aabbccddee01", hashlib.sha256).hexdigest()
    assert pseudonym(KEY, "AA:BB:CC:DD:EE:01") == expected
    assert pseudonym(bytes(32), "AA:BB:CC:DD:EE:01") != expected


def test_a_string_no_utf8_holds_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        pseudonym(KEY, "\udc80")
    with pytest.raises(UnicodeEncodeError):
        pseudonyms(KEY)("\udc80")


@settings(max_examples=100)
@given(key=st.binary(max_size=100), values=st.lists(st.text(), max_size=4))
def test_a_keys_pseudonyms_are_its_pseudonym_of_each_identifier(
    key: bytes, values: list[str]
) -> None:
    # one key's pseudonyms, made one after the other as a batch makes them (keys of any
    # length: HMAC hashes one longer than a block first)
    of = pseudonyms(key)
    for value in [*values, "AA:BB:CC:DD:EE:01", "aabb.ccdd.ee01"]:
        assert of(value) == pseudonym(key, value)


@pytest.mark.parametrize("length", [0, 1, 31, 32, 63, 64, 65, 128, 200])
def test_a_keys_pseudonyms_are_hmac_sha256_whatever_its_length(length: int) -> None:
    # RFC 2104: a key longer than the block (64 bytes) is hashed first, a shorter one padded
    key = bytes((7 * i + length) % 256 for i in range(length))
    of = pseudonyms(key)
    for value in ("AA:BB:CC:DD:EE:01", "aabb.ccdd.ee01", "wifi-40", "é", "x" * 1000):
        expected = hmac.digest(key, normalize_identifier(value).encode(), "sha256").hex()
        assert of(value) == pseudonym(key, value) == expected


@settings(max_examples=50)
@given(key=st.binary(max_size=100), values=st.lists(st.text(), max_size=4))
def test_a_batchs_opt_out_digests_are_the_opt_outs_digest_of_each_subject(
    key: bytes, values: list[str]
) -> None:
    opt_outs = OptOuts(key, frozenset())
    digest = opt_outs.digester()
    for value in [*values, "AA:BB:CC:DD:EE:01"]:
        assert digest(value) == opt_outs.digest(value)


# --- the day's keys --------------------------------------------------------------------------


def test_the_city_key_of_a_day_is_the_hmac_of_the_city_under_the_days_secret() -> None:
    keys = InMemoryKeyStore()
    key_for = day_keys(keys, "velden")
    expected = hmac.new(keys.daily_secret(DAY), b"citypipe/v1/person-day/velden", "sha256")
    assert key_for(DAY) == expected.digest()
    assert key_for(DAY) is key_for(DAY)  # cached for the invocation
    assert key_for(DAY + timedelta(days=1)) != key_for(DAY)
    assert day_keys(keys, "oudstad")(DAY) != key_for(DAY)


def test_a_day_whose_secret_is_destroyed_has_no_key() -> None:
    keys = InMemoryKeyStore()
    keys.daily_secret(DAY)
    keys.destroy_before(DAY + timedelta(days=1))
    with pytest.raises(KeyDestroyedError):
        day_keys(keys, "velden")(DAY)


# --- the bridge journal's key ------------------------------------------------------------------


def test_the_journal_key_is_the_hmac_of_the_city_under_the_days_secret() -> None:
    # Given a day's secret
    keys = InMemoryKeyStore()
    secret = keys.daily_secret(DAY)
    # Then the journal's key of that day is derived from it, for the journal and this city
    expected = hmac.new(secret, b"citypipe/v1/journal/velden", hashlib.sha256).digest()
    assert journal_key(keys, "velden", DAY) == expected


def test_the_journal_key_is_not_the_pseudonyms_key_nor_another_days_or_citys() -> None:
    keys = InMemoryKeyStore()
    key = journal_key(keys, "velden", DAY)
    assert key != day_keys(keys, "velden")(DAY)  # a journal digest is no pseudonym
    assert key != journal_key(keys, "velden", DAY + timedelta(days=1))
    assert key != journal_key(keys, "oudstad", DAY)
    assert key != journal_key(InMemoryKeyStore(), "velden", DAY)  # another secret


def test_once_the_days_secret_is_destroyed_no_journal_key_of_that_day_can_be_made() -> None:
    keys = InMemoryKeyStore()
    journal_key(keys, "velden", DAY)
    keys.destroy_before(DAY + timedelta(days=1))
    with pytest.raises(KeyDestroyedError):
        journal_key(keys, "velden", DAY)
    assert journal_key(keys, "velden", DAY + timedelta(days=1))  # the next day still has one
