"""Cisco Meraki: Wi-Fi access points' Scanning API v2 posts (``DevicesSeen``), one a
minute per access point, of the phones the crowd brought near it that minute.

Each observation carries the phone's MAC (``AA:BB:…``), RSSI, seen time and a client IPv4;
the post carries the API's shared secret and the access point's MAC (``apMac``, its
registered id). Faults: every observation seen in 2099, a truncated body, a non-UTF-8 byte,
a resend.
"""

from __future__ import annotations

from citypipe_local.simulate.clock import DAY_SECONDS, iso
from citypipe_local.simulate.crowd import Detection
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import (
    DUPLICATE,
    FUTURE,
    FUTURE_TIME,
    INVALID_ENCODING,
    INVALID_JSON,
)
from citypipe_local.simulate.wire import dumps
from citypipe_local.simulate.world import Sensor

FAULTS = (INVALID_JSON, INVALID_ENCODING, DUPLICATE, FUTURE_TIME)
SECRET = "velden-scanning-2f9c1e77a0b4"  # noqa: S105  (a simulated hub's shared secret)


def devices_seen(day: Day, dev: Sensor, base: int, heard: list[Detection]) -> None:
    """The post of access point ``dev`` for the minute from ``base``: what it ``heard``."""
    observations = []
    accepted = []
    spoil = day.spoil(FAULTS)
    for detection in heard:
        phone = detection.phone
        mac = day.world.spellings[phone][1].replace("-", ":")
        day.truth.identifiers.add(mac)
        at = base + detection.second
        seen = FUTURE + at % DAY_SECONDS if spoil == FUTURE_TIME else at
        observations.append(
            {
                "ipv4": f"/10.20.{phone % 256}.{phone // 256 % 256}",
                "location": {"lat": 51.43, "lng": 5.45, "unc": 12.5},
                "seenTime": iso(seen),
                "ssid": "Velden-Free-WiFi",
                "os": None,
                "clientMac": mac,
                "seenEpoch": seen,
                "rssi": detection.rssi,
                "ipv6": None,
                "manufacturer": "Apple",
            }
        )
        accepted.append((at, phone))
    body = dumps(
        {
            "version": "2.0",
            "secret": SECRET,
            "type": "DevicesSeen",
            "data": {
                "apMac": dev.device.id,
                "apFloors": [],
                "apTags": ["velden"],
                "observations": observations,
            },
        }
    )
    day.truth.identifiers.add(SECRET)
    if spoil == FUTURE_TIME:
        day.truth.reject(FUTURE_TIME, len(heard))
    elif spoil not in (INVALID_JSON, INVALID_ENCODING):
        for at, phone in accepted:
            day.truth.presence(dev, at, phone)
    day.send("meraki", dev, base + 59, body, spoil, len(heard))
