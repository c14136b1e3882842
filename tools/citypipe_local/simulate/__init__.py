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
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from citypipe.domain.city import City
from citypipe_local.simulate.clock import DAY_SECONDS, iso, iso_ms
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import (
    DUPLICATE,
    FUTURE,
    FUTURE_TIME,
    INVALID_ENCODING,
    INVALID_JSON,
    MISSING_PERSONAL,
    OUT_OF_RANGE,
    UNIT_MISMATCH,
    UNKNOWN_DEVICE,
    UNKNOWN_FIELD,
)
from citypipe_local.simulate.scaled import scaled_city
from citypipe_local.simulate.values import CENTI, dec
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

__all__ = ["SimulationSummary", "scaled_city", "simulate"]

MERAKI_SECRET = "velden-scanning-2f9c1e77a0b4"  # noqa: S105  (a simulated hub's shared secret)
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


class _Simulation(Day):
    def minute(self, base: int) -> None:
        """Every report of the minute, in the order they are sent."""
        due: list[tuple[int, str, Sensor]] = []
        for dev in self.world.sensors:
            if dev.fmt in ("canonical", "meraki"):
                continue
            at = base + (dev.offset - base) % dev.cadence
            while at < base + 60:
                due.append((at, dev.name, dev))
                at += dev.cadence
        for at, _, dev in sorted(due, key=lambda d: (d[0], d[1])):
            getattr(self, "_" + dev.fmt.replace("-", "_"))(dev, at)

    # LoRaWAN ------------------------------------------------------------------------------

    def _lorawan_body(self, dev: Sensor, at: int, decoded: dict[str, Any]) -> str:
        gateway, lon, lat = self.world.gateways[
            (dev.position + at // 300) % len(self.world.gateways)
        ]
        devaddr = f"{0x26011000 + dev.position:08x}"
        name = f"vld-aq-{dev.eui[-6:]}"
        self.truth.identifiers.add(name)
        when = iso_ms(at)
        if dev.fmt == "tts-v3":
            return dumps(
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
            return dumps(
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
            return dumps(
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
        self.truth.identifiers.add(wireless_id)
        return dumps(
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
                            "Timestamp": iso(at),
                        }
                    },
                    "PayloadData": "AQID",
                },
            }
        )

    def _tts_v3(self, dev: Sensor, at: int) -> None:
        values = self.values.air(dev, at)
        decoded: dict[str, Any] = {k: float(dec(v)) for k, v in values.items()}
        decoded["battery"] = 3.61
        spoil = self.spoil(
            (INVALID_JSON, UNKNOWN_DEVICE, UNKNOWN_FIELD, OUT_OF_RANGE, FUTURE_TIME, DUPLICATE)
        )
        stamp = at
        if spoil == UNKNOWN_DEVICE:  # every field is rejected, the battery included
            self.truth.reject(UNKNOWN_DEVICE, len(decoded))
            dev = _replace_eui(dev, "70b3d5e75eff" + dev.eui[-4:])
            self.truth.identifiers.add(dev.eui)
            values = {}
        elif spoil == UNKNOWN_FIELD:
            self.truth.reject(UNKNOWN_FIELD)
            decoded["co2"] = 415.0
        elif spoil == OUT_OF_RANGE:
            self.truth.reject(OUT_OF_RANGE)
            decoded["no2"] = 1e308
            values.pop("no2")
        elif spoil == FUTURE_TIME:
            self.truth.reject(FUTURE_TIME, 3)
            stamp, values = FUTURE + at % DAY_SECONDS, {}
        elif spoil == INVALID_JSON:
            values = {}
        body = self._lorawan_body(dev, stamp, decoded)
        self.send(dev.fmt, dev, at, body, spoil, 3)
        self.truth.accept(dev, at, values)

    _chirpstack_v4 = _chirpstack_v3 = _tts_v3

    # SenML --------------------------------------------------------------------------------

    def _senml(self, dev: Sensor, at: int) -> None:
        air = dev.profile.startswith("aq")
        values = (
            self.values.air(dev, at) if air else {"vehicles": self.values.vehicles(dev, at) * CENTI}
        )
        base = dev.device.id + "/"
        unit = "ug/m3" if air else "count"
        records = [f'{{"bn":"{base}","bt":{at},"bu":"{unit}"}}']
        records += [f'{{"n":"{n}","v":{dec(v) if air else v // CENTI}}}' for n, v in values.items()]
        lon, lat = dev.device.at or (0.0, 0.0)
        records += [f'{{"n":"lat","u":"lat","v":{lat!r}}}', f'{{"n":"lon","u":"lon","v":{lon!r}}}']
        spoil = self.spoil(
            (INVALID_JSON, INVALID_ENCODING, UNKNOWN_DEVICE, UNIT_MISMATCH, OUT_OF_RANGE, DUPLICATE)
        )
        readings = len(values)
        if spoil == UNKNOWN_DEVICE:  # positions included: an unknown device's fields are unknown
            self.truth.reject(UNKNOWN_DEVICE, readings + 2)
            records[0] = records[0].replace(base, "2001:db8:ffff::99/")
            self.truth.identifiers.add("2001:db8:ffff::99")
            values = {}
        elif spoil == UNIT_MISMATCH:  # a firmware that reports its first measure in ppm
            self.truth.reject(UNIT_MISMATCH)
            first = next(iter(values))
            records[1] = records[1].replace("}", ',"u":"ppm"}')
            values.pop(first)
        elif spoil == OUT_OF_RANGE:  # -1000 vehicles, negative dust
            self.truth.reject(OUT_OF_RANGE)
            first = next(iter(values))
            records[1] = f'{{"n":"{first}","v":-1000}}'
            values.pop(first)
        elif spoil in (INVALID_JSON, INVALID_ENCODING):
            values = {}
        elif at % 7 == 0:  # a sensor without a clock: times relative to arrival (RFC 8428)
            records[0] = records[0].replace(f',"bt":{at}', "")
        self.send("senml", dev, at, "[" + ",".join(records) + "]", spoil, readings)
        self.truth.accept(dev, at, values)

    # Sensor.Community ---------------------------------------------------------------------

    def _sensor_community(self, dev: Sensor, at: int) -> None:
        air = self.values.air(dev, at)
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
        self.truth.identifiers.add(mac)
        items = [{"value_type": k, "value": dec(v)} for k, v in values.items()]
        items += [
            {"value_type": "samples", "value": "4314326"},
            {"value_type": "signal", "value": "-71"},
        ]
        spoil = self.spoil((INVALID_JSON, UNKNOWN_DEVICE, OUT_OF_RANGE, DUPLICATE))
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
            self.truth.reject(UNKNOWN_DEVICE, len(items))
            body_doc["esp8266id"] = "99" + chip
            headers["X-Sensor"] = f"esp8266-99{chip}"
            self.truth.identifiers.add("99" + chip)
            values = {}
        elif spoil == OUT_OF_RANGE:
            self.truth.reject(OUT_OF_RANGE)
            items[0]["value"] = "1e308"
            values.pop("SDS_P1")
        elif spoil == INVALID_JSON:
            values = {}
        self.send("sensor-community", dev, at, dumps(body_doc), spoil, len(values), headers=headers)
        self.truth.accept(dev, at, values)

    # NGSI-LD ------------------------------------------------------------------------------

    def _ngsi_ld(self, dev: Sensor, at: int) -> None:
        values = self.values.air(dev, at)
        when = iso_ms(at)
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
                "value": float(dec(centi)),
                "unitCode": "GQ",
                "observedAt": when,
            }
        spoil = self.spoil((INVALID_JSON, UNIT_MISMATCH, UNKNOWN_FIELD, DUPLICATE))
        if spoil == UNIT_MISMATCH:  # mg/m3 (GP) instead of ug/m3 (GQ)
            self.truth.reject(UNIT_MISMATCH)
            entity["no2"]["unitCode"] = "GP"
            values.pop("no2")
        elif spoil == UNKNOWN_FIELD:
            self.truth.reject(UNKNOWN_FIELD)
            entity["so2"] = {"type": "Property", "value": 3.0, "unitCode": "GQ", "observedAt": when}
        elif spoil == INVALID_JSON:
            values = {}
        body = dumps(
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
        self.send("ngsi-ld", dev, at, body, spoil, 3, headers={"Link": link})
        self.truth.accept(dev, at, values)

    # AWS IoT rule output --------------------------------------------------------------------

    def _aws_iot(self, dev: Sensor, at: int) -> None:
        if dev.device.hub == "lorawan":
            self._tts_v3(dev, at)
            return
        vehicles = self.values.vehicles(dev, at)
        spoil = self.spoil((INVALID_JSON, OUT_OF_RANGE, DUPLICATE))
        values = {"vehicles": vehicles * CENTI}
        sent = vehicles
        if spoil == OUT_OF_RANGE:
            self.truth.reject(OUT_OF_RANGE)
            sent, values = -1000, {}
        elif spoil == INVALID_JSON:
            values = {}
        body = f'{{"vehicles":{sent},"battery":3.4}}'
        self.send("aws-iot", dev, at, body, spoil, 1, topic=dev.device.id)
        self.truth.accept(dev, at, values)

    # Telraam (hourly, sent five minutes after the hour) --------------------------------------

    def _telraam(self, dev: Sensor, at: int) -> None:
        start = at - at % 3600 - 3600
        if start < self.first:
            return
        uptime = round(self.values.uniform(0.7, 0.95), 4)
        counts = {
            "car": self.values.vehicles(dev, start, 60) * CENTI // 4,
            "heavy": self.values.vehicles(dev, start, 60) * CENTI // 40,
            "bike": self.values.vehicles(dev, start, 60) * CENTI // 10,
            "pedestrian": self.values.vehicles(dev, start, 60) * CENTI // 20,
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
        self.send("telraam", dev, at, body, None, 4)
        self.truth.accept(dev, start, counts)

    # CSV drops (rows collected per hour, one file an hour) -----------------------------------

    def _csv(self, dev: Sensor, at: int) -> None:
        vehicles = self.values.vehicles(dev, at, 15)
        bicycles = self.values.vehicles(dev, at, 3)
        rows = self.drops.setdefault(at - at % 3600, [])
        spoil = self.spoil((OUT_OF_RANGE, UNKNOWN_DEVICE))
        station = dev.device.id
        values = {"vehicles": vehicles * CENTI, "bicycles": bicycles * CENTI}
        if spoil == OUT_OF_RANGE:
            self.truth.reject(OUT_OF_RANGE)
            vehicles = -1000
            values.pop("vehicles")
        elif spoil == UNKNOWN_DEVICE:
            self.truth.reject(UNKNOWN_DEVICE, 2)
            station, values = "VLD-TC-999", {}
        rows.append(f"{station};{iso(at)};{vehicles};{bicycles}")
        self.truth.accept(dev, at, values)

    # Wi-Fi: Meraki posts a minute per AP; canonical observations per detection -----------------

    def wifi_minute(self, base: int) -> None:
        meraki: dict[str, list[tuple[int, int, int]]] = {}
        for h in self.crowd.minute(base):
            if h.sensor.fmt == "meraki":
                meraki.setdefault(h.sensor.name, []).append((h.second, h.phone, h.rssi))
            else:
                self._canonical(h.sensor, base + h.second, h.phone, h.rssi)
        for dev in self.world.sensors:
            if dev.fmt == "meraki" and dev.name in meraki:
                self._meraki(dev, base, meraki[dev.name])

    def _canonical(self, dev: Sensor, at: int, device: int, rssi: int) -> None:
        mac = self.world.spellings[device][(dev.position + 1) % 2]
        text = (
            f'{{"sensor":"{dev.name}","quantity":"people.presence","unit":"{{device}}",'
            f'"value":1,"observed_at":"{iso(at)}",'
            f'"personal":{{"device_mac":"{mac}","rssi":{rssi}}}}}'
        )
        spoil = self.spoil((INVALID_JSON, UNKNOWN_DEVICE, MISSING_PERSONAL))
        self.truth.identifiers.add(mac)
        if spoil is None:
            self.truth.presence(dev, at, device)
        elif spoil == UNKNOWN_DEVICE:
            self.truth.reject(UNKNOWN_DEVICE)
            text = text.replace(f'"{dev.name}"', '"wifi-99"', 1)
        elif spoil == MISSING_PERSONAL:
            self.truth.reject(MISSING_PERSONAL)
            text = text.replace(f'"device_mac":"{mac}",', "", 1)
        self.send("canonical", dev, at, text, spoil if spoil == INVALID_JSON else None, 1)

    def _meraki(self, dev: Sensor, base: int, heard: list[tuple[int, int, int]]) -> None:
        observations = []
        accepted = []
        spoil = self.spoil((INVALID_JSON, INVALID_ENCODING, DUPLICATE, FUTURE_TIME))
        for second, device, rssi in heard:
            mac = self.world.spellings[device][1].replace("-", ":")
            self.truth.identifiers.add(mac)
            at = base + second
            seen = FUTURE + at % DAY_SECONDS if spoil == FUTURE_TIME else at
            observations.append(
                {
                    "ipv4": f"/10.20.{device % 256}.{device // 256 % 256}",
                    "location": {"lat": 51.43, "lng": 5.45, "unc": 12.5},
                    "seenTime": iso(seen),
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
        body = dumps(
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
        self.truth.identifiers.add(MERAKI_SECRET)
        if spoil == FUTURE_TIME:
            self.truth.reject(FUTURE_TIME, len(heard))
        elif spoil not in (INVALID_JSON, INVALID_ENCODING):
            for at, device in accepted:
                self.truth.presence(dev, at, device)
        self.send("meraki", dev, base + 59, body, spoil, len(heard))


def _replace_eui(dev: Sensor, eui: str) -> Sensor:
    return replace(dev, eui=eui)


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
    first = math.floor(start.timestamp())
    sim = _Simulation(city, out, seed=seed, scale=scale, bad_rate=bad_rate, first=first)
    minutes = round(hours * 60)
    for minute in range(minutes):
        base = first + 60 * minute
        sim.minute(base)
        sim.wifi_minute(base)
    _csv_drops(sim, out)
    files, payloads = sim.wire.close()
    drops = sorted((out / "drops").rglob("*.csv")) if (out / "drops").exists() else []
    payloads["csv"] = sum(len(p.read_text().splitlines()) - 1 for p in drops)
    run = {"city": city.slug, "seed": seed, "hours": hours, "scale": scale, "start": iso(first)}
    truth = sim.truth.write(out / "truth.json", {**run, "payloads": payloads})
    return SimulationSummary(
        files=files,
        payloads=payloads,
        readings=truth["readings"],
        quarantined=truth["quarantined"],
        duplicates=truth["duplicates"],
        cells=len(truth["cells"]),
        identifiers=len(truth["identifiers"]),
    )


def _csv_drops(sim: _Simulation, out: Path) -> None:
    """The loop controller's hourly CSV exports, as files for the inbox."""
    folder = out / "drops" / "csv" / CSV_MAPPING
    for hour, rows in sorted(sim.drops.items()):
        folder.mkdir(parents=True, exist_ok=True)
        text = "station;interval_start;vehicles;bicycles\n" + "".join(r + "\n" for r in rows)
        (folder / f"loops-{iso(hour)[:13]}.csv").write_text(text, encoding="utf-8")
