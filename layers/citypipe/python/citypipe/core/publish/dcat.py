"""The DCAT-AP 3.0.1 catalogue of the open zone, as JSON-LD with an inline context (no
network needed to read it); ``core.publish.turtle`` writes the same graph as Turtle.

One dataset per theme, one distribution per published day and format, each with its
byte size and SHA-256, licence, media type and EU file type. Themes that qualify as
High-Value Datasets (environment, mobility) carry the HVD regulation and category on the
dataset and its distributions (DCAT-AP HVD 3.0.0). Every dataset states its privacy
treatment; a day published again with late data adds a version note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citypipe.core.api import CONFORMANCE as API_CONFORMANCE
from citypipe.core.api import ROOT as API_ROOT
from citypipe.core.disclosure import PrivacyTreatment, treatment
from citypipe.core.publish.odrl import data_iri, provenance_of
from citypipe.core.publish.register import TITLES, Register
from citypipe.core.publish.statements import statements
from citypipe.core.publish.tables import published_quantities
from citypipe.domain.city import City
from citypipe.domain.export_books import Publication, PublishedFile
from citypipe.domain.naming import StackNames, public_address
from citypipe.domain.partners import datasets_fed, partner_of
from citypipe.domain.themes import (
    HVD_ENVIRONMENT,
    HVD_METEOROLOGICAL,
    HVD_MOBILITY,
    HVD_REGULATION,
    OpenFormat,
    SmartDataModel,
    Theme,
)

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "adms": "http://www.w3.org/ns/adms#",
    "spdx": "http://spdx.org/rdf/terms#",
    "eli": "http://data.europa.eu/eli/ontology#",
    "r5r": "http://data.europa.eu/r5r/",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "hydra": "http://www.w3.org/ns/hydra/core#",
    "prov": "http://www.w3.org/ns/prov#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
}
EU = "http://publications.europa.eu/resource/authority/"
IANA = "http://www.iana.org/assignments/media-types/"
SDM_SPEC = "https://smart-data-models.github.io/"
# The SPDX checksum algorithm, written out: a harvester matching the IRI finds it as is.
SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
# Days whose distributions the catalogue itself lists, per theme: older ones are on the
# catalogue's month pages (Hydra paging), so its size is bounded whatever the days.
WINDOW_DAYS = 31


@dataclass(frozen=True)
class FormatInfo:
    label: str
    media_type: str  # IANA
    file_type: str  # EU file-type authority code
    description: str


FORMATS = {
    OpenFormat.CSV: FormatInfo(
        "CSV", "text/csv", "CSV",
        "One row per zone, quantity and 15-minute window; the columns are described in the "
        "data package (datapackage.json).",
    ),
    OpenFormat.PARQUET: FormatInfo(
        "Parquet", "application/vnd.apache.parquet", "PARQUET",
        "The same rows, typed, Hive-partitioned by date= for DuckDB, Athena or Trino.",
    ),
    OpenFormat.GEOJSON: FormatInfo(
        "GeoJSON", "application/geo+json", "GEOJSON",
        "The zones, each with the latest published value of every quantity and the day's "
        "summary.",
    ),
    OpenFormat.NGSI_LD: FormatInfo(
        "NGSI-LD", "application/ld+json", "JSON_LD",
        "NGSI-LD entities (key-values) of the FIWARE Smart Data Model, ready for a broker's "
        "batch upsert.",
    ),
    OpenFormat.RDF: FormatInfo(
        "RDF", "text/turtle", "RDF_TURTLE",
        "The published figures as RDF: a W3C SOSA/SSN observation and ETSI SAREF measurement "
        "per zone, quantity and window, its zone a SAREF4CITY district.",
    ),
}  # fmt: skip


# Labels of the EU vocabularies' concepts used (a skos:Concept needs its prefLabel).
LABELS = {
    f"{EU}data-theme/ENVI": "Environment",
    f"{EU}data-theme/TRAN": "Transport",
    f"{EU}data-theme/SOCI": "Population and society",
    f"{EU}data-theme/ENER": "Energy",
    f"{EU}data-theme/TECH": "Science and technology",
    f"{EU}data-theme/GOVE": "Government and public sector",
    HVD_ENVIRONMENT: "Earth observation and environment",
    HVD_MOBILITY: "Mobility",
    HVD_METEOROLOGICAL: "Meteorological",
    f"{EU}planned-availability/STABLE": "Stable",
    "http://purl.org/adms/publishertype/LocalAuthority": "Local Authority",
    "http://purl.org/adms/licencetype/Attribution": "Attribution",
    "http://purl.org/adms/licencetype/PublicDomain": "Public domain",
}
LICENCE_TYPES = {
    "https://creativecommons.org/licenses/by/4.0/": "Attribution",
    "https://creativecommons.org/publicdomain/zero/1.0/": "PublicDomain",
}


# Licences at least as open as CC BY 4.0, which the HVD regulation requires (Art. 4(3)).
HVD_LICENCES = frozenset(
    {
        "https://creativecommons.org/licenses/by/4.0/",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    }
)


def high_value(city: City, theme: Theme) -> bool:
    """Tagged as a High-Value Dataset: its category qualifies and the city's licence is
    open enough; with a more restrictive licence the tag would be a false claim."""
    licence = city.licence if city.licence.endswith("/") else f"{city.licence}/"
    return theme.hvd_category is not None and licence.replace("http://", "https://") in (
        HVD_LICENCES
    )


def _concept(iri: str) -> dict[str, Any]:
    return _ref(iri, "skos:Concept") | {"skos:prefLabel": _text(LABELS[iri])}


def public_url(city: City, key: str) -> str:
    return public_address(city.portal_url, key)


def _text(value: str) -> dict[str, str]:
    return {"@value": value, "@language": "en"}


def _typed(value: str, datatype: str) -> dict[str, str]:
    return {"@value": value, "@type": datatype}


def _ref(iri: str, kind: str) -> dict[str, Any]:
    return {"@id": iri, "@type": kind}


def _period(start: str, end: str) -> dict[str, Any]:
    return {
        "@type": "dct:PeriodOfTime",
        "dcat:startDate": _typed(start, "xsd:date"),
        "dcat:endDate": _typed(end, "xsd:date"),
    }


def describe_treatment(privacy: PrivacyTreatment) -> str:
    """The privacy treatment in one paragraph, the guarantee in a resident's words first:
    every dataset's description ends with it."""
    if privacy.resident:
        return f"Privacy: {privacy.resident} How: {privacy.rule}"
    return f"Privacy: {privacy.rule}"


