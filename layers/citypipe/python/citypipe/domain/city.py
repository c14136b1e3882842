"""The city file: one YAML per city, validated by pydantic; errors name the bad key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from citypipe.domain.geo import ZoneIndex
from citypipe.domain.model import Zone
from citypipe.domain.personal import GENERALIZABLE, HUB_PERSONAL, PERSONAL_FIELDS, RED_LINES
from citypipe.domain.registry import Registry, Resolved, normalize_id, registry_problems, resolved
from citypipe.domain.topics import filter_problem, matches, overlap

SCALEWAY_REGIONS = frozenset({"fr-par", "nl-ams", "pl-waw"})  # Paris, Amsterdam, Warsaw
# Regions a city stack may be deployed to: EU/EEA only (data residency is a guard, not a
# hope). London (eu-west-2) and Zurich (eu-central-2) are outside the EU/EEA (covered by
# adequacy decisions, which can be withdrawn): refused.
EU_REGIONS = frozenset(
    {
        # AWS: Frankfurt, Ireland, Paris, Milan, Spain, Stockholm
        "eu-central-1", "eu-west-1", "eu-west-3", "eu-south-1", "eu-south-2", "eu-north-1",
    }
) | SCALEWAY_REGIONS  # fmt: skip

SLUG = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
# The hub formats a hub may push or publish (core.formats holds their adapters; a unit test
# keeps the two lists equal: the domain imports no core). CSV is a drop, never a message.
MESSAGE_FORMATS = (
    "aws-iot", "canonical", "chirpstack-v3", "chirpstack-v4", "meraki", "ngsi-ld", "senml",
    "sensor-community", "telraam", "tts-v3",
)  # fmt: skip


class ConfigError(ValueError):
    """A city file that cannot be used. The message names the file and the bad keys."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(StrEnum):
    DROP = "drop"  # never read, never written
    PSEUDONYMIZE = "pseudonymize"  # keyed HMAC-SHA-256, per sensor and 15-minute window
    GENERALIZE = "generalize"  # replaced by a coarser value (a location by the zone)
    REFUSE = "refuse"  # biometrics, images: the whole reading is refused


class PrivacyPolicy(Strict):
    """What the edge and anonymize do with a source's readings: a rule for every personal
    field the source can carry (``domain.personal``), the time resolution, the place."""

    personal: dict[str, Action] = Field(default_factory=dict)
    time_resolution_minutes: int = Field(default=1, ge=1, le=1440)
    location: Literal["zone"] = "zone"

    @field_validator("personal")
    @classmethod
    def _rules(cls, value: dict[str, Action]) -> dict[str, Action]:
        problems = []
        for name, action in value.items():
            known = PERSONAL_FIELDS.get(name)
            if known is None:
                problems.append(
                    f"{name}: not a personal field citypipe knows ({sorted(PERSONAL_FIELDS)})"
                )
            elif known.category in RED_LINES and action is not Action.REFUSE:
                problems.append(
                    f"{name}: {known.category.value} is never processed (a red line): "
                    "the only rule is refuse"
                )
            elif action is Action.PSEUDONYMIZE and not known.subject:
                problems.append(f"{name}: identifies no data subject, so it is never pseudonymized")
            elif action is Action.GENERALIZE and name not in GENERALIZABLE:
                problems.append(
                    f"{name}: citypipe generalizes {sorted(GENERALIZABLE)} only; drop or refuse it"
                )
        if sum(1 for a in value.values() if a is Action.PSEUDONYMIZE) > 1:
            problems.append("at most one personal field may be pseudonymized (the data subject)")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("time_resolution_minutes")
    @classmethod
    def _divides_window(cls, value: int) -> int:
        if 15 % value:
            raise ValueError("must divide the 15-minute aggregation window: 1, 3, 5 or 15")
        return value

    @property
    def subject_field(self) -> str | None:
        return next((f for f, a in self.personal.items() if a is Action.PSEUDONYMIZE), None)


