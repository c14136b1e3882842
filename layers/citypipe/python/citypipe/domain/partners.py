"""Partners: organisations whose sensors feed the city's datasets under the purposes they
permit (the Data Governance Act's data altruism and business-to-government sharing).

A partner says who it is, which sources are its own, the general-interest purposes its
data may serve (a closed vocabulary: the objectives of DGA Article 2(16), each a DPV
purpose), the licence of what is derived from it and how long the city may keep its
readings. Every dataset is published for purposes (``dataset_purposes`` in the city file,
else its theme's default): a partner's source may feed a dataset only when the partner
permits every purpose the dataset is published for, and the city publishes under the
partner's licence and keeps its readings no longer than it allows — each refused when the
city file is loaded (``partner_problems``), at its key (docs/partners.md).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from citypipe.domain.model import Zone
from citypipe.domain.problems import Finding

if TYPE_CHECKING:  # the city file declares partners (domain.city)
    from citypipe.domain.city import City

DPV = "https://w3id.org/dpv#"
# DGA Article 2(6): processing of non-personal data on the permission of the data holder
DGA_PERMISSION = "https://w3id.org/dpv/legal/eu/dga#A2-6-Permission"


class Purpose(StrEnum):
    """The objectives of general interest of DGA Article 2(16), a closed vocabulary."""

    HEALTH = "health"
    CLIMATE = "climate"
    MOBILITY = "mobility"
    OFFICIAL_STATISTICS = "official-statistics"
    PUBLIC_SERVICES = "public-services"
    POLICY_MAKING = "policy-making"
    RESEARCH = "research"

    @property
    def iri(self) -> str:
        """The DPV purpose it is (``dpv:PublicBenefit``'s children, research's)."""
        return DPV + _DPV_PURPOSES[self]

    @property
    def label(self) -> str:
        return _LABELS[self]


_DPV_PURPOSES = {
    Purpose.HEALTH: "ImproveHealthcare",
    Purpose.CLIMATE: "CombatClimateChange",
    Purpose.MOBILITY: "ImproveTransportMobility",
    Purpose.OFFICIAL_STATISTICS: "ProvideOfficialStatistics",
    Purpose.PUBLIC_SERVICES: "ImprovePublicServices",
    Purpose.POLICY_MAKING: "PublicPolicyMaking",
    Purpose.RESEARCH: "ScientificResearch",
}
_LABELS = {
    Purpose.HEALTH: "healthcare",
    Purpose.CLIMATE: "combating climate change",
    Purpose.MOBILITY: "improving mobility",
    Purpose.OFFICIAL_STATISTICS: "official statistics",
    Purpose.PUBLIC_SERVICES: "improving the provision of public services",
    Purpose.POLICY_MAKING: "public policy making",
    Purpose.RESEARCH: "scientific research in the general interest",
}

# What each theme's dataset is published for when the city file does not say
DEFAULT_PURPOSES: dict[str, tuple[Purpose, ...]] = {
    "air-quality": (Purpose.HEALTH,),
    "noise": (Purpose.HEALTH,),
    "traffic-flow": (Purpose.MOBILITY,),
    "parking": (Purpose.MOBILITY,),
    "people-counts": (Purpose.PUBLIC_SERVICES,),
    "energy": (Purpose.CLIMATE,),
}
PLAIN_PURPOSES = (Purpose.PUBLIC_SERVICES,)  # a theme citypipe has no default for

PARTNER_SLUG = r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$"


class Partner(BaseModel):
    """An organisation sharing its sensors' readings with the city, and on what terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="its legal name")
    identifier: str = Field(
        min_length=1,
        description="its legal identifier: an EUID, LEI or national business register number",
    )
    contact: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="who answers for it (e-mail)")
    url: str | None = None
    sources: list[str] = Field(min_length=1, description="the city's sources that are its own")
    purposes: list[Purpose] = Field(
        min_length=1, description="the general-interest purposes its data may serve"
    )
    licence: str = Field(description="the licence of what is published from its data")
    retention_days: int = Field(
        ge=1, description="the most days the city keeps its readings (clean and aggregates)"
    )
    agreed: date = Field(description="the day the partner gave its permission")


