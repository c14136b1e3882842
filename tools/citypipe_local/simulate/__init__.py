"""simulate: a deterministic city day, sent the way each of the city's hubs sends it, and the
truth the pipeline must reproduce.

Every registered device of the example city (its device registry) reports through its
hub, in the hub's documented shape and with the hub's identifiers:

- LoRaWAN air quality monitors (every 5 minutes) through The Things Stack v3 webhooks,
  ChirpStack v4 and v3 uplinks and AWS IoT Core (a decoder's ``transformed_message``):
  DevEUIs, DevAddrs, device names, gateway EUIs and positions;
- SenML packs (every minute) named by IPv6 addresses or ``urn:dev:mac:`` EUIs;
- Sensor.Community pushes (every 150 s), the chip id in the body and the header, the
  Wi-Fi MAC in ``X-MAC-ID``;
- NGSI-LD notifications of AirQualityObserved entities (normalized, Link header);
- radar counters' JSON through an AWS IoT rule (the device only in the MQTT topic);
- Telraam hourly reports; a legacy loop controller's CSV exports (drops in the inbox);
- Meraki Scanning API v2 posts (client MACs, the shared secret) and canonical
  observations (MACs in two vendors' spellings).

Each message is one line of ``<format>.jsonl``: ``{"at": arrival (epoch s), "body": the
exact body, "topic"?: MQTT topic, "headers"?: HTTP headers}`` (``body_base64`` for a body
that is not text). The topic is where the hub publishes it on the city's broker: the city
file's topic filter for the device's source and format (``sources.<s>.mqtt``), wildcards
filled with the device as its hub names it. CSV drops are files under ``drops/csv/<mapping>/``.

A small, deterministic fraction of messages is spoiled the ways hubs really fail, each with
the quarantine reason ingest must give it (or, for a hub's resend, the duplicates it must
find). ``truth.json`` holds the ingest ledger, every 15-minute zone cell before
suppression (exact: integer hundredths, distinct devices per sensor and window) and every
identifier emitted. Everything is seeded: the same arguments give byte-identical files.
"""

from __future__ import annotations

import base64
import math
import random
import shutil
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from citypipe.domain.city import City
from citypipe.domain.model import QUANTITY_UNITS
from citypipe.domain.registry import Device
from citypipe_local.simulate.scaled import scaled_city

__all__ = ["SimulationSummary", "scaled_city", "simulate"]

POPULATION = 20_000
WINDOW_SECONDS = 15 * 60  # aggregate.WINDOW_MINUTES
DAY_SECONDS = 86_400
CENTI = 100  # every value is kept as integer hundredths: sums are exact

TRAFFIC_PROFILE = (
    0.12,
    0.08,
    0.06,
    0.06,
    0.1,
    0.25,
    0.6,
    0.95,
    1.0,
    0.8,
    0.65,
    0.62,
    0.66,
    0.64,
    0.66,
    0.75,
    0.92,
    1.0,
    0.85,
    0.6,
    0.45,
    0.35,
    0.26,
    0.18,
)
PEOPLE_PROFILE = (
    0.3,
    0.18,
    0.1,
    0.05,
    0.05,
    0.08,
    0.2,
    0.5,
    0.8,
    0.7,
    0.65,
    0.75,
    0.9,
    0.85,
    0.75,
    0.75,
    0.85,
    1.0,
    0.9,
    0.75,
    0.6,
    0.5,
    0.45,
    0.38,
)
BUSY_RATE = 8.0  # Wi-Fi detections a minute per sensor at the profile's peak
QUIET_RATE = 1.0
REVISIT = 0.35
HOME = 0.8
RECENT = 30
MERAKI_SECRET = "velden-scanning-2f9c1e77a0b4"  # noqa: S105  (a simulated hub's shared secret)

# Spoils -> the reason ingest gives the spoiled readings. DUPLICATE: a hub's resend,
# re-serialized, which ingest counts as duplicates (never quarantined).
INVALID_JSON = "invalid_json"
INVALID_ENCODING = "invalid_encoding"
UNKNOWN_DEVICE = "unknown_device"
UNKNOWN_FIELD = "unknown_field"
UNIT_MISMATCH = "unit_mismatch"
OUT_OF_RANGE = "out_of_range"
FUTURE_TIME = "future_time"
MISSING_PERSONAL = "missing_personal_field"
DUPLICATE = "duplicate"
FUTURE = 4_070_908_800  # 2099-01-01T00:00:00Z

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
LORAWAN_HUBS = ("tts-v3", "chirpstack-v4", "chirpstack-v3", "aws-iot")
CSV_MAPPING = "loop-export"


@dataclass(frozen=True)
class SimulationSummary:
    files: dict[str, Path]  # format -> capture file
    payloads: dict[str, int]  # format -> messages (CSV: rows) sent
    readings: int
    quarantined: dict[str, int]
    duplicates: int
    cells: int
    identifiers: int


