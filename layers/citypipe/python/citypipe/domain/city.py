"""The city file: one YAML per city, validated by pydantic; errors name the bad key."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# ConfigError is the city's: callers import it from here (and city_files, from
# domain.cityfile: it reads YAML, which a deployed function never imports)
from citypipe.domain.cityjson import is_city_json, read_city_json
from citypipe.domain.geo import ZoneIndex
from citypipe.domain.model import QUANTITIES, Zone
from citypipe.domain.partners import Partner, PartnerName, Purpose, partner_problems
from citypipe.domain.personal import GENERALIZABLE, HUB_PERSONAL, PERSONAL_FIELDS, RED_LINES
from citypipe.domain.polling import Poll
from citypipe.domain.problems import ConfigError as ConfigError  # noqa: PLC0414
from citypipe.domain.problems import Finding, Refusals, validation_problems
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
    "sensor-community", "sensor-community-api", "telraam", "tts-v3",
)  # fmt: skip


# A source about people (one that pseudonymizes a data subject, or counts people) is kept at
# this many minutes at the finest, and at this when its policy says nothing: rows at the
# minute would say when each device passed a counter (docs/decisions/0080).
PEOPLE_RESOLUTION_MINUTES = 5


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(StrEnum):
    DROP = "drop"  # never read, never written
    PSEUDONYMIZE = "pseudonymize"  # keyed HMAC-SHA-256 under the city's key of the day
    GENERALIZE = "generalize"  # replaced by a coarser value (a location by the zone)
    REFUSE = "refuse"  # biometrics, images: the whole reading is refused


class PrivacyPolicy(Strict):
    """What the edge and anonymize do with a source's readings: a rule for every personal
    field the source can carry (``domain.personal``), the time resolution, the place."""

    personal: dict[str, Action] = Field(default_factory=dict)
    time_resolution_minutes: int = Field(
        default=1,
        ge=1,
        le=1440,
        description="minutes observation times are floored to: 1, 3, 5 or 15; a source about "
        f"people at least {PEOPLE_RESOLUTION_MINUTES} (and {PEOPLE_RESOLUTION_MINUTES} when "
        "left out), any other 1 when left out",
    )
    location: Literal["zone"] = "zone"

    @field_validator("personal")
    @classmethod
    def _rules(cls, value: dict[str, Action]) -> dict[str, Action]:
        found = [f for name, action in value.items() if (f := _rule_problem(name, action))]
        if sum(1 for a in value.values() if a is Action.PSEUDONYMIZE) > 1:
            found.append(
                Finding(
                    (),
                    "at most one personal field may be pseudonymized (the data subject)",
                    "pseudonymize the field that identifies the person counted; drop the others",
                )
            )
        if found:
            raise Refusals(found)
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


def _rule_problem(name: str, action: Action) -> Finding | None:
    """What is wrong with one rule of a privacy policy, if anything."""
    known = PERSONAL_FIELDS.get(name)
    if known is None:
        return Finding(
            (name,),
            f"not a personal field citypipe knows ({sorted(PERSONAL_FIELDS)})",
            "correct its spelling, or remove it",
        )
    if known.category in RED_LINES and action is not Action.REFUSE:
        return Finding(
            (name,),
            f"{known.category.value} is never processed (a red line): the only rule is refuse",
            f"write {name}: refuse",
        )
    if action is Action.PSEUDONYMIZE and not known.subject:
        return Finding(
            (name,),
            "identifies no data subject, so it is never pseudonymized",
            f"write {name}: drop",
        )
    if action is Action.GENERALIZE and name not in GENERALIZABLE:
        return Finding(
            (name,),
            f"citypipe generalizes {sorted(GENERALIZABLE)} only; drop or refuse it",
            f"write {name}: drop",
        )
    return None


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


class WebhookAuth(StrEnum):
    """How a source's hubs prove, on ``POST /ingest/{source}/{format}``, that they hold the
    source's token (docs/hubs.md, docs/decisions/0082)."""

    HEADER = "header"  # X-Citypipe-Token: <token>, or Authorization: Bearer <token>
    BASIC = "basic"  # Authorization: Basic, the token as the password (any user name)
    MERAKI = "meraki"  # the Scanning API's body "secret"; GET answers the validator


