"""The records of processing, generated from the city file, published with the open data.

Two documents, each as JSON and CSV, in ``open/<city>/register/``:

- the **transparency register** (for the public): each source — what it measures, where,
  why, whether personal data is involved, and the treatment in plain words;
- the **record of processing activities** (GDPR Article 30(1)): the controller and its
  data protection officer, the legal basis and the DPIA, the purposes, the categories of
  data subjects and of personal data, the recipients, transfers, the retention per zone,
  the safeguards (keyed pseudonyms and the life of their keys, the differential privacy
  of people counts per person and day), the data subjects' rights and where to complain
  (``statements``).

Both are a function of the city file alone: a change of policy changes them, nothing else
does. The catalogue lists them as a dataset; the portal shows the register.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from citypipe.core.disclosure import noise_of, treatment
from citypipe.core.publish.statements import statements
from citypipe.domain.city import SCALEWAY_REGIONS, Action, City, Source
from citypipe.domain.export_books import PublishedFile
from citypipe.domain.model import QUANTITY_UNITS, Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.personal import GENERALIZABLE, PERSONAL_FIELDS
from citypipe.domain.themes import theme_of
from citypipe.ports import Body, sha256_hex, size_of

REGISTER = "transparency-register"
RECORD = "records-of-processing"
SENSORS = "sensor-register"  # every sensor in public space (``core.publish.sensors``)
TITLES = {
    REGISTER: "Transparency register: every sensor source, what it measures and why",
    RECORD: "Record of processing activities (GDPR Article 30)",
    SENSORS: "Sensor register: every sensor in public space, where, whose, why and how",
}
RULES = {
    Action.DROP: "never read, never stored",
    Action.PSEUDONYMIZE: "replaced at the edge by a keyed pseudonym (HMAC-SHA-256) under the "
    "city's key of the day, derived from a daily secret destroyed after a few days",
    Action.GENERALIZE: "generalized",
    Action.REFUSE: "a reading carrying it is refused whole; its value is never stored",
}
ZONE_WORDS = {
    Zone.RAW: "pseudonymous readings as the edge wrote them (identifiers already replaced)",
    Zone.QUARANTINE: "the shape of rejected payloads (field names, types, lengths; never a "
    "value), with the reason",
    Zone.CLEAN: "readings, time generalized; pseudonyms only while their key lives",
    Zone.AGGREGATES: "per-sensor counts, sums and extremes of readings per 15-minute window; "
    "nothing about who was seen",
    Zone.OPEN: "the published open data: aggregates per zone and window, no personal data",
    Zone.AUDIT: "lineage, key destructions, pseudonym scrubs and the privacy (epsilon) ledger",
}


@dataclass(frozen=True)
class Register:
    """The published register: its rows (for the portal) and its files (for the catalogue)."""

    rows: list[dict[str, str]]
    files: list[PublishedFile]


def personal_rules(source: Source) -> str:
    """What a source does with each personal field, in words ("none": it touches none)."""
    rules = source.policy.personal
    if not rules:
        return "none"
    parts = []
    for name, action in rules.items():
        what = PERSONAL_FIELDS[name].what
        rule = RULES[action]
        if action is Action.GENERALIZE:
            rule = f"generalized to {GENERALIZABLE[name]}"
        parts.append(f"{name} ({what}): {rule}")
    return "; ".join(parts)


def _zones(city: City, source: str) -> list[str]:
    return sorted({d.zone for d in city.devices.values() if d.source == source})


def _quantities(city: City, source: str) -> list[str]:
    return sorted(
        spec.quantity
        for profile in city.registry.profiles.values()
        if profile.source == source
        for spec in profile.fields.values()
    )


def register_rows(city: City) -> list[dict[str, str]]:
    """One row per source, for anyone to read."""
    rows = []
    said = statements(city)
    for name, source in city.sources.items():
        quantities = sorted(set(_quantities(city, name)))
        privacy = treatment(city, quantities)
        devices = sum(1 for d in city.devices.values() if d.source == name)
        rows.append(
            {
                "source": name,
                "kind": source.kind,
                "measures": ", ".join(f"{q} ({QUANTITY_UNITS[q]})" for q in quantities),
                "where": f"{devices} devices in zones " + ", ".join(_zones(city, name)),
                "why": source.purpose,
                "personal_data": "yes" if source.policy.personal else "no",
                "personal_fields": personal_rules(source),
                "guarantee": privacy.resident or "",
                "legal_basis": said.legal_basis if said and source.policy.personal else "",
                "treatment": privacy.rule,
                "published_as": ", ".join(sorted({theme_of(q).slug for q in quantities})),
            }
        )
    return rows


def _retention(city: City) -> dict[str, str]:
    found = {}
    for zone in Zone:
        days = city.retention_days.get(zone)
        kept = "kept" if days is None else f"{days} days"
        found[zone.value] = f"{kept}: {ZONE_WORDS[zone]}"
    found["pseudonymization keys"] = (
        f"{city.key_retention_days} days (today and yesterday by default), then destroyed by the "
        "hourly job; that day's pseudonyms are then removed from the clean zone"
    )
    return found


def _roles(city: City) -> str:
    """Who may read what, as the cloud allows it."""
    if city.region in SCALEWAY_REGIONS:
        return (
            "on Scaleway every function holds the project's one Object Storage key (no "
            "per-function policy there): any of them could read the keys bucket, the "
            "release secret and the ledger"
        )
    return "a role per function: only ingest and export read the keys bucket"


def record_of_processing(city: City) -> dict[str, Any]:
    """The Article 30(1) record, from the city file."""
    personal = {n: s for n, s in city.sources.items() if s.policy.personal}
    noise = noise_of(city)
    settings = city.disclosure.noise
    said = statements(city)
    safeguards = [
        "device and network identifiers dropped at the edge, before anything is stored",
        "the data subject's identifier replaced at the edge by a keyed pseudonym (HMAC-SHA-256)"
        " under the city's key of the day: it links one device's readings within one day only,"
        " never two days",
        f"the daily secrets destroyed after {city.key_retention_days} days, every destruction "
        "recorded in the audit zone; a reading arriving later is refused",
        "clean rows of a day whose key is destroyed rewritten without pseudonyms; aggregates "
        "hold nothing about who was seen",
        f"people counts published with differential privacy per person and day: {noise.describe()};"
        f" a device counts in at most {settings.contributions_per_day} zone-windows a day; each "
        "people dataset's day is released once, at a time fixed in advance, charged to a "
        f"ledger in the audit zone before any file is written, ε = {settings.budget} per "
        "person-day at most",
        f"a people cell published only when its noisy figure reaches k = {city.disclosure.k}, "
        "flagged above what its sensors can hear; every window of every zone with a counter "
        "has a row, so what is withheld discloses no presence",
        "quarantine keeps a rejected payload's shape and reason only, never a value",
        "biometric data, faces and images never processed; payloads carrying an image refused",
        f"data kept in {city.region} (EU/EEA): any other region refused at deployment and start-up",
        "buckets encrypted, TLS only, private but for the open data; " + _roles(city),
    ]
    return {
        "record": "Record of processing activities (GDPR Article 30(1))",
        "controller": {
            "name": city.publisher.name,
            "contact": city.publisher.email,
            "url": city.publisher.url,
            "data_protection_officer": city.publisher.dpo_email or "",
        },
        "processing": f"{city.name} sensor data to anonymized open data (citypipe)",
        "lawfulness": {
            "legal_basis": "" if said is None else said.legal_basis,
            "dpia": "" if said is None else said.dpia,
            "supervisory_authority": "" if said is None else said.authority,
        },
        "purposes": {name: source.purpose for name, source in city.sources.items()},
        "data_subjects": {
            name: f"people within range of the {source.kind}" for name, source in personal.items()
        },
        "personal_data": {
            name: {
                field: {
                    "category": PERSONAL_FIELDS[field].category.value,
                    "what": PERSONAL_FIELDS[field].what,
                    "rule": action.value,
                }
                for field, action in source.policy.personal.items()
            }
            for name, source in personal.items()
        },
        "recipients": [
            "the public: anonymized aggregates per zone and 15-minute window (open data)",
            f"the cloud provider hosting the city's stack in {city.region}, as processor",
        ],
        "transfers_to_third_countries": "none",
        "retention": _retention(city),
        "safeguards": safeguards,
        "data_subject_rights": [] if said is None else list(said.rights),
        "privacy": {
            "k": city.disclosure.k,
            "key_retention_days": city.key_retention_days,
            "guarantee": "" if said is None else said.guarantee,
            "noise": {
                "mechanism": settings.mechanism,
                "unit_of_privacy": "one device over one UTC day, across every sensor, zone, "
                "window and release of that day",
                "contributions_per_day": settings.contributions_per_day,
                "epsilon_per_release": settings.epsilon,
                "delta_per_release": settings.delta,
                "epsilon_per_person_day": settings.budget,
            },
        },
    }


def _flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _flat(item, f"{prefix}{key}.")]
    if isinstance(value, list):
        return [(prefix.rstrip("."), str(item)) for item in value]
    return [(prefix.rstrip("."), "" if value is None else str(value))]


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def json_document(document: Any) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def register_documents(city: City) -> dict[str, tuple[bytes, str]]:
    """Key -> (bytes, media type) of the register and the record, JSON and CSV."""
    names = StackNames(city.slug)
    rows = register_rows(city)
    record = record_of_processing(city)
    columns = list(rows[0]) if rows else []
    return {
        names.register_key(REGISTER, "json"): (
            json_document({"city": city.name, "register": rows}),
            "application/json",
        ),
        names.register_key(REGISTER, "csv"): (
            csv_bytes(columns, [[r[c] for c in columns] for r in rows]),
            "text/csv",
        ),
        names.register_key(RECORD, "json"): (json_document(record), "application/json"),
        names.register_key(RECORD, "csv"): (
            csv_bytes(["item", "value"], _flat(record)),
            "text/csv",
        ),
    }


def register_of(city: City, documents: Mapping[str, tuple[Body, str]]) -> Register:
    """The published register, described: rows for the portal, files for the catalogue
    (``documents``: in memory, or in local files)."""
    files = [
        PublishedFile(
            format=key.rsplit(".", 1)[-1],
            key=key,
            media_type=media_type,
            bytes=size_of(body),
            sha256=sha256_hex(body),
        )
        for key, (body, media_type) in documents.items()
    ]
    return Register(register_rows(city), files)