@dataclass
class _Dev:
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


class _Cells:
    """Exact accumulators per (window start, zone, quantity), values in hundredths."""

    def __init__(self) -> None:
        self.stats: dict[tuple[int, str, str], list[int]] = {}
        self.devices: dict[tuple[int, str, str], set[tuple[str, int]]] = {}
        self.accepted = 0

    def add(self, key: tuple[int, str, str], value: int) -> None:
        self.accepted += 1
        stat = self.stats.get(key)
        if stat is None:
            self.stats[key] = [1, value, value, value]
            return
        stat[0] += 1
        stat[1] += value
        stat[2] = min(stat[2], value)
        stat[3] = max(stat[3], value)

    def seen(self, key: tuple[int, str, str], sensor: str, device: int) -> None:
        self.devices.setdefault(key, set()).add((sensor, device))

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for key in sorted(self.stats):
            window, zone, quantity = key
            count, total, low, high = self.stats[key]
            devices = self.devices.get(key)
            rows.append(
                {
                    "window_start": _iso(window),
                    "zone": zone,
                    "quantity": quantity,
                    "unit": QUANTITY_UNITS[quantity],
                    "count": count,
                    "sum": round(total / CENTI, 6),
                    "min": low / CENTI,
                    "max": high / CENTI,
                    "mean": round(total / CENTI / count, 6),
                    "distinct_devices": None if devices is None else len(devices),
                    "min_distinct_people": None
                    if devices is None
                    else max(Counter(sensor for sensor, _ in devices).values()),
                    "devices_by_sensor": None
                    if devices is None
                    else dict(sorted(Counter(sensor for sensor, _ in devices).items())),
                }
            )
        return rows


