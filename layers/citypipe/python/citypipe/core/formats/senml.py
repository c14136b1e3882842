"""SenML JSON (RFC 8428): base fields that change mid-pack, relative and negative times,
``v``/``vs``/``vb``/``vd`` values, sums, and the must-understand rule.

Device and field: a record's name is ``bn`` + ``n``. With a base name ending in ``/`` or
``:`` (``urn:dev:ow:10e2073a01080063:``, ``2001:db8::2/``), the device is the base name
without it and the field is ``n``; a record without ``n`` is named by its unit (``%RH``,
``lat``, ``lon``); without a base name, the name is split at its last ``/`` or ``:``.
Times below 2**28 are relative to when the pack was received (RFC 8428 §4.5.3).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, Unreadable, number

RELATIVE_LIMIT = 2**28
SUPPORTED_VERSION = 10  # RFC 8428's bver
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:./_-]*$")  # RFC 8428 §4.5.1
SEPARATORS = "/:"
IDENTIFIERS = frozenset({"bn"})
_BASE = ("bn", "bt", "bu", "bv", "bs", "bver")


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
    value = number(record[key])
    if value is None or isinstance(record[key], str):
        raise Unreadable("invalid_record", f"{key} must be a finite number")
    return value


def parse(pack: Any, ctx: Context) -> list[Reading | Rejection]:
    if not isinstance(pack, list) or not pack:
        raise Unreadable("invalid_payload", "a SenML pack is a non-empty JSON array")
    for record in pack:
        if isinstance(record, dict):
            for key in record:
                if key.endswith("_"):
                    raise Unreadable("unsupported_extension", f"must-understand field {key!r}")
    bn, bu = "", None
    bt = bv = bs = 0.0
    out: list[Reading | Rejection] = []
    for index, record in enumerate(pack):
        path = f"[{index}]"
        if not isinstance(record, dict):
            out.append(Rejection("invalid_record", "a SenML record is a JSON object", path))
            continue
        try:
            if "bver" in record:
                version = record["bver"]
                if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                    raise Unreadable("invalid_record", "bver must be a positive integer", path)
                if version > SUPPORTED_VERSION:
                    raise Unreadable("unsupported_version", f"bver {version} > 10", path)
            if "bn" in record:
                if not isinstance(record["bn"], str):
                    raise Unreadable("invalid_record", "bn must be a string", path)
                bn = record["bn"]
            if "bu" in record:
                if not isinstance(record["bu"], str):
                    raise Unreadable("invalid_record", "bu must be a string", path)
                bu = record["bu"]
            bt = _base_number(record, "bt", bt)
            bv = _base_number(record, "bv", bv)
            bs = _base_number(record, "bs", bs)
        except Unreadable as exc:
            out.append(Rejection(exc.rejection.reason, exc.rejection.detail, path))
            continue
        if "v" in record:
            raw = record["v"]
            value = number(raw)
            value = None if value is None or isinstance(raw, str) else bv + value
            if value is None:
                out.append(Rejection("invalid_value", "v must be a finite number", path))
                continue
        elif "vs" in record:
            value = record["vs"]
        elif "vb" in record:
            value = record["vb"]
        elif "vd" in record:
            value = record["vd"]
        elif "s" in record:
            raw = record["s"]
            value = number(raw)
            value = None if value is None or isinstance(raw, str) else bs + value
            if value is None:
                out.append(Rejection("invalid_value", "s must be a finite number", path))
                continue
        else:
            if not any(k in record for k in _BASE):
                out.append(Rejection("invalid_record", "a record without a value", path))
            continue  # a record of base fields only
        n = record.get("n", "")
        unit = record.get("u", bu)
        t = record.get("t", 0)
        when = number(t)
        if not isinstance(n, str) or (unit is not None and not isinstance(unit, str)):
            out.append(Rejection("invalid_record", "n and u must be strings", path))
            continue
        if when is None or isinstance(t, str):
            out.append(Rejection("invalid_time", "t must be a finite number", path))
            continue
        split = _split(bn, n, unit)
        if split is None or not split[0]:
            out.append(Rejection("invalid_name", "the name is not <device>/<field>", path))
            continue
        when += bt
        if abs(when) < RELATIVE_LIMIT:
            when += ctx.received_at
        out.append(Reading("senml", split[0], split[1], value, when, path, unit))
    return out


FORMAT = Format("senml", 1, "senml", parse, IDENTIFIERS, "SenML JSON, RFC 8428")
