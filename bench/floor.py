"""The floor: citypipe's job as one plain, single-process Python script.

What a city analyst could write in an afternoon and run on the same simulated files the
replay plays: read every hub capture and CSV drop, parse each message (orjson), read it
in its hub's shape, find the device in the registry and its zone, check field, unit,
range and time, replace the Wi-Fi client's MAC by a keyed HMAC under the city's key of the
day, drop a hub's resends, roll the readings up into 15-minute zone cells (count, sum,
min, max, the pseudonyms seen), and publish people cells as the pipeline does (decision
0078): every window of every zone that counts people, each device counted in at most C
cells of its day (a keyed choice), the zone's distinct devices plus discrete Laplace noise
of scale C / ε (a plain floating-point sampler: the analyst's, not the library's exact
one), published at k or more, flagged above the zone's device ceiling; one CSV per theme
and day with the open data's columns.

It is written to be fast and simple, and it is its own code: it imports nothing of
citypipe (the city file and the registry are read as plain YAML). It keeps no
quarantine, no lineage, no exactly-once, no isolation, no scale-out, no other open format:
that is what the pipeline's overhead buys. ``make bench`` runs it beside the replay of the
same files in the same run and prints the ratio; ``tests/integration/test_floor.py`` checks
it publishes the cells the pipeline publishes.

    python bench/floor.py --input DIR --city infra/cities/velden.yaml --out DIR
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hmac
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import orjson
import yaml

WINDOW = 900  # seconds: the 15-minute cells
EARLIEST = 946_684_800  # 2000-01-01T00:00:00Z
FUTURE_SLACK = 300  # a reading more than 5 minutes ahead of the clock is refused
# The controlled quantities the example city measures: UCUM unit, plausible range
UNITS = {
    "air.no2": ("ug/m3", 0, 2000), "air.pm10": ("ug/m3", 0, 2000),
    "air.pm25": ("ug/m3", 0, 1500), "air.o3": ("ug/m3", 0, 1000),
    "noise.laeq": ("dB", 0, 200), "traffic.vehicles": ("{vehicle}", 0, 100_000),
    "traffic.heavy_vehicles": ("{vehicle}", 0, 100_000),
    "traffic.bicycles": ("{bicycle}", 0, 100_000),
    "traffic.pedestrians": ("{pedestrian}", 0, 100_000),
    "people.presence": ("{device}", 0, 1_000_000), "parking.occupancy": ("%", 0, 100),
    "weather.temperature": ("Cel", -60, 70), "weather.humidity": ("%", 0, 100),
    "weather.pressure": ("Pa", 30_000, 110_000),
}  # fmt: skip
THEMES = {"air": "air-quality", "traffic": "traffic-flow", "people": "people-counts"}
HEX = set("0123456789abcdef")

# A reading in its hub's words: (hub, device id, field, value, time, unit, MAC)
Reading = tuple[str, Any, Any, Any, float, Any, Any]


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def num(value: Any) -> float | None:
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --- one reader per hub format: a parsed body -> readings ----------------------------------


def lorawan(device: str, decoded: dict[str, Any], at: float) -> list[Reading]:
    return [("lorawan", device, k, v, at, None, None) for k, v in decoded.items()]


def tts(doc: Any, env: dict[str, Any]) -> list[Reading]:
    up = doc["uplink_message"]
    return lorawan(doc["end_device_ids"]["dev_eui"], up["decoded_payload"], iso(up["received_at"]))


def chirpstack_v4(doc: Any, env: dict[str, Any]) -> list[Reading]:
    return lorawan(doc["deviceInfo"]["devEui"], doc["object"], iso(doc["time"]))


def chirpstack_v3(doc: Any, env: dict[str, Any]) -> list[Reading]:
    eui = base64.b64decode(doc["devEUI"]).hex()
    return lorawan(eui, doc["object"], iso(doc["publishedAt"]))


def aws_iot(doc: Any, env: dict[str, Any]) -> list[Reading]:
    if "transformed_message" in doc:  # IoT Core for LoRaWAN, with a decoder
        message = doc["transformed_message"]
        at = iso(doc["lns_message"]["WirelessMetadata"]["LoRaWAN"]["Timestamp"])
        return lorawan(message["DevEui"], message["payload"], at)
    topic, at = env.get("topic"), env["at"]  # an IoT rule's plain JSON: the device is the topic
    return [("aws-iot", topic, k, v, at, None, None) for k, v in doc.items()]


def senml(doc: Any, env: dict[str, Any]) -> list[Reading]:
    out: list[Reading] = []
    bn, bt, bu = "", 0.0, None
    for record in doc:
        bn = record.get("bn", bn)
        bt = record.get("bt", bt)
        bu = record.get("bu", bu)
        if "v" not in record:  # a record of base fields only
            continue
        at = bt + record.get("t", 0)
        if abs(at) < 2**28:  # relative to arrival
            at += env["at"]
        name = bn + record.get("n", "")
        device, _, name = name.rpartition("/")
        out.append(("senml", device, name, record.get("v"), at, record.get("u", bu), None))
    return out


def ngsi_ld(doc: Any, env: dict[str, Any]) -> list[Reading]:
    out: list[Reading] = []
    for entity in doc["data"]:
        for name, prop in entity.items():
            if type(prop) is dict and prop.get("type") == "Property" and "observedAt" in prop:
                at = iso(prop["observedAt"])
                unit = prop.get("unitCode")
                out.append(("ngsi-ld", entity["id"], name, prop["value"], at, unit, None))
    return out


def sensor_community(doc: Any, env: dict[str, Any]) -> list[Reading]:
    chip = doc.get("esp8266id") or env["headers"]["X-Sensor"].rsplit("-", 1)[-1]
    return [
        ("sensor-community", chip, v["value_type"], v["value"], env["at"], None, None)
        for v in doc["sensordatavalues"]
    ]


def meraki(doc: Any, env: dict[str, Any]) -> list[Reading]:
    ap = doc["data"]["apMac"]
    return [
        ("meraki", ap, "presence", 1, iso(o["seenTime"]), None, o.get("clientMac"))
        for o in doc["data"]["observations"]
    ]


def telraam(doc: Any, env: dict[str, Any]) -> list[Reading]:
    out: list[Reading] = []
    for report in doc["report"]:
        at = iso(report["date"])
        for name, value in report.items():
            if name not in ("instance_id", "segment_id", "date", "interval", "timezone",
                            "direction"):  # fmt: skip
                out.append(("telraam", str(report["segment_id"]), name, value, at, None, None))
    return out


def canonical(doc: Any, env: dict[str, Any]) -> list[Reading]:
    personal = doc.get("personal") or {}
    return [("canonical", doc["sensor"], doc["quantity"], doc["value"], iso(doc["observed_at"]),
             doc.get("unit"), personal.get("device_mac"))]  # fmt: skip


READERS: dict[str, Callable[[Any, dict[str, Any]], list[Reading]]] = {
    "tts-v3": tts, "chirpstack-v4": chirpstack_v4, "chirpstack-v3": chirpstack_v3,
    "aws-iot": aws_iot, "senml": senml, "ngsi-ld": ngsi_ld,
    "sensor-community": sensor_community, "meraki": meraki, "telraam": telraam,
    "canonical": canonical,
}  # fmt: skip


# --- the city: devices, zones, policies ----------------------------------------------------


def inside(point: list[float], ring: list[list[float]]) -> bool:
    """Ray casting: is the point inside the polygon's outer ring?"""
    x, y = point
    found = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            found = not found
    return found


