"""One theme's day, every format at once: the pure core export's service calls per theme.

Cells in (the theme's cells of the day, merged from partials; a people theme's on the
complete grid), disclosure control applied once, bytes out to the sinks the caller opened:
CSV, Parquet, GeoJSON, RDF (SOSA/SSN and SAREF) and, where the theme has a Smart Data
Model, NGSI-LD. The bytes are
a function of the cells, the city file and the release of people counts only, whether the day
comes a few windows at a time (``ThemeDayWriter``: what export does, so a day of any size
fits in bounded memory) or whole (``theme_day``, the one-chunk case). Where the bytes go
(export's scratch files) is the caller's business: nothing here opens a file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from citypipe.core.aggregate import Cell
from citypipe.core.disclosure import Status, complete_grid, day_windows, disclose, treatment
from citypipe.core.people import PeopleRelease
from citypipe.core.publish import geo, ngsild, observations, tables
from citypipe.core.publish.dcat import FORMATS, public_url
from citypipe.core.publish.jsontext import JsonArrayWriter, json_bytes
from citypipe.domain.city import City
from citypipe.domain.export_books import DayCourse, ZoneSummary
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat, Theme, quantities_of

__all__ = ["ThemeDay", "ThemeDayWriter", "formats_of", "theme_day"]


def formats_of(theme: Theme) -> list[OpenFormat]:
    """The formats a theme's day is published in: NGSI-LD where it has a Smart Data Model."""
    return [f for f in OpenFormat if f is not OpenFormat.NGSI_LD or theme.model is not None]


@dataclass(frozen=True)
class ThemeDay:
    """A theme's day as written to its sinks: what its publication record and lineage
    count (``readings``: for the books only, never published for a people dataset)."""

    theme: Theme
    day: str
    personal: bool
    summary: list[ZoneSummary]
    course: list[DayCourse]
    readings: int
    cells: int
    published: int
    suppressed: int
    flagged: int
    outside: int  # people cells of zones no counter stands in: left out (decision 0078)

    @property
    def formats(self) -> list[OpenFormat]:
        return formats_of(self.theme)

    def key(self, names: StackNames, fmt: OpenFormat) -> str:
        return names.open_file_key(self.theme.slug, fmt, self.day)

    @staticmethod
    def media_type(fmt: OpenFormat) -> str:
        return FORMATS[fmt].media_type


class ThemeDayWriter:
    """A theme's day written to ``sinks`` (one per format of ``formats_of(theme)``) a few
    windows at a time: ``add`` the day's cells of some consecutive windows (after those
    added before; in cell order), then ``close``. ``present``: the theme's quantities
    found that day (a quantity the city no longer declares is still published).
    ``people``: the release of the day's people counts, where the theme counts people."""

    def __init__(
        self,
        city: City,
        theme: Theme,
        day: str,
        sinks: Mapping[OpenFormat, BinaryIO],
        present: Sequence[str],
        people: PeopleRelease | None = None,
    ) -> None:
        self.city, self.theme, self.day, self.people_release = city, theme, day, people
        self.present = list(present)
        self.quantities = sorted(set(quantities_of(city, theme)) | set(present))
        self.personal = treatment(city, self.quantities).personal
        self.people = [q for q in self.quantities if q in city.personal_quantities]
        self.sinks = sinks
        self.csv = tables.CsvWriter(sinks[OpenFormat.CSV], self.personal)
        self.parquet = tables.ParquetWriter(sinks[OpenFormat.PARQUET], self.personal)
        self.ngsi_ld = None if theme.model is None else JsonArrayWriter(sinks[OpenFormat.NGSI_LD])
        names = StackNames(city.slug)
        self.source = public_url(city, names.open_file_key(theme.slug, OpenFormat.CSV, day))
        self.rdf = observations.ObservationWriter(
            sinks[OpenFormat.RDF],
            city,
            theme,
            public_url(city, names.open_file_key(theme.slug, OpenFormat.RDF, day)),
        )
        self.summary = tables.DaySummary(city, self.quantities)
        self.readings = 0
        self.outside = 0
        self.statuses = dict.fromkeys(Status, 0)

    def add(self, cells: Sequence[Cell], windows: Sequence[datetime]) -> None:
        """The day's cells of ``windows`` (a people day's empty windows among them are
        filled in on the complete grid)."""
        self.readings += sum(cell.count for cell in cells)
        if self.personal:
            cells, outside = complete_grid(self.city, self.day, self.people, cells, windows)
            self.outside += outside
        disclosed = disclose(self.city, cells, self.people_release)
        for shown in disclosed:
            self.statuses[shown.status] += 1
        self.csv.write(disclosed)
        self.parquet.write(disclosed)
        self.rdf.write(disclosed)
        if self.ngsi_ld is not None:
            self.ngsi_ld.write(ngsild.entities(self.city, self.theme, disclosed, self.source))
        self.summary.add(disclosed)

    def discard(self) -> None:
        """Finish what is open after a failure (its files are never published)."""
        for writer in (self.csv, self.parquet, self.ngsi_ld, self.rdf):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()

    def close(self) -> ThemeDay:
        self.csv.close()
        self.parquet.close()
        self.rdf.close()
        if self.ngsi_ld is not None:
            self.ngsi_ld.close()
        summary = self.summary.result()
        geojson = geo.zones_geojson(self.city, self.theme, self.day, summary)
        self.sinks[OpenFormat.GEOJSON].write(json_bytes(geojson, compact=True))
        return ThemeDay(
            theme=self.theme,
            day=self.day,
            personal=self.personal,
            summary=summary,
            course=self.summary.course(),
            readings=self.readings,
            cells=sum(self.statuses.values()),
            published=self.statuses[Status.PUBLISHED],
            suppressed=self.statuses[Status.SUPPRESSED],
            flagged=self.statuses[Status.FLAGGED],
            outside=self.outside,
        )


def theme_day(
    city: City,
    theme: Theme,
    day: str,
    cells: Sequence[Cell],
    sinks: Mapping[OpenFormat, BinaryIO],
    people: PeopleRelease | None = None,
) -> ThemeDay:
    """A whole day's cells of a theme, written to ``sinks``."""
    present = sorted({c.quantity for c in cells})
    writer = ThemeDayWriter(city, theme, day, sinks, present, people)
    writer.add(cells, day_windows(day))
    return writer.close()
