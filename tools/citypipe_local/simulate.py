"""simulate: a deterministic city day of hub payloads, and the truth the pipeline must reproduce.

Three sensor families, as the example city declares them:

- air quality (SenML, ``aq-001``..): one pack a minute with no2, pm10, pm25 and the position;
- traffic counters (SenML, ``tc-001``..): one pack a minute with the vehicles counted;
- Wi-Fi people counters (canonical, ``wifi-01``..): one observation per device detection,
  carrying the device MAC (personal) in the spelling of the sensor's vendor.

A small, deterministic fraction of payloads is spoiled the ways hubs really fail (truncated
JSON, an unknown sensor, an undeclared measure, a wrong unit, a relative time, a missing
personal field), each with the quarantine reason ingest must give it.

``truth.json`` holds what the pipeline must end up with: the ingest ledger (received,
accepted, quarantined by reason) and every 15-minute zone cell before suppression, computed
exactly (integer sums, distinct devices as distinct pseudonyms: per sensor and per day).
Everything is seeded; the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from citypipe.domain.city import City, Source
from citypipe.domain.model import QUANTITY_UNITS

SENSORS = ((200, 1), (100, 1), (40, 2))  # air quality, traffic, Wi-Fi: at scale 1, at least
POPULATION = 20_000
WINDOW_SECONDS = 15 * 60  # aggregate.WINDOW_MINUTES
DAY_SECONDS = 86_400

# Relative level by UTC hour of day, interpolated linearly between hours.
TRAFFIC_PROFILE = (
    0.12, 0.08, 0.06, 0.06, 0.1, 0.25, 0.6, 0.95, 1.0, 0.8, 0.65, 0.62,
    0.66, 0.64, 0.66, 0.75, 0.92, 1.0, 0.85, 0.6, 0.45, 0.35, 0.26, 0.18,
)  # fmt: skip
PEOPLE_PROFILE = (
    0.3, 0.18, 0.1, 0.05, 0.05, 0.08, 0.2, 0.5, 0.8, 0.7, 0.65, 0.75,
    0.9, 0.85, 0.75, 0.75, 0.85, 1.0, 0.9, 0.75, 0.6, 0.5, 0.45, 0.38,
)  # fmt: skip

# Wi-Fi detections a minute per sensor at the profile's peak. Zones alternate busy and quiet
# so that quiet night windows hold fewer than k distinct devices and busy ones many.
BUSY_RATE = 8.0
QUIET_RATE = 1.0
REVISIT = 0.35  # chance a detection is a device this sensor saw a moment ago
HOME = 0.8  # chance a new detection is a device living in the sensor's zone
RECENT = 30

# Spoil kinds -> the reason ingest gives the spoiled readings.
INVALID_JSON = "invalid_json"
UNKNOWN_SENSOR = "unknown_sensor"
UNKNOWN_QUANTITY = "unknown_quantity"
UNIT_MISMATCH = "unit_mismatch"
RELATIVE_TIME = "relative_time"
MISSING_PERSONAL = "missing_personal_field"
AQ_SPOILS = (INVALID_JSON, UNKNOWN_SENSOR, UNKNOWN_QUANTITY, UNIT_MISMATCH, RELATIVE_TIME)
TC_SPOILS = (INVALID_JSON, UNKNOWN_SENSOR, UNKNOWN_QUANTITY, RELATIVE_TIME)
WIFI_SPOILS = (INVALID_JSON, UNKNOWN_SENSOR, MISSING_PERSONAL)

AQ_MEASURES = ("no2", "pm10", "pm25")
AQ_UNIT = "ug/m3"
TC_MEASURE = "vehicles"
TC_UNIT = "count"
WIFI_MEASURE = "people.presence"
WIFI_UNIT = "{device}"
WIFI_PERSONAL = ("device_mac", "rssi")


@dataclass(frozen=True)
class SimulationSummary:
    files: dict[str, Path]  # format -> jsonl path
    payloads: dict[str, int]  # format -> payload lines written
    readings: int  # readings received as ingest counts them
    quarantined: dict[str, int]  # expected quarantine reasons -> readings
    cells: int
    identifiers: int


@dataclass(frozen=True)
class _Sensor:
    ident: str
    number: str  # the digits of the id, reused for the unknown twin "zz-<number>"
    position: int  # index within its family
    zone_pos: int  # index of its zone among the city's zones
    zone: str
    lon: float
    lat: float
    offset: int  # seconds after the minute at which it reports
    level: float  # site factor (a busy road, a quiet square)


@dataclass(frozen=True)
class _Family:
    """The city's view of a sensor family: cell quantity and unit per hub measure."""

    cells: dict[str, tuple[str, str]]  # hub measure -> (quantity, unit)
    resolution: int  # policy.time_resolution_minutes
    personal: bool


