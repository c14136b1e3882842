"""citypipe's canonical form: one observation object, or an array of them.

``{"sensor", "quantity", "unit", "value", "observed_at" (RFC 3339 with offset),
"location": [lon, lat] | "zone", "personal": {...}}``
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from citypipe.core.formats.common import Reading, Rejection

REQUIRED = ("sensor", "quantity", "unit", "value", "observed_at")
ALLOWED = {*REQUIRED, "source", "location", "zone", "personal"}


def _finite(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (an integer beyond a double
    included: ``math.isfinite(10**400)`` raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _one(item: Any) -> Reading | Rejection:
    if not isinstance(item, dict):
        return Rejection("invalid_payload", "an observation is a JSON object")
    missing = [k for k in REQUIRED if k not in item]
    if missing:
        return Rejection("missing_field", f"missing {missing}")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        return Rejection("unknown_field", f"unknown fields {unknown}")
    value = _finite(item["value"])
    if value is None:
        return Rejection("invalid_value", "value must be a finite number")
    try:
        at = datetime.fromisoformat(str(item["observed_at"]).replace("Z", "+00:00"))
    except ValueError:
        return Rejection("invalid_time", "observed_at is not RFC 3339")
    if at.tzinfo is None:
        return Rejection("invalid_time", "observed_at needs a UTC offset")
    location = item.get("location")
    if location is not None:
        coordinates = [_finite(c) for c in location] if isinstance(location, list) else []
        lon, lat = coordinates if len(coordinates) == 2 else (None, None)
        if lon is None or lat is None:
            return Rejection("invalid_location", "location is [lon, lat]")
        location = (lon, lat)
    personal = item.get("personal", {})
    if not isinstance(personal, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in personal.values()
    ):
        return Rejection("invalid_personal", "personal is an object of strings and numbers")
    return Reading(
        sensor=str(item["sensor"]),
        measure=str(item["quantity"]),
        unit=str(item["unit"]),
        value=value,
        observed_at=at,
        location=location,
        zone=item.get("zone"),
        personal=personal,
    )


def parse(payload: Any) -> list[Reading | Rejection]:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        return [Rejection("invalid_payload", "an empty array holds no observation")]
    return [_one(item) for item in items]
