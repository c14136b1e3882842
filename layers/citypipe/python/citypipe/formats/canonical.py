"""citypipe's canonical form: one observation object, or an array of them.

``{"sensor", "quantity", "unit", "value", "observed_at" (RFC 3339 with offset),
"location": [lon, lat] | "zone", "personal": {...}}``
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from citypipe.formats.common import Reading, Rejection

REQUIRED = ("sensor", "quantity", "unit", "value", "observed_at")
ALLOWED = {*REQUIRED, "source", "location", "zone", "personal"}


def _one(item: Any) -> Reading | Rejection:
    if not isinstance(item, dict):
        return Rejection("invalid_payload", "an observation is a JSON object")
    missing = [k for k in REQUIRED if k not in item]
    if missing:
        return Rejection("missing_field", f"missing {missing}")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        return Rejection("unknown_field", f"unknown fields {unknown}")
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Rejection("invalid_value", "value must be a finite number")
    try:
        at = datetime.fromisoformat(str(item["observed_at"]).replace("Z", "+00:00"))
    except ValueError:
        return Rejection("invalid_time", "observed_at is not RFC 3339")
    if at.tzinfo is None:
        return Rejection("invalid_time", "observed_at needs a UTC offset")
    location = item.get("location")
    if location is not None:
        if (
            not isinstance(location, list)
            or len(location) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in location)
        ):
            return Rejection("invalid_location", "location is [lon, lat]")
        location = (float(location[0]), float(location[1]))
    personal = item.get("personal", {})
    if not isinstance(personal, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in personal.values()
    ):
        return Rejection("invalid_personal", "personal is an object of strings and numbers")
    return Reading(
        sensor=str(item["sensor"]),
        measure=str(item["quantity"]),
        unit=str(item["unit"]),
        value=float(value),
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
