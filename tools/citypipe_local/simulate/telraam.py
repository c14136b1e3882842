"""Telraam: camera traffic counters on a road segment (hourly), as rows of its traffic
report API, fetched by the city once the hour is over.

A row is one segment and hour (``date`` its start, ``uptime`` the share the camera saw):
counts per mode (car, heavy, bike, pedestrian), each split per direction (``_lft``,
``_rgt``), and a speed histogram. A report is sent at the sensor's offset in the hour after
the one it counts; the first hour simulated has none. No faults: the city fetches reports,
no hub sends them.
"""

from __future__ import annotations

from typing import Any

from citypipe_local.simulate.clock import iso
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.values import CENTI, dec
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

READINGS = 4  # the modes' counts: the split per direction is no field of the profile


def report(day: Day, dev: Sensor, at: int) -> None:
    """The report, fetched at ``at``, of the hour before ``at``'s."""
    start = at - at % 3600 - 3600
    if start < day.first:
        return
    uptime = round(day.values.uniform(0.7, 0.95), 4)
    counts = {
        "car": day.values.vehicles(dev, start, 60) * CENTI // 4,
        "heavy": day.values.vehicles(dev, start, 60) * CENTI // 40,
        "bike": day.values.vehicles(dev, start, 60) * CENTI // 10,
        "pedestrian": day.values.vehicles(dev, start, 60) * CENTI // 20,
    }
    row: dict[str, Any] = {
        "instance_id": -1,
        "segment_id": int(dev.device.id),
        "date": f"{iso(start)[:-1]}.000Z",
        "interval": "hourly",
        "uptime": uptime,
    }
    for name, centi in counts.items():
        row[name] = float(dec(centi))
        row[f"{name}_lft"] = float(dec(centi // 2))
        row[f"{name}_rgt"] = float(dec(centi - centi // 2))
    row.update(
        {
            "direction": 1,
            "timezone": "Europe/Brussels",
            "car_speed_hist_0to70plus": [10.0, 50.0, 40.0],
            "v85": 31.5,
        }
    )
    body = dumps({"status_code": 200, "message": "ok", "report": [row]})
    day.send("telraam", dev, at, body, None, READINGS)
    day.truth.accept(dev, start, counts)