class MqttTopic(Strict):
    """Messages a source's hubs publish on an MQTT broker: a topic filter, and the hub format
    of every message on it (TTS v3 ``v3/{app}@{tenant}/devices/+/up``, ChirpStack v4
    ``application/{id}/device/+/event/up``, a plain topic per sensor family)."""

    topic: str = Field(description="an MQTT topic filter (+ for one level, # for the rest)")
    format: str = Field(description="the hub format of the messages on it")

    @field_validator("topic")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        problem = filter_problem(value)
        if problem is not None:
            raise ValueError(f"not an MQTT topic filter: {problem}")
        return value

    @field_validator("format")
    @classmethod
    def _message_format(cls, value: str) -> str:
        if value not in MESSAGE_FORMATS:
            raise ValueError(f"unknown format {value!r}; one of {list(MESSAGE_FORMATS)}")
        return value


class Source(Strict):
    """A family of sensors with one purpose and one privacy policy. Which devices belong to
    it, and what they measure, is the device registry's business (``registry``); where its
    hubs publish on a broker, ``mqtt`` (the MQTT bridge subscribes to those topics only)."""

    kind: str
    purpose: str
    policy: PrivacyPolicy = PrivacyPolicy()
    mqtt: list[MqttTopic] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MqttRoute:
    """Where a message on an MQTT topic belongs: the source whose hubs publish there (a
    reading of another source's device is quarantined, ``wrong_source``), and its format."""

    topic: str  # the filter it matched
    source: str
    format: str