def hub_id(hub: str, ident: Any) -> Any:
    if type(ident) is not str:
        return ident
    text = ident.strip().lower()
    if hub in ("lorawan", "meraki"):
        return "".join(c for c in text if c in HEX)
    if hub == "sensor-community":
        return text.rsplit("-", 1)[-1]
    return ident.strip()


@dataclass
class Device:
    sensor: str
    zone: str
    source: str
    fields: dict[str, tuple[str, str | None, float, float, float]]  # -> quantity, unit, ...
    ignore: list[str]
    personal: bool  # its readings' data subject is pseudonymized
    ceiling: int  # the most distinct devices it can hear in a window (people counters)


def read_city(path: Path) -> dict[str, Any]:
    """The city file, the keys of the file it ``extends`` that it does not set, and its
    registry read."""
    city: dict[str, Any] = yaml.safe_load(path.read_text())
    if isinstance(city.get("registry"), str):
        city["registry"] = yaml.safe_load((path.parent / city["registry"]).read_text())
    if "extends" in city:
        city = {**read_city(path.parent / city.pop("extends")), **city}
    return city


def load_devices(city_file: Path) -> tuple[dict[tuple[str, Any], Device], dict[str, Any]]:
    city = read_city(city_file)
    registry = city["registry"]
    zones = [(f["id"], f["geometry"]["coordinates"][0]) for f in city["zones"]["features"]]
    devices = {}
    for name, spec in registry["devices"].items():
        profile = registry["profiles"][spec["profile"]]
        source = city["sources"][profile["source"]]
        personal = "pseudonymize" in (source.get("policy") or {}).get("personal", {}).values()
        fields = {}
        for fname, f in profile["fields"].items():
            _, low, high = UNITS[f["quantity"]]
            low, high = f.get("range", (low, high))
            fields[fname] = (f["quantity"], f.get("unit"), f.get("scale") or 1, low, high)
        zone = spec.get("zone") or next(z for z, ring in zones if inside(spec["at"], ring))
        device = Device(name, zone, profile["source"], fields, profile.get("ignore", []), personal,
                        profile.get("max_devices_per_window") or 0)  # fmt: skip
        hub = spec["hub"]
        devices[hub, hub_id(hub, str(spec["id"]))] = device
    return devices, city


