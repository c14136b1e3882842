"""The crowd Wi-Fi sensors hear: each minute, every Wi-Fi sensor hears a Poisson number of
phones by the hour's people profile, each phone one it heard lately, one living in its zone
or anyone in the city.

One seeded stream (``<seed>/people``) draws every detection; the hub modules (``meraki``,
``canonical``) only send what is heard here.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from citypipe_local.simulate.clock import PEOPLE_PROFILE, level
from citypipe_local.simulate.values import poisson
from citypipe_local.simulate.world import WIFI, Sensor, World

REVISIT = 0.35  # a phone the sensor heard lately
HOME = 0.8  # else: a phone living in the sensor's zone (else anyone's)
RECENT = 30  # phones a sensor remembers


@dataclass(frozen=True)
class Detection:
    second: int  # of the minute
    sensor: Sensor
    phone: int
    rssi: int


class Crowd:
    def __init__(self, world: World, rng: random.Random) -> None:
        self._world = world
        self._rng = rng
        self._recent: dict[str, deque[int]] = {}

    def minute(self, base: int) -> list[Detection]:
        """Every detection of the minute from ``base``, by second, sensor and phone."""
        people = level(PEOPLE_PROFILE, base)
        heard: list[Detection] = []
        for sensor in self._world.sensors:
            if sensor.fmt in WIFI:
                heard += self._listen(sensor, people)
        heard.sort(key=lambda h: (h.second, h.sensor.name, h.phone))
        return heard

    def _listen(self, sensor: Sensor, people: float) -> list[Detection]:
        """What one sensor hears in a minute: a phone at most once a second."""
        rand = self._rng.random
        recent = self._recent.setdefault(sensor.name, deque(maxlen=RECENT))
        seen: set[tuple[int, int]] = set()
        heard: list[Detection] = []
        for _ in range(poisson(self._rng, sensor.level * people)):
            phone = self._phone(sensor, recent)
            recent.append(phone)
            second = int(rand() * 60)
            if (second, phone) in seen:
                continue  # one detection of a device a second
            seen.add((second, phone))
            heard.append(Detection(second, sensor, phone, -40 - int(rand() * 51)))
        return heard

    def _phone(self, sensor: Sensor, recent: deque[int]) -> int:
        rand = self._rng.random
        draw = rand()
        if draw < REVISIT and recent:
            return recent[int(rand() * len(recent))]
        if draw < REVISIT + (1 - REVISIT) * HOME:
            home = self._world.homes[sensor.zone_pos]
            return home[int(rand() * len(home))]
        return int(rand() * self._world.population)