class CsvMapping(Strict):
    """How a CSV drop's columns are read: which names the device (its registry id under hub
    ``csv``) and which the time (RFC 3339 with an offset); every other column is a field."""

    device: str
    time: str
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class Polygon(Strict):
    type: Literal["Polygon"]
    coordinates: list[list[tuple[float, float]]]

    @field_validator("coordinates")
    @classmethod
    def _closed(cls, rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for ring in rings:
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise ValueError("each ring needs at least 4 positions, first equal to last")
        return rings


class ZoneFeature(Strict):
    type: Literal["Feature"]
    id: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    properties: dict[str, Any] = Field(default_factory=dict)
    geometry: Polygon


class ZoneCollection(Strict):
    type: Literal["FeatureCollection"]
    features: list[ZoneFeature] = Field(min_length=1)


class NoiseSettings(Strict):
    """Differential privacy for people counts (``core.noise``): the mechanism, the ε (and
    δ) one release of a day costs each of its sensors, and what a sensor-day may spend over
    every release of it (the first publication and each re-release after late data)."""

    mechanism: Literal["laplace", "gaussian"]
    epsilon: float = Field(
        gt=0,
        le=10,
        description="per release; the unit of privacy is one device's presence in one "
        "15-minute window at one sensor",
    )
    delta: float | None = Field(default=None, gt=0, le=1e-3)
    budget: float = Field(gt=0, le=100, description="ε per sensor-day, over every release")

    @model_validator(mode="after")
    def _consistent(self) -> NoiseSettings:
        if self.mechanism == "gaussian" and self.delta is None:
            raise ValueError("the gaussian mechanism needs a delta (at most 1e-3)")
        if self.mechanism == "laplace" and self.delta is not None:
            raise ValueError("the laplace mechanism is pure ε-DP: no delta")
        if self.budget < self.epsilon:
            raise ValueError(f"budget {self.budget} is less than one release's ε {self.epsilon}")
        return self


class Disclosure(Strict):
    k: int = Field(default=10, ge=2)
    noise: NoiseSettings | None = Field(
        default=None, description="noise added to published people counts (none: exact)"
    )


class Publisher(Strict):
    """The city's open data office: publisher of the data, controller of the processing."""

    name: str
    url: str
    email: str
    dpo_email: str | None = Field(
        default=None, description="the data protection officer, for the record of processing"
    )


class City(Strict):
    slug: Annotated[
        str,
        Field(pattern=SLUG, description="the city's short name: in every bucket, queue and key"),
    ]
    name: str
    region: str
    licence: str = "https://creativecommons.org/licenses/by/4.0/"
    publisher: Publisher
    portal_url: str = Field(description="public base URL of the open zone")
    zones: ZoneCollection
    sources: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], Source] = Field(min_length=1)
    registry: Registry = Field(
        description="every device readings are accepted from (inline, or a YAML file name "
        "relative to the city file)"
    )
    csv: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], CsvMapping] = Field(
        default_factory=dict,
        description="column mappings of CSV drops, by name: inbox/<city>/csv/<name>/<file>.csv",
    )
    # S3 lifecycle expirations are whole days, at least one; None keeps objects forever.
    retention_days: dict[Zone, Annotated[int, Field(ge=1)] | None] = Field(default_factory=dict)
    disclosure: Disclosure = Disclosure()
    key_retention_days: int = Field(
        default=2,
        ge=1,
        le=31,
        description="days whose pseudonymization secrets are kept (today included); older "
        "ones are destroyed by the hourly job, so their pseudonyms can never be recomputed",
    )

    @field_validator("region")
    @classmethod
    def _eu_only(cls, value: str) -> str:
        if value not in EU_REGIONS:
            raise ValueError(
                f"region {value!r} is outside the EU/EEA; a city stack stays in one of "
                f"{sorted(EU_REGIONS)}"
            )
        return value

    @model_validator(mode="after")
    def _defaults(self) -> City:
        defaults: dict[Zone, int | None] = {
            Zone.RAW: 1,
            Zone.QUARANTINE: 7,
            Zone.CLEAN: 90,
            Zone.AGGREGATES: 730,
            Zone.OPEN: None,
            Zone.AUDIT: 1825,
        }
        merged = {**defaults, **self.retention_days}
        raw_days = merged[Zone.RAW]
        if raw_days is None or raw_days > 1:
            raise ValueError("retention_days.raw: raw personal data never outlives 24 h (1 day)")
        forever = sorted(
            z.value for z, days in merged.items() if days is None and z is not Zone.OPEN
        )
        if forever:
            raise ValueError(
                f"retention_days: only the open zone may be kept forever, not {forever}"
            )
        object.__setattr__(self, "retention_days", merged)
        return self

    @cached_property
    def zone_index(self) -> ZoneIndex:
        return ZoneIndex([(f.id, f.geometry.coordinates) for f in self.zones.features])

    @model_validator(mode="after")
    def _policies_complete(self) -> City:
        """Every personal field a source's devices' hubs can carry has a rule."""
        problems = []
        for name, source in self.sources.items():
            hubs = sorted(
                {
                    d.hub
                    for d in self.registry.devices.values()
                    if self.registry.profiles.get(d.profile) is not None
                    and self.registry.profiles[d.profile].source == name
                }
            )
            for hub in hubs:
                fields = HUB_PERSONAL.get(hub, ("", frozenset()))[1]
                missing = sorted(fields - set(source.policy.personal))
                if missing:
                    problems.append(
                        f"sources.{name}.policy.personal: its devices report through {hub}, "
                        f"whose payloads can carry {sorted(fields)}; give each a rule (drop | "
                        f"pseudonymize | generalize | refuse): {missing} have none"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _registry_fits(self) -> City:
        problems = registry_problems(self.registry, set(self.sources), set(self.zone_index.ids))
        for name, device in self.registry.devices.items():
            if device.at is not None and self.zone_index.zone_of(*device.at) is None:
                problems.append(f"devices.{name}.at: {list(device.at)} is in no zone")
        if problems:
            raise ValueError("registry: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _topics_route_one_way(self) -> City:
        """A topic matched by two declared filters of different sources or formats could
        not be routed: refused."""
        problems = []
        routes = self.mqtt_routes
        for i, first in enumerate(routes):
            for second in routes[i + 1 :]:
                same_use = (first.source, first.format) == (second.source, second.format)
                crossing = not same_use and overlap(first.topic, second.topic)
                if first.topic == second.topic or crossing:
                    problems.append(
                        f"{first.topic!r} ({first.source}, {first.format}) and {second.topic!r} "
                        f"({second.source}, {second.format}) match the same topics"
                    )
        if problems:
            raise ValueError("mqtt: " + "; ".join(problems))
        return self

    @cached_property
    def mqtt_routes(self) -> list[MqttRoute]:
        """Every declared MQTT topic filter, with its source and format."""
        return [
            MqttRoute(topic.topic, name, topic.format)
            for name, source in self.sources.items()
            for topic in source.mqtt
        ]

    def route(self, topic: str) -> MqttRoute | None:
        """The declared filter a message's topic matches (at most one: checked on load)."""
        return next((r for r in self.mqtt_routes if matches(r.topic, topic)), None)

    @cached_property
    def devices(self) -> dict[tuple[str, str], Resolved]:
        """Registered devices by (hub, normalized hub id)."""
        out: dict[tuple[str, str], Resolved] = {}
        for name, device in self.registry.devices.items():
            zone = device.zone or self.zone_index.zone_of(*device.at)  # type: ignore[misc]
            assert zone is not None  # checked by _registry_fits
            profile = self.registry.profiles[device.profile]
            out[device.hub, normalize_id(device.hub, device.id)] = resolved(
                name, device, profile, zone
            )
        return out

    def device(self, hub: str, ident: str) -> Resolved | None:
        """The registered device a hub calls ``ident``, or None."""
        return self.devices.get((hub, normalize_id(hub, ident)))

    @cached_property
    def declared_quantities(self) -> frozenset[str]:
        """Every quantity a registered device's profile measures."""
        return frozenset(
            spec.quantity
            for profile in self.registry.profiles.values()
            for spec in profile.fields.values()
        )

    @cached_property
    def zones_measuring(self) -> dict[str, frozenset[str]]:
        """Quantity -> the zones with a registered device measuring it: the zones of a
        published day's complete grid (a fact of the registry, not of the data)."""
        found: dict[str, set[str]] = {}
        for device in self.devices.values():
            for quantity, *_ in device.plan.values():
                found.setdefault(quantity, set()).add(device.zone)
        return {q: frozenset(zones) for q, zones in found.items()}

    @property
    def personal_quantities(self) -> frozenset[str]:
        """Quantities that count people: their sources pseudonymize a data subject."""
        personal = {n for n, s in self.sources.items() if s.policy.subject_field is not None}
        return frozenset(
            spec.quantity
            for profile in self.registry.profiles.values()
            if profile.source in personal
            for spec in profile.fields.values()
        )


def parse_city(data: Any, origin: str = "<city>") -> City:
    try:
        return City.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from None


# libyaml's safe loader where PyYAML's wheel has it (it does on Linux): a registry of
# hundreds of devices loads in a tenth of the time, at every cold start
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A city file's mapping; ``extends: <file>`` (relative to it) takes every top-level key
    of that file that this one does not set — one city, two clouds, two short files. A
    ``registry`` given as a file name is read relative to the file that names it."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: extends itself through {[str(p) for p in seen]}")
    data = _yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a city file is a mapping of keys")
    if isinstance(data.get("registry"), str):
        data["registry"] = _yaml(path.parent / data["registry"])
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends: the path of another city file")
    return {**_read(path.parent / base, (*seen, path.resolve())), **data}


def city_files(path: str | Path) -> list[Path]:
    """Every file a city file is read from: itself, the registry it names, and those of
    the file it extends — what a deployment must ship beside the code."""
    path = Path(path)
    data = _yaml(path)
    found = [path]
    if isinstance(data, dict) and isinstance(data.get("registry"), str):
        found.append(path.parent / data["registry"])
    if isinstance(data, dict) and isinstance(data.get("extends"), str):
        found += city_files(path.parent / data["extends"])
    return found


def load_city(path: str | Path) -> City:
    path = Path(path)
    return parse_city(_read(path), str(path))


# --- data residency --------------------------------------------------------------------


class ResidencyError(ConfigError):
    """A stack about to run, or be deployed, outside its city's region."""


def require_region(city: City, region: str | None, where: str) -> None:
    """Refuse to work in any region but the city's (itself EU/EEA: checked on load).

    ``region`` is where the clients or the deployment will go; ``where`` says who asked
    (function start-up, packaging), for the message.
    """
    if region is None:
        raise ResidencyError(
            f"{where}: no region configured; the city file says {city.region!r} "
            "(set AWS_REGION, or CITYPIPE_BACKEND__REGION)"
        )
    if region != city.region:
        raise ResidencyError(
            f"{where}: region {region!r} is not the city's: {city.slug} is kept in "
            f"{city.region!r} (its city file's region)"
        )