class _Cells:
    """Exact accumulators per (window start, zone, quantity); values as scaled integers."""

    def __init__(self) -> None:
        self.stats: dict[tuple[int, str, str], list[int]] = {}
        self.devices: dict[tuple[int, str, str], set[tuple[int, int]]] = {}
        self.units: dict[str, str] = {}
        self.divisor: dict[str, int] = {}
        self.accepted = 0

    def add(self, key: tuple[int, str, str], value: int) -> None:
        self.accepted += 1
        stat = self.stats.get(key)
        if stat is None:
            self.stats[key] = [1, value, value, value]
            return
        stat[0] += 1
        stat[1] += value
        if value < stat[2]:
            stat[2] = value
        elif value > stat[3]:
            stat[3] = value

    def seen(self, key: tuple[int, str, str], sensor: int, device: int) -> None:
        found = self.devices.get(key)
        if found is None:
            self.devices[key] = {(sensor, device)}
        else:
            found.add((sensor, device))

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for key in sorted(self.stats):
            window, zone, quantity = key
            count, total, low, high = self.stats[key]
            div = self.divisor[quantity]
            devices = self.devices.get(key)
            rows.append(
                {
                    "window_start": _iso(window),
                    "zone": zone,
                    "quantity": quantity,
                    "unit": self.units[quantity],
                    "count": count,
                    "sum": round(total / div, 6),
                    "min": low / div,
                    "max": high / div,
                    "mean": round(total / div / count, 6),
                    "distinct_devices": None if devices is None else len(devices),
                    # what disclosure control can prove: the most devices one sensor saw
                    "min_distinct_people": None
                    if devices is None
                    else max(Counter(sensor for sensor, _ in devices).values()),
                }
            )
        return rows


class _Spoiler:
    """Chooses which payloads of a stream to spoil (geometric gaps) and how (round robin)."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self._rng = rng
        self._rate = rate
        self._left = self._gap()
        self._turn: dict[tuple[str, ...], int] = {}

    def _gap(self) -> int:
        if self._rate <= 0:
            return -1  # never
        if self._rate >= 1:
            return 1
        gap = math.log1p(-self._rng.random()) / math.log1p(-self._rate)
        return 1 + int(min(gap, 2.0**62))

    def next(self, kinds: tuple[str, ...]) -> str | None:
        """The spoil kind for the next payload of the stream, or None to send it intact."""
        if self._left < 0:
            return None
        self._left -= 1
        if self._left > 0:
            return None
        self._left = self._gap()
        turn = self._turn.get(kinds)
        if turn is None:
            turn = self._rng.randrange(len(kinds))
        self._turn[kinds] = turn + 1
        return kinds[turn % len(kinds)]

    def cut(self, text: str) -> str:
        """A truncated payload: a proper, non-blank prefix is never valid JSON."""
        return text[: self._rng.randint(1, len(text) - 1)]


class _Ledger:
    def __init__(self) -> None:
        self.quarantined: dict[str, int] = {}

    def reject(self, reason: str, readings: int = 1) -> None:
        self.quarantined[reason] = self.quarantined.get(reason, 0) + readings


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(at: int, resolution: int) -> int:
    """The aggregate window of a reading at ``at``: anonymize's floor, then 15 minutes."""
    midnight = at - at % DAY_SECONDS
    elapsed = (at - midnight) // 60
    floored = midnight + (elapsed - elapsed % max(resolution, 1)) * 60
    return floored - floored % WINDOW_SECONDS