PartnerName = Annotated[str, Field(pattern=PARTNER_SLUG)]


def purposes_of(city: City, dataset: str) -> tuple[Purpose, ...]:
    """What a dataset is published for: the city file's word, else its theme's default."""
    declared = city.dataset_purposes.get(dataset)
    if declared:
        return tuple(declared)
    return DEFAULT_PURPOSES.get(dataset, PLAIN_PURPOSES)


def datasets_fed(city: City, source: str) -> list[str]:
    """The datasets a source's readings are published in (its profiles' quantities' themes)."""
    from citypipe.domain.themes import theme_of  # themes types its functions with City

    return sorted(
        {
            theme_of(spec.quantity).slug
            for profile in city.registry.profiles.values()
            if profile.source == source
            for spec in profile.fields.values()
        }
    )


def partner_of(city: City, source: str) -> str | None:
    """The partner whose source it is (None: the city's own)."""
    return next((n for n, p in city.partners.items() if source in p.sources), None)


def partner_problems(city: City) -> list[Finding]:
    """What refuses a city's partners: a source that is no source of the city or is two
    partners', a dataset a partner's source feeds for a purpose the partner did not permit,
    a licence other than the city's, a zone kept longer than the partner allows; and a
    purpose declared for a dataset no theme is called (a misspelt name)."""
    from citypipe.domain.themes import THEMES, themes_of

    # a city extending another inherits its purposes: a theme it does not publish is fine
    known = {t.slug for t in themes_of(city)} | {t.slug for t in THEMES}
    found = [
        Finding(
            ("dataset_purposes", dataset),
            f"no dataset is called {dataset} (the city's and citypipe's: {sorted(known)})",
            "correct its name, or remove it",
        )
        for dataset in city.dataset_purposes
        if dataset not in known
    ]
    owners: dict[str, str] = {}
    for name, partner in city.partners.items():
        found += _sources_problems(city, name, partner, owners)
        found += _terms_problems(city, name, partner)
    return found


def _sources_problems(
    city: City, name: str, partner: Partner, owners: dict[str, str]
) -> list[Finding]:
    found = []
    for i, source in enumerate(partner.sources):
        loc = ("partners", name, "sources", i)
        if source not in city.sources:
            found.append(
                Finding(loc, f"{source} is no source of the city ({sorted(city.sources)})",
                        "name one of the city's sources, or declare it under sources")
            )  # fmt: skip
        elif source in owners:
            found.append(
                Finding(loc, f"{source} is {owners[source]}'s already: a source has one owner",
                        "give each source to one partner")
            )  # fmt: skip
        else:
            owners[source] = name
            found += _purposes_problems(city, name, partner, source)
    return found


def _purposes_problems(city: City, name: str, partner: Partner, source: str) -> list[Finding]:
    permitted = set(partner.purposes)
    found = []
    for dataset in datasets_fed(city, source):
        missing = [p.value for p in purposes_of(city, dataset) if p not in permitted]
        if missing:
            found.append(
                Finding(
                    ("partners", name, "purposes"),
                    f"its source {source} feeds {dataset}, published for {missing}, which "
                    f"{name} does not permit ({sorted(p.value for p in permitted)})",
                    f"add {', '.join(missing)} only if {name} agrees; else map {source}'s "
                    f"fields to no quantity of {dataset}",
                )
            )
    return found


def _terms_problems(city: City, name: str, partner: Partner) -> list[Finding]:
    found = []
    if partner.licence.rstrip("/") != city.licence.rstrip("/"):
        found.append(
            Finding(
                ("partners", name, "licence"),
                f"what is derived from {name}'s data is published under {city.licence}, not "
                f"{partner.licence}",
                "agree the city's licence with the partner, or leave its sources out",
            )
        )
    for zone in (Zone.CLEAN, Zone.AGGREGATES):
        kept = city.retention_days.get(zone)
        if kept is None or kept > partner.retention_days:
            found.append(
                Finding(
                    ("partners", name, "retention_days"),
                    f"the city keeps {zone.value} {kept} days, longer than {name} allows "
                    f"({partner.retention_days})",
                    f"set retention_days.{zone.value} to at most {partner.retention_days}, or "
                    "agree a longer retention with the partner",
                )
            )
    return found
