"""Sensor.Community (airRohr) pushes to a custom API: ``{"esp8266id", "software_version",
"sensordatavalues": [{"value_type", "value"}]}``, every value a string. Newer firmware
omits ``esp8266id``; the chip id then comes from the ``X-Sensor: esp8266-<id>`` header
(``X-MAC-ID`` and ``User-Agent`` carry the Wi-Fi MAC: never read). No time in the body:
readings are dated by their arrival.
"""

from __future__ import annotations

from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, header, obj

SCHEMA = frozenset(
    {"esp8266id", "esp32id", "software_version", "sensordatavalues", "value_type", "value"}
)


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a Sensor.Community push")
    chip = doc.get("esp8266id", doc.get("esp32id"))
    if isinstance(chip, int) and not isinstance(chip, bool):
        chip = str(chip)
    if not isinstance(chip, str) or not chip:
        chip = header(ctx, "X-Sensor")
    if not chip:
        return [Rejection("missing_device_id", "no esp8266id and no X-Sensor header")]
    return sensor_values(doc.get("sensordatavalues"), "sensor-community", chip, ctx.received_at)


def sensor_values(
    values: Any, hub: str, sensor: str, at: float, prefix: str = ""
) -> list[Reading | Rejection]:
    """A measurement's ``sensordatavalues``, one reading each (a push and the API's
    measurements hold the same list)."""
    if not isinstance(values, list):
        where = f"{prefix}sensordatavalues"
        return [Rejection("invalid_payload", "sensordatavalues is an array", where)]
    out: list[Reading | Rejection] = []
    for index, item in enumerate(values):
        path = f"{prefix}sensordatavalues[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("value_type"), str):
            out.append(Rejection("invalid_record", "an item is {value_type, value}", path))
            continue
        out.append(Reading(hub, sensor, item["value_type"], item.get("value"), at, path))
    return out


FORMAT = Format("sensor-community", 1, "sensor-community", parse, SCHEMA, "Sensor.Community push")
