"""What the open zone means, for a linked-data tool and a resident: the SOSA/SSN and SAREF
observations of a day (parsed with rdflib), the CSV's line ends (RFC 4180), the SPDX
checksum algorithm, and the portal's words and numbers (units as people write them, one
number format, the course of the day, the register's sensors on the map, a page at every
dataset's URI)."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest
import rdflib
from open_support import every_theme_city, open_zone_of_every_theme
from rdflib import RDF, URIRef
from unit_support import DAY

from citypipe.core.publish.drawing import NumberFormat, bar_chart, sensors_by_zone, unit
from citypipe.domain.city import City
from citypipe.domain.export_books import DayCourse, ZoneSummary
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.service.kernel import Deps

SOSA = rdflib.Namespace("http://www.w3.org/ns/sosa/")
SAREF = rdflib.Namespace("https://saref.etsi.org/core/")
S4CITY = rdflib.Namespace("https://saref.etsi.org/saref4city/")
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
CDT_UCUM = URIRef("https://w3id.org/cdt/ucum")
NAMES = StackNames("velden")
SITE = "https://data.velden.example/"


@pytest.fixture
def open_zone(memory_deps: Deps) -> dict[str, bytes]:
    return open_zone_of_every_theme(memory_deps)


def observations(open_zone: dict[str, bytes], theme: str) -> rdflib.Graph:
    body = open_zone[NAMES.open_file_key(theme, OpenFormat.RDF, DAY)]
    return rdflib.Graph().parse(data=body, format="turtle")


def published_rows(open_zone: dict[str, bytes], theme: str) -> list[dict[str, str]]:
    text = open_zone[NAMES.open_file_key(theme, OpenFormat.CSV, DAY)].decode()
    return [r for r in csv.DictReader(io.StringIO(text)) if r["status"] == "published"]


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids |= {v for k, v in attrs if k == "id" and v}


def ids_of(page: bytes) -> set[str]:
    parser = _Ids()
    parser.feed(page.decode())
    return parser.ids


# --- SOSA/SSN and SAREF -------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["air-quality", "traffic-flow", "people-counts", "weather"])
def test_every_published_cell_is_one_sosa_observation_and_saref_measurement(
    open_zone: dict[str, bytes], theme: str
) -> None:
    graph = observations(open_zone, theme)
    found = set(graph.subjects(RDF.type, SOSA.Observation))
    assert found and found == set(graph.subjects(RDF.type, SAREF.Measurement))
    assert len(found) == len(published_rows(open_zone, theme))
    for observation in found:
        zone = graph.value(observation, SOSA.hasFeatureOfInterest)
        assert (zone, RDF.type, S4CITY.District) in graph
        assert graph.value(observation, SAREF.isMeasurementOf) == zone
        result = graph.value(observation, SOSA.hasSimpleResult)
        assert isinstance(result, rdflib.Literal) and result.datatype == CDT_UCUM
        assert str(result).split(" ")[0] == str(graph.value(observation, SAREF.hasValue))


def test_an_observation_holds_the_figure_the_csv_publishes(open_zone: dict[str, bytes]) -> None:
    graph = observations(open_zone, "air-quality")
    [row] = [r for r in published_rows(open_zone, "air-quality") if r["zone"] == "noord"]
    [observation] = [
        o
        for o in graph.subjects(RDF.type, SOSA.Observation)
        if str(graph.value(o, SOSA.hasFeatureOfInterest)).endswith("#zone-noord")
    ]
    assert str(graph.value(observation, SOSA.hasSimpleResult)) == f"{float(row['mean']):g} ug/m3"
    assert str(graph.value(observation, SOSA.observedProperty)) == (
        f"{SITE}open/velden/datasets/air-quality#air.no2"
    )


def test_a_people_observation_is_the_noisy_count_never_a_suppressed_cell(
    open_zone: dict[str, bytes],
) -> None:
    graph = observations(open_zone, "people-counts")
    rows = published_rows(open_zone, "people-counts")
    values = sorted(str(v) for v in graph.objects(None, SAREF.hasValue))
    assert values == sorted(r["distinct_devices"] for r in rows)
    # noord's three devices are under k: no observation of noord at all
    zones = {str(z) for z in graph.objects(None, SOSA.hasFeatureOfInterest)}
    assert f"{SITE}open/velden/index.html#zone-noord" not in zones


def test_the_zones_and_quantities_the_observations_name_are_described_where_they_point(
    open_zone: dict[str, bytes],
) -> None:
    graph = observations(open_zone, "air-quality")
    index = ids_of(open_zone[NAMES.portal_key()])
    page = ids_of(open_zone[NAMES.dataset_page_key("air-quality")])
    for zone in set(graph.objects(None, SOSA.hasFeatureOfInterest)):
        assert str(zone).split("#", 1)[1] in index
    for prop in set(graph.objects(None, SOSA.observedProperty)):
        assert str(prop).startswith(f"{SITE}open/velden/datasets/air-quality#")
        assert str(prop).split("#", 1)[1] in page


# --- CSV, checksums -----------------------------------------------------------------------


def test_every_csv_line_ends_in_crlf(open_zone: dict[str, bytes]) -> None:
    files = [k for k in open_zone if k.endswith(".csv")]
    assert len(files) >= 8  # the themes' days, the register and the record
    for key in files:
        body = open_zone[key]
        assert body.endswith(b"\r\n") and body.count(b"\n") == body.count(b"\r\n"), key


def test_the_checksum_algorithm_is_the_spdx_iri(open_zone: dict[str, bytes]) -> None:
    graph = rdflib.Graph().parse(data=open_zone[NAMES.catalog_key()], format="json-ld")
    algorithms = set(graph.objects(None, SPDX.algorithm))
    assert algorithms == {URIRef("http://spdx.org/rdf/terms#checksumAlgorithm_sha256")}


# --- the portal's words and numbers -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "written"),
    [("Cel", "°C"), ("ug/m3", "µg/m³"), ("{device}", "devices"), ("{pedestrian}", "pedestrians"),
     ("{vehicle}", "vehicles"), ("kW.h", "kWh"), ("dB", "dB"), ("%", "%")],
)  # fmt: skip
def test_units_are_written_as_people_write_them(code: str, written: str) -> None:
    assert unit(code) == written


def test_one_number_format_for_all_the_figures_of_a_chart() -> None:
    assert [NumberFormat.of([14.0, 14.5])(v) for v in (14.0, 14.5)] == ["14.0", "14.5"]
    assert [NumberFormat.of([14.0, 101_244.0])(v) for v in (14.0, 101_244.0)] == [
        "14",
        "101,244",
    ]


def _summary(zone: str, value: float) -> ZoneSummary:
    return ZoneSummary(zone=zone, quantity="traffic.vehicles", unit="{vehicle}",
                       statistic="total", value=value, minimum=value, maximum=value, windows=96,
                       published=96, suppressed=0, flagged=0, latest_window=None,
                       latest_value=None)  # fmt: skip


def test_no_label_of_a_bar_chart_runs_past_its_drawing(city: City) -> None:
    # a long zone name and a six-digit total: the labels are sized to their text
    chart = bar_chart(city, "traffic.vehicles", [_summary("west-noord", 101_244.0),
                                                 _summary("centrum", 14.0)])  # fmt: skip
    width = int(re.search(r'viewBox="0 0 (\d+) ', chart).group(1))  # type: ignore[union-attr]
    value = re.search(r'class="value" x="([\d.]+)"[^>]*>101,244<', chart)
    assert value is not None and float(value.group(1)) + 7 * 7.2 <= width
    assert ">14<" in chart and "vehicles" in chart and "{vehicle}" not in chart


def test_the_register_sources_are_on_the_map_zone_by_zone(open_zone: dict[str, bytes]) -> None:
    city = every_theme_city()  # the city of the open zone: noise and parking sensors too
    sensors = sensors_by_zone(city)
    devices = sum(s.devices for found in sensors.values() for s in found)
    assert devices == len(city.devices)
    page = open_zone[NAMES.portal_key()].decode()
    svg = page[page.index('<svg class="map"') : page.index("</svg>", page.index('class="map"'))]
    assert svg.count('class="sensor') == sum(len(found) for found in sensors.values())
    # a dot per source in each zone, its kind and devices its title: one noise monitor and
    # one parking sensor stand in centrum only
    assert svg.count("<title>noise monitor: 1 in Centrum</title>") == 1
    assert svg.count("<title>parking occupancy sensor: 1 in Centrum</title>") == 1
    assert svg.count("noise monitor:") == 1


def test_every_dataset_of_the_catalogue_has_its_page_at_its_uri(
    open_zone: dict[str, bytes],
) -> None:
    graph = rdflib.Graph().parse(data=open_zone[NAMES.catalog_key()], format="json-ld")
    datasets = set(graph.subjects(RDF.type, rdflib.Namespace("http://www.w3.org/ns/dcat#").Dataset))
    assert len(datasets) == 7  # six themes and the register
    for dataset in datasets:
        page = open_zone[str(dataset).removeprefix(SITE)]
        assert page.startswith(b"<!doctype html>")


def test_the_course_of_the_day_is_drawn_from_published_cells_hour_by_hour(
    open_zone: dict[str, bytes],
) -> None:
    from citypipe.domain.export_books import Publication

    record = Publication.model_validate_json(open_zone[NAMES.publication_key("air-quality", DAY)])
    [no2] = [c for c in record.course if c.quantity == "air.no2"]
    # 21.5 in centrum and 30.0 in noord, both at 10:00-10:15 (the readings' window)
    assert no2 == DayCourse(quantity="air.no2", unit="ug/m3", statistic="mean",
                            hours=[None] * 10 + [25.75] + [None] * 13)  # fmt: skip
    page = open_zone[NAMES.dataset_page_key("air-quality")].decode()
    assert 'class="chart course" data-quantity="air.no2"' in page
    assert "<title>10:00 UTC: 25.8 µg/m³</title>" in page
