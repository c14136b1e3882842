"""SenML JSON (RFC 8428): base-field resolution, absolute times, numeric values.

Resolved names are ``<sensor><sep><measure>`` with ``/`` or ``:`` as separator (so both
``bn: "aq-007/"`` and ``bn: "urn:dev:id:aq-007:"`` work). Records whose unit is ``lat`` or
``lon`` (SenML's registered units) give the position of their sensor, not a reading.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from citypipe.core.formats.common import Reading, Rejection

RELATIVE_LIMIT = 2**28  # RFC 8428 §4.5.3: smaller times are relative to "now"
VALUE_FIELDS = ("v", "vs", "vb", "vd")


def _number(record: dict[str, Any], name: str) -> float:
    value = record.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond a double, as 1e400 is: infinite, rejected below
        return math.inf if value > 0 else -math.inf


@lru_cache(maxsize=65536)  # names repeat: one per sensor and measure
def _split(name: str) -> tuple[str, str]:
    cut = max(name.rfind("/"), name.rfind(":"))
    if cut <= 0 or cut == len(name) - 1:
        raise ValueError(f"name {name!r} is not <sensor>/<measure>")
    sensor = name[:cut].removeprefix("urn:dev:id:")
    return sensor, name[cut + 1 :]


def parse(pack: Any) -> list[Reading | Rejection]:
    if not isinstance(pack, list) or not pack:
        return [Rejection("invalid_payload", "a SenML pack is a non-empty JSON array")]
    # RFC 8428 §4.4/§12.3.1: a label ending in "_" must be understood, else an error; none is
    must_understand = sorted({k for r in pack if isinstance(r, dict) for k in r if k.endswith("_")})
    if must_understand:
        return [Rejection("unsupported_extension", f"must-understand fields {must_understand}")]
    bn, bu, bt, bv = "", "", 0.0, 0.0
    pending: list[tuple[str, str, str, float, float]] = []
    out: list[Reading | Rejection] = []
    positions: dict[str, dict[str, float]] = {}
    for record in pack:
        if not isinstance(record, dict):
            out.append(Rejection("invalid_payload", "a SenML record is a JSON object"))
            continue
        try:
            if "bn" in record:
                if not isinstance(record["bn"], str):
                    raise ValueError("bn must be a string")
                bn = record["bn"]
            bt = _number(record, "bt") if "bt" in record else bt
            bv = _number(record, "bv") if "bv" in record else bv
            bu = str(record["bu"]) if "bu" in record else bu
            if not any(k in record for k in (*VALUE_FIELDS, "s")):
                continue  # a record of base fields only
            if "v" not in record:
                out.append(Rejection("non_numeric_value", "only numeric SenML values (v) are read"))
                continue
            sensor, measure = _split(bn + str(record.get("n", "")))
            value = bv + _number(record, "v")
            when = bt + _number(record, "t")
            unit = str(record.get("u", bu))
        except ValueError as exc:
            out.append(Rejection("invalid_record", str(exc)))
            continue
        if not math.isfinite(value) or not math.isfinite(when):
            out.append(Rejection("invalid_value", "values and times must be finite"))
        elif unit in ("lat", "lon"):
            positions.setdefault(sensor, {})[unit] = value
        elif abs(when) < RELATIVE_LIMIT:
            out.append(Rejection("relative_time", "times relative to 'now' cannot be placed"))
        else:
            pending.append((sensor, measure, unit, value, when))
    for sensor, measure, unit, value, when in pending:
        where = positions.get(sensor, {})
        location = (where["lon"], where["lat"]) if {"lat", "lon"} <= where.keys() else None
        try:
            at = datetime.fromtimestamp(when, UTC)
        except (OverflowError, OSError, ValueError):
            out.append(Rejection("invalid_time", f"time {when} is out of range"))
            continue
        out.append(Reading(sensor, measure, unit, value, at, location))
    return out
