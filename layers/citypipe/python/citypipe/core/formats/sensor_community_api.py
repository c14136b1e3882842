"""The Sensor.Community API's measurements (``GET /airrohr/v1/sensor/{id}/``, the city's
poller fetches them): ``[{"id", "timestamp", "sensor": {"id", "pin", "sensor_type": {"name",
...}}, "location": {...}, "sensordatavalues": [{"value_type", "value"}]}]``. The device is
the sensor's API id (``sensor.id``: one per sensor of a station, not the chip id a push
carries); the time is ``timestamp``, UTC without an offset (``2026-12-06 21:25:38``);
values are strings (``P1``, ``P2``, ``temperature``, ``humidity``, ``pressure``). The
``location`` (where a citizen's station stands) is never read: the registry places the
device.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection
from citypipe.core.formats.sensor_community import sensor_values

SCHEMA = frozenset(
    {
        "id", "sampling_rate", "timestamp", "location", "latitude", "longitude", "altitude",
        "country", "exact_location", "indoor", "sensor", "pin", "sensor_type", "name",
        "manufacturer", "sensordatavalues", "value_type", "value",
    }
)  # fmt: skip
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def measurement_time(text: Any) -> float | None:
    """A measurement's ``timestamp`` (UTC) in epoch seconds; None where it is no such time."""
    if not isinstance(text, str) or len(text) != len("2026-01-01 00:00:00"):
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def sensor_id(measurement: Any) -> str | None:
    """A measurement's sensor API id, as text; None where it has none."""
    sensor = measurement.get("sensor") if isinstance(measurement, dict) else None
    ident = sensor.get("id") if isinstance(sensor, dict) else None
    if isinstance(ident, bool) or not isinstance(ident, int | str) or ident == "":
        return None
    return str(ident)


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    items = document if isinstance(document, list) else [document]
    out: list[Reading | Rejection] = []
    for index, item in enumerate(items):
        path = f"[{index}]" if isinstance(document, list) else ""
        out.extend(_measurement(item, path))
    return out


def _measurement(item: Any, path: str) -> list[Reading | Rejection]:
    prefix = f"{path}." if path else ""
    if not isinstance(item, dict):
        return [Rejection("invalid_payload", "a measurement is a JSON object", path)]
    sensor = sensor_id(item)
    if sensor is None:
        return [Rejection("missing_device_id", "no sensor.id", f"{prefix}sensor")]
    at = measurement_time(item.get("timestamp"))
    if at is None:
        return [Rejection("invalid_time", "timestamp is no UTC time", f"{prefix}timestamp")]
    return sensor_values(item.get("sensordatavalues"), "sensor-community-api", sensor, at, prefix)


FORMAT = Format(
    "sensor-community-api", 1, "sensor-community-api", parse, SCHEMA, "Sensor.Community API"
)
