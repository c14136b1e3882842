"""The device registry: every device a city accepts readings from, by the id its hub gives it.

A device is resolved by ``(hub, id)`` — never by a pattern — to the sensor name citypipe
publishes, its source, its zone (from a fixed position or a named zone: the position a
payload claims never overrides it) and its profile: how the fields its hub decodes map to
controlled quantities, in which unit, within which plausible range.

Hubs (namespaces of device ids) and what their id is:

- ``lorawan``: the DevEUI (TTS v3, ChirpStack v3/v4, AWS IoT Core for LoRaWAN), 16 hex digits
- ``senml``: the device part of a SenML name (``bn`` + ``n`` before the last ``/`` or ``:``)
- ``ngsi-ld``: the entity id (``urn:ngsi-ld:Device:...``)
- ``sensor-community``: the chip id (``esp8266id``, or the ``X-Sensor`` header's digits)
- ``sensor-community-api``: a sensor's API id (one per sensor of a station: its SDS011 and
  its BME280 have two), as the Sensor.Community API names it — not the chip id
- ``meraki``: the access point's MAC (Scanning API v2 ``apMac``, v3 ``nearestApMac``)
- ``aws-iot``: the MQTT topic an IoT rule received a device's JSON on
- ``telraam``: the road segment id
- ``csv``: the value of a drop's device column
- ``canonical``: citypipe's own ``sensor`` field
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from citypipe.domain.model import QUANTITIES
from citypipe.domain.problems import Finding, Refusals

HUBS = (
    "lorawan", "senml", "ngsi-ld", "sensor-community", "sensor-community-api", "meraki",
    "aws-iot", "telraam", "csv", "canonical",
)  # fmt: skip
SENSOR_NAME = r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$"

_HEX = re.compile(r"[^0-9a-f]")
_GLOB = re.compile(r"[*?\[]")


def normalize_id(hub: str, ident: str) -> str:
    """The registry's spelling of a hub's device id: DevEUIs and MACs are case- and
    separator-insensitive, a chip id is its digits (``esp8266-123`` is ``123``)."""
    text = ident.strip()
    if hub in ("lorawan", "meraki"):
        return _HEX.sub("", text.lower())
    if hub == "sensor-community":
        return text.rsplit("-", 1)[-1]
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """How one decoded field becomes a reading of a controlled quantity."""

    quantity: str
    unit: str | None = Field(
        default=None,
        description="the unit the hub names, where a payload names one (SenML u, NGSI-LD "
        "unitCode); default: the quantity's UCUM unit",
    )
    scale: float | None = Field(default=None, description="multiply by this to get the UCUM unit")
    range: tuple[float, float] | None = Field(
        default=None, description="plausible [low, high] in the UCUM unit; default: the quantity's"
    )
    max_per_window: float | None = Field(
        default=None,
        gt=0,
        description="the most one device of this model can count in a 15-minute window (a "
        "count published as a total); default: the quantity's ceiling. A device's window "
        "above it is flagged, never published",
    )

    @model_validator(mode="after")
    def _known(self) -> FieldSpec:
        known = QUANTITIES.get(self.quantity)
        if known is None:
            raise ValueError(f"unknown quantity {self.quantity!r}; known: {sorted(QUANTITIES)}")
        if self.range is not None:
            low, high = self.range
            if not (known.low <= low <= high <= known.high):
                raise ValueError(
                    f"range {list(self.range)} must lie within {self.quantity}'s plausible "
                    f"[{known.low:g}, {known.high:g}]"
                )
        if self.max_per_window is not None and known.window_ceiling is None:
            raise ValueError(f"{self.quantity} is no count: it has no ceiling per window")
        return self


class Profile(_Strict):
    """A device model as the city runs it: its source, the hubs it reports through, and
    what its fields mean."""

    source: str
    kind: str
    hubs: frozenset[str] | None = Field(
        default=None,
        min_length=1,
        description="the hubs devices of this model report through (a device registered "
        "under it with another hub is refused); none declared: any hub, with a warning",
    )
    fields: dict[str, FieldSpec] = Field(min_length=1)
    ignore: frozenset[str] = Field(
        default=frozenset(),
        description="fields this model sends that are not readings (battery, counters, flags); "
        "globs allowed (car_speed_hist_*)",
    )
    max_devices_per_window: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="the most distinct devices one sensor of this model can hear in 15 "
        "minutes (required where it counts people): a zone's noisy count above its sensors' "
        "sum is flagged, never published",
    )

    @field_validator("hubs")
    @classmethod
    def _known_hubs(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        unknown = sorted((value or frozenset()) - set(HUBS))
        if unknown:
            raise ValueError(f"unknown hubs {unknown}; each is one of {list(HUBS)}")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> Profile:
        both = sorted(f for f in self.fields if any(fnmatch.fnmatchcase(f, p) for p in self.ignore))
        if both:
            raise ValueError(f"fields {both} are both read and ignored")
        quantities = [spec.quantity for spec in self.fields.values()]
        twice = sorted({q for q in quantities if quantities.count(q) > 1})
        if twice:
            raise ValueError(f"one field per quantity: {twice} mapped twice")
        return self


class Device(_Strict):
    profile: str
    hub: str
    id: str = Field(min_length=1, max_length=256)
    at: tuple[float, float] | None = Field(default=None, description="fixed [lon, lat]")
    zone: str | None = None

    @field_validator("hub")
    @classmethod
    def _hub(cls, value: str) -> str:
        if value not in HUBS:
            raise ValueError(f"unknown hub {value!r}; one of {list(HUBS)}")
        return value

    @model_validator(mode="after")
    def _placed(self) -> Device:
        if (self.at is None) == (self.zone is None):
            raise ValueError(
                "a device has a fixed position (at: [lon, lat]) or a zone, one of them"
            )
        return self


class Registry(_Strict):
    profiles: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], Profile] = Field(
        min_length=1
    )
    devices: dict[Annotated[str, Field(pattern=SENSOR_NAME)], Device] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        found = [*self._unknown_profiles(), *self._foreign_hubs(), *self._shared_ids()]
        if found:
            raise Refusals(found)
        return self

    def field_names(self) -> frozenset[str]:
        """Every field name the profiles declare: read (and each part of a nested one,
        ``wind`` and ``speed`` of ``wind.speed``) or ignored by name (a glob names none).
        Names the city wrote itself: a quarantined payload's shape may keep them."""
        names: set[str] = set()
        for profile in self.profiles.values():
            for name in profile.fields:
                names.update((name, *name.split(".")))
            names.update(n for n in profile.ignore if not _GLOB.search(n))
        return frozenset(names)

    def _unknown_profiles(self) -> list[Finding]:
        return [
            Finding(
                ("devices", name, "profile"),
                f"unknown profile {device.profile!r}",
                f"one of {sorted(self.profiles)}, or add the profile",
            )
            for name, device in self.devices.items()
            if device.profile not in self.profiles
        ]

    def _foreign_hubs(self) -> list[Finding]:
        """Devices reporting through a hub their profile does not declare."""
        found = []
        for name, device in self.devices.items():
            hubs = self.profiles[device.profile].hubs if device.profile in self.profiles else None
            if hubs is not None and device.hub not in hubs:
                found.append(
                    Finding(
                        ("devices", name, "hub"),
                        f"{device.hub} is not a hub of profile {device.profile} ({sorted(hubs)})",
                        f"register it under a profile for {device.hub}, or add {device.hub} "
                        f"to profiles.{device.profile}.hubs",
                    )
                )
        return found

    def _shared_ids(self) -> list[Finding]:
        found = []
        seen: dict[tuple[str, str], str] = {}
        for name, device in self.devices.items():
            key = (device.hub, normalize_id(device.hub, device.id))
            if key in seen:
                found.append(
                    Finding(
                        ("devices", name, "id"),
                        f"devices {seen[key]!r} and {name!r} share {device.hub} id {device.id!r}",
                        "give each device the id its hub gives it; a device is registered once",
                    )
                )
            seen.setdefault(key, name)
        return found


