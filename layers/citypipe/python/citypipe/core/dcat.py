"""DCAT-AP 3 catalogue of what the open zone holds, as JSON-LD with an inline context
(no network needed to read it)."""

from __future__ import annotations

from typing import Any

from citypipe.domain.city import City

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "adms": "http://www.w3.org/ns/adms#",
}
CSV_MEDIA_TYPE = "http://www.iana.org/assignments/media-types/text/csv"
CSV_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/CSV"


def _text(value: str) -> dict[str, str]:
    return {"@value": value, "@language": "en"}


def _date(value: str) -> dict[str, str]:
    return {"@value": value, "@type": "xsd:date"}


def catalog(city: City, dataset: str, files: list[tuple[str, str]]) -> dict[str, Any]:
    """``files``: (day, key in the open bucket) for every published day."""
    base = city.portal_url.rstrip("/")
    publisher = {
        "@id": city.publisher.url,
        "@type": "foaf:Agent",
        "foaf:name": city.publisher.name,
    }
    licence = {"@id": city.licence, "@type": "dct:LicenseDocument"}
    distributions = [
        {
            "@id": f"{base}/{key}",
            "@type": "dcat:Distribution",
            "dct:title": _text(f"{dataset} {day}"),
            "dcat:accessURL": {"@id": f"{base}/{key}"},
            "dcat:downloadURL": {"@id": f"{base}/{key}"},
            "dcat:mediaType": {"@id": CSV_MEDIA_TYPE, "@type": "dct:MediaType"},
            "dct:format": {"@id": CSV_FILE_TYPE, "@type": "dct:MediaTypeOrExtent"},
            "dct:license": licence,
            "dct:temporal": {
                "@type": "dct:PeriodOfTime",
                "dcat:startDate": _date(day),
                "dcat:endDate": _date(day),
            },
        }
        for day, key in files
    ]
    days = [day for day, _ in files]
    sources = ", ".join(f"{name} ({s.kind}: {s.purpose})" for name, s in city.sources.items())
    return {
        "@context": CONTEXT,
        "@id": f"{base}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _text(f"{city.name} open sensor data"),
        "dct:description": _text(
            f"Anonymized, aggregated readings of {city.name}'s public sensors, published by "
            "citypipe. Personal data is pseudonymized within minutes and never published."
        ),
        "dct:publisher": publisher,
        "dct:license": licence,
        "dcat:dataset": [
            {
                "@id": f"{base}/datasets/{dataset}",
                "@type": "dcat:Dataset",
                "dct:identifier": f"{city.city}/{dataset}",
                "dct:title": _text(f"{city.name}: sensor readings per zone and 15 minutes"),
                "dct:description": _text(
                    "Count, sum, min, max and mean of each quantity per zone and 15-minute "
                    "window. A cell about people is suppressed unless one of its sensors alone "
                    f"saw at least {city.disclosure.k} distinct devices; distinct_devices counts "
                    f"a device once per sensor that saw it. Sources: {sources}."
                ),
                "dct:publisher": publisher,
                "dcat:contactPoint": {
                    "@type": ["vcard:Kind", "vcard:Organization"],
                    "vcard:fn": city.publisher.name,
                    "vcard:hasEmail": {"@id": f"mailto:{city.publisher.email}"},
                },
                "dcat:keyword": [_text("sensors"), _text("open data"), _text(city.name)],
                "dct:temporal": {
                    "@type": "dct:PeriodOfTime",
                    "dcat:startDate": _date(days[0]),
                    "dcat:endDate": _date(days[-1]),
                }
                if days
                else None,
                "dcat:distribution": distributions,
            }
        ],
    }