class _Spoiler:
    """Chooses which messages of a stream to spoil (geometric gaps) and how (round robin)."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self._rng = rng
        self._rate = rate
        self._left = self._gap()
        self._turn: dict[tuple[str, ...], int] = {}

    def _gap(self) -> int:
        if self._rate <= 0:
            return -1
        if self._rate >= 1:
            return 1
        gap = math.log1p(-self._rng.random()) / math.log1p(-self._rate)
        return 1 + int(min(gap, 2.0**62))

    def next(self, kinds: tuple[str, ...]) -> str | None:
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
        """A truncated body: a proper, non-blank prefix of a JSON document is never valid."""
        return text[: self._rng.randint(1, len(text) - 1)]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _window(at: int, resolution: int) -> int:
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


def _dec(centi: int) -> str:
    """Hundredths as a JSON number with two decimals ("-0.05", "12.30")."""
    sign = "-" if centi < 0 else ""
    whole, frac = divmod(abs(centi), CENTI)
    return f"{sign}{whole}.{frac:02d}"


def _dumps(document: Any) -> str:
    return orjson.dumps(document).decode()


@dataclass
class _Out:
    """Messages of one format, written to its capture file in the order they are sent."""

    path: Path
    payloads: int = 0
    handle: IO[bytes] | None = None

    def send(
        self,
        at: float,
        body: str | bytes,
        *,
        topic: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        envelope: dict[str, Any] = {"at": at}
        if isinstance(body, bytes):
            envelope["body_base64"] = base64.b64encode(body).decode()
        else:
            envelope["body"] = body
        if topic is not None:
            envelope["topic"] = topic
        if headers:
            envelope["headers"] = headers
        if self.handle is None:
            self.handle = self.path.open("wb")
        self.handle.write(orjson.dumps(envelope, option=orjson.OPT_APPEND_NEWLINE))
        self.payloads += 1


class _Simulation:
    def __init__(self, city: City, seed: int, scale: float, bad_rate: float, out: Path) -> None:
        self.city = city
        self.folder = out
        layout = random.Random(f"{seed}/layout")
        self.values = random.Random(f"{seed}/values")
        self.people = random.Random(f"{seed}/people")
        self.spoiler = _Spoiler(random.Random(f"{seed}/spoil"), bad_rate)
        self.cells = _Cells()
        self.quarantined: Counter[str] = Counter()
        self.duplicates = 0
        self.identifiers: set[str] = set()
        self.out: dict[str, _Out] = {}
        self.first = 0  # the first second simulated
        self.csv_rows: dict[int, list[str]] = {}  # hour -> rows of the loop controller export
        self.devices = self._devices(city, layout, scale)
        zones = len(city.zones.features)
        self.population = max(50, round(POPULATION * scale))
        macs = _macs(layout, self.population)
        self.spellings = [(_spell(m, True), _spell(m, False)) for m in macs]
        homes: list[list[int]] = [[] for _ in range(zones)]
        for device in range(self.population):
            homes[layout.randrange(zones)].append(device)
        self.homes = [pool or list(range(self.population)) for pool in homes]
        self.recent: dict[str, deque[int]] = {}
        self.aq_sites = {
            d.name: (layout.uniform(8, 16), layout.uniform(20, 45), layout.uniform(10, 18))
            for d in self.devices
        }
        self.gateways = [
            (f"{0x7076FF0056080000 + layout.getrandbits(16):016x}",
             round(layout.uniform(5.40, 5.49), 6), round(layout.uniform(51.40, 51.46), 6))
            for _ in range(6)
        ]  # fmt: skip
        for eui, _, _ in self.gateways:
            self.identifiers.add(eui)

    # --- the devices ---------------------------------------------------------------------

    def _devices(self, city: City, layout: random.Random, scale: float) -> list[_Dev]:
        by_profile: dict[str, list[tuple[str, Device]]] = {}
        for name, device in sorted(city.registry.devices.items()):
            if device.profile not in PROFILES:
                raise ValueError(
                    f"the simulator plays profiles {sorted(PROFILES)}, not {device.profile!r}"
                )
            by_profile.setdefault(device.profile, []).append((name, device))
        zone_ids = city.zone_index.ids
        out: list[_Dev] = []
        for profile_name, members in sorted(by_profile.items()):
            fmt, cadence = PROFILES[profile_name]
            least = 2 if profile_name.startswith("wifi") else 1
            keep = members[: max(least, round(len(members) * scale))]
            profile = city.registry.profiles[profile_name]
            policy = city.sources[profile.source].policy
            for position, (name, device) in enumerate(keep):
                resolved = city.device(device.hub, device.id)
                assert resolved is not None
                hub = fmt
                if fmt == "lorawan":
                    hub = LORAWAN_HUBS[position % len(LORAWAN_HUBS)]
                busy = (
                    (zone_ids.index(resolved.zone) % 2 == 0)
                    if fmt in ("meraki", "canonical")
                    else True
                )
                out.append(
                    _Dev(
                        name=name,
                        device=device,
                        profile=profile_name,
                        fmt=hub,
                        cadence=cadence,
                        offset=layout.randrange(cadence),
                        zone=resolved.zone,
                        zone_pos=zone_ids.index(resolved.zone),
                        position=position,
                        level=(BUSY_RATE if busy else QUIET_RATE) * layout.uniform(0.7, 1.3)
                        if profile_name.startswith("wifi")
                        else layout.uniform(0.7, 1.3),
                        resolution=policy.time_resolution_minutes,
                        quantities={f: spec.quantity for f, spec in profile.fields.items()},
                        source=profile.source,
                        eui=device.id.lower() if device.hub == "lorawan" else "",
                    )
                )
                if device.hub not in ("canonical", "csv", "telraam"):
                    self.identifiers.add(device.id)
                if device.hub == "aws-iot":
                    self.identifiers.add(device.id.split("/")[2])  # the thing name
        return out

    def _stream(self, fmt: str) -> _Out:
        stream = self.out.get(fmt)
        if stream is None:
            stream = self.out[fmt] = _Out(self.folder / f"{fmt}.jsonl")
        return stream

    def _accept(self, dev: _Dev, at: int, values: dict[str, int]) -> None:
        window = _window(at, dev.resolution)
        for name, centi in values.items():
            quantity = dev.quantities.get(name)
            if quantity is not None:
                self.cells.add((window, dev.zone, quantity), centi)

    def _reject(self, reason: str, readings: int = 1) -> None:
        self.quarantined[reason] += readings

    # --- values --------------------------------------------------------------------------

    def _air(self, dev: _Dev, at: int) -> dict[str, int]:
        background, road, dust = self.aq_sites[dev.name]
        traffic = _level(TRAFFIC_PROFILE, at)
        gauss = self.values.gauss
        no2 = max(0, round((background + road * traffic + gauss(0, 3)) * CENTI))
        pm10 = max(0, round((dust + 10 * traffic + gauss(0, 2.5)) * CENTI))
        pm25 = max(0, min(pm10, round((0.55 * dust + 5 * traffic + gauss(0, 1.5)) * CENTI)))
        return {"no2": no2, "pm10": pm10, "pm25": pm25}

    def _vehicles(self, dev: _Dev, at: int, minutes: float = 1) -> int:
        return _poisson(self.values, 30 * minutes * dev.level * _level(TRAFFIC_PROFILE, at))

    # --- one message per device and cadence ------------------------------------------------

    def minute(self, base: int) -> None:
        """Every report of the minute, in the order they are sent."""
        due: list[tuple[int, str, _Dev]] = []
        for dev in self.devices:
            if dev.fmt in ("canonical", "meraki"):
                continue
            at = base + (dev.offset - base) % dev.cadence
            while at < base + 60:
                due.append((at, dev.name, dev))
                at += dev.cadence
        for at, _, dev in sorted(due, key=lambda d: (d[0], d[1])):
            getattr(self, "_" + dev.fmt.replace("-", "_"))(dev, at)

    def _spoil(self, kinds: tuple[str, ...]) -> str | None:
        return self.spoiler.next(kinds)

    def _send(
        self,
        fmt: str,
        dev: _Dev,
        at: float,
        body: str,
        spoil: str | None,
        readings: int,
        *,
        topic: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a body as the hub would; spoil it the generic ways (truncated, a non-UTF-8
        byte, a resend) where ``spoil`` says so."""
        out = self._stream(fmt)
        topic = topic or self._topic(dev, fmt)
        if spoil == INVALID_JSON:
            self._reject(INVALID_JSON)
            out.send(at, self.spoiler.cut(body), topic=topic, headers=headers)
            return
        if spoil == INVALID_ENCODING:
            self._reject(INVALID_ENCODING)
            cut = len(body) // 2
            out.send(
                at,
                body[:cut].encode() + b"\xff" + body[cut:].encode(),
                topic=topic,
                headers=headers,
            )
            return
        out.send(at, body, topic=topic, headers=headers)
        if spoil == DUPLICATE:  # the hub resends it, re-serialized
            self.duplicates += readings
            resend = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
            out.send(at, resend, topic=topic, headers=headers)

    def _topic(self, dev: _Dev, fmt: str) -> str | None:
        """The MQTT topic the device's hub publishes the message on: the city file's filter
        for its source and format, each wildcard level the device as that hub names it
        (TTS: its device id; ChirpStack: its DevEUI). None: the city declares none."""
        route = next(
            (r for r in self.city.mqtt_routes if (r.source, r.format) == (dev.source, fmt)), None
        )
        if route is None:
            return None
        names = {"tts-v3": f"vld-aq-{dev.eui[-6:]}", "chirpstack-v4": dev.eui}
        name = names.get(fmt, dev.eui if fmt == "chirpstack-v3" else dev.name)
        return "/".join(name if level in ("+", "#") else level for level in route.topic.split("/"))

    # LoRaWAN ------------------------------------------------------------------------------

    def _lorawan_body(self, dev: _Dev, at: int, decoded: dict[str, Any]) -> str:
        gateway, lon, lat = self.gateways[(dev.position + at // 300) % len(self.gateways)]
        devaddr = f"{0x26011000 + dev.position:08x}"
        name = f"vld-aq-{dev.eui[-6:]}"
        self.identifiers.add(name)
        when = _iso_ms(at)
        if dev.fmt == "tts-v3":
            return _dumps(
                {
                    "end_device_ids": {
                        "device_id": name,
                        "application_ids": {"application_id": "velden-air"},
                        "dev_eui": dev.eui.upper(),
                        "join_eui": "70B3D57ED0000000",
                        "dev_addr": devaddr.upper(),
                    },
                    "correlation_ids": [f"as:up:{at:x}{dev.position:04x}"],
                    "received_at": when,
                    "uplink_message": {
                        "f_port": 2,
                        "f_cnt": at // 300 % 65536,
                        "frm_payload": "AQID",
                        "decoded_payload": decoded,
                        "rx_metadata": [
                            {
                                "gateway_ids": {
                                    "gateway_id": f"eui-{gateway}",
                                    "eui": gateway.upper(),
                                },
                                "time": when,
                                "rssi": -97,
                                "snr": 7.5,
                                "location": {
                                    "latitude": lat,
                                    "longitude": lon,
                                    "altitude": 12,
                                    "source": "SOURCE_REGISTRY",
                                },
                            }
                        ],
                        "settings": {
                            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                            "frequency": "868100000",
                        },
                        "received_at": when,
                    },
                }
            )
        if dev.fmt == "chirpstack-v4":
            return _dumps(
                {
                    "deduplicationId": f"{at:08x}-{dev.position:04x}-4000-8000-000000000000",
                    "time": when,
                    "deviceInfo": {
                        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                        "tenantName": "Velden",
                        "applicationId": "5bb92de6-49b3-49af-a366-34667f2230be",
                        "applicationName": "air",
                        "deviceProfileName": "aq-node",
                        "deviceName": name,
                        "devEui": dev.eui,
                        "tags": {},
                    },
                    "devAddr": devaddr,
                    "adr": True,
                    "dr": 3,
                    "fCnt": at // 300 % 65536,
                    "fPort": 2,
                    "confirmed": False,
                    "data": "AQID",
                    "object": {k: f"{v:.2f}" if k == "pm25" else v for k, v in decoded.items()},
                    "rxInfo": [
                        {
                            "gatewayId": gateway,
                            "uplinkId": at % 65536,
                            "time": when,
                            "rssi": -97,
                            "snr": 7.5,
                            "location": {"latitude": lat, "longitude": lon},
                        }
                    ],
                }
            )
        if dev.fmt == "chirpstack-v3":
            return _dumps(
                {
                    "applicationID": "7",
                    "applicationName": "air",
                    "deviceName": name,
                    "devEUI": base64.b64encode(bytes.fromhex(dev.eui)).decode(),
                    "rxInfo": [
                        {
                            "gatewayID": base64.b64encode(bytes.fromhex(gateway)).decode(),
                            "time": when,
                            "rssi": -97,
                            "loRaSNR": 7.5,
                            "location": {"latitude": lat, "longitude": lon, "altitude": 12},
                        }
                    ],
                    "adr": True,
                    "fCnt": at // 300 % 65536,
                    "fPort": 2,
                    "data": "AQID",
                    "object": decoded,
                    "publishedAt": when,
                }
            )
        wireless_id = f"{dev.position:08x}-ed1d-42ad-8cb4-{dev.eui[-12:]}"
        self.identifiers.add(wireless_id)
        return _dumps(
            {
                "transformed_message": {
                    "status": 200,
                    "payload": decoded,
                    "WirelessDeviceId": wireless_id,
                    "DevEui": dev.eui,
                },
                "lns_message": {
                    "WirelessDeviceId": wireless_id,
                    "WirelessMetadata": {
                        "LoRaWAN": {
                            "DataRate": 3,
                            "DevEui": dev.eui,
                            "FPort": 2,
                            "Frequency": 868100000,
                            "Gateways": [{"GatewayEui": gateway, "Rssi": -97, "Snr": 7.5}],
                            "Timestamp": _iso(at),
                        }
                    },
                    "PayloadData": "AQID",
                },
            }
        )

    def _tts_v3(self, dev: _Dev, at: int) -> None:
        values = self._air(dev, at)
        decoded: dict[str, Any] = {k: float(_dec(v)) for k, v in values.items()}
        decoded["battery"] = 3.61
        spoil = self._spoil(
            (INVALID_JSON, UNKNOWN_DEVICE, UNKNOWN_FIELD, OUT_OF_RANGE, FUTURE_TIME, DUPLICATE)
        )
        stamp = at
        if spoil == UNKNOWN_DEVICE:  # every field is rejected, the battery included
            self._reject(UNKNOWN_DEVICE, len(decoded))
            dev = _replace_eui(dev, "70b3d5e75eff" + dev.eui[-4:])
            self.identifiers.add(dev.eui)
            values = {}
        elif spoil == UNKNOWN_FIELD:
            self._reject(UNKNOWN_FIELD)
            decoded["co2"] = 415.0
        elif spoil == OUT_OF_RANGE:
            self._reject(OUT_OF_RANGE)
            decoded["no2"] = 1e308
            values.pop("no2")
        elif spoil == FUTURE_TIME:
            self._reject(FUTURE_TIME, 3)
            stamp, values = FUTURE + at % DAY_SECONDS, {}
        elif spoil == INVALID_JSON:
            values = {}
        body = self._lorawan_body(dev, stamp, decoded)
        self._send(dev.fmt, dev, at, body, spoil, 3)
        self._accept(dev, at, values)

    _chirpstack_v4 = _chirpstack_v3 = _tts_v3

    # SenML --------------------------------------------------------------------------------

    def _senml(self, dev: _Dev, at: int) -> None:
        air = dev.profile.startswith("aq")
        values = self._air(dev, at) if air else {"vehicles": self._vehicles(dev, at) * CENTI}
        base = dev.device.id + "/"
        unit = "ug/m3" if air else "count"
        records = [f'{{"bn":"{base}","bt":{at},"bu":"{unit}"}}']
        records += [
            f'{{"n":"{n}","v":{_dec(v) if air else v // CENTI}}}' for n, v in values.items()
        ]
        lon, lat = dev.device.at or (0.0, 0.0)
        records += [f'{{"n":"lat","u":"lat","v":{lat!r}}}', f'{{"n":"lon","u":"lon","v":{lon!r}}}']
        spoil = self._spoil(
            (INVALID_JSON, INVALID_ENCODING, UNKNOWN_DEVICE, UNIT_MISMATCH, OUT_OF_RANGE, DUPLICATE)
        )
        readings = len(values)
        if spoil == UNKNOWN_DEVICE:  # positions included: an unknown device's fields are unknown
            self._reject(UNKNOWN_DEVICE, readings + 2)
            records[0] = records[0].replace(base, "2001:db8:ffff::99/")
            self.identifiers.add("2001:db8:ffff::99")
            values = {}
        elif spoil == UNIT_MISMATCH:  # a firmware that reports its first measure in ppm
            self._reject(UNIT_MISMATCH)
            first = next(iter(values))
            records[1] = records[1].replace("}", ',"u":"ppm"}')
            values.pop(first)
        elif spoil == OUT_OF_RANGE:  # -1000 vehicles, negative dust
            self._reject(OUT_OF_RANGE)
            first = next(iter(values))
            records[1] = f'{{"n":"{first}","v":-1000}}'
            values.pop(first)
        elif spoil in (INVALID_JSON, INVALID_ENCODING):
            values = {}
        elif at % 7 == 0:  # a sensor without a clock: times relative to arrival (RFC 8428)
            records[0] = records[0].replace(f',"bt":{at}', "")
        self._send("senml", dev, at, "[" + ",".join(records) + "]", spoil, readings)
        self._accept(dev, at, values)

    # Sensor.Community ---------------------------------------------------------------------

    def _sensor_community(self, dev: _Dev, at: int) -> None:
        air = self._air(dev, at)
        hour = (at % DAY_SECONDS) / 3600
        values = {
            "SDS_P1": air["pm10"],
            "SDS_P2": air["pm25"],
            "BME280_temperature": round((14 + 6 * math.sin((hour - 9) / 24 * 2 * math.pi)) * CENTI),
            "BME280_humidity": round(self.values.uniform(55, 85) * CENTI),
            "BME280_pressure": round(self.values.uniform(100_600, 101_900) * CENTI),
        }
        chip = dev.device.id
        mac = f"{0xA4CF1200_0000 + int(chip):012x}"
        self.identifiers.add(mac)
        items = [{"value_type": k, "value": _dec(v)} for k, v in values.items()]
        items += [
            {"value_type": "samples", "value": "4314326"},
            {"value_type": "signal", "value": "-71"},
        ]
        spoil = self._spoil((INVALID_JSON, UNKNOWN_DEVICE, OUT_OF_RANGE, DUPLICATE))
        body_doc: dict[str, Any] = {
            "esp8266id": chip,
            "software_version": "NRZ-2020-133",
            "sensordatavalues": items,
        }
        if at % 3 == 0:  # newer firmware: the chip id only in the header
            body_doc.pop("esp8266id")
        headers = {
            "X-Sensor": f"esp8266-{chip}",
            "X-MAC-ID": f"esp8266-{mac}",
            "Content-Type": "application/json",
        }
        if spoil == UNKNOWN_DEVICE:
            self._reject(UNKNOWN_DEVICE, len(items))
            body_doc["esp8266id"] = "99" + chip
            headers["X-Sensor"] = f"esp8266-99{chip}"
            self.identifiers.add("99" + chip)
            values = {}
        elif spoil == OUT_OF_RANGE:
            self._reject(OUT_OF_RANGE)
            items[0]["value"] = "1e308"
            values.pop("SDS_P1")
        elif spoil == INVALID_JSON:
            values = {}
        self._send(
            "sensor-community", dev, at, _dumps(body_doc), spoil, len(values), headers=headers
        )
        self._accept(dev, at, values)

    # NGSI-LD ------------------------------------------------------------------------------

    def _ngsi_ld(self, dev: _Dev, at: int) -> None:
        values = self._air(dev, at)
        when = _iso_ms(at)
        entity: dict[str, Any] = {
            "id": dev.device.id,
            "type": "AirQualityObserved",
            "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": when}},
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": list(dev.device.at or (0, 0))},
            },
            "refDevice": {
                "type": "Relationship",
                "object": f"urn:ngsi-ld:Device:{dev.device.id[-8:]}",
            },
        }
        for name, centi in values.items():
            entity[name] = {
                "type": "Property",
                "value": float(_dec(centi)),
                "unitCode": "GQ",
                "observedAt": when,
            }
        spoil = self._spoil((INVALID_JSON, UNIT_MISMATCH, UNKNOWN_FIELD, DUPLICATE))
        if spoil == UNIT_MISMATCH:  # mg/m3 (GP) instead of ug/m3 (GQ)
            self._reject(UNIT_MISMATCH)
            entity["no2"]["unitCode"] = "GP"
            values.pop("no2")
        elif spoil == UNKNOWN_FIELD:
            self._reject(UNKNOWN_FIELD)
            entity["so2"] = {"type": "Property", "value": 3.0, "unitCode": "GQ", "observedAt": when}
        elif spoil == INVALID_JSON:
            values = {}
        body = _dumps(
            {
                "id": f"urn:ngsi-ld:Notification:{at:x}{dev.position:04x}",
                "type": "Notification",
                "subscriptionId": "urn:ngsi-ld:Subscription:velden-air",
                "notifiedAt": when,
                "data": [entity],
            }
        )
        link = (
            "<https://smartdatamodels.org/context.jsonld>; "
            'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        )
        self._send("ngsi-ld", dev, at, body, spoil, 3, headers={"Link": link})
        self._accept(dev, at, values)

    # AWS IoT rule output --------------------------------------------------------------------

    def _aws_iot(self, dev: _Dev, at: int) -> None:
        if dev.device.hub == "lorawan":
            self._tts_v3(dev, at)
            return
        vehicles = self._vehicles(dev, at)
        spoil = self._spoil((INVALID_JSON, OUT_OF_RANGE, DUPLICATE))
        values = {"vehicles": vehicles * CENTI}
        sent = vehicles
        if spoil == OUT_OF_RANGE:
            self._reject(OUT_OF_RANGE)
            sent, values = -1000, {}
        elif spoil == INVALID_JSON:
            values = {}
        body = f'{{"vehicles":{sent},"battery":3.4}}'
        self._send("aws-iot", dev, at, body, spoil, 1, topic=dev.device.id)
        self._accept(dev, at, values)

    # Telraam (hourly, sent five minutes after the hour) --------------------------------------

    def _telraam(self, dev: _Dev, at: int) -> None:
        start = at - at % 3600 - 3600
        if start < self.first:
            return
        uptime = round(self.values.uniform(0.7, 0.95), 4)
        counts = {
            "car": self._vehicles(dev, start, 60) * CENTI // 4,
            "heavy": self._vehicles(dev, start, 60) * CENTI // 40,
            "bike": self._vehicles(dev, start, 60) * CENTI // 10,
            "pedestrian": self._vehicles(dev, start, 60) * CENTI // 20,
        }
        row: dict[str, Any] = {
            "instance_id": -1,
            "segment_id": int(dev.device.id),
            "date": f"{_iso(start)[:-1]}.000Z",
            "interval": "hourly",
            "uptime": uptime,
        }
        for name, centi in counts.items():
            row[name] = float(_dec(centi))
            row[f"{name}_lft"] = float(_dec(centi // 2))
            row[f"{name}_rgt"] = float(_dec(centi - centi // 2))
        row.update(
            {
                "direction": 1,
                "timezone": "Europe/Brussels",
                "car_speed_hist_0to70plus": [10.0, 50.0, 40.0],
                "v85": 31.5,
            }
        )
        body = _dumps({"status_code": 200, "message": "ok", "report": [row]})
        self._send("telraam", dev, at, body, None, 4)
        self._accept(dev, start, counts)

    # CSV drops (rows collected per hour, one file an hour) -----------------------------------

    def _csv(self, dev: _Dev, at: int) -> None:
        vehicles = self._vehicles(dev, at, 15)
        bicycles = self._vehicles(dev, at, 3)
        rows = self.csv_rows.setdefault(at - at % 3600, [])
        spoil = self._spoil((OUT_OF_RANGE, UNKNOWN_DEVICE))
        station = dev.device.id
        values = {"vehicles": vehicles * CENTI, "bicycles": bicycles * CENTI}
        if spoil == OUT_OF_RANGE:
            self._reject(OUT_OF_RANGE)
            vehicles = -1000
            values.pop("vehicles")
        elif spoil == UNKNOWN_DEVICE:
            self._reject(UNKNOWN_DEVICE, 2)
            station, values = "VLD-TC-999", {}
        rows.append(f"{station};{_iso(at)};{vehicles};{bicycles}")
        self._accept(dev, at, values)

    # Wi-Fi: Meraki posts a minute per AP; canonical observations per detection -----------------

    def wifi_minute(self, base: int) -> None:
        people = _level(PEOPLE_PROFILE, base)
        rng = self.people
        rand = rng.random
        heard: list[tuple[int, _Dev, int, int]] = []
        for dev in self.devices:
            if dev.fmt not in ("meraki", "canonical"):
                continue
            recent = self.recent.setdefault(dev.name, deque(maxlen=RECENT))
            home = self.homes[dev.zone_pos]
            seen: set[tuple[int, int]] = set()
            for _ in range(_poisson(rng, dev.level * people)):
                draw = rand()
                if draw < REVISIT and recent:
                    device = recent[int(rand() * len(recent))]
                elif draw < REVISIT + (1 - REVISIT) * HOME:
                    device = home[int(rand() * len(home))]
                else:
                    device = int(rand() * self.population)
                recent.append(device)
                second = int(rand() * 60)
                if (second, device) in seen:
                    continue  # one detection of a device a second
                seen.add((second, device))
                heard.append((second, dev, device, -40 - int(rand() * 51)))
        heard.sort(key=lambda h: (h[0], h[1].name, h[2]))
        meraki: dict[str, list[tuple[int, int, int]]] = {}
        for second, dev, device, rssi in heard:
            if dev.fmt == "meraki":
                meraki.setdefault(dev.name, []).append((second, device, rssi))
            else:
                self._canonical(dev, base + second, device, rssi)
        for dev in self.devices:
            if dev.fmt == "meraki" and dev.name in meraki:
                self._meraki(dev, base, meraki[dev.name])

    def _presence(self, dev: _Dev, at: int, device: int) -> None:
        key = (_window(at, dev.resolution), dev.zone, "people.presence")
        self.cells.add(key, CENTI)
        self.cells.seen(key, dev.name, device)

    def _canonical(self, dev: _Dev, at: int, device: int, rssi: int) -> None:
        mac = self.spellings[device][(dev.position + 1) % 2]
        text = (
            f'{{"sensor":"{dev.name}","quantity":"people.presence","unit":"{{device}}",'
            f'"value":1,"observed_at":"{_iso(at)}",'
            f'"personal":{{"device_mac":"{mac}","rssi":{rssi}}}}}'
        )
        spoil = self._spoil((INVALID_JSON, UNKNOWN_DEVICE, MISSING_PERSONAL))
        self.identifiers.add(mac)
        if spoil is None:
            self._presence(dev, at, device)
        elif spoil == UNKNOWN_DEVICE:
            self._reject(UNKNOWN_DEVICE)
            text = text.replace(f'"{dev.name}"', '"wifi-99"', 1)
        elif spoil == MISSING_PERSONAL:
            self._reject(MISSING_PERSONAL)
            text = text.replace(f'"device_mac":"{mac}",', "", 1)
        self._send("canonical", dev, at, text, spoil if spoil == INVALID_JSON else None, 1)

    def _meraki(self, dev: _Dev, base: int, heard: list[tuple[int, int, int]]) -> None:
        observations = []
        accepted = []
        spoil = self._spoil((INVALID_JSON, INVALID_ENCODING, DUPLICATE, FUTURE_TIME))
        for second, device, rssi in heard:
            mac = self.spellings[device][1].replace("-", ":")
            self.identifiers.add(mac)
            at = base + second
            seen = FUTURE + at % DAY_SECONDS if spoil == FUTURE_TIME else at
            observations.append(
                {
                    "ipv4": f"/10.20.{device % 256}.{device // 256 % 256}",
                    "location": {"lat": 51.43, "lng": 5.45, "unc": 12.5},
                    "seenTime": _iso(seen),
                    "ssid": "Velden-Free-WiFi",
                    "os": None,
                    "clientMac": mac,
                    "seenEpoch": seen,
                    "rssi": rssi,
                    "ipv6": None,
                    "manufacturer": "Apple",
                }
            )
            accepted.append((at, device))
        body = _dumps(
            {
                "version": "2.0",
                "secret": MERAKI_SECRET,
                "type": "DevicesSeen",
                "data": {
                    "apMac": dev.device.id,
                    "apFloors": [],
                    "apTags": ["velden"],
                    "observations": observations,
                },
            }
        )
        self.identifiers.add(MERAKI_SECRET)
        if spoil == FUTURE_TIME:
            self._reject(FUTURE_TIME, len(heard))
        elif spoil not in (INVALID_JSON, INVALID_ENCODING):
            for at, device in accepted:
                self._presence(dev, at, device)
        self._send("meraki", dev, base + 59, body, spoil, len(heard))


def _replace_eui(dev: _Dev, eui: str) -> _Dev:
    copy = _Dev(**{**dev.__dict__})
    copy.eui = eui
    return copy


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
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl"):  # a capture of an earlier run would be replayed too
        old.unlink()
    shutil.rmtree(out / "drops", ignore_errors=True)
    sim = _Simulation(city, seed, scale, bad_rate, out)
    first = math.floor(start.timestamp())
    sim.first = first
    minutes = round(hours * 60)
    for minute in range(minutes):
        base = first + 60 * minute
        sim.minute(base)
        sim.wifi_minute(base)
    _csv_drops(sim, out)
    files: dict[str, Path] = {}
    payloads: dict[str, int] = {}
    for fmt, stream in sorted(sim.out.items()):
        if stream.handle is not None:
            stream.handle.close()
        files[fmt] = stream.path
        payloads[fmt] = stream.payloads
    drops = sorted((out / "drops").rglob("*.csv")) if (out / "drops").exists() else []
    payloads["csv"] = sum(len(p.read_text().splitlines()) - 1 for p in drops)
    quarantined = dict(sorted(sim.quarantined.items()))
    accepted = sim.cells.accepted
    readings = accepted + sim.duplicates + sum(quarantined.values())
    cells = sim.cells.rows()
    identifiers = sorted(sim.identifiers)
    truth = {
        "city": city.slug,
        "seed": seed,
        "hours": hours,
        "scale": scale,
        "start": _iso(first),
        "payloads": payloads,
        "readings": readings,
        "accepted": accepted,
        "duplicates": sim.duplicates,
        "quarantined": quarantined,
        "cells": cells,
        "identifiers": identifiers,
    }
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_SORT_KEYS) + b"\n")
    return SimulationSummary(
        files=files,
        payloads=payloads,
        readings=readings,
        quarantined=quarantined,
        duplicates=sim.duplicates,
        cells=len(cells),
        identifiers=len(identifiers),
    )


def _csv_drops(sim: _Simulation, out: Path) -> None:
    """The loop controller's hourly CSV exports, as files for the inbox."""
    folder = out / "drops" / "csv" / CSV_MAPPING
    for hour, rows in sorted(sim.csv_rows.items()):
        folder.mkdir(parents=True, exist_ok=True)
        text = "station;interval_start;vehicles;bicycles\n" + "".join(r + "\n" for r in rows)
        (folder / f"loops-{_iso(hour)[:13]}.csv").write_text(text, encoding="utf-8")