def _level(profile: Sequence[float], at: int) -> float:
    hour = (at % DAY_SECONDS) / 3600
    low = int(hour)
    frac = hour - low
    return profile[low] * (1 - frac) + profile[(low + 1) % 24] * frac


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 12:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _family(city: City, fmt: str, sensor: str, measures: dict[str, str]) -> _Family:
    """What the city declares for a family; refuses a city that could not accept its payloads."""
    found = city.source_for(fmt, sensor)
    if found is None:
        raise ValueError(f"city {city.city!r} has no {fmt} source owning {sensor!r}")
    name, source = found
    cells: dict[str, tuple[str, str]] = {}
    for measure, hub_unit in measures.items():
        quantity = source.quantities.get(measure)
        unit = source.units.get(hub_unit, hub_unit)
        if quantity is None or QUANTITY_UNITS.get(quantity) != unit:
            raise ValueError(f"source {name!r} does not accept {measure!r} in {hub_unit!r}")
        cells[measure] = (quantity, unit)
    return _Family(cells, source.policy.time_resolution_minutes, _personal(source))


def _personal(source: Source) -> bool:
    subject = source.policy.subject_field
    if subject is not None and subject != WIFI_PERSONAL[0]:
        raise ValueError(f"the simulator's subject field is {WIFI_PERSONAL[0]!r}, not {subject!r}")
    undeclared = [f for f in WIFI_PERSONAL if subject and f not in source.policy.personal]
    if undeclared:
        raise ValueError(f"personal fields {undeclared} are not declared")
    return subject is not None


def _place(city: City, rng: random.Random, zone_pos: int) -> tuple[str, float, float]:
    """A random point well inside a zone, rounded as sent (5 decimals, about a metre)."""
    feature = city.zones.features[zone_pos]
    ring = feature.geometry.coordinates[0]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    for _ in range(10_000):
        lon = round(rng.uniform(min(lons), max(lons)), 5)
        lat = round(rng.uniform(min(lats), max(lats)), 5)
        if city.zone_index.zone_of(lon, lat) == feature.id:
            return feature.id, lon, lat
    raise ValueError(f"no room for a sensor in zone {feature.id!r}")


def _sensors(
    city: City, rng: random.Random, prefix: str, *, digits: int, count: int, levels: Sequence[float]
) -> list[_Sensor]:
    out: list[_Sensor] = []
    zones = len(city.zones.features)
    for i in range(count):
        number = f"{i + 1:0{digits}d}"
        zone, lon, lat = _place(city, rng, i % zones)
        level = levels[(i % zones) % len(levels)] * rng.uniform(0.7, 1.3)
        offset = rng.randrange(60)
        out.append(
            _Sensor(f"{prefix}-{number}", number, i, i % zones, zone, lon, lat, offset, level)
        )
    return out


def _macs(rng: random.Random, population: int) -> list[int]:
    seen: set[int] = set()
    out: list[int] = []
    while len(out) < population:
        mac = rng.getrandbits(48) | (0x02 << 40)  # locally administered, as phones randomize
        mac &= ~(0x01 << 40)  # unicast
        if mac not in seen:
            seen.add(mac)
            out.append(mac)
    return out


def _spell(mac: int, upper_colons: bool) -> str:
    text = f"{mac:012x}"
    pairs = [text[i : i + 2] for i in range(0, 12, 2)]
    return ":".join(pairs).upper() if upper_colons else "-".join(pairs)