class Webhook(Strict):
    """A source's webhook: its authentication, and Meraki's validator where it has one."""

    auth: WebhookAuth = WebhookAuth.HEADER
    validator: str | None = Field(
        default=None,
        pattern=r"^[!-~]{1,128}$",
        description="meraki only: the network's validator, answered to Meraki's GET (it is "
        "no secret: anyone may GET it)",
    )

    @model_validator(mode="after")
    def _validator_for_meraki(self) -> Webhook:
        if (self.auth is WebhookAuth.MERAKI) != (self.validator is not None):
            raise ValueError(
                "a validator is given for auth: meraki, and only then (the Scanning API's "
                "validator, from Meraki's dashboard)"
            )
        return self


class LegalBasis(StrEnum):
    """The lawful basis of the processing (GDPR Article 6(1)) a city states."""

    PUBLIC_TASK = "public-task"  # (e): a task in the public interest or official authority
    LEGAL_OBLIGATION = "legal-obligation"  # (c)
    LEGITIMATE_INTERESTS = "legitimate-interests"  # (f): not for a public authority's tasks
    CONSENT = "consent"  # (a)


class Notice(Strict):
    """What the sensor register and the notice mounted next to each device say of a
    source's sensors beyond their purpose (``core.publish.sensors``): who owns and runs
    them, whom residents write to, the legal basis of this source's processing, and whether
    they stand in public space (only those are in the register)."""

    owner: str | None = Field(
        default=None, min_length=1, description="who owns and runs them (default: the publisher)"
    )
    contact: str | None = Field(
        default=None,
        min_length=3,
        description="whom residents write to about them (default: the publisher's email)",
    )
    legal_basis: LegalBasis | None = Field(
        default=None, description="this source's basis (default: processing.legal_basis)"
    )
    public_space: bool = True


class Source(Strict):
    """A family of sensors with one purpose and one privacy policy. Which devices belong to
    it, and what they measure, is the device registry's business (``registry``); where its
    hubs publish on a broker, ``mqtt`` (the MQTT bridge subscribes to those topics only);
    how its hubs authenticate on the webhook, ``webhook``; which hub APIs the city calls for
    its readings, ``poll`` (``domain.polling``)."""

    kind: str
    purpose: str
    policy: PrivacyPolicy = PrivacyPolicy()
    mqtt: list[MqttTopic] = Field(default_factory=list)
    webhook: Webhook = Webhook()
    poll: list[Poll] = Field(default_factory=list)
    notice: Notice = Notice()


@dataclass(frozen=True, slots=True)
class MqttRoute:
    """Where a message on an MQTT topic belongs: the source whose hubs publish there (a
    reading of another source's device is quarantined, ``wrong_source``), and its format."""

    topic: str  # the filter it matched
    source: str
    format: str


# The encodings a CSV drop may be in: UTF-8 (a byte-order mark before it, as Excel's "CSV
# UTF-8" writes, is ignored; ``utf-8-sig`` says the same), Windows-1252 (Excel's "CSV" in
# Western Europe) and ISO 8859-1.
CsvEncoding = Literal["utf-8", "utf-8-sig", "cp1252", "windows-1252", "latin-1", "iso-8859-1"]