# --- the job ---------------------------------------------------------------------------------


@dataclass
class Cell:
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    devices: set[str] = field(default_factory=set)  # the day pseudonyms seen


@dataclass
class Floor:
    city_file: Path
    now: float = field(default_factory=time.time)
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    cells: dict[tuple[int, str, str], Cell] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.devices, self.city = load_devices(self.city_file)
        self.ceilings: Counter[str] = Counter()  # zone -> its people counters' ceilings
        for device in self.devices.values():
            if device.personal:
                self.ceilings[device.zone] += device.ceiling
        self.secrets: dict[int, bytes] = {}  # day -> the day's secret
        self.keys: dict[int, bytes] = {}  # day -> the city's key of the day
        self.aliases: dict[tuple[bytes, str], str] = {}
        self.seen: set[tuple[str, str, float, str | None]] = set()
        self.seen_at: float | None = None
        self.lookup: dict[tuple[str, Any], Device | None] = {}
        self.random = random.Random(os.urandom(16))  # the noise: fresh each run

    def pseudonym(self, window: int, mac: str) -> str:
        day = window // 86_400
        key = self.keys.get(day)
        if key is None:
            secret = self.secrets.setdefault(day, os.urandom(32))
            label = f"citypipe/v1/person-day/{self.city['slug']}".encode()
            key = self.keys[day] = hmac.digest(secret, label, "sha256")
        alias = self.aliases.get((key, mac))
        if alias is None:
            bare = "".join(c for c in mac.lower() if c.isalnum())
            alias = self.aliases[key, mac] = hmac.digest(key, bare.encode(), "sha256").hex()
        return alias

    def device(self, hub: str, ident: Any) -> Device | None:
        found = self.lookup.get((hub, ident), self)
        if found is self:
            found = self.lookup[hub, ident] = self.devices.get((hub, hub_id(hub, ident)))
        return found  # type: ignore[return-value]

    def reading(self, r: Reading) -> None:
        hub, ident, name, value, at, unit, mac = r
        dev = self.device(hub, ident)
        if dev is None:
            self.reject("unknown_device")
            return
        spec = dev.fields.get(name)
        if spec is None:
            if not any(fnmatchcase(name, pattern) for pattern in dev.ignore):
                self.reject("unknown_field")
            return
        quantity, hub_unit, scale, low, high = spec
        if unit is not None and unit != (hub_unit or UNITS[quantity][0]):
            self.reject("unit_mismatch")
            return
        number = num(value)
        if number is None or not math.isfinite(number):
            self.reject("invalid_value")
            return
        number *= scale
        if not low <= number <= high:
            self.reject("out_of_range")
            return
        if at > self.now + FUTURE_SLACK or at < EARLIEST:
            self.reject("future_time" if at > self.now else "implausible_time")
            return
        alias = None
        if dev.personal:
            if not mac:
                self.reject("missing_personal_field")
                return
            alias = self.pseudonym(int(at // WINDOW) * WINDOW, mac)
        identity = (dev.sensor, quantity, at, alias)
        if identity in self.seen:
            self.duplicates += 1
            self.received += 1
            return
        self.seen.add(identity)
        self.received += 1
        self.accepted += 1
        window = int(at // WINDOW) * WINDOW
        cell = self.cells.get((window, dev.zone, quantity))
        if cell is None:
            cell = self.cells[window, dev.zone, quantity] = Cell()
        cell.count += 1
        cell.sum += number
        cell.min = min(cell.min, number)
        cell.max = max(cell.max, number)
        if alias is not None:
            cell.devices.add(alias)

    def reject(self, reason: str, readings: int = 1) -> None:
        self.rejected[reason] += readings
        self.received += readings

    def message(self, fmt: str, line: bytes) -> None:
        envelope = orjson.loads(line)
        if envelope["at"] != self.seen_at:  # a hub resends in the same instant
            self.seen.clear()
            self.seen_at = envelope["at"]
        body = envelope.get("body")
        try:
            if body is None:
                body = base64.b64decode(envelope["body_base64"])
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self.reject("invalid_encoding" if "utf-8" in str(exc).lower() else "invalid_json")
            return
        except binascii.Error:
            self.reject("invalid_payload")
            return
        try:
            readings = READERS[fmt](doc, envelope)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.reject("invalid_payload")
            return
        for r in readings:
            self.reading(r)

    def csv_drop(self, path: Path) -> None:
        mapping = self.city["csv"][path.parent.name]
        rows = csv.DictReader(path.read_text().splitlines(), delimiter=mapping["delimiter"])
        for row in rows:
            station, at = row.pop(mapping["device"]), iso(row.pop(mapping["time"]))
            for name, value in row.items():
                self.reading(("csv", station, name, value, at, None, None))

    def run(self, input_dir: Path) -> None:
        for path in sorted(input_dir.glob("*.jsonl")):
            fmt = path.stem
            with path.open("rb") as lines:
                for line in lines:
                    self.message(fmt, line)
        for path in sorted((input_dir / "drops" / "csv").glob("*/*.csv")):
            self.csv_drop(path)

    def people_grid(self) -> None:
        """Every window of every day seen, of every zone with a device counting people."""
        days = {window // 86_400 for window, _, _ in self.cells}
        counted = {
            (device.zone, quantity)
            for device in self.devices.values()
            if device.personal
            for quantity, *_ in device.fields.values()
        }
        for day in days:
            for window in range(day * 86_400, (day + 1) * 86_400, WINDOW):
                for zone, quantity in counted:
                    self.cells.setdefault((window, zone, quantity), Cell())

    def capped(self, cap: int) -> dict[tuple[int, str, str], int]:
        """Distinct devices per people cell, each device in at most ``cap`` cells of its
        day: those of lowest keyed rank."""
        key = os.urandom(32)
        seen: dict[tuple[int, str], list[tuple[int, str, str]]] = {}
        for place, cell in self.cells.items():
            for alias in cell.devices:
                seen.setdefault((place[0] // 86_400, alias), []).append(place)
        counts: Counter[tuple[int, str, str]] = Counter()
        for (_, alias), places in seen.items():
            if len(places) > cap:
                places.sort(key=lambda p: hmac.digest(key, f"{alias}{p}".encode(), "sha256"))
            counts.update(places[:cap])
        return counts

    def people(self, devices: int, k: int, ceiling: int, noise: dict[str, Any]) -> list[str]:
        """A people cell: its bounded distinct devices plus noise, published at k or more,
        flagged above the zone's ceiling, else suppressed."""
        scale = noise.get("contributions_per_day", 10) / float(noise.get("epsilon", 1.0))
        stop = math.exp(-1 / scale)  # discrete Laplace as two geometrics
        draw = self.random.random
        noisy = (
            devices
            + int(math.log(1.0 - draw()) / math.log(stop))
            - int(math.log(1.0 - draw()) / math.log(stop))
        )
        if noisy > ceiling:
            return [""] * 6 + ["flagged", "above_device_ceiling"]
        if noisy < k:
            return [""] * 6 + ["suppressed", "fewer_than_k_devices"]
        return [""] * 5 + [str(noisy), "published", ""]

    def write(self, out: Path) -> dict[str, int]:
        """One CSV per theme and day, the open data's columns; returns cells by status."""
        k = self.city["disclosure"]["k"]
        noise = self.city["disclosure"].get("noise") or {}
        self.people_grid()
        counts = self.capped(noise.get("contributions_per_day", 10))
        tables: dict[tuple[str, str], list[list[str]]] = {}
        statuses: Counter[str] = Counter()
        for (window, zone, quantity), cell in sorted(self.cells.items()):
            start = datetime.fromtimestamp(window, UTC)
            family = quantity.split(".")[0]
            row = [start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   datetime.fromtimestamp(window + WINDOW, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   zone, quantity, UNITS[quantity][0]]  # fmt: skip
            if family == "people":
                ceiling = self.ceilings.get(zone, 0)
                row += self.people(counts[window, zone, quantity], k, ceiling, noise)
            else:
                row += [str(cell.count), *(repr(round(v, 6)) for v in (cell.sum, cell.min,
                        cell.max, cell.sum / cell.count)), "published", ""]  # fmt: skip
            statuses[row[-2]] += 1
            tables.setdefault((THEMES.get(family, family), start.date().isoformat()), []).append(
                row
            )
        for (theme, day), rows in tables.items():
            folder = out / theme / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            header = ["window_start", "window_end", "zone", "quantity", "unit", "count", "sum",
                      "min", "max", "mean"]  # fmt: skip
            if theme == THEMES["people"]:
                header.append("distinct_devices")
            with (folder / f"{theme}_{day}.csv").open("w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow([*header, "status", "reason"])
                writer.writerows(rows)
        return dict(statuses)


@dataclass(frozen=True)
class FloorRun:
    seconds: float
    cpu_seconds: float
    received: int
    accepted: int
    duplicates: int
    rejected: dict[str, int]
    cells: dict[str, int]


def floor(input_dir: Path, city_file: Path, out: Path) -> FloorRun:
    """The whole job, timed (wall and this process's CPU)."""
    started, cpu = time.perf_counter(), time.process_time()
    job = Floor(city_file)
    job.run(input_dir)
    cells = job.write(out)
    return FloorRun(
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        received=job.received,
        accepted=job.accepted,
        duplicates=job.duplicates,
        rejected=dict(sorted(job.rejected.items())),
        cells=cells,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--city", type=Path, default=Path("infra/cities/velden.yaml"))
    parser.add_argument("--out", type=Path, default=Path("out/floor"))
    args = parser.parse_args()
    run = floor(args.input, args.city, args.out)
    print(run)


if __name__ == "__main__":
    main()