# How a device's field is read: (quantity, UCUM unit, hub unit or None, scale or None, low,
# high) — a tuple: the edge looks one up for each of ~750,000 readings a city day.
Plan = tuple[str, str, str | None, float | None, float, float]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A registered device as the edge uses it: what it publishes as, where, and how."""

    sensor: str
    source: str
    zone: str
    ignored: frozenset[str]  # fields this model sends that are not readings, by name
    ignore: re.Pattern[str]  # ... and by glob (a third of a day's readings are ignored:
    # most by name, a set's look-up rather than a regular expression's)
    plan: dict[str, Plan]  # per field


def resolved(sensor: str, device: Device, profile: Profile, zone: str) -> Resolved:
    plan = {}
    for name, spec in profile.fields.items():
        quantity = QUANTITIES[spec.quantity]
        low, high = spec.range or (quantity.low, quantity.high)
        plan[name] = (spec.quantity, quantity.unit, spec.unit, spec.scale, low, high)
    names = frozenset(p for p in profile.ignore if not _GLOB.search(p))
    globs = sorted(profile.ignore - names)
    ignore = re.compile("|".join(fnmatch.translate(p) for p in globs) or "(?!)")
    return Resolved(sensor, profile.source, zone, names, ignore, plan)


def registry_problems(registry: Registry, sources: set[str], zone_ids: set[str]) -> list[Finding]:
    """What the registry names that the city does not have (checked by the city model), at
    keys of the registry."""
    found = [
        Finding(
            ("profiles", name, "source"),
            f"unknown source {p.source!r}",
            f"one of {sorted(sources)}, or declare the source in the city file",
        )
        for name, p in registry.profiles.items()
        if p.source not in sources
    ]
    found += [
        Finding(
            ("devices", name, "zone"),
            f"unknown zone {d.zone!r}",
            f"one of {sorted(zone_ids)}, or a position (at: [longitude, latitude])",
        )
        for name, d in registry.devices.items()
        if d.zone is not None and d.zone not in zone_ids
    ]
    return found