class CsvMapping(Strict):
    """How a CSV drop is read: which column names the device (its registry id under hub
    ``csv``) and which the time (RFC 3339 with an offset); every other column is a field.
    Its separator (``delimiter``), quote character, decimal separator (a European Excel
    export: ``;``, ``"`` and ``,``) and encoding are the file's."""

    device: str
    time: str
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote: str = Field(default='"', min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    encoding: CsvEncoding = "utf-8"

    @model_validator(mode="after")
    def _distinct(self) -> CsvMapping:
        if {self.delimiter, self.quote} & {"\n", "\r"}:
            raise ValueError("a line break is neither the delimiter nor the quote")
        for name, char in (("quote", self.quote), ("decimal separator", self.decimal)):
            if char == self.delimiter:
                raise ValueError(f"the {name} {char!r} is the delimiter too")
        return self


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


# The most a city file may let one device's day cost, over every release of it: the red
# line (decision 0078). The strongest public deployments publish 1.68-2.64 a day.
RED_LINE_EPSILON = 3.0
RED_LINE_DELTA = 1e-5


class NoiseSettings(Strict):
    """Differential privacy for people counts (``core.people``, ``core.noise``): the unit is
    one device over one UTC day. A device counts in at most ``contributions_per_day`` cells
    of a day; one release of the day costs it ``epsilon`` (and ``delta``); ``budget`` is
    what its day may cost over every release (one per people dataset: a day is released
    once, decision 0078), at most the red line."""

    mechanism: Literal["laplace", "gaussian"] = "laplace"
    epsilon: float = Field(
        default=1.0,
        gt=0,
        le=RED_LINE_EPSILON,
        description="per release, per person-day: what one release of a day costs a device",
    )
    delta: float | None = Field(default=None, gt=0, le=RED_LINE_DELTA)
    budget: float = Field(
        default=2.0,
        gt=0,
        le=RED_LINE_EPSILON,
        description="ε per person-day, over every release of the day (at most the red line, "
        f"{RED_LINE_EPSILON})",
    )
    contributions_per_day: int = Field(
        default=10,
        strict=True,
        ge=1,
        le=96,
        description="the most 15-minute zone cells one device counts in a day; its other "
        "sightings that day are not counted (the sensitivity of the day's counts)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> NoiseSettings:
        if self.mechanism == "gaussian" and self.delta is None:
            raise ValueError(f"the gaussian mechanism needs a delta (at most {RED_LINE_DELTA})")
        if self.mechanism == "laplace" and self.delta is not None:
            raise ValueError("the laplace mechanism is pure ε-DP: no delta")
        if self.budget < self.epsilon:
            raise ValueError(f"budget {self.budget} is less than one release's ε {self.epsilon}")
        if self.delta is not None and self.delta * self.releases > RED_LINE_DELTA:
            raise ValueError(
                f"{self.releases} releases of δ = {self.delta} exceed the red line "
                f"δ = {RED_LINE_DELTA} per person-day"
            )
        return self

    @property
    def releases(self) -> int:
        """How many releases of a day the budget pays for."""
        return int(self.budget / self.epsilon + 1e-9)


class Disclosure(Strict):
    k: int = Field(
        default=10,
        ge=2,
        description="a people cell is published when its noisy count reaches k, else suppressed",
    )
    noise: NoiseSettings = Field(
        default_factory=NoiseSettings,
        description="differential privacy for published people counts (always on)",
    )


class Publisher(Strict):
    """The city's open data office: publisher of the data, controller of the processing."""

    name: str
    url: str
    email: str
    dpo_email: str | None = Field(
        default=None, description="the data protection officer, for the record of processing"
    )


class Dpia(Strict):
    """The data protection impact assessment (GDPR Article 35) the processing rests on."""

    reference: str = Field(min_length=1, description="its reference in the city's records")
    url: str | None = Field(default=None, description="where the public can read it")


class Authority(Strict):
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)


class Processing(Strict):
    """What the register, the record of processing, the catalogue and the portal state of
    the processing of personal data: its legal basis, its DPIA, and where to complain."""

    legal_basis: LegalBasis
    legal_basis_detail: str = Field(
        min_length=10, description="the law or public task the basis rests on, in words"
    )
    dpia: Dpia
    supervisory_authority: Authority


# Each zone's retention when the city file says nothing, and the most it may say (None: no
# bound — the open zone is the published open data). Why these numbers: docs/decisions/0080.
RETENTION_DEFAULTS: dict[Zone, int | None] = {
    Zone.RAW: 1,
    Zone.QUARANTINE: 7,
    Zone.CLEAN: 90,
    Zone.AGGREGATES: 730,
    Zone.OPEN: None,
    Zone.AUDIT: 1825,
}
RETENTION_BOUNDS: dict[Zone, int | None] = {
    Zone.RAW: 1,
    Zone.QUARANTINE: 30,
    Zone.CLEAN: 365,
    Zone.AGGREGATES: 3650,
    Zone.OPEN: None,
    Zone.AUDIT: 3650,
}
_KEPT_FOR = {  # why a zone's bound, in a refusal
    Zone.QUARANTINE: "long enough for operators to fix what was refused",
    Zone.CLEAN: "a year: one row per reading, for re-aggregation",
    Zone.AGGREGATES: "ten years of republishing",
    Zone.AUDIT: "ten years of accounting for the data",
}


def _retention_problems(days: dict[Zone, int | None]) -> list[Finding]:
    """What is wrong with the zones' retention: raw kept other than a day, a zone kept past
    its bound or forever (only open may be), audit kept less than what it accounts for."""
    found = []
    for zone, kept in days.items():
        bound, loc = RETENTION_BOUNDS[zone], ("retention_days", zone.value)
        if zone is Zone.RAW and kept != 1:
            found.append(
                Finding(
                    loc,
                    "raw personal data never outlives 24 h (1 day)",
                    "set retention_days.raw: 1",
                )
            )
        elif bound is not None and kept is None:
            found.append(
                Finding(
                    loc,
                    "only the open zone may be kept forever",
                    f"give {zone.value} a number of days, at most {bound} (its default: "
                    f"{RETENTION_DEFAULTS[zone]})",
                )
            )
        elif bound is not None and kept is not None and kept > bound:
            found.append(
                Finding(
                    loc,
                    f"{zone.value} is kept at most {bound} days ({_KEPT_FOR[zone]}; GDPR's "
                    f"storage limitation), not {kept}",
                    f"set retention_days.{zone.value}: {bound} or fewer (its default: "
                    f"{RETENTION_DEFAULTS[zone]})",
                )
            )
    return found or _audit_shorter(days)


def _audit_shorter(days: dict[Zone, int | None]) -> list[Finding]:
    """The audit zone kept less than another zone (open aside): its lineage records — the
    marker that makes each stage's effects happen once — and the ε ledger would go before
    the data they account for, and a redelivery or a re-release would act as if never done."""
    audit = days[Zone.AUDIT]
    longest = max(
        ((kept, zone) for zone, kept in days.items() if zone not in (Zone.AUDIT, Zone.OPEN)),
        key=lambda pair: pair[0] or 0,
    )
    if audit is None or longest[0] is None or audit >= longest[0]:
        return []
    kept, zone = longest
    return [
        Finding(
            ("retention_days", Zone.AUDIT.value),
            f"audit is kept {audit} days, less than {zone.value} ({kept}): the lineage that "
            "makes each effect happen once, and the ε ledger, must outlive the data they "
            "account for",
            f"set retention_days.audit to at least {kept}",
        )
    ]


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
    optout_url: str | None = Field(
        default=None,
        description="where the portal's opt-out form posts: the webhook server's /optout",
    )
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
    processing: Processing | None = Field(
        default=None,
        description="the legal basis, DPIA and supervisory authority (required where a source "
        "processes personal data)",
    )
    partners: dict[PartnerName, Partner] = Field(
        default_factory=dict,
        description="organisations whose sources the city takes in under their permission "
        "(docs/partners.md)",
    )
    dataset_purposes: dict[str, list[Purpose]] = Field(
        default_factory=dict,
        description="what each dataset is published for (the DGA's general-interest "
        "objectives); a dataset left out: its theme's default",
    )
    key_retention_days: int = Field(
        default=2,
        ge=1,
        le=31,
        description="days whose pseudonymization secrets are kept (today included); older "
        "ones are destroyed by the hourly job, so their pseudonyms can never be recomputed",
    )

    def first_living_day(self, today: date) -> date:
        """The first day whose secret still lives on ``today`` (``key_retention_days`` days,
        today included): the oldest day the edge accepts a reading of (older: ``too_old``),
        whose resends it still recognizes, and whose key the hourly job keeps."""
        return today - timedelta(days=self.key_retention_days - 1)

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
        merged = {**RETENTION_DEFAULTS, **self.retention_days}
        found = _retention_problems(merged)
        if found:
            raise Refusals(found)
        object.__setattr__(self, "retention_days", merged)
        return self

    @cached_property
    def zone_index(self) -> ZoneIndex:
        return ZoneIndex([(f.id, f.geometry.coordinates) for f in self.zones.features])

    @model_validator(mode="after")
    def _coherent(self) -> City:
        """What no key alone says: every personal field a source's hubs carry has a rule,
        the registry names this city's sources and zones, a topic routes one way. Every
        problem is listed, each at its key. (Overlapping zones are refused where a city is
        checked — ``citypipe check-city``, packaging — not at each function's start-up:
        ``city_checks``.) No policy switches off what protects the people a source counts
        (``_unprotected_people``); a source about people whose policy names no resolution is
        kept at ``PEOPLE_RESOLUTION_MINUTES``."""
        found = [
            *_policy_gaps(self),
            *_registry_misfits(self),
            *_ceilings_missing(self),
            *_people_counted_twice(self),
            *_releases_beyond_the_budget(self),
            *_accountability_missing(self),
            *_topic_clashes(self),
            *_unprotected_people(self),
            *_polls_astray(self),
            *partner_problems(self),
        ]
        if found:
            raise Refusals(found)
        object.__setattr__(self, "sources", _people_at_their_resolution(self))
        return self

    @cached_property
    def mqtt_routes(self) -> list[MqttRoute]:
        """Every declared MQTT topic filter, with its source and format."""
        return [
            MqttRoute(topic.topic, name, topic.format)
            for name, source in self.sources.items()
            for topic in source.mqtt
        ]

    @cached_property
    def identity(self) -> str:
        """The city's content as text that is the same in every process, for what is keyed
        by it (the metadata's builds): ``model_dump_json`` writes a set's members in the
        process's hash order, which differs from one container to the next. Made once a
        container (~0.24 CPU-s at x100's 34,000 devices; every metadata build names two
        parts by it); like ``devices``, a ``model_copy`` keeps it: build a changed city."""
        return json.dumps(_ordered(self.model_dump()), sort_keys=True, default=str)

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

    @cached_property
    def device_ceilings(self) -> dict[tuple[str, str], int]:
        """(zone, people quantity) -> the most distinct devices its sensors can hear in a
        window: the sum of their profiles' ``max_devices_per_window``. A window whose noisy
        count is above it holds invented subjects (or a broken sensor): flagged."""
        people = self.personal_quantities
        out: dict[tuple[str, str], int] = {}
        for device in self.registry.devices.values():
            profile = self.registry.profiles[device.profile]
            zone = device.zone or self.zone_index.zone_of(*device.at)  # type: ignore[misc]
            for spec in profile.fields.values():
                if spec.quantity in people and zone is not None:
                    key = (zone, spec.quantity)
                    out[key] = out.get(key, 0) + (profile.max_devices_per_window or 0)
        return out

    @cached_property
    def window_ceilings(self) -> dict[tuple[str, str], float]:
        """(sensor, quantity) -> the most one sensor can count in a 15-minute window: its
        field's ``max_per_window``, else the quantity's ``window_ceiling``; only quantities
        published as totals of counts have one. A sensor's window above it was gamed or is
        broken: its cell is flagged, never published."""
        out: dict[tuple[str, str], float] = {}
        for sensor, device in self.registry.devices.items():
            for spec in self.registry.profiles[device.profile].fields.values():
                ceiling = spec.max_per_window or QUANTITIES[spec.quantity].window_ceiling
                if ceiling is not None:
                    out[sensor, spec.quantity] = ceiling
        return out

    @property
    def personal_quantities(self) -> frozenset[str]:
        """Quantities about people, published under the k rule (and noise): every quantity
        that counts people, whatever any source's policy says, and every quantity of a
        source that pseudonymizes a data subject."""
        personal = {n for n, s in self.sources.items() if s.policy.subject_field is not None}
        return COUNTS_PEOPLE | frozenset(
            spec.quantity
            for profile in self.registry.profiles.values()
            if profile.source in personal
            for spec in profile.fields.values()
        )

    @property
    def personal_sources(self) -> frozenset[str]:
        """Sources about people: those that pseudonymize a data subject, and those that
        count people (which must: checked on load)."""
        subjects = {n for n, s in self.sources.items() if s.policy.subject_field is not None}
        return frozenset(subjects | set(_people_counted(self)))


def _policy_gaps(city: City) -> list[Finding]:
    """Personal fields a source's devices' hubs can carry that its policy has no rule for."""
    found = []
    for name, source in city.sources.items():
        hubs = sorted(
            {
                d.hub
                for d in city.registry.devices.values()
                if city.registry.profiles.get(d.profile) is not None
                and city.registry.profiles[d.profile].source == name
            }
        )
        for hub in hubs:
            fields = HUB_PERSONAL.get(hub, ("", frozenset()))[1]
            missing = sorted(fields - set(source.policy.personal))
            if missing:
                found.append(
                    Finding(
                        ("sources", name, "policy", "personal"),
                        f"its devices report through {hub}, whose payloads can carry "
                        f"{sorted(fields)}: {missing} have none",
                        f"give each a rule (drop | pseudonymize | generalize | refuse): "
                        f"{', '.join(missing)}",
                    )
                )
    return found


def _people_counted_twice(city: City) -> list[Finding]:
    """A quantity about people is counted from its sources' day pseudonyms (``core.people``):
    a source that measures it without one would have its readings counted as nobody."""
    about_people = city.personal_sources
    found = []
    for name, profile in sorted(city.registry.profiles.items()):
        if profile.source in about_people:
            continue
        for field, spec in profile.fields.items():
            if spec.quantity in city.personal_quantities:
                found.append(
                    Finding(
                        ("registry", "profiles", name, "fields", field),
                        f"{spec.quantity} is counted from the day pseudonyms of the sources "
                        f"about people, but {profile.source} has none: its readings would "
                        "count nobody",
                        "map this field to another quantity, or file the device under a "
                        "source that pseudonymizes the device counted",
                    )
                )
    return found


def _releases_beyond_the_budget(city: City) -> list[Finding]:
    """Each people dataset releases a day once, at ε each, from one budget per person-day
    (a phone seen by two datasets' sources is in both): the budget pays for all of them, or
    one would be refused every day — and two exports charging different datasets of a day
    at once could both pass the day's check (decision 0078)."""
    from citypipe.domain.themes import theme_of  # themes types its functions with City

    datasets = sorted({theme_of(q).slug for q in city.personal_quantities})
    noise = city.disclosure.noise
    if len(datasets) <= noise.releases:
        return []
    return [
        Finding(
            ("disclosure", "noise", "budget"),
            f"{len(datasets)} people datasets ({', '.join(datasets)}) release each day at "
            f"ε = {noise.epsilon}, but the budget {noise.budget} pays for {noise.releases}",
            f"lower epsilon to {noise.budget / len(datasets):g} or map the quantities "
            "about people to one dataset",
        )
    ]


def _accountability_missing(city: City) -> list[Finding]:
    """A city processing personal data states its legal basis, DPIA, supervisory authority
    and data protection officer: the register and the portal say them to residents."""
    if not any(source.policy.personal for source in city.sources.values()):
        return []
    found = []
    if city.processing is None:
        found.append(
            Finding(
                ("processing",),
                "a source processes personal data, but the legal basis, the DPIA and the "
                "supervisory authority are not stated",
                "add processing: {legal_basis: public-task, legal_basis_detail: <the law or "
                "task>, dpia: {reference: <ref>, url: <where to read it>}, "
                "supervisory_authority: {name: <name>, url: <url>}}",
            )
        )
    if city.publisher.dpo_email is None:
        found.append(
            Finding(
                ("publisher", "dpo_email"),
                "a source processes personal data, but no data protection officer is named",
                "set publisher.dpo_email: the address residents write to about their data",
            )
        )
    return found


def _ceilings_missing(city: City) -> list[Finding]:
    """Profiles counting people without a device ceiling: invented subjects could not be
    told from a crowd."""
    people = city.personal_quantities
    return [
        Finding(
            ("registry", "profiles", name, "max_devices_per_window"),
            "this model counts people, but how many devices one of them can hear in 15 "
            "minutes is not said",
            "set max_devices_per_window: the most distinct devices one sensor of this model "
            "can hear in a window (a zone's noisy count above its sensors' sum is flagged)",
        )
        for name, profile in city.registry.profiles.items()
        if profile.max_devices_per_window is None
        and any(spec.quantity in people for spec in profile.fields.values())
    ]


# quantities whose every reading is a person's device seen (``domain.model``)
COUNTS_PEOPLE = frozenset(name for name, quantity in QUANTITIES.items() if quantity.counts_people)
PSEUDONYMIZE_COUNTED = (
    "pseudonymize the field that identifies the device counted, e.g. device_mac: pseudonymize"
)


def _people_counted(city: City) -> dict[str, str]:
    """Sources that count people, each with what says so: a profile of its devices maps a
    quantity that counts people, or its devices report through a hub whose every reading is
    a person's device seen (a Meraki access point's), whatever quantity the profile names."""
    quantities: dict[str, dict[str, str]] = {}  # source -> quantity -> a profile mapping it
    for name, profile in sorted(city.registry.profiles.items()):
        for spec in profile.fields.values():
            if spec.quantity in COUNTS_PEOPLE:
                quantities.setdefault(profile.source, {}).setdefault(spec.quantity, name)
    hubs: dict[str, set[str]] = {}
    for device in city.registry.devices.values():
        used = city.registry.profiles.get(device.profile)
        if used is not None and device.hub in HUB_PERSONAL:
            hubs.setdefault(used.source, set()).add(device.hub)
    why = {
        source: f"counts people ({', '.join(sorted(found))} in profile "
        f"{', '.join(sorted(set(found.values())))})"
        for source, found in quantities.items()
    }
    for source, found_hubs in hubs.items():
        why.setdefault(
            source,
            f"counts people (its devices report through {', '.join(sorted(found_hubs))}: each "
            "reading is a person's device seen)",
        )
    return why


def _unprotected_people(city: City) -> list[Finding]:
    """What a policy may not switch off: a source that counts people pseudonymizes the
    field identifying the device counted (its counts rest on that device's pseudonym), and
    a source about people is kept at ``PEOPLE_RESOLUTION_MINUTES`` at the finest."""
    counted = _people_counted(city)
    found = []
    for name, why in sorted(counted.items()):
        source = city.sources.get(name)
        if source is None or source.policy.subject_field is not None:
            continue
        subject = [f for f in source.policy.personal if PERSONAL_FIELDS[f].subject]
        found.append(
            Finding(
                ("sources", name, "policy", "personal", *subject[:1]),
                f"{why} but pseudonymizes no field that identifies the device counted: no "
                "cell could be held to k devices, and one device's presence would be "
                "published exactly",
                PSEUDONYMIZE_COUNTED,
            )
        )
    for name in sorted(city.personal_sources & set(city.sources)):
        policy = city.sources[name].policy
        minutes = policy.time_resolution_minutes
        if "time_resolution_minutes" in policy.model_fields_set and (
            minutes < PEOPLE_RESOLUTION_MINUTES
        ):
            found.append(
                Finding(
                    ("sources", name, "policy", "time_resolution_minutes"),
                    f"a source about people is kept at {PEOPLE_RESOLUTION_MINUTES} minutes at "
                    f"the finest: at {minutes}, its rows would say to the minute when each "
                    "device passed",
                    f"set time_resolution_minutes: {PEOPLE_RESOLUTION_MINUTES} (or 15), or "
                    f"leave it out ({PEOPLE_RESOLUTION_MINUTES})",
                )
            )
    return found


def _people_at_their_resolution(city: City) -> dict[str, Source]:
    """The sources, each about people whose policy names no resolution given
    ``PEOPLE_RESOLUTION_MINUTES`` (written out: a dump of the city says it)."""
    sources = dict(city.sources)
    for name in city.personal_sources & set(sources):
        policy = sources[name].policy
        if "time_resolution_minutes" not in policy.model_fields_set:
            resolved = policy.model_copy(
                update={"time_resolution_minutes": PEOPLE_RESOLUTION_MINUTES}
            )
            sources[name] = sources[name].model_copy(update={"policy": resolved})
    return sources


def _registry_misfits(city: City) -> list[Finding]:
    """What the registry names that the city does not have; devices placed in no zone."""
    found = registry_problems(city.registry, set(city.sources), set(city.zone_index.ids))
    for name, device in city.registry.devices.items():
        if device.at is not None and city.zone_index.zone_of(*device.at) is None:
            found.append(
                Finding(
                    ("devices", name, "at"),
                    f"{list(device.at)} is in no zone",
                    "correct the position ([longitude, latitude]), or give the device a zone",
                )
            )
    return [Finding(("registry", *f.loc), f.message, f.fix) for f in found]


def _polls_astray(city: City) -> list[Finding]:
    """A source polling one API twice (each device would be fetched twice). (A poll none of
    whose devices is registered polls nothing: a warning, ``city_checks``.)"""
    return [
        Finding(("sources", name, "poll", i, "api"), f"{poll.api.value} twice", "poll an API once")
        for name, source in city.sources.items()
        for i, poll in enumerate(source.poll)
        if any(p.api == poll.api for p in source.poll[:i])
    ]


def _topic_clashes(city: City) -> list[Finding]:
    """Two declared filters of different sources or formats matching one topic: a message
    on it could not be routed."""
    declared = [
        (("sources", name, "mqtt", i), MqttRoute(topic.topic, name, topic.format))
        for name, source in city.sources.items()
        for i, topic in enumerate(source.mqtt)
    ]
    found = []
    for i, (_, first) in enumerate(declared):
        for loc, second in declared[i + 1 :]:
            same_use = (first.source, first.format) == (second.source, second.format)
            crossing = not same_use and overlap(first.topic, second.topic)
            if first.topic == second.topic or crossing:
                found.append(
                    Finding(
                        (*loc, "topic"),
                        f"{first.topic!r} ({first.source}, {first.format}) and "
                        f"{second.topic!r} ({second.source}, {second.format}) match the same "
                        "topics",
                        "make the filters disjoint: one topic, one source and format",
                    )
                )
    return found


def parse_city(data: Any, origin: str = "<city>") -> City:
    """A city from its data (read already); problems are named by key, in ``origin``."""
    try:
        return City.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, lambda loc: (origin, None, loc))
        raise ConfigError(problems, origin) from None


