"""Sensor.Community (formerly Luftdaten): citizens' air quality sensors (a push every
150 s), posted as the firmware does to a custom API.

The body's ``sensordatavalues`` (SDS011 PM10 and PM2.5, BME280 temperature, humidity and
pressure, and the board's samples and signal), the chip id in ``esp8266id`` (newer firmware:
in the ``X-Sensor`` header only, one push in three) and the Wi-Fi MAC in ``X-MAC-ID``.
Faults: an unknown chip id (``99<chip>``), PM10 out of range (1e308), a truncated body, a
resend.
"""

from __future__ import annotations

import math
from typing import Any

from citypipe_local.simulate.clock import DAY_SECONDS
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import DUPLICATE, INVALID_JSON, OUT_OF_RANGE, UNKNOWN_DEVICE
from citypipe_local.simulate.values import CENTI, dec
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

FAULTS = (INVALID_JSON, UNKNOWN_DEVICE, OUT_OF_RANGE, DUPLICATE)


def custom_api_push(day: Day, dev: Sensor, at: int) -> None:
    """The push of ``dev`` at ``at``."""
    values = _measured(day, dev, at)
    chip = dev.device.id
    mac = f"{0xA4CF1200_0000 + int(chip):012x}"
    day.truth.identifiers.add(mac)
    items = [{"value_type": k, "value": dec(v)} for k, v in values.items()]
    items += [
        {"value_type": "samples", "value": "4314326"},
        {"value_type": "signal", "value": "-71"},
    ]
    spoil = day.spoil(FAULTS)
    body: dict[str, Any] = {
        "esp8266id": chip,
        "software_version": "NRZ-2020-133",
        "sensordatavalues": items,
    }
    if at % 3 == 0:  # newer firmware: the chip id only in the header
        body.pop("esp8266id")
    headers = {
        "X-Sensor": f"esp8266-{chip}",
        "X-MAC-ID": f"esp8266-{mac}",
        "Content-Type": "application/json",
    }
    if spoil == UNKNOWN_DEVICE:
        day.truth.reject(UNKNOWN_DEVICE, len(items))
        body["esp8266id"] = "99" + chip
        headers["X-Sensor"] = f"esp8266-99{chip}"
        day.truth.identifiers.add("99" + chip)
        values = {}
    elif spoil == OUT_OF_RANGE:
        day.truth.reject(OUT_OF_RANGE)
        items[0]["value"] = "1e308"
        values.pop("SDS_P1")
    elif spoil == INVALID_JSON:
        values = {}
    day.send("sensor-community", dev, at, dumps(body), spoil, len(values), headers=headers)
    day.truth.accept(dev, at, values)


def _measured(day: Day, dev: Sensor, at: int) -> dict[str, int]:
    """Dust from the site's air; a temperature that peaks mid-afternoon; humidity, pressure."""
    air = day.values.air(dev, at)
    hour = (at % DAY_SECONDS) / 3600
    return {
        "SDS_P1": air["pm10"],
        "SDS_P2": air["pm25"],
        "BME280_temperature": round((14 + 6 * math.sin((hour - 9) / 24 * 2 * math.pi)) * CENTI),
        "BME280_humidity": round(day.values.uniform(55, 85) * CENTI),
        "BME280_pressure": round(day.values.uniform(100_600, 101_900) * CENTI),
    }