def describe_lawfulness(city: City, privacy: PrivacyTreatment) -> str:
    """A people dataset's legal basis, DPIA, data protection officer and supervisory
    authority, in a few sentences ("" for a dataset that counts nobody)."""
    said = statements(city)
    if not privacy.personal or said is None:
        return ""
    return f" Legal basis: {said.legal_basis} {said.dpia} {said.dpo} {said.authority}"


def _distribution(
    city: City, theme: Theme, day: str, version: int, file: PublishedFile
) -> dict[str, Any]:
    fmt = OpenFormat(file.format)
    info = FORMATS[fmt]
    url = public_url(city, file.key)
    title = f"{theme.title}, {day} ({info.label})"
    if version > 1:
        title += f", version {version}"
    found: dict[str, Any] = {
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": _text(title),
        "dct:description": _text(info.description),
        "dcat:accessURL": _ref(url, "rdfs:Resource"),
        "dcat:downloadURL": _ref(url, "rdfs:Resource"),
        "dcat:mediaType": _ref(f"{IANA}{info.media_type}", "dct:MediaType"),
        "dct:format": _ref(f"{EU}file-type/{info.file_type}", "dct:MediaTypeOrExtent"),
        "dct:license": _licence(city),
        "dcat:byteSize": _typed(str(file.bytes), "xsd:nonNegativeInteger"),
        "spdx:checksum": {
            "@type": "spdx:Checksum",
            "spdx:algorithm": _ref(SHA256, "spdx:ChecksumAlgorithm"),
            "spdx:checksumValue": _typed(file.sha256, "xsd:hexBinary"),
        },
        "dct:temporal": _period(day, day),
        "dcat:temporalResolution": _typed("PT15M", "xsd:duration"),
        "r5r:availability": _concept(f"{EU}planned-availability/STABLE"),
    }
    found.update(_distribution_policy(city, theme))
    if fmt is OpenFormat.NGSI_LD and theme.models:
        found["dct:conformsTo"] = [
            _ref(f"{SDM_SPEC}{_sdm_domain(m)}/{m.type}/schema.json", "dct:Standard")
            for m in theme.models
        ]
    if high_value(city, theme):
        found["r5r:applicableLegislation"] = _ref(HVD_REGULATION, "eli:LegalResource")
    return found


