"""Canonical observations: Wi-Fi sensors that speak the pipeline's own reading format, one
message per detection of a phone, as the crowd brings them.

A reading of ``people.presence`` with the personal fields the source declares
(``device_mac``, ``rssi``); the MAC is spelled as one of two vendors does (``AA:BB:…`` or
``aa-bb-…``, by turns of the sensors). Faults: an unknown sensor (``wifi-99``), no
``device_mac``, a truncated body.
"""

from __future__ import annotations

from citypipe_local.simulate.clock import iso
from citypipe_local.simulate.crowd import Detection
from citypipe_local.simulate.day import Day
from citypipe_local.simulate.faults import INVALID_JSON, MISSING_PERSONAL, UNKNOWN_DEVICE

FAULTS = (INVALID_JSON, UNKNOWN_DEVICE, MISSING_PERSONAL)


def observation(day: Day, base: int, detection: Detection) -> None:
    """The observation of a detection in the minute from ``base``, sent the second it is made."""
    dev, phone = detection.sensor, detection.phone
    at = base + detection.second
    mac = day.world.spellings[phone][(dev.position + 1) % 2]
    text = (
        f'{{"sensor":"{dev.name}","quantity":"people.presence","unit":"{{device}}",'
        f'"value":1,"observed_at":"{iso(at)}",'
        f'"personal":{{"device_mac":"{mac}","rssi":{detection.rssi}}}}}'
    )
    spoil = day.spoil(FAULTS)
    day.truth.identifiers.add(mac)
    if spoil is None:
        day.truth.presence(dev, at, phone)
    elif spoil == UNKNOWN_DEVICE:
        day.truth.reject(UNKNOWN_DEVICE)
        text = text.replace(f'"{dev.name}"', '"wifi-99"', 1)
    elif spoil == MISSING_PERSONAL:
        day.truth.reject(MISSING_PERSONAL)
        text = text.replace(f'"device_mac":"{mac}",', "", 1)
    day.send("canonical", dev, at, text, spoil if spoil == INVALID_JSON else None, 1)
