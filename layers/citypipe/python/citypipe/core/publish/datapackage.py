"""The Frictionless Data Package of the open zone (``datapackage.json``).

One tabular resource per theme and published day: the day's CSV, with its Table Schema
(the documented columns, their types and constraints, the primary key), its byte size
and SHA-256 (so ``frictionless validate`` checks the file is the one described) and the
dataset's privacy treatment. Paths are relative to the descriptor, which sits in
``open/<city>/``, so the package validates the same from the bucket or a copy of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from citypipe.core.disclosure import IMPLAUSIBLE, NOT_FINITE, Status, treatment
from citypipe.core.people import ABOVE_CEILING, FEWER_THAN_K
from citypipe.core.publish.dcat import describe_lawfulness, describe_treatment
from citypipe.core.publish.register import REGISTER, SENSORS, TITLES, Register
from citypipe.core.publish.sensors import SENSOR_COLUMNS
from citypipe.core.publish.tables import columns, published_quantities
from citypipe.domain.city import City
from citypipe.domain.export_books import Publication
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat, Theme

LICENCES = {
    "https://creativecommons.org/licenses/by/4.0/": (
        "CC-BY-4.0",
        "Creative Commons Attribution 4.0",
    ),
    "https://creativecommons.org/publicdomain/zero/1.0/": ("CC0-1.0", "CC0 1.0 Universal"),
    "https://opendatacommons.org/licenses/odbl/1-0/": ("ODbL-1.0", "Open Data Commons ODbL 1.0"),
}


def _schema(city: City, quantities: list[str], personal: bool) -> dict[str, Any]:
    constraints: dict[str, dict[str, Any]] = {
        "window_start": {"required": True},
        "window_end": {"required": True},
        "zone": {"required": True, "enum": [f.id for f in city.zones.features]},
        "quantity": {"required": True, "enum": quantities},
        "unit": {"required": True},
        "count": {"minimum": 1},
        "distinct_devices": {"minimum": city.disclosure.k},
        "status": {"required": True, "enum": [s.value for s in Status]},
        "reason": {"enum": ["", FEWER_THAN_K, ABOVE_CEILING, NOT_FINITE, IMPLAUSIBLE]},
    }
    fields = []
    for column in columns(personal):
        field: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "description": column.description,
        }
        if column.name in constraints:
            field["constraints"] = constraints[column.name]
        fields.append(field)
    return {
        "fields": fields,
        "missingValues": [""],
        "primaryKey": ["window_start", "zone", "quantity"],
    }


def datapackage(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> dict[str, Any]:
    """The descriptor: every published day's CSV of every theme, in theme and day order,
    then the transparency register's and the record of processing's CSVs."""
    prefix = StackNames(city.slug).open_prefix()
    licence_name, licence_title = LICENCES.get(city.licence, ("other-open", city.licence))
    resources = []
    for theme in themes:
        days = sorted((p for p in publications if p.theme == theme.slug), key=lambda p: p.day)
        quantities = published_quantities(city, theme, days)
        privacy = treatment(city, quantities)
        schema = _schema(city, quantities, privacy.personal)
        for publication in days:
            [csv] = [f for f in publication.files if f.format == OpenFormat.CSV]
            resources.append(
                {
                    "name": f"{theme.slug}-{publication.day}",
                    "title": f"{theme.title}, {publication.day}",
                    "description": f"{theme.description} {describe_treatment(privacy)}"
                    + describe_lawfulness(city, privacy),
                    "path": csv.key.removeprefix(prefix),
                    "format": "csv",
                    "mediatype": "text/csv",
                    "encoding": "utf-8",
                    "bytes": csv.bytes,
                    "hash": f"sha256:{csv.sha256}",
                    "schema": schema,
                    "privacy": asdict(privacy),
                    "version": publication.version,
                }
            )
    register_files = register.files if register is not None else []
    register_columns = list(register.rows[0]) if register is not None and register.rows else []
    for file in register_files:
        if file.format != "csv":
            continue
        document = file.key.rsplit("/", 1)[-1].removesuffix(".csv")
        columns = {REGISTER: register_columns, SENSORS: list(SENSOR_COLUMNS)}.get(
            document, ["item", "value"]
        )
        resources.append(
            {
                "name": document,
                "title": TITLES[document],
                "path": file.key.removeprefix(prefix),
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "bytes": file.bytes,
                "hash": f"sha256:{file.sha256}",
                "schema": {"fields": [{"name": name, "type": "string"} for name in columns]},
            }
        )
    return {
        "name": f"{city.slug}-open-sensor-data",
        "title": f"{city.name} open sensor data",
        "description": (
            f"Anonymized, aggregated readings of {city.name}'s public sensors per zone and "
            "15 minutes, one resource per theme and day. Also published as Parquet, GeoJSON "
            "and NGSI-LD: see the portal (index.html, beside this file) and the DCAT-AP catalogue."
        ),
        "homepage": city.portal_url,
        "licenses": [{"name": licence_name, "path": city.licence, "title": licence_title}],
        "contributors": [
            {"title": city.publisher.name, "path": city.publisher.url, "role": "publisher"}
        ],
        "resources": resources,
    }
