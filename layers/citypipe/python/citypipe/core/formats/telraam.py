"""Telraam traffic reports (``POST /v1/reports/traffic``'s response, fetched by the city):
``report[]`` rows of one road segment and interval (``date`` is its start), with counts
per mode (``car``, ``heavy``, ``bike``, ``pedestrian``; fractional: Telraam extrapolates
them by the camera's ``uptime``), per direction and speed histograms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from citypipe.core.formats.common import (
    Context,
    Format,
    Reading,
    Rejection,
    flatten,
    hub_time,
    obj,
)

ROW_KEYS = frozenset({"instance_id", "segment_id", "date", "interval", "timezone", "direction"})
# The names of a traffic report (Telraam's API reference).
SCHEMA = ROW_KEYS | {
    "report", "status_code", "message", "uptime", "v85", "heavy", "car", "bike", "pedestrian",
    "heavy_lft", "heavy_rgt", "car_lft", "car_rgt", "bike_lft", "bike_rgt", "pedestrian_lft",
    "pedestrian_rgt", "car_speed_hist_0to70plus", "car_speed_hist_0to120plus",
}  # fmt: skip
_NESTED = (dict, list)  # what ``flatten`` walks into


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a Telraam report")
    rows = doc.get("report")
    if not isinstance(rows, list):
        return [Rejection("invalid_payload", "report is an array", "report")]
    out: list[Reading | Rejection] = []
    for index, row in enumerate(rows):
        path = f"report[{index}]"
        if not isinstance(row, dict):
            out.append(Rejection("invalid_record", "a report row is an object", path))
            continue
        segment = row.get("segment_id")
        if isinstance(segment, bool) or not isinstance(segment, int | str):
            out.append(Rejection("missing_device_id", "no segment_id", path))
            continue
        no_date = Rejection("invalid_time", "a row without date", f"{path}.date")
        at = hub_time(no_date, ("date", row.get("date")), within=path)
        if isinstance(at, Rejection):
            out.append(at)
            continue
        out += _counts(row, str(segment), at, path)
    return out


def _counts(row: dict[str, Any], segment: str, at: float, path: str) -> list[Reading]:
    """A row's readings: its fields but ``ROW_KEYS``, flattened (``flatten``; a nested
    one, a speed histogram, by index), a plain one read as it is, without a generator."""
    if "measurementValue" in row:  # flatten reads such a row as one measurement
        fields: Iterable[tuple[str, Any]] = flatten(
            {k: v for k, v in row.items() if k not in ROW_KEYS}
        )
    else:
        fields = []
        for name, value in row.items():
            if name in ROW_KEYS:
                continue
            if isinstance(value, _NESTED):
                fields += flatten(value, name)
            else:
                fields.append((name, value))
    return [
        Reading("telraam", segment, name, value, at, f"{path}.{name}") for name, value in fields
    ]


FORMAT = Format("telraam", 1, "telraam", parse, SCHEMA, "Telraam traffic report")