class _Simulation:
    def __init__(self, city: City, seed: int, scale: float, bad_rate: float) -> None:
        self.city = city
        layout = random.Random(f"{seed}/layout")
        self.values = random.Random(f"{seed}/values")
        self.people = random.Random(f"{seed}/people")
        self.senml_spoiler = _Spoiler(random.Random(f"{seed}/spoil/senml"), bad_rate)
        self.canonical_spoiler = _Spoiler(random.Random(f"{seed}/spoil/canonical"), bad_rate)
        self.aq_family = _family(city, "senml", "aq-001", dict.fromkeys(AQ_MEASURES, AQ_UNIT))
        self.tc_family = _family(city, "senml", "tc-001", {TC_MEASURE: TC_UNIT})
        self.wifi_family = _family(city, "canonical", "wifi-01", {WIFI_MEASURE: WIFI_UNIT})
        aq, tc, wifi = (max(least, round(n * scale)) for n, least in SENSORS)
        self.aq = _sensors(city, layout, "aq", digits=3, count=aq, levels=(1.0,))
        self.tc = _sensors(city, layout, "tc", digits=3, count=tc, levels=(1.0,))
        self.wifi = _sensors(
            city, layout, "wifi", digits=2, count=wifi, levels=(BUSY_RATE, QUIET_RATE)
        )
        zones = len(city.zones.features)
        self.population = max(50, round(POPULATION * scale))
        macs = _macs(layout, self.population)
        self.spellings = [(_spell(m, True), _spell(m, False)) for m in macs]
        homes: list[list[int]] = [[] for _ in range(zones)]
        for device in range(self.population):
            homes[layout.randrange(zones)].append(device)
        self.homes = [pool or list(range(self.population)) for pool in homes]
        self.recent: list[deque[int]] = [deque(maxlen=RECENT) for _ in self.wifi]
        # Sensor bias: each air quality site has its own background and road exposure.
        self.aq_sites = [
            (layout.uniform(8, 16), layout.uniform(20, 45), layout.uniform(10, 18)) for _ in self.aq
        ]
        self.cells = _Cells()
        for family, divisor in ((self.aq_family, 10), (self.tc_family, 1), (self.wifi_family, 1)):
            for quantity, unit in family.cells.values():
                self.cells.units[quantity] = unit
                self.cells.divisor[quantity] = divisor
        self.ledger = _Ledger()
        self.identifiers: set[str] = set()
        self.reporting = sorted(
            [(s.offset, 0, s) for s in self.aq] + [(s.offset, 1, s) for s in self.tc],
            key=lambda item: (item[0], item[1], item[2].position),
        )
        self.sites = {
            s.ident: f',{{"n":"lat","u":"lat","v":{s.lat!r}}},'
            f'{{"n":"lon","u":"lon","v":{s.lon!r}}}]'
            for s in (*self.aq, *self.tc)
        }

    # --- SenML ---------------------------------------------------------------------------

    def senml_minute(self, base: int, out: list[str]) -> None:
        traffic = _level(TRAFFIC_PROFILE, base)
        gauss = self.values.gauss
        for _, kind, sensor in self.reporting:
            at = base + sensor.offset
            if kind == 0:
                background, road, dust = self.aq_sites[sensor.position]
                no2 = max(0, round((background + road * traffic + gauss(0, 3)) * 10))
                pm10 = max(0, round((dust + 10 * traffic + gauss(0, 2.5)) * 10))
                pm25 = max(0, min(pm10, round((0.55 * dust + 5 * traffic + gauss(0, 1.5)) * 10)))
                out.append(self._aq_pack(sensor, at, no2, pm10, pm25))
            else:
                lam = 30 * sensor.level * traffic
                out.append(self._tc_pack(sensor, at, _poisson(self.values, lam)))

    def _aq_pack(self, sensor: _Sensor, at: int, no2: int, pm10: int, pm25: int) -> str:
        text = (
            f'[{{"bn":"{sensor.ident}/","bt":{at},'
            f'"n":"no2","u":"ug/m3","v":{no2 // 10}.{no2 % 10}}},'
            f'{{"n":"pm10","u":"ug/m3","v":{pm10 // 10}.{pm10 % 10}}},'
            f'{{"n":"pm25","u":"ug/m3","v":{pm25 // 10}.{pm25 % 10}}}'
            f"{self.sites[sensor.ident]}"
        )
        spoil = self.senml_spoiler.next(AQ_SPOILS)
        values = {"no2": no2, "pm10": pm10, "pm25": pm25}
        if spoil is not None:
            text, values = self._spoil_senml(
                text, spoil, sensor=sensor, at=at, values=values, measure="no2"
            )
        family = self.aq_family
        window = _window(at, family.resolution)
        for measure, value in values.items():
            self.cells.add((window, sensor.zone, family.cells[measure][0]), value)
        return text

    def _tc_pack(self, sensor: _Sensor, at: int, vehicles: int) -> str:
        text = (
            f'[{{"bn":"{sensor.ident}/","bt":{at},"n":"vehicles","u":"count","v":{vehicles}}}'
            f"{self.sites[sensor.ident]}"
        )
        spoil = self.senml_spoiler.next(TC_SPOILS)
        values = {TC_MEASURE: vehicles}
        if spoil is not None:
            text, values = self._spoil_senml(
                text, spoil, sensor=sensor, at=at, values=values, measure=TC_MEASURE
            )
        family = self.tc_family
        for measure, value in values.items():
            key = (_window(at, family.resolution), sensor.zone, family.cells[measure][0])
            self.cells.add(key, value)
        return text

    def _spoil_senml(
        self,
        text: str,
        spoil: str,
        *,
        sensor: _Sensor,
        at: int,
        values: dict[str, int],
        measure: str,
    ) -> tuple[str, dict[str, int]]:
        """Spoil a pack; returns the text sent and the readings still accepted."""
        readings = len(values)
        if spoil == INVALID_JSON:
            self.ledger.reject(INVALID_JSON)
            return self.senml_spoiler.cut(text), {}
        if spoil == UNKNOWN_SENSOR:
            self.ledger.reject(UNKNOWN_SENSOR, readings)
            return text.replace(f'"bn":"{sensor.ident}/"', f'"bn":"zz-{sensor.number}/"', 1), {}
        if spoil == RELATIVE_TIME:  # a sensor that lost its clock sends no base time
            self.ledger.reject(RELATIVE_TIME, readings)
            return text.replace(f',"bt":{at}', "", 1), {}
        kept = {m: v for m, v in values.items() if m != measure}
        self.ledger.reject(spoil)
        named = f'"n":"{measure}"'
        if spoil == UNKNOWN_QUANTITY:  # a measure the source does not declare
            return text.replace(named, '"n":"co2"', 1), kept
        if spoil == UNIT_MISMATCH:  # a firmware reporting no2 in ppm
            return text.replace(f'{named},"u":"ug/m3"', f'{named},"u":"ppm"', 1), kept
        raise AssertionError(spoil)  # pragma: no cover

    # --- canonical ------------------------------------------------------------------------

    def canonical_minute(self, base: int, out: list[str], stamps: dict[int, str]) -> None:
        people = _level(PEOPLE_PROFILE, base)
        rng = self.people
        rand = rng.random
        by_second: list[list[tuple[_Sensor, int, int]]] = [[] for _ in range(60)]
        for sensor in self.wifi:
            detections = _poisson(rng, sensor.level * people)
            recent = self.recent[sensor.position]
            home = self.homes[sensor.zone_pos]
            for _ in range(detections):
                draw = rand()
                if draw < REVISIT and recent:
                    device = recent[int(rand() * len(recent))]
                elif draw < REVISIT + (1 - REVISIT) * HOME:
                    device = home[int(rand() * len(home))]
                else:
                    device = int(rand() * self.population)
                recent.append(device)
                by_second[int(rand() * 60)].append((sensor, device, -40 - int(rand() * 51)))
        family = self.wifi_family
        quantity = family.cells[WIFI_MEASURE][0]
        spoiler = self.canonical_spoiler
        for second, heard in enumerate(by_second):
            at = base + second
            minute = at - at % 60
            stamp = stamps.get(minute)
            if stamp is None:
                stamps.clear()
                stamp = stamps[minute] = _iso(minute)[:-3]
            observed = f"{stamp}{at % 60:02d}Z"
            for sensor, device, rssi in heard:
                mac = self.spellings[device][(sensor.position + 1) % 2]  # even numbers: upper
                text = (
                    f'{{"sensor":"{sensor.ident}","quantity":"people.presence",'
                    f'"unit":"{{device}}","value":1,"observed_at":"{observed}",'
                    f'"location":[{sensor.lon!r},{sensor.lat!r}],'
                    f'"personal":{{"device_mac":"{mac}","rssi":{rssi}}}}}'
                )
                spoil = spoiler.next(WIFI_SPOILS)
                if spoil is None:
                    key = (_window(at, family.resolution), sensor.zone, quantity)
                    self.cells.add(key, 1)
                    self.cells.seen(key, sensor.position, device)
                    self.identifiers.add(mac)
                    out.append(text)
                    continue
                self.ledger.reject(spoil)
                if spoil == INVALID_JSON:
                    text = spoiler.cut(text)
                elif spoil == UNKNOWN_SENSOR:
                    text = text.replace(f'"{sensor.ident}"', f'"zz-{sensor.number}"', 1)
                else:  # MISSING_PERSONAL: a firmware that forgot the MAC
                    text = text.replace(f'"device_mac":"{mac}",', "", 1)
                if mac in text:
                    self.identifiers.add(mac)
                out.append(text)