def models_named(theme: Theme) -> str:
    """``Smart Data Model AirQualityObserved``, or ``Smart Data Models A and B``."""
    types = [m.type for m in theme.models]
    return f"Smart Data Model{'s' if len(types) > 1 else ''} {' and '.join(types)}"


def _sdm_domain(model: SmartDataModel) -> str:
    """The model's subject (``dataModel.Weather``), named in its context's URL."""
    return next(part for part in model.context.split("/") if part.startswith("dataModel."))


def _publisher(city: City) -> dict[str, Any]:
    return _ref(city.publisher.url, "foaf:Agent") | {
        "foaf:name": city.publisher.name,
        "dct:type": _concept("http://purl.org/adms/publishertype/LocalAuthority"),
    }


def _spatial(city: City) -> dict[str, Any]:
    """The city's zones' bounding box, as a WKT polygon (lon lat, CRS84)."""
    points = [p for f in city.zones.features for ring in f.geometry.coordinates for p in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    ring = f"{west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}"
    centre = f"POINT({round((west + east) / 2, 6)} {round((south + north) / 2, 6)})"
    return {
        "@type": "dct:Location",
        "dcat:bbox": _typed(f"POLYGON(({ring}))", "gsp:wktLiteral"),
        "dcat:centroid": _typed(centre, "gsp:wktLiteral"),
    }


def _licence(city: City) -> dict[str, Any]:
    licence = _ref(city.licence, "dct:LicenseDocument")
    kind = LICENCE_TYPES.get(city.licence)
    if kind is not None:
        licence["dct:type"] = _concept(f"http://purl.org/adms/licencetype/{kind}")
    return licence


def dataset_uri(city: City, dataset: str) -> str:
    """A dataset's URI, which is also its page's address in the open zone."""
    return public_url(city, StackNames(city.slug).dataset_page_key(dataset))


def _dataset(
    city: City,
    theme: Theme,
    publications: Sequence[Publication],
    listed: Sequence[Publication],
) -> dict[str, Any]:
    """A theme's dataset: its period over every day published (``publications``), the
    distributions and version notes of the days ``listed`` only."""
    publisher = _publisher(city)
    privacy = treatment(city, published_quantities(city, theme, publications))
    days = sorted(p.day for p in publications)
    found: dict[str, Any] = {
        "@id": dataset_uri(city, theme.slug),
        "@type": "dcat:Dataset",
        "dct:identifier": f"{city.slug}/{theme.slug}",
        "dct:title": _text(f"{city.name}: {theme.title.lower()} per zone and 15 minutes"),
        "dct:description": _text(
            f"{theme.description} One row per zone, quantity and 15-minute window (UTC) with "
            + (
                "the distinct devices seen, with differential-privacy noise,"
                if privacy.personal
                else "the count, sum, min, max and mean of the readings in UCUM units,"
            )
            + " or the reason the cell is not published. Daily files in CSV, Parquet "
            "(partitioned by date), GeoJSON of the zones with the latest values and the day's "
            "summary"
            + (", and NGSI-LD entities of the FIWARE " + models_named(theme) if theme.model else "")
            + f". {describe_treatment(privacy)}"
            + describe_lawfulness(city, privacy)
        ),
        "dct:publisher": publisher,
        "dcat:contactPoint": {
            "@type": ["vcard:Kind", "vcard:Organization"],
            "vcard:fn": city.publisher.name,
            "vcard:hasEmail": _ref(f"mailto:{city.publisher.email}", "rdfs:Resource"),
        },
        "dcat:keyword": [_text(k) for k in (*theme.keywords, city.name)],
        "dcat:theme": _concept(f"{EU}data-theme/{theme.data_theme}"),
        "dct:accrualPeriodicity": _ref(f"{EU}frequency/DAILY", "dct:Frequency"),
        "dcat:temporalResolution": _typed("PT15M", "xsd:duration"),
        "foaf:page": _ref(dataset_uri(city, theme.slug), "foaf:Document"),
        "dct:temporal": _period(days[0], days[-1]) if days else None,
        "dct:spatial": _spatial(city),
        "dcat:distribution": [
            _distribution(city, theme, p.day, p.version, f)
            for p in sorted(listed, key=lambda p: p.day)
            for f in p.files
        ],
    }
    notes = [
        f"{p.day} version {n.version}: {n.note}."
        for p in sorted(listed, key=lambda p: p.day)
        for n in p.history
        if n.version > 1
    ]
    found.update(_provenance(city, theme))
    if notes:
        found["adms:versionNotes"] = _text(" ".join(notes))
    if high_value(city, theme) and theme.hvd_category is not None:
        found["r5r:applicableLegislation"] = _ref(HVD_REGULATION, "eli:LegalResource")
        found["r5r:hvdCategory"] = _concept(theme.hvd_category)
    return found


def _by_theme(publications: Sequence[Publication]) -> dict[str, list[Publication]]:
    found: dict[str, list[Publication]] = {}
    for publication in sorted(publications, key=lambda p: p.day):
        found.setdefault(publication.theme, []).append(publication)
    return found


def recent(publications: Sequence[Publication]) -> list[Publication]:
    """A theme's last ``WINDOW_DAYS`` published days (``publications``: in day order)."""
    return list(publications[-WINDOW_DAYS:])


def months_of(publications: Sequence[Publication]) -> list[str]:
    """The months (``YYYY-MM``) with a published day, latest first: the catalogue's pages
    after its first."""
    return sorted({p.day[:7] for p in publications}, reverse=True)


def catalogue(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> dict[str, Any]:
    """The catalogue: every theme with at least one published day, and the distributions
    of its last ``WINDOW_DAYS`` days; the first page of a Hydra paging whose next pages
    are the months (``catalogue_pages``). ``register``: the transparency register and the
    record of processing, listed as a dataset of their own."""
    by_theme = _by_theme(publications)
    listed = {theme: recent(found) for theme, found in by_theme.items()}
    document = _catalogue(city, themes, by_theme, listed, register)
    document["hydra:view"] = _page_view(city, None, months_of(publications))
    return document


def catalogue_pages(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> dict[str, dict[str, Any]]:
    """Key -> document of each month's page: the catalogue with the distributions of that
    month's days, each page bounded by a month whatever the number of months."""
    by_theme = _by_theme(publications)
    months = months_of(publications)
    names = StackNames(city.slug)
    pages = {}
    for month in months:
        listed = {t: [p for p in found if p.day[:7] == month] for t, found in by_theme.items()}
        document = _catalogue(city, themes, by_theme, listed, register)
        document["hydra:view"] = _page_view(city, month, months)
        pages[names.catalog_page_key(month)] = document
    return pages


def _page_view(city: City, month: str | None, months: Sequence[str]) -> dict[str, Any]:
    """Where a page stands in the paging: the first page is the catalogue itself (the last
    days), then a page per month, latest first; ``month`` None: the first page."""
    names = StackNames(city.slug)

    def page(month: str | None) -> dict[str, str]:
        key = names.catalog_key() if month is None else names.catalog_page_key(month)
        return {"@id": public_url(city, key)}

    order: list[str | None] = [None, *months]
    here = order.index(month)
    view: dict[str, Any] = page(month) | {
        "@type": "hydra:PartialCollectionView",
        "hydra:first": page(None),
        "hydra:last": page(order[-1]),
    }
    if here > 0:
        view["hydra:previous"] = page(order[here - 1])
    if here + 1 < len(order):
        view["hydra:next"] = page(order[here + 1])
    return view


def _catalogue(
    city: City,
    themes: Sequence[Theme],
    by_theme: dict[str, list[Publication]],
    listed: dict[str, list[Publication]],
    register: Register | None,
) -> dict[str, Any]:
    base = city.portal_url.rstrip("/")
    days = sorted({p.day for found in by_theme.values() for p in found})
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": f"{base}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _text(f"{city.name} open sensor data"),
        "dct:description": _text(
            f"Anonymized, aggregated readings of {city.name}'s public sensors, published by "
            "citypipe. Personal data is pseudonymized within minutes and never published."
        ),
        "dct:publisher": _publisher(city),
        "dct:license": _licence(city),
        "dct:spatial": _spatial(city),
        "dcat:themeTaxonomy": _ref(f"{EU}data-theme", "skos:ConceptScheme")
        | {"dct:title": _text("Data theme")},
        "foaf:homepage": _ref(f"{base}/{StackNames(city.slug).portal_key()}", "foaf:Document"),
        "dct:language": _ref(f"{EU}language/ENG", "dct:LinguisticSystem"),
        # the days of the data, not the clock: the catalogue stays a function of its records
        "dct:issued": _typed(days[0], "xsd:date") if days else None,
        "dct:modified": _typed(days[-1], "xsd:date") if days else None,
        "dcat:dataset": [
            _dataset(city, theme, by_theme[theme.slug], listed[theme.slug])
            for theme in themes
            if theme.slug in by_theme
        ],
    }
    if register is not None:
        document["dcat:dataset"].append(_register_dataset(city, register, days))
    return document


def _policy_ref(iri: str) -> dict[str, Any]:
    return {"@id": iri, "@type": ["odrl:Policy", "odrl:Agreement"]}


def _provenance(city: City, theme: Theme) -> dict[str, Any]:
    """Where a dataset comes from: the readings of every source feeding it
    (``prov:wasDerivedFrom``: the city's own as register entries, a partner's as the asset
    its permission names), said in words (``dct:provenance``), and the permission of each
    partner whose readings it holds (``odrl:hasPolicy``)."""
    register = dataset_uri(city, "register")
    sources = [s for s in sorted(city.sources) if theme.slug in datasets_fed(city, s)]
    derived = []
    for source in sources:
        owner = partner_of(city, source)
        derived.append(f"{register}#{source}" if owner is None else data_iri(city, owner))
    partners = provenance_of(city, theme.slug)
    said = (
        f"Derived by citypipe from the readings of {', '.join(sources) or 'no source'} "
        "(anonymized at the edge, aggregated per zone and 15 minutes)"
    )
    if partners:
        said += "; " + "; ".join(
            f"{city.partners[name].name}'s readings are used under its permission {iri}"
            for name, iri in partners
        )
    found: dict[str, Any] = {
        "prov:wasDerivedFrom": [_ref(iri, "prov:Entity") for iri in derived],
        "dct:provenance": {"@type": "dct:ProvenanceStatement", "rdfs:label": _text(said + ".")},
    }
    if partners:
        found["odrl:hasPolicy"] = [_policy_ref(iri) for _, iri in partners]
    return found


def _distribution_policy(city: City, theme: Theme) -> dict[str, Any]:
    """A distribution's policy (at most one, DCAT-AP): its one partner's permission."""
    partners = provenance_of(city, theme.slug)
    return {"odrl:hasPolicy": _policy_ref(partners[0][1])} if len(partners) == 1 else {}


REGISTER_FORMATS = {"json": ("JSON", "application/json"), "csv": ("CSV", "text/csv")}


def _register_dataset(city: City, register: Register, days: Sequence[str]) -> dict[str, Any]:
    """The transparency register and the record of processing, as a dataset of the catalogue
    (a distribution per document and format)."""
    distributions = []
    for file in register.files:
        label, media_type = REGISTER_FORMATS[file.format]
        url = public_url(city, file.key)
        document = file.key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        distributions.append(
            {
                "@id": url,
                "@type": "dcat:Distribution",
                "dct:title": _text(f"{TITLES[document]} ({label})"),
                "dct:description": _text(TITLES[document]),
                "dcat:accessURL": _ref(url, "rdfs:Resource"),
                "dcat:downloadURL": _ref(url, "rdfs:Resource"),
                "dcat:mediaType": _ref(f"{IANA}{media_type}", "dct:MediaType"),
                "dct:format": _ref(f"{EU}file-type/{label}", "dct:MediaTypeOrExtent"),
                "dct:license": _licence(city),
                "dcat:byteSize": _typed(str(file.bytes), "xsd:nonNegativeInteger"),
                "spdx:checksum": {
                    "@type": "spdx:Checksum",
                    "spdx:algorithm": _ref(SHA256, "spdx:ChecksumAlgorithm"),
                    "spdx:checksumValue": _typed(file.sha256, "xsd:hexBinary"),
                },
                "r5r:availability": _concept(f"{EU}planned-availability/STABLE"),
            }
        )
    return {
        "@id": dataset_uri(city, "register"),
        "@type": "dcat:Dataset",
        "dct:identifier": f"{city.slug}/register",
        "dct:title": _text(f"{city.name}: transparency register and record of processing"),
        "dct:description": _text(
            f"Every sensor source of {city.name}: what it measures, where, why, whether "
            "personal data is involved and how it is treated (the transparency register); and "
            "the record of processing activities of GDPR Article 30: controller, purposes, "
            "categories of data subjects and data, recipients, retention per zone and "
            "safeguards (keyed pseudonyms and the life of their keys, k, differential "
            "privacy and its epsilon). Generated from the city file, in JSON and CSV."
        ),
        "dct:publisher": _publisher(city),
        "dcat:contactPoint": {
            "@type": ["vcard:Kind", "vcard:Organization"],
            "vcard:fn": city.publisher.name,
            "vcard:hasEmail": _ref(f"mailto:{city.publisher.email}", "rdfs:Resource"),
        },
        "dcat:keyword": [
            _text(k) for k in ("transparency", "GDPR", "record of processing", city.name)
        ],
        "dcat:theme": _concept(f"{EU}data-theme/GOVE"),
        "foaf:page": _ref(dataset_uri(city, "register"), "foaf:Document"),
        "dct:temporal": _period(days[0], days[-1]) if days else None,
        "dct:spatial": _spatial(city),
        "dcat:distribution": distributions,
    }


# --- the open-data API: a data service (DCAT-AP 3.0.1, DCAT-AP HVD) ---------------------


def with_data_service(
    document: dict[str, Any], city: City, themes: Sequence[Theme]
) -> dict[str, Any]:
    """The catalogue with the open-data API (``core.api``, OGC API - Features) described:
    ``dcat:DataService`` entries (the endpoint, its OpenAPI description, the OGC conformance
    classes it implements, the datasets served) in ``dcat:service``, and
    ``dcat:accessService`` on every distribution of a served dataset. The High-Value
    Datasets have a service entry of their own, under the HVD regulation with their
    categories (DCAT-AP HVD: an HVD's API); the other datasets another, for the same
    endpoint — so neither claims what the other serves."""
    identifiers = {f"{city.slug}/{t.slug}": t for t in themes}
    served = [d for d in document["dcat:dataset"] if d.get("dct:identifier") in identifiers]
    groups = {
        hvd: [d for d in served if high_value(city, identifiers[d["dct:identifier"]]) == hvd]
        for hvd in (True, False)
    }
    services = [
        _data_service(city, [identifiers[d["dct:identifier"]] for d in datasets], datasets, hvd)
        for hvd, datasets in groups.items()
        if datasets
    ]
    if services:
        document["dcat:service"] = services
    return document


def _data_service(
    city: City, themes: Sequence[Theme], datasets: Sequence[dict[str, Any]], hvd: bool
) -> dict[str, Any]:
    base = city.portal_url.rstrip("/")
    endpoint = f"{base}{API_ROOT}"
    service_id = f"{base}/services/features" + ("/high-value" if hvd else "")
    for dataset in datasets:
        for distribution in dataset.get("dcat:distribution", []):
            distribution["dcat:accessService"] = {"@id": service_id}
    service: dict[str, Any] = {
        "@id": service_id,
        "@type": "dcat:DataService",
        "dct:title": _text(
            f"{city.name} open data API (OGC API - Features)"
            + (": High-Value Datasets" if hvd else "")
        ),
        "dct:description": _text(
            "The published rows of "
            + ", ".join(t.title.lower() for t in themes)
            + " (zone, quantity, 15-minute window) through OGC API - Features (ISO 19168-1): "
            "bounding box, date-time, paging; GeoJSON, JSON and CSV. Free of charge, no "
            "registration."
        ),
        "dcat:endpointURL": _ref(endpoint, "rdfs:Resource"),
        "dcat:endpointDescription": _ref(f"{endpoint}/api", "rdfs:Resource"),
        "dct:conformsTo": [_ref(c, "dct:Standard") for c in API_CONFORMANCE],
        "dcat:servesDataset": [{"@id": d["@id"]} for d in datasets],
        "dcat:keyword": [_text(k) for k in ("API", "OGC API - Features", city.name)],
        "dcat:theme": [
            _concept(f"{EU}data-theme/{c}") for c in sorted({t.data_theme for t in themes})
        ],
        "dct:publisher": _publisher(city),
        "dcat:contactPoint": {
            "@type": ["vcard:Kind", "vcard:Organization"],
            "vcard:fn": city.publisher.name,
            "vcard:hasEmail": _ref(f"mailto:{city.publisher.email}", "rdfs:Resource"),
        },
        "dct:license": _licence(city),
        "foaf:page": _ref(f"{endpoint}/", "foaf:Document"),  # documentation: the landing page
    }
    if hvd:
        service["r5r:applicableLegislation"] = _ref(HVD_REGULATION, "eli:LegalResource")
        service["r5r:hvdCategory"] = [
            _concept(c) for c in sorted({t.hvd_category for t in themes if t.hvd_category})
        ]
    return service