def _ordered(value: Any) -> Any:
    """``value`` with every set a sorted list, in dicts and lists alike."""
    if isinstance(value, dict):
        return {key: _ordered(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_ordered(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_ordered(item) for item in value)
    return value


def load_city(path: str | Path) -> City:
    """The city of a city file (and the files it names). Every problem is a ``ConfigError``
    of ``Problem``s, each at its file and line; ``str()`` of it is one line.

    A ``.json`` city is what a package ships (``domain.cityjson``: the YAML checked and
    merged): read with the standard library's ``json``, validated as the YAML's data is,
    its problems named by key; PyYAML is imported only when a YAML file is read."""
    path = Path(path)
    if is_city_json(path):
        return parse_city(read_city_json(path), str(path))
    from citypipe.domain.cityfile import CityMap, read_city

    data = read_city(path)
    try:
        return City.model_validate(data)
    except ValidationError as exc:
        # only now are the files composed again, to find each bad key's line
        raise ConfigError(validation_problems(exc, CityMap(path).locate), str(path)) from None


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


# Where a cloud's endpoint keeps data: Scaleway's Object Storage (s3.<region>.scw.cloud) and
# Queues (sqs.mnq.<region>.scaleway.com), AWS's regional endpoints.
_ENDPOINT_REGIONS = (
    re.compile(r"(?:^|\.)s3\.(?P<region>[a-z]{2}-[a-z]{3})\.scw\.cloud$"),
    re.compile(r"(?:^|\.)sqs\.mnq\.(?P<region>[a-z]{2}-[a-z]{3})\.scaleway\.com$"),
    re.compile(r"(?:^|\.)[a-z0-9-]+[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com$"),
)
LOCAL_HOSTS = frozenset({"localhost", "localhost.localstack.cloud"})


def _is_local(host: str) -> bool:
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_endpoint_region(city: City, url: str, where: str, *, local: bool) -> None:
    """Refuse an endpoint that keeps data anywhere but in the city's region: a cloud's
    endpoint says its region in its host name; this machine's (an emulator) is no region;
    any other host is refused in a cloud deployment (``local`` False), whose data would
    go where no one can tell."""
    host = (urlsplit(url).hostname or "").lower()
    for pattern in _ENDPOINT_REGIONS:
        if found := pattern.search(host):
            require_region(city, found["region"], f"{where}: endpoint {host}")
            return
    if not _is_local(host) and not local:
        raise ResidencyError(
            f"{where}: endpoint {host or url!r} names no region; citypipe knows where "
            "Scaleway's (s3.<region>.scw.cloud, sqs.mnq.<region>.scaleway.com) and AWS's "
            f"endpoints keep data, and {city.slug} is kept in {city.region!r}"
        )
