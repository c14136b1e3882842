"""A theme's day as RDF (Turtle) in the W3C SOSA/SSN and ETSI SAREF terms: what a linked
data tool reads without knowing citypipe's columns.

Each published cell is one ``sosa:Observation`` that is also a ``saref:Measurement``: its
zone the feature of interest (an ``s4city:District`` of SAREF4CITY, named on the portal's
first page), its quantity the observed property (named on the dataset's page), its window
the phenomenon time (an OWL-Time interval), its value the simple result, with its UCUM
unit (``cdt:ucum``, as the SOSA/SSN recommendation's examples write it) and as a plain
number (``saref:hasValue``). The value is the one the day's summary uses: the mean of the
readings, their total, or (people) the noisy distinct devices, the same figures as the
CSV. Suppressed and flagged cells give no observation: the CSV says why. Written a few
windows at a time, like the other formats; the Turtle is plain enough to stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from citypipe.core.disclosure import DisclosedCell, Status
from citypipe.core.publish.tables import cell_value, statistic_of
from citypipe.domain.city import City
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import Summary, Theme

ISO = "%Y-%m-%dT%H:%M:%SZ"
PREFIXES = {
    "sosa": "http://www.w3.org/ns/sosa/",
    "ssn": "http://www.w3.org/ns/ssn/",
    "saref": "https://saref.etsi.org/core/",
    "s4city": "https://saref.etsi.org/saref4city/",
    "time": "http://www.w3.org/2006/time#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "cdt": "https://w3id.org/cdt/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


def zone_iri(city: City, zone: str) -> str:
    """A zone, named where the portal's first page describes it (its row of sensors)."""
    names = StackNames(city.slug)
    return f"{city.portal_url.rstrip('/')}/{names.portal_key()}#zone-{zone}"


def property_iri(city: City, theme: Theme, quantity: str) -> str:
    """A quantity, named where the dataset's page describes it."""
    names = StackNames(city.slug)
    return f"{city.portal_url.rstrip('/')}/{names.dataset_page_key(theme.slug)}#{quantity}"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ObservationWriter:
    """The day's published cells as Turtle, to ``sink``: ``write`` cells (in order), then
    ``close``. ``base``: the file's own URL, the observations' IRIs are fragments of it."""

    def __init__(self, sink: BinaryIO, city: City, theme: Theme, base: str) -> None:
        self._sink, self._city, self._theme, self._base = sink, city, theme, base
        self._zones: dict[str, str] = {}
        self._quantities: dict[str, tuple[str, Summary]] = {}
        self._windows: dict[datetime, tuple[str, str, str]] = {}
        head = [f"@prefix {p}: <{iri}> ." for p, iri in PREFIXES.items()]
        for feature in city.zones.features:
            name = str(feature.properties.get("name", feature.id))
            head.append(
                f"<{zone_iri(city, feature.id)}> a s4city:District, sosa:FeatureOfInterest ; "
                f"rdfs:label {_literal(name)}@en ."
            )
        self._sink.write(("\n".join(head) + "\n").encode())

    def write(self, cells: Iterable[DisclosedCell]) -> None:
        lines = [self._observation(c) for c in cells if c.status is Status.PUBLISHED]
        if lines:
            self._sink.write(("\n".join(lines) + "\n").encode())

    def _observation(self, cell: DisclosedCell) -> str:
        # what a day's cells share (zones, quantities, windows) is written once a writer
        if (zone := self._zones.get(cell.zone)) is None:
            zone = self._zones[cell.zone] = zone_iri(self._city, cell.zone)
        if (quantity := self._quantities.get(cell.quantity)) is None:
            quantity = self._quantities[cell.quantity] = (
                property_iri(self._city, self._theme, cell.quantity),
                statistic_of(self._city, cell.quantity),
            )
        if (window := self._windows.get(cell.window_start)) is None:
            window = self._windows[cell.window_start] = (
                cell.window_start.strftime(ISO),
                cell.window_end.strftime(ISO),
                f"{cell.window_start:%H%M}",
            )
        (prop, statistic), (start, end, hhmm) = quantity, window
        value = cell_value(cell, statistic)
        number = f"{value:.6f}".rstrip("0").rstrip(".")
        ident = f"{self._base}#{cell.zone}-{cell.quantity}-{hhmm}"
        stamp = "^^xsd:dateTimeStamp"
        return (
            f"<{ident}> a sosa:Observation, saref:Measurement ;\n"
            f"  sosa:hasFeatureOfInterest <{zone}> ;\n"
            f"  saref:isMeasurementOf <{zone}> ;\n"
            f"  sosa:observedProperty <{prop}> ; saref:relatesToProperty <{prop}> ;\n"
            f"  sosa:phenomenonTime [ a time:Interval ;\n"
            f"    time:hasBeginning [ a time:Instant ; time:inXSDDateTimeStamp "
            f'"{start}"{stamp} ] ;\n'
            f"    time:hasEnd [ a time:Instant ; time:inXSDDateTimeStamp "
            f'"{end}"{stamp} ] ] ;\n'
            f'  sosa:resultTime "{end}"^^xsd:dateTime ;\n'
            f'  saref:hasTimestamp "{end}"^^xsd:dateTime ;\n'
            f"  sosa:hasSimpleResult {_literal(f'{number} {cell.unit}')}^^cdt:ucum ;\n"
            f'  saref:hasValue "{number}"^^xsd:decimal .'
        )

    def close(self) -> None:
        """Nothing to end: every statement is whole when written."""
