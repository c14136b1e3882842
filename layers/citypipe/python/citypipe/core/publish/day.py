"""One theme's day, every format at once: the pure core export's service calls per theme.

Cells in (the theme's cells of the day, merged from partials; a people theme's on the
complete grid), disclosure control applied once, files out: CSV, Parquet, GeoJSON and,
where the theme has a Smart Data Model, NGSI-LD. The bytes are a function of the cells, the
city file and the city's noise key only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citypipe.core.aggregate import Cell
from citypipe.core.disclosure import (
    DisclosedCell,
    Status,
    complete_grid,
    disclose,
    treatment,
)
from citypipe.core.publish import geo, ngsild, tables
from citypipe.core.publish.dcat import FORMATS, public_url
from citypipe.domain.books import ZoneSummary
from citypipe.domain.city import City
from citypipe.domain.naming import open_file_key
from citypipe.domain.themes import OpenFormat, Theme, quantities_of


def json_bytes(document: Any, compact: bool = False) -> bytes:
    """Byte-stable JSON: sorted keys, UTF-8, a newline at the end; indented for people
    (metadata) or ``compact`` for data."""
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 1}
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, **layout)
    return (text + "\n").encode()


@dataclass(frozen=True)
class ThemeDay:
    theme: Theme
    day: str
    cells: list[DisclosedCell]
    personal: bool
    summary: list[ZoneSummary]
    files: dict[OpenFormat, bytes]
    readings: int

    def count(self, status: Status) -> int:
        return sum(cell.status is status for cell in self.cells)

    def key(self, city: str, fmt: OpenFormat) -> str:
        return open_file_key(city, self.theme.slug, fmt, self.day)

    @staticmethod
    def media_type(fmt: OpenFormat) -> str:
        return FORMATS[fmt].media_type


def theme_day(
    city: City,
    theme: Theme,
    day: str,
    cells: Sequence[Cell],
    noise_key: bytes | None = None,
) -> ThemeDay:
    """``noise_key``: the city's secret noise key, for the noise of people counts."""
    quantities = sorted(set(quantities_of(city, theme)) | {c.quantity for c in cells})
    personal = treatment(city, quantities).personal
    if personal:
        people = [q for q in quantities if q in city.personal_quantities]
        cells = complete_grid(city, day, people, cells)
    disclosed = disclose(city, cells, noise_key)
    summary = tables.summarize(city, quantities, disclosed)
    files = {
        OpenFormat.CSV: tables.csv_bytes(disclosed, personal),
        OpenFormat.PARQUET: tables.parquet(disclosed, personal),
        OpenFormat.GEOJSON: json_bytes(geo.zones_geojson(city, theme, day, summary), compact=True),
    }
    if theme.model is not None:
        source = public_url(city, open_file_key(city.city, theme.slug, OpenFormat.CSV, day))
        files[OpenFormat.NGSI_LD] = json_bytes(
            ngsild.entities(city, theme, disclosed, source), compact=True
        )
    return ThemeDay(
        theme=theme,
        day=day,
        cells=disclosed,
        personal=personal,
        summary=summary,
        files=files,
        readings=sum(c.count for c in cells),
    )
