"""The truth the pipeline must reproduce, kept as the hubs send: the ingest ledger
(accepted, quarantined by reason, duplicates), every 15-minute zone cell before suppression
(exact: integer hundredths, distinct devices per zone and per sensor), how many cells each
phone was seen in (what the accounting of each person's privacy loss starts from) and
every identifier a message carried, which no open file may hold.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from citypipe.domain.model import QUANTITY_UNITS
from citypipe_local.simulate.clock import iso, window
from citypipe_local.simulate.values import CENTI
from citypipe_local.simulate.world import Sensor

Key = tuple[int, str, str]  # (window start, zone, quantity)


class Cells:
    """Exact accumulators per (window start, zone, quantity), values in hundredths."""

    def __init__(self) -> None:
        self.stats: dict[Key, list[int]] = {}
        self.devices: dict[Key, set[tuple[str, int]]] = {}
        self.phones: dict[int, set[Key]] = {}  # phone -> the cells it was seen in
        self.accepted = 0

    def add(self, key: Key, value: int) -> None:
        self.accepted += 1
        stat = self.stats.get(key)
        if stat is None:
            self.stats[key] = [1, value, value, value]
            return
        stat[0] += 1
        stat[1] += value
        stat[2] = min(stat[2], value)
        stat[3] = max(stat[3], value)

    def seen(self, key: Key, sensor: str, device: int) -> None:
        self.devices.setdefault(key, set()).add((sensor, device))
        self.phones.setdefault(device, set()).add(key)

    def contributions(self) -> list[int]:
        """How many cells each phone heard that day was seen in, most first: what bounds
        one person's contribution to a day's people counts (the accounting test)."""
        return sorted((len(cells) for cells in self.phones.values()), reverse=True)

    def rows(self) -> list[dict[str, Any]]:
        return [self._row(key) for key in sorted(self.stats)]

    def _row(self, key: Key) -> dict[str, Any]:
        window_start, zone, quantity = key
        count, total, low, high = self.stats[key]
        devices = self.devices.get(key)
        by_sensor = None if devices is None else Counter(sensor for sensor, _ in devices)
        phones = None if devices is None else {phone for _, phone in devices}
        return {
            "window_start": iso(window_start),
            "zone": zone,
            "quantity": quantity,
            "unit": QUANTITY_UNITS[quantity],
            "count": count,
            "sum": round(total / CENTI, 6),
            "min": low / CENTI,
            "max": high / CENTI,
            "mean": round(total / CENTI / count, 6),
            "distinct_devices": None if phones is None else len(phones),
            "devices_by_sensor": None if by_sensor is None else dict(sorted(by_sensor.items())),
        }


class Truth:
    """The books every hub module writes as it sends."""

    def __init__(self) -> None:
        self.cells = Cells()
        self.quarantined: Counter[str] = Counter()
        self.duplicates = 0
        self.identifiers: set[str] = set()

    def accept(self, dev: Sensor, at: int, values: dict[str, int]) -> None:
        """Readings ingest accepts: the fields of the sensor's profile, in their cells."""
        start = window(at, dev.resolution)
        for name, centi in values.items():
            quantity = dev.quantities.get(name)
            if quantity is not None:
                self.cells.add((start, dev.zone, quantity), centi)

    def presence(self, dev: Sensor, at: int, phone: int) -> None:
        """A phone a Wi-Fi sensor heard: one presence, one distinct device of its cell."""
        key = (window(at, dev.resolution), dev.zone, "people.presence")
        self.cells.add(key, CENTI)
        self.cells.seen(key, dev.name, phone)

    def reject(self, reason: str, readings: int = 1) -> None:
        self.quarantined[reason] += readings

    def write(self, path: Path, run: dict[str, Any]) -> dict[str, Any]:
        """``truth.json``: the run's ``run`` description and the books; returns it."""
        quarantined = dict(sorted(self.quarantined.items()))
        accepted = self.cells.accepted
        truth = {
            **run,
            "readings": accepted + self.duplicates + sum(quarantined.values()),
            "accepted": accepted,
            "duplicates": self.duplicates,
            "quarantined": quarantined,
            "cells": self.cells.rows(),
            "contributions": self.cells.contributions(),
            "identifiers": sorted(self.identifiers),
        }
        path.write_bytes(orjson.dumps(truth, option=orjson.OPT_SORT_KEYS) + b"\n")
        return truth
