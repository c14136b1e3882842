"""LoRaWAN air quality monitors (an uplink every 5 minutes): what every network server
sends of an uplink, and how an uplink fails.

The example city's monitors are dealt round robin to The Things Stack v3, ChirpStack v4,
ChirpStack v3 and AWS IoT Core for LoRaWAN (``world.LORAWAN_HUBS``). The values, the faults
and what ingest makes of them are the same on all four and are here; each network server's
body is in its own module (``tts``, ``chirpstack``, ``aws_iot``), built from the ``Uplink``
this one hands it.

Faults: an unknown DevEUI (``70b3d5e75eff…``: every field rejected, the battery included),
an unknown field (``co2``), NO2 out of range (1e308), a time in 2099, a truncated body, a
resend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from citypipe_local.simulate.clock import DAY_SECONDS
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import (
    DUPLICATE,
    FUTURE,
    FUTURE_TIME,
    INVALID_JSON,
    OUT_OF_RANGE,
    UNKNOWN_DEVICE,
    UNKNOWN_FIELD,
)
from citypipe_local.simulate.values import dec
from citypipe_local.simulate.world import Sensor

FAULTS = (INVALID_JSON, UNKNOWN_DEVICE, UNKNOWN_FIELD, OUT_OF_RANGE, FUTURE_TIME, DUPLICATE)
READINGS = 3  # NO2, PM10, PM2.5: the battery is no field of the profile


@dataclass(frozen=True)
class Uplink:
    """An uplink as the network server reports it."""

    dev: Sensor
    at: int  # when the network server received it (epoch s)
    decoded: dict[str, Any]  # the payload decoder's output
    name: str  # the device's name on the network server
    devaddr: str
    gateway: str  # the EUI of the gateway that heard it, and where it stands
    lon: float
    lat: float

    @property
    def f_cnt(self) -> int:
        return self.at // 300 % 65536


Body = Callable[[Day, Uplink], str]  # a network server's body of an uplink


def uplink(day: Day, dev: Sensor, at: int, body: Body) -> None:
    """One uplink of ``dev`` at ``at``, sent as the network server whose ``body`` it is."""
    values = day.values.air(dev, at)
    decoded: dict[str, Any] = {k: float(dec(v)) for k, v in values.items()}
    decoded["battery"] = 3.61
    spoil = day.spoil(FAULTS)
    stamp = at
    if spoil == UNKNOWN_DEVICE:  # every field is rejected, the battery included
        day.truth.reject(UNKNOWN_DEVICE, len(decoded))
        dev = replace(dev, eui="70b3d5e75eff" + dev.eui[-4:])
        day.truth.identifiers.add(dev.eui)
        values = {}
    elif spoil == UNKNOWN_FIELD:
        day.truth.reject(UNKNOWN_FIELD)
        decoded["co2"] = 415.0
    elif spoil == OUT_OF_RANGE:
        day.truth.reject(OUT_OF_RANGE)
        decoded["no2"] = 1e308
        values.pop("no2")
    elif spoil == FUTURE_TIME:
        day.truth.reject(FUTURE_TIME, READINGS)
        stamp, values = FUTURE + at % DAY_SECONDS, {}
    elif spoil == INVALID_JSON:
        values = {}
    day.send(dev.fmt, dev, at, body(day, _heard(day, dev, stamp, decoded)), spoil, READINGS)
    day.truth.accept(dev, at, values)


def _heard(day: Day, dev: Sensor, at: int, decoded: dict[str, Any]) -> Uplink:
    """The uplink's radio side: the device's name and DevAddr, and the gateway that heard
    it (the gateways take turns, uplink by uplink)."""
    gateways = day.world.gateways
    gateway, lon, lat = gateways[(dev.position + at // 300) % len(gateways)]
    name = f"vld-aq-{dev.eui[-6:]}"
    day.truth.identifiers.add(name)
    devaddr = f"{0x26011000 + dev.position:08x}"
    return Uplink(dev, at, decoded, name, devaddr, gateway, lon, lat)