def _write(handle: IO[str], lines: list[str]) -> None:
    if lines:
        handle.write("\n".join(lines))
        handle.write("\n")


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
    """Write ``senml.jsonl``, ``canonical.jsonl`` and ``truth.json`` to ``out``."""
    if start.tzinfo is None:
        raise ValueError("start needs a time zone")
    if hours < 0 or scale <= 0 or not 0 <= bad_rate <= 1:
        raise ValueError("hours >= 0, scale > 0 and 0 <= bad_rate <= 1")
    out.mkdir(parents=True, exist_ok=True)
    sim = _Simulation(city, seed, scale, bad_rate)
    first = math.floor(start.timestamp())
    minutes = round(hours * 60)
    files = {"senml": out / "senml.jsonl", "canonical": out / "canonical.jsonl"}
    payloads = {"senml": 0, "canonical": 0}
    stamps: dict[int, str] = {}
    with (
        files["senml"].open("w", encoding="utf-8", newline="\n") as senml,
        files["canonical"].open("w", encoding="utf-8", newline="\n") as canonical,
    ):
        for minute in range(minutes):
            base = first + 60 * minute
            packs: list[str] = []
            sim.senml_minute(base, packs)
            _write(senml, packs)
            payloads["senml"] += len(packs)
            observations: list[str] = []
            sim.canonical_minute(base, observations, stamps)
            _write(canonical, observations)
            payloads["canonical"] += len(observations)
    quarantined = dict(sorted(sim.ledger.quarantined.items()))
    accepted = sim.cells.accepted
    readings = accepted + sum(quarantined.values())
    cells = sim.cells.rows()
    identifiers = sorted(sim.identifiers)
    truth = {
        "city": city.city,
        "seed": seed,
        "hours": hours,
        "scale": scale,
        "start": _iso(first),
        "payloads": payloads,
        "readings": readings,
        "accepted": accepted,
        "quarantined": quarantined,
        "cells": cells,
        "identifiers": identifiers,
    }
    (out / "truth.json").write_text(
        json.dumps(truth, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    return SimulationSummary(
        files=files,
        payloads=payloads,
        readings=readings,
        quarantined=quarantined,
        cells=len(cells),
        identifiers=len(identifiers),
    )
