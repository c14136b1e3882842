"""A simulated run: the city's day, minute by minute, every hub's messages in the order
they are sent, then the CSV drops and ``truth.json``.

Each minute the sensors due (by cadence and offset) report through their hub's module
(``REPORTS``), in time and name order; then the crowd's detections go out, canonical
observations as they are made and a Meraki post per access point at the minute's end.
That order is the order of every seeded draw: keep it, or no file is the same.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from citypipe.domain.city import City
from citypipe_local.simulate import (
    aws_iot,
    canonical,
    chirpstack,
    csv_drop,
    meraki,
    ngsi_ld,
    senml,
    sensor_community,
    telraam,
    tts,
)
from citypipe_local.simulate.clock import iso
from citypipe_local.simulate.crowd import Detection
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.world import WIFI, Sensor

Report = Callable[[Day, Sensor, int], None]  # a sensor's message at a time, through its hub

# Hub format -> the module function that sends a sensor's report (Wi-Fi: see _wifi)
REPORTS: dict[str, Report] = {
    "tts-v3": tts.webhook_uplink,
    "chirpstack-v4": chirpstack.up_v4,
    "chirpstack-v3": chirpstack.up_v3,
    "aws-iot": aws_iot.rule_message,
    "senml": senml.pack,
    "ngsi-ld": ngsi_ld.notification,
    "sensor-community": sensor_community.custom_api_push,
    "telraam": telraam.report,
    "csv": csv_drop.row,
}


@dataclass(frozen=True)
class SimulationSummary:
    files: dict[str, Path]  # format -> capture file
    payloads: dict[str, int]  # format -> messages (CSV: rows) sent
    readings: int
    quarantined: dict[str, int]
    duplicates: int
    cells: int
    identifiers: int


def simulate(
    city: City,
    out: Path,
    *,
    hours: float = 24,
    seed: int = 7,
    scale: float = 1.0,
    start: datetime = datetime(2026, 6, 1, tzinfo=UTC),
    bad_rate: float = 0.001,
) -> SimulationSummary:
    """Write one capture file per format, the CSV drops and ``truth.json`` to ``out``."""
    if start.tzinfo is None:
        raise ValueError("start needs a time zone")
    if hours < 0 or scale <= 0 or not 0 <= bad_rate <= 1:
        raise ValueError("hours >= 0, scale > 0 and 0 <= bad_rate <= 1")
    _clear(out)
    first = math.floor(start.timestamp())
    day = Day(city, out, seed=seed, scale=scale, bad_rate=bad_rate, first=first)
    for minute in range(round(hours * 60)):
        base = first + 60 * minute
        _reports(day, base)
        _wifi(day, base)
    rows = csv_drop.write(day.drops, out)
    files, payloads = day.wire.close()
    payloads["csv"] = rows
    run = {"city": city.slug, "seed": seed, "hours": hours, "scale": scale, "start": iso(first)}
    truth = day.truth.write(out / "truth.json", {**run, "payloads": payloads})
    return SimulationSummary(
        files=files,
        payloads=payloads,
        readings=truth["readings"],
        quarantined=truth["quarantined"],
        duplicates=truth["duplicates"],
        cells=len(truth["cells"]),
        identifiers=len(truth["identifiers"]),
    )


def _clear(out: Path) -> None:
    """``out``, without an earlier run's captures and drops (they would be replayed too)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl"):
        old.unlink()
    shutil.rmtree(out / "drops", ignore_errors=True)


def _reports(day: Day, base: int) -> None:
    """Every report of the minute from ``base``, in the order they are sent."""
    due: list[tuple[int, str, Sensor]] = []
    for dev in day.world.sensors:
        if dev.fmt in WIFI:
            continue
        at = base + (dev.offset - base) % dev.cadence
        while at < base + 60:
            due.append((at, dev.name, dev))
            at += dev.cadence
    for at, _, dev in sorted(due, key=lambda d: (d[0], d[1])):
        REPORTS[dev.fmt](day, dev, at)


def _wifi(day: Day, base: int) -> None:
    """The minute's detections: each canonical one as it is made, then a Meraki post per
    access point that heard any, in the sensors' order."""
    posts: dict[str, list[Detection]] = {}
    for detection in day.crowd.minute(base):
        if detection.sensor.fmt == "meraki":
            posts.setdefault(detection.sensor.name, []).append(detection)
        else:
            canonical.observation(day, base, detection)
    for dev in day.world.sensors:
        if dev.fmt == "meraki" and dev.name in posts:
            meraki.devices_seen(day, dev, base, posts[dev.name])
