"""citypipe's canonical form: one observation object, or an array of them.

``{"sensor", "quantity", "unit", "value", "observed_at" (RFC 3339 with offset),
"personal": {...}}``; ``location``/``zone`` may be sent but never override the registry.
"""

from __future__ import annotations

from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, iso_epoch
from citypipe.domain.personal import PERSONAL_FIELDS

REQUIRED = ("sensor", "quantity", "unit", "value", "observed_at")
_REQUIRED = frozenset(REQUIRED)
ALLOWED = frozenset({*REQUIRED, "source", "location", "zone", "personal"})
SCHEMA = ALLOWED | PERSONAL_FIELDS.keys()  # and the personal fields citypipe knows


def _one(item: Any, path: str) -> Reading | Rejection:
    if not isinstance(item, dict):
        return Rejection("invalid_record", "an observation is a JSON object", path)
    if not item.keys() >= _REQUIRED:  # the common case told without a step in Python
        missing = [k for k in REQUIRED if k not in item]
        return Rejection("missing_field", f"missing {missing}", path)
    if not ALLOWED.issuperset(item):
        unknown = set(item) - ALLOWED
        return Rejection("unknown_field", f"{len(unknown)} unknown fields", path)
    sensor, unit, personal = item["sensor"], item["unit"], item.get("personal", {})
    if (
        not isinstance(sensor, str)
        or not isinstance(unit, str)
        or not isinstance(item["quantity"], str)
    ):
        return Rejection("invalid_record", "sensor, quantity and unit are strings", path)
    try:
        at = iso_epoch(item["observed_at"])
    except (ValueError, OverflowError):
        where = f"{path}.observed_at" if path else "observed_at"
        return Rejection("invalid_time", "observed_at is not RFC 3339 with an offset", where)
    if not isinstance(personal, dict):
        return Rejection("invalid_personal", "personal is an object", f"{path}.personal")
    return Reading(
        "canonical", sensor, item["quantity"], item["value"], at, path, unit,
        personal=personal,
    )  # fmt: skip


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    items = document if isinstance(document, list) else [document]
    if not items:
        return [Rejection("invalid_payload", "an empty array holds no observation")]
    if isinstance(document, list):
        return [_one(item, f"[{i}]") for i, item in enumerate(items)]
    return [_one(document, "")]


FORMAT = Format("canonical", 1, "canonical", parse, SCHEMA, "citypipe canonical observation")
