"""SenML (RFC 8428): air quality monitors and traffic counters (a pack every minute), named
by IPv6 addresses or ``urn:dev:mac:`` EUIs, published by the city's SenML gateway.

A pack is a base record (``bn`` the device and a slash, ``bt`` the time, ``bu`` the unit)
then a record per measure and the device's position (``lat``, ``lon``). One pack in seven
of a clean stream has no ``bt``: a sensor without a clock, its times relative to arrival.
Faults: an unknown device (positions rejected too), a firmware that reports its first
measure in ppm, -1000 vehicles or negative dust, a truncated body, a non-UTF-8 byte, a
resend.
"""

from __future__ import annotations

from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import (
    DUPLICATE,
    INVALID_ENCODING,
    INVALID_JSON,
    OUT_OF_RANGE,
    UNIT_MISMATCH,
    UNKNOWN_DEVICE,
)
from citypipe_local.simulate.values import CENTI, dec
from citypipe_local.simulate.world import Sensor

FAULTS = (INVALID_JSON, INVALID_ENCODING, UNKNOWN_DEVICE, UNIT_MISMATCH, OUT_OF_RANGE, DUPLICATE)
STRANGER = "2001:db8:ffff::99"  # a device no registry holds


def pack(day: Day, dev: Sensor, at: int) -> None:
    """The pack of ``dev`` at ``at``: air quality in ug/m3, or whole vehicles."""
    air = dev.profile.startswith("aq")
    values = day.values.air(dev, at) if air else {"vehicles": day.values.vehicles(dev, at) * CENTI}
    base = dev.device.id + "/"
    unit = "ug/m3" if air else "count"
    records = [f'{{"bn":"{base}","bt":{at},"bu":"{unit}"}}']
    records += [f'{{"n":"{n}","v":{dec(v) if air else v // CENTI}}}' for n, v in values.items()]
    lon, lat = dev.device.at or (0.0, 0.0)
    records += [f'{{"n":"lat","u":"lat","v":{lat!r}}}', f'{{"n":"lon","u":"lon","v":{lon!r}}}']
    spoil = day.spoil(FAULTS)
    readings = len(values)
    if spoil == UNKNOWN_DEVICE:  # positions included: an unknown device's fields are unknown
        day.truth.reject(UNKNOWN_DEVICE, readings + 2)
        records[0] = records[0].replace(base, f"{STRANGER}/")
        day.truth.identifiers.add(STRANGER)
        values = {}
    elif spoil == UNIT_MISMATCH:  # a firmware that reports its first measure in ppm
        day.truth.reject(UNIT_MISMATCH)
        first = next(iter(values))
        records[1] = records[1].replace("}", ',"u":"ppm"}')
        values.pop(first)
    elif spoil == OUT_OF_RANGE:  # -1000 vehicles, negative dust
        day.truth.reject(OUT_OF_RANGE)
        first = next(iter(values))
        records[1] = f'{{"n":"{first}","v":-1000}}'
        values.pop(first)
    elif spoil in (INVALID_JSON, INVALID_ENCODING):
        values = {}
    elif at % 7 == 0:  # a sensor without a clock: times relative to arrival (RFC 8428)
        records[0] = records[0].replace(f',"bt":{at}', "")
    day.send("senml", dev, at, "[" + ",".join(records) + "]", spoil, readings)
    day.truth.accept(dev, at, values)
