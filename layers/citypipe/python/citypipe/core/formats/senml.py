"""SenML JSON (RFC 8428): base fields that change mid-pack, relative and negative times,
``v``/``vs``/``vb``/``vd`` values, sums, and the must-understand rule.

Device and field: a record's name is ``bn`` + ``n``. With a base name ending in ``/`` or
``:`` (``urn:dev:ow:10e2073a01080063:``, ``2001:db8::2/``), the device is the base name
without it and the field is ``n``; a record without ``n`` is named by its unit (``%RH``,
``lat``, ``lon``); without a base name, the name is split at its last ``/`` or ``:``.
Times below 2**28 are relative to when the pack was received (RFC 8428 §4.5.3); a ``t`` or
``bt`` that is no number refuses each reading it dates (``invalid_time``).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, Unreadable, number

RELATIVE_LIMIT = 2**28
SUPPORTED_VERSION = 10  # RFC 8428's bver
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:./_-]*$")  # RFC 8428 §4.5.1
SEPARATORS = "/:"
_BASE = ("bn", "bt", "bu", "bv", "bs", "bver")
_BASE_KEYS = frozenset(_BASE)
_KNOWN = frozenset({*_BASE, "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})  # RFC 8428's


@lru_cache(maxsize=65536)  # names repeat: one per device and field
def _split(bn: str, n: str, unit: str | None) -> tuple[str, str] | None:
    if not NAME.match(bn + n or "x"):
        return None
    if bn and bn[-1] in SEPARATORS:
        return bn[:-1], n or (unit or "")
    if bn and not n:
        return bn, unit or ""
    name = bn + n
    cut = max(name.rfind("/"), name.rfind(":"))
    if cut <= 0 or cut == len(name) - 1:
        return None
    return name[:cut], name[cut + 1 :]


def _base_number(record: dict[str, Any], key: str, current: float) -> float:
    if key not in record:
        return current
    raw = record[key]
    value = number(raw)
    if value is None or isinstance(raw, str):
        raise Unreadable("invalid_record", f"{key} must be a finite number")
    return value


class _Base:
    """The base fields in force: RFC 8428 lets any record change them for the rest."""

    __slots__ = ("bn", "bs", "bt", "bu", "bv")

    def __init__(self) -> None:
        self.bn = ""
        self.bu: str | None = None
        self.bt = self.bv = self.bs = 0.0

    def update(self, record: dict[str, Any]) -> None:
        if "bver" in record:
            version = record["bver"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise Unreadable("invalid_record", "bver must be a positive integer")
            if version > SUPPORTED_VERSION:
                raise Unreadable("unsupported_version", f"bver {version} > {SUPPORTED_VERSION}")
        for key in ("bn", "bu"):
            if key in record and not isinstance(record[key], str):
                raise Unreadable("invalid_record", f"{key} must be a string")
        self.bn = record.get("bn", self.bn)
        self.bu = record.get("bu", self.bu)
        try:
            self.bt = _base_number(record, "bt", self.bt)
        except Unreadable:
            self.bt = math.nan  # every reading it dates: invalid_time
        self.bv = _base_number(record, "bv", self.bv)
        self.bs = _base_number(record, "bs", self.bs)


def _value(record: dict[str, Any], base: _Base) -> Any:
    """The record's value (numbers with the base value added), or _NONE for a record of base
    fields only. Raises Unreadable for a value that is no finite number."""
    for key, offset in (("v", base.bv), ("s", base.bs)):
        if key in record:
            raw = record[key]
            value = number(raw)
            if value is None or isinstance(raw, str):
                raise Unreadable("invalid_value", f"{key} must be a finite number")
            return offset + value
    for key in ("vs", "vb", "vd"):
        if key in record:
            return record[key]
    if not _BASE_KEYS.issuperset(record):
        raise Unreadable("invalid_record", "a record without a value")
    return _NONE  # base fields only


_NONE = object()
_PATHS = [f"[{i}]" for i in range(64)]


def _record(record: Any, base: _Base, ctx: Context, path: str) -> Reading | Rejection | None:
    if type(record) is not dict:
        return Rejection("invalid_record", "a SenML record is a JSON object", path)
    value = record.get("v")
    if _BASE_KEYS.isdisjoint(record) and (
        type(value) is float or (type(value) is int and -(2**53) < value < 2**53)
    ):  # the common case (a plain number, no base field), as _record_value reads it
        value += base.bv
    else:
        value = _record_value(record, base, path)
        if value is _NONE:
            return None
        if type(value) is Rejection:
            return value
    n = record.get("n", "")
    unit = record.get("u", base.bu)
    t = record.get("t", 0)
    when = t if type(t) is int or type(t) is float else number(t)
    if type(n) is not str or (unit is not None and type(unit) is not str):
        return Rejection("invalid_record", "n and u must be strings", path)
    if when is None or isinstance(t, str):
        return Rejection("invalid_time", "t must be a finite number", path)
    split = _split(base.bn, n, unit)
    if split is None or not split[0]:
        return Rejection("invalid_name", "the name is not <device>/<field>", path)
    when += base.bt
    if not math.isfinite(when):
        return Rejection("invalid_time", "bt and t must be finite numbers", path)
    if abs(when) < RELATIVE_LIMIT:
        when += ctx.received_at
    return Reading("senml", split[0], split[1], value, when, path, unit)


def _record_value(record: dict[str, Any], base: _Base, path: str) -> Any:
    """A record's value with its base applied (base fields it sets apply from it on);
    ``_NONE`` for a record of base fields only; a rejection for a broken one."""
    try:
        if not _BASE_KEYS.isdisjoint(record):
            base.update(record)
        raw = record.get("v")
        if type(raw) is float or (type(raw) is int and -(2**53) < raw < 2**53):
            return base.bv + raw  # the common case: a plain number
        return _value(record, base)
    except Unreadable as exc:
        return Rejection(exc.rejection.reason, exc.rejection.detail, path)


def _must_understand(record: dict[str, Any]) -> bool:
    """A record with a field RFC 8428 lacks whose name ends in ``_``: the pack may not be
    read without understanding it (§4.4)."""
    return not _KNOWN.issuperset(record) and any(
        isinstance(key, str) and key.endswith("_") for key in record.keys() - _KNOWN
    )


def parse(pack: Any, ctx: Context) -> list[Reading | Rejection]:
    if not isinstance(pack, list) or not pack:
        raise Unreadable("invalid_payload", "a SenML pack is a non-empty JSON array")
    for index, record in enumerate(pack):
        if type(record) is dict and not _KNOWN.issuperset(record) and _must_understand(record):
            detail = "a must-understand field (its name ends in _)"
            raise Unreadable("unsupported_extension", detail, f"[{index}]")
    base = _Base()
    out: list[Reading | Rejection] = []
    paths = _PATHS if len(pack) <= len(_PATHS) else [f"[{i}]" for i in range(len(pack))]
    for index, record in enumerate(pack):
        item = _record(record, base, ctx, paths[index])
        if item is not None:
            out.append(item)
    return out


FORMAT = Format("senml", 2, "senml", parse, _KNOWN, "SenML JSON, RFC 8428")
