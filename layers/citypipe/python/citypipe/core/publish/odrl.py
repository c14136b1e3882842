"""A partner's permission record: a W3C ODRL 2.2 policy (JSON-LD), and the same terms
printed for people (Markdown), published beside the catalogue at
``open/<city>/partners/<partner>.{jsonld,md}``.

The policy is an ``odrl:Agreement``: the partner (assigner) permits the city (assignee) to
aggregate and anonymize the readings of its sources (the target, an asset collection) and
to distribute what is derived, each for the purposes it permits only (a constraint
``odrl:purpose isAnyOf`` the DPV purposes), with the duty to delete its readings within
the retention it allows (``odrl:elapsedTime``). Its legal basis is DGA Article 2(6), the
data holder's permission; what is derived is published under the licence it agreed.
"""

from __future__ import annotations

from typing import Any

from citypipe.core.publish.jsontext import json_bytes
from citypipe.domain.city import City
from citypipe.domain.naming import StackNames
from citypipe.domain.partners import DGA_PERMISSION, DPV, Partner, datasets_fed

ODRL = "http://www.w3.org/ns/odrl/2/"
CONTEXT = {
    "odrl": ODRL,
    "dct": "http://purl.org/dc/terms/",
    "dpv": DPV,
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
# what the city does with a partner's readings, under its permission
ACTIONS = ("aggregate", "anonymize", "distribute")


def policy_key(city: City, partner: str, ext: str = "jsonld") -> str:
    """``open/<city>/partners/<partner>.<ext>``."""
    return f"{StackNames(city.slug).open_prefix()}partners/{partner}.{ext}"


def policy_iri(city: City, partner: str) -> str:
    """The policy's identifier: where its JSON-LD is published."""
    return f"{city.portal_url.rstrip('/')}/{policy_key(city, partner)}"


def data_iri(city: City, partner: str) -> str:
    """The partner's readings as an asset: its permission record's target."""
    return f"{policy_iri(city, partner)}#data"


def partner_iri(city: City, partner: str) -> str:
    return f"{policy_iri(city, partner)}#partner"


def policy(city: City, name: str) -> dict[str, Any]:
    """The partner's ODRL 2.2 Agreement, as JSON-LD with an inline context."""
    partner = city.partners[name]
    purposes = {
        "odrl:leftOperand": {"@id": "odrl:purpose"},
        "odrl:operator": {"@id": "odrl:isAnyOf"},
        "odrl:rightOperand": [{"@id": p.iri} for p in partner.purposes],
    }
    retention = {
        "@type": "odrl:Duty",
        "odrl:action": {"@id": "odrl:delete"},
        "odrl:constraint": {
            "odrl:leftOperand": {"@id": "odrl:elapsedTime"},
            "odrl:operator": {"@id": "odrl:lteq"},
            "odrl:rightOperand": {"@value": f"P{partner.retention_days}D", "@type": "xsd:duration"},
        },
    }
    permissions = [
        {
            "@type": "odrl:Permission",
            "odrl:target": {"@id": data_iri(city, name)},
            "odrl:action": {"@id": f"odrl:{action}"},
            "odrl:constraint": purposes,
            **({"odrl:duty": retention} if action == "aggregate" else {}),
        }
        for action in ACTIONS
    ]
    return {
        "@context": CONTEXT,
        "@id": policy_iri(city, name),
        "@type": "odrl:Agreement",
        "odrl:uid": {"@id": policy_iri(city, name)},
        "odrl:profile": {"@id": ODRL},
        "dct:title": f"{partner.name} shares its readings with {city.name}",
        "dct:issued": {"@value": partner.agreed.isoformat(), "@type": "xsd:date"},
        "dct:license": {"@id": partner.licence},
        "dpv:hasLegalBasis": {"@id": DGA_PERMISSION},
        "odrl:assigner": _party(partner_iri(city, name), partner.name, partner.contact, partner),
        "odrl:assignee": _party(
            city.publisher.url, city.publisher.name, city.publisher.email, None
        ),
        "odrl:target": {
            "@id": data_iri(city, name),
            "@type": "odrl:AssetCollection",
            "dct:description": f"The readings of {', '.join(partner.sources)}",
        },
        "odrl:permission": permissions,
    }


def _party(iri: str, name: str, email: str, partner: Partner | None) -> dict[str, Any]:
    party: dict[str, Any] = {
        "@id": iri,
        "@type": ["odrl:Party", "vcard:Organization"],
        "vcard:fn": name,
        "vcard:hasEmail": {"@id": f"mailto:{email}"},
    }
    if partner is not None:
        party["dct:identifier"] = partner.identifier
        if partner.url:
            party["vcard:hasURL"] = {"@id": partner.url}
    return party


def policy_text(city: City, name: str) -> str:
    """The same permission, printed: one page a person can read and sign (Markdown)."""
    partner = city.partners[name]
    datasets = sorted({d for s in partner.sources for d in datasets_fed(city, s)})
    lines = [
        f"# {partner.name} shares its readings with {city.name}",
        "",
        f"- **Partner**: {partner.name}, {partner.identifier}, {partner.contact}"
        + (f", {partner.url}" if partner.url else ""),
        f"- **City**: {city.publisher.name}, {city.publisher.email}",
        f"- **Agreed on**: {partner.agreed.isoformat()}",
        f"- **Its sources**: {', '.join(partner.sources)}",
        f"- **Published in**: {', '.join(datasets)}",
        "- **Purposes it permits** (Data Governance Act, Article 2(16)):",
        *(f"  - {p.label} ({p.value}, {p.iri})" for p in partner.purposes),
        f"- **Licence of what is published from it**: {partner.licence}",
        f"- **Kept**: its readings at most {partner.retention_days} days (clean and aggregate "
        "zones); the published open data is kept under the licence",
        "- **Legal basis**: the data holder's permission, DGA Article 2(6)",
        f"- **Withdrawal**: at any time, by writing to {city.publisher.email}: its sources "
        "are refused from then on, its readings deleted, and every published day that "
        "held them is published again without them",
        "",
        f"Machine-readable (W3C ODRL 2.2): {policy_iri(city, name)}",
        "",
    ]
    return "\n".join(lines)


def provenance_of(city: City, dataset: str) -> list[tuple[str, str]]:
    """The partners whose sources feed a dataset: (partner, its policy's IRI)."""
    return [
        (name, policy_iri(city, name))
        for name, partner in sorted(city.partners.items())
        if any(dataset in datasets_fed(city, s) for s in partner.sources)
    ]


def policy_files(city: City) -> dict[str, tuple[bytes, str]]:
    """Every partner's permission record, machine-readable and printable, by open key."""
    files = {}
    for name in sorted(city.partners):
        files[policy_key(city, name)] = (json_bytes(policy(city, name)), "application/ld+json")
        files[policy_key(city, name, "md")] = (
            policy_text(city, name).encode(),
            "text/markdown; charset=utf-8",
        )
    return files
