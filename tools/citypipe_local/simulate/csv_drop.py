"""CSV drops: a legacy loop controller's exports (a row per loop every 15 minutes), one
file an hour, dropped in the city's inbox (``drops/csv/loop-export/loops-<hour>.csv``).

A row is ``station;interval_start;vehicles;bicycles``, rows collected by the hour they fall
in and written when the day is over. Faults: -1000 vehicles, an unknown station
(``VLD-TC-999``).
"""

from __future__ import annotations

from pathlib import Path

from citypipe_local.simulate.clock import iso
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import OUT_OF_RANGE, UNKNOWN_DEVICE
from citypipe_local.simulate.values import CENTI
from citypipe_local.simulate.world import Sensor

FAULTS = (OUT_OF_RANGE, UNKNOWN_DEVICE)
MAPPING = "loop-export"  # the city file's CSV mapping of these files
HEADER = "station;interval_start;vehicles;bicycles\n"


def row(day: Day, dev: Sensor, at: int) -> None:
    """The row of ``dev``'s loop for the interval from ``at``, in its hour's file."""
    vehicles = day.values.vehicles(dev, at, 15)
    bicycles = day.values.vehicles(dev, at, 3)
    rows = day.drops.setdefault(at - at % 3600, [])
    spoil = day.spoil(FAULTS)
    station = dev.device.id
    values = {"vehicles": vehicles * CENTI, "bicycles": bicycles * CENTI}
    if spoil == OUT_OF_RANGE:
        day.truth.reject(OUT_OF_RANGE)
        vehicles = -1000
        values.pop("vehicles")
    elif spoil == UNKNOWN_DEVICE:
        day.truth.reject(UNKNOWN_DEVICE, 2)
        station, values = "VLD-TC-999", {}
    rows.append(f"{station};{iso(at)};{vehicles};{bicycles}")
    day.truth.accept(dev, at, values)


def write(drops: dict[int, list[str]], out: Path) -> int:
    """The loop controller's hourly CSV exports, as files for the inbox; the rows written."""
    folder = out / "drops" / "csv" / MAPPING
    for hour, rows in sorted(drops.items()):
        folder.mkdir(parents=True, exist_ok=True)
        text = HEADER + "".join(r + "\n" for r in rows)
        (folder / f"loops-{iso(hour)[:13]}.csv").write_text(text, encoding="utf-8")
    return sum(len(rows) for rows in drops.values())
