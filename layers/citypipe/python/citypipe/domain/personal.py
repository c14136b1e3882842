"""Personal data a source can carry: the fields citypipe knows, what each is, what may be
done with it, and the red lines.

A source's privacy policy gives every personal field it can carry a rule (``drop``,
``pseudonymize``, ``generalize``, ``refuse``); the city file is refused at load when one is
missing, or when a rule crosses a red line: citypipe never processes biometric data, faces
or images — a source may only declare them ``refuse`` (a reading that carries one is
refused whole, its value never written).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """Categories of personal data, as the record of processing (Art. 30) names them."""

    ONLINE_IDENTIFIER = "online identifier"
    NETWORK = "network data"
    SIGNAL = "radio signal"
    LOCATION = "location"
    DEVICE = "device characteristics"
    VEHICLE = "vehicle identifier"
    BIOMETRIC = "biometric data"
    FACE = "face"
    IMAGE = "image"


# Never processed: a field of these categories can only be refused.
RED_LINES = frozenset({Category.BIOMETRIC, Category.FACE, Category.IMAGE})


@dataclass(frozen=True)
class PersonalField:
    category: Category
    what: str  # in plain words, for the register
    subject: bool = False  # identifies the data subject: may be pseudonymized


PERSONAL_FIELDS: dict[str, PersonalField] = {
    "device_mac": PersonalField(
        Category.ONLINE_IDENTIFIER,
        "the Wi-Fi or Bluetooth address of a passer-by's phone or other device",
        subject=True,
    ),
    "ip_address": PersonalField(Category.ONLINE_IDENTIFIER, "an IP address a device used"),
    "ssid": PersonalField(Category.NETWORK, "the name of a network a device was connected to"),
    "probe_ssids": PersonalField(
        Category.NETWORK, "the names of networks a device looks for (they may name a home)"
    ),
    "rssi": PersonalField(Category.SIGNAL, "the signal strength at the sensor (how near)"),
    "location": PersonalField(Category.LOCATION, "a position of the person"),
    "os": PersonalField(Category.DEVICE, "a device's operating system"),
    "manufacturer": PersonalField(Category.DEVICE, "a device's manufacturer"),
    "licence_plate": PersonalField(
        Category.VEHICLE, "a vehicle's registration plate", subject=True
    ),
    "face": PersonalField(Category.FACE, "a face, or a template made from one"),
    "image": PersonalField(Category.IMAGE, "an image or a video frame"),
    "biometric": PersonalField(
        Category.BIOMETRIC, "a biometric template (gait, voice, fingerprint)"
    ),
}

# What ``generalize`` turns a field into: the only generalizations citypipe makes.
GENERALIZABLE = {"location": "the zone of the registered device, never the position"}

# The personal fields each hub's payloads can carry, beyond device and network
# identifiers (which the edge drops for every source): the data subject's field first.
HUB_PERSONAL: dict[str, tuple[str, frozenset[str]]] = {
    "meraki": (
        "device_mac",
        frozenset({"device_mac", "ip_address", "ssid", "rssi", "location", "os", "manufacturer"}),
    ),
}

# The personal field a resident's opt-out names: a Wi-Fi or Bluetooth device address (an
# EUI-48), whose detections every edge drops (``service.optout``)
OPT_OUT_FIELD = "device_mac"
