"""The simulated city: its sensors (the registered devices, each with the hub it sends
through, its cadence and place), the phones Wi-Fi sensors hear, the air at each site and
the LoRaWAN gateways.

Everything here is laid out once, from one seeded stream (``<seed>/layout``), in a fixed
order: the sensors, the phones' MACs, their home zones, the sites' air, the gateways. A
change to that order changes every file the simulator writes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from citypipe.domain.city import City
from citypipe.domain.registry import Device

POPULATION = 20_000  # phones at scale 1
BUSY_RATE = 8.0  # Wi-Fi detections a minute per sensor at the profile's peak
QUIET_RATE = 1.0

# The example city's device profiles -> (format, cadence in seconds)
PROFILES: dict[str, tuple[str, int]] = {
    "aq-lorawan": ("lorawan", 300),
    "aq-senml": ("senml", 60),
    "aq-sensor-community": ("sensor-community", 150),
    "aq-ngsi-ld": ("ngsi-ld", 60),
    "tc-senml": ("senml", 60),
    "tc-iot-rule": ("aws-iot", 60),
    "tc-telraam": ("telraam", 3600),
    "tc-csv": ("csv", 900),
    "wifi-meraki": ("meraki", 60),
    "wifi-canonical": ("canonical", 1),
}
LORAWAN_HUBS = ("tts-v3", "chirpstack-v4", "chirpstack-v3", "aws-iot")  # dealt round robin
WIFI = ("meraki", "canonical")  # the hubs that report what the crowd's phones do


@dataclass
class Sensor:
    """A registered device as the simulator plays it."""

    name: str
    device: Device
    profile: str
    fmt: str  # the hub format it sends through
    cadence: int
    offset: int
    zone: str
    zone_pos: int
    position: int  # index among the devices of its profile
    level: float
    resolution: int
    quantities: dict[str, str]  # field -> quantity
    source: str
    eui: str = ""


@dataclass(frozen=True)
class World:
    sensors: list[Sensor]
    population: int  # phones
    spellings: list[tuple[str, str]]  # phone -> its MAC as AA:BB:… and as aa-bb-…
    homes: list[list[int]]  # zone position -> the phones that live there
    sites: dict[str, tuple[float, float, float]]  # sensor -> the air there (values.Values)
    gateways: list[tuple[str, float, float]]  # (EUI, lon, lat)

    @classmethod
    def lay_out(cls, city: City, seed: int, scale: float) -> World:
        """The city at ``scale`` (of its devices and phones), as seed ``seed`` lays it out."""
        layout = random.Random(f"{seed}/layout")
        sensors = _sensors(city, layout, scale)
        zones = len(city.zones.features)
        population = max(50, round(POPULATION * scale))
        macs = _macs(layout, population)
        homes: list[list[int]] = [[] for _ in range(zones)]
        for phone in range(population):
            homes[layout.randrange(zones)].append(phone)
        sites = {
            s.name: (layout.uniform(8, 16), layout.uniform(20, 45), layout.uniform(10, 18))
            for s in sensors
        }
        gateways = [
            (f"{0x7076FF0056080000 + layout.getrandbits(16):016x}",
             round(layout.uniform(5.40, 5.49), 6), round(layout.uniform(51.40, 51.46), 6))
            for _ in range(6)
        ]  # fmt: skip
        return cls(
            sensors=sensors,
            population=population,
            spellings=[(_spell(m, True), _spell(m, False)) for m in macs],
            homes=[pool or list(range(population)) for pool in homes],
            sites=sites,
            gateways=gateways,
        )

    def identifiers(self) -> set[str]:
        """The hub identifiers of the sensors and gateways, wherever a message carries them."""
        found = {eui for eui, _, _ in self.gateways}
        for sensor in self.sensors:
            device = sensor.device
            if device.hub not in ("canonical", "csv", "telraam"):
                found.add(device.id)
            if device.hub == "aws-iot":
                found.add(device.id.split("/")[2])  # the thing name
        return found


def _sensors(city: City, layout: random.Random, scale: float) -> list[Sensor]:
    """Every profile's devices, the first ``scale`` of them (two Wi-Fi sensors at least)."""
    by_profile: dict[str, list[tuple[str, Device]]] = {}
    for name, device in sorted(city.registry.devices.items()):
        if device.profile not in PROFILES:
            raise ValueError(
                f"the simulator plays profiles {sorted(PROFILES)}, not {device.profile!r}"
            )
        by_profile.setdefault(device.profile, []).append((name, device))
    out: list[Sensor] = []
    for profile, members in sorted(by_profile.items()):
        least = 2 if profile.startswith("wifi") else 1
        keep = members[: max(least, round(len(members) * scale))]
        out += [_sensor(city, layout, profile, position, m) for position, m in enumerate(keep)]
    return out


def _sensor(
    city: City, layout: random.Random, profile_name: str, position: int, member: tuple[str, Device]
) -> Sensor:
    name, device = member
    fmt, cadence = PROFILES[profile_name]
    if fmt == "lorawan":
        fmt = LORAWAN_HUBS[position % len(LORAWAN_HUBS)]
    profile = city.registry.profiles[profile_name]
    resolved = city.device(device.hub, device.id)
    assert resolved is not None
    zone_pos = city.zone_index.ids.index(resolved.zone)
    offset = layout.randrange(cadence)
    level = layout.uniform(0.7, 1.3)
    if profile_name.startswith("wifi"):  # busy and quiet zones, by turns
        level = (BUSY_RATE if zone_pos % 2 == 0 else QUIET_RATE) * level
    return Sensor(
        name=name,
        device=device,
        profile=profile_name,
        fmt=fmt,
        cadence=cadence,
        offset=offset,
        zone=resolved.zone,
        zone_pos=zone_pos,
        position=position,
        level=level,
        resolution=city.sources[profile.source].policy.time_resolution_minutes,
        quantities={f: spec.quantity for f, spec in profile.fields.items()},
        source=profile.source,
        eui=device.id.lower() if device.hub == "lorawan" else "",
    )


def _macs(rng: random.Random, population: int) -> list[int]:
    seen: set[int] = set()
    out: list[int] = []
    while len(out) < population:
        mac = rng.getrandbits(48) | (0x02 << 40)  # locally administered, as phones randomize
        mac &= ~(0x01 << 40)
        if mac not in seen:
            seen.add(mac)
            out.append(mac)
    return out


def _spell(mac: int, upper_colons: bool) -> str:
    text = f"{mac:012x}"
    pairs = [text[i : i + 2] for i in range(0, 12, 2)]
    return ":".join(pairs).upper() if upper_colons else "-".join(pairs)
