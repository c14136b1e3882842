"""The open zone against the project's own shapes and schemas (make test needs no reference
file): the catalogue against DCAT-AP 3.0.1 (tests/shapes/dcat-ap.ttl), its High-Value
Datasets against DCAT-AP HVD (tests/shapes/hvd.ttl), the NGSI-LD entities against the
Smart Data Models the export publishes (tests/schemas/sdm/). Each validator is shown
broken documents too, and must name what is broken: a test cannot pass because its
validator saw nothing. (make conformance validates the same export with the official files,
tests/conformance/test_open_zone.py.)"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import rdflib
from open_support import open_zone_of_every_theme
from rdflib import RDF, Literal, URIRef
from unit_support import DAY
from validation import (
    DCAT_AP,
    HVD,
    Finding,
    hvd_subgraph,
    own_sdm_errors,
    shacl_findings,
    shacl_report,
    without_dangling_properties,
)

from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat, theme_named
from citypipe.service.kernel import Deps

DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
FOAF = rdflib.Namespace("http://xmlns.com/foaf/0.1/")
SKOS = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
R5R = rdflib.Namespace("http://data.europa.eu/r5r/")
XSD = rdflib.Namespace("http://www.w3.org/2001/XMLSchema#")
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
SITE = "https://data.velden.example/"
CATALOG = URIRef(f"{SITE}catalog")
PUBLISHER = URIRef(SITE)
AIR = URIRef(f"{SITE}open/velden/datasets/air-quality")
NOISE = URIRef(f"{SITE}open/velden/datasets/noise")
API = URIRef(f"{SITE}services/features/high-value")  # the API of the High-Value Datasets
OTHER_API = URIRef(f"{SITE}services/features")  # the same endpoint, for the other datasets
AIR_CSV = URIRef(f"{SITE}open/velden/air-quality/date=2026-06-01/air-quality_2026-06-01.csv")
ENVI = URIRef("http://publications.europa.eu/resource/authority/data-theme/ENVI")
HVD_ENVIRONMENT = URIRef("http://data.europa.eu/bna/c_dd313021")
ODBL = URIRef("https://opendatacommons.org/licenses/odbl/1-0/")
NAMES = StackNames("velden")


@pytest.fixture
def open_zone(memory_deps: Deps) -> dict[str, bytes]:
    """The open zone of a day of every theme (exported once, read by every test here)."""
    return open_zone_of_every_theme(memory_deps)


@pytest.fixture
def graph(open_zone: dict[str, bytes]) -> rdflib.Graph:
    """The catalogue, parsed afresh for each test (which may break it)."""
    return rdflib.Graph().parse(data=open_zone[NAMES.catalog_key()], format="json-ld")


def entities(open_zone: dict[str, bytes], theme: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        open_zone[NAMES.open_file_key(theme, OpenFormat.NGSI_LD, DAY)]
    )
    return found


# --- DCAT-AP 3.0.1 --------------------------------------------------------------------------


def test_the_catalogue_conforms_to_the_dcat_ap_shapes(graph: rdflib.Graph) -> None:
    conforms, report = shacl_report(graph, DCAT_AP)
    assert conforms, report


def test_a_month_page_of_the_catalogue_conforms_to_the_dcat_ap_shapes(
    open_zone: dict[str, bytes],
) -> None:
    page = rdflib.Graph().parse(data=open_zone[NAMES.catalog_page_key(DAY[:7])], format="json-ld")
    assert set(page.objects(None, DCAT.distribution))  # the month's days are on it
    conforms, report = shacl_report(page, DCAT_AP)
    assert conforms, report


def drop(*triples: tuple[Any, Any, Any]) -> Callable[[rdflib.Graph], None]:
    def change(graph: rdflib.Graph) -> None:
        for triple in triples:
            graph.remove(triple)

    return change


def swap(subject: Any, predicate: Any, value: Any) -> Callable[[rdflib.Graph], None]:
    def change(graph: rdflib.Graph) -> None:
        graph.set((subject, predicate, value))

    return change


def add(*triples: tuple[Any, Any, Any]) -> Callable[[rdflib.Graph], None]:
    def change(graph: rdflib.Graph) -> None:
        for triple in triples:
            graph.add(triple)

    return change


def checksum_of(graph: rdflib.Graph) -> Any:
    return graph.value(AIR_CSV, SPDX.checksum)


OTHER_AGENT = URIRef("https://example.org/another-agent")

BROKEN_CATALOGUES: dict[str, tuple[Callable[[rdflib.Graph], None], Finding]] = {
    "dataset-without-title": (drop((AIR, DCT.title, None)), (AIR, DCT.title, "Violation")),
    "dataset-without-description": (
        drop((AIR, DCT.description, None)),
        (AIR, DCT.description, "Violation"),
    ),
    "dataset-with-an-empty-title": (
        swap(AIR, DCT.title, Literal("", lang="en")),
        (AIR, DCT.title, "Violation"),
    ),
    "data-service-without-title": (drop((API, DCT.title, None)), (API, DCT.title, "Violation")),
    "data-service-without-endpoint": (
        drop((API, DCAT.endpointURL, None)),
        (API, DCAT.endpointURL, "Violation"),
    ),
    "data-service-without-its-description": (
        drop((API, DCAT.endpointDescription, None)),
        (API, DCAT.endpointDescription, "Warning"),
    ),
    "catalogue-without-publisher": (
        drop((CATALOG, DCT.publisher, None)),
        (CATALOG, DCT.publisher, "Violation"),
    ),
    "catalogue-with-two-publishers": (
        add(
            (CATALOG, DCT.publisher, OTHER_AGENT),
            (OTHER_AGENT, RDF.type, FOAF.Agent),
            (OTHER_AGENT, FOAF.name, Literal("Another")),
        ),
        (CATALOG, DCT.publisher, "Violation"),
    ),
    "publisher-without-name": (
        drop((PUBLISHER, FOAF.name, None)),
        (PUBLISHER, FOAF.name, "Violation"),
    ),
    "distribution-without-access-url": (
        drop((AIR_CSV, DCAT.accessURL, None)),
        (AIR_CSV, DCAT.accessURL, "Violation"),
    ),
    "byte-size-as-plain-text": (
        swap(AIR_CSV, DCAT.byteSize, Literal("370")),
        (AIR_CSV, DCAT.byteSize, "Violation"),
    ),
    "keyword-that-is-an-iri": (
        add((AIR, DCAT.keyword, URIRef("https://example.org/air"))),
        (AIR, DCAT.keyword, "Violation"),
    ),
    "issued-that-is-no-date": (
        swap(CATALOG, DCT.issued, Literal("yesterday")),
        (CATALOG, DCT.issued, "Violation"),
    ),
    "theme-without-label": (
        drop((ENVI, SKOS.prefLabel, None)),
        (ENVI, SKOS.prefLabel, "Violation"),
    ),
    "publisher-that-is-no-agent": (
        drop((PUBLISHER, RDF.type, FOAF.Agent)),
        (CATALOG, DCT.publisher, "Violation"),
    ),
    # recommended: a warning, which fails the suite too
    "dataset-without-contact-point": (
        drop((AIR, DCAT.contactPoint, None)),
        (AIR, DCAT.contactPoint, "Warning"),
    ),
    "distribution-without-licence": (
        drop((AIR_CSV, DCT.license, None)),
        (AIR_CSV, DCT.license, "Warning"),
    ),
    "catalogue-without-homepage": (
        drop((CATALOG, FOAF.homepage, None)),
        (CATALOG, FOAF.homepage, "Warning"),
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_CATALOGUES))
def test_the_dcat_ap_shapes_name_what_a_broken_catalogue_lacks(
    graph: rdflib.Graph, broken: str
) -> None:
    change, finding = BROKEN_CATALOGUES[broken]
    change(graph)
    assert finding in shacl_findings(graph, DCAT_AP)


def test_a_checksum_without_its_algorithm_is_caught(graph: rdflib.Graph) -> None:
    checksum = checksum_of(graph)
    graph.remove((checksum, SPDX.algorithm, None))
    assert (checksum, SPDX.algorithm, "Violation") in shacl_findings(graph, DCAT_AP)


# --- DCAT-AP HVD 3.0.0 ----------------------------------------------------------------------


def test_the_hvd_datasets_conform_to_the_hvd_shapes(graph: rdflib.Graph) -> None:
    hvd = hvd_subgraph(graph)
    datasets = sorted(str(d).rsplit("/", 1)[1] for d in hvd.subjects(RDF.type, DCAT.Dataset))
    assert datasets == ["air-quality", "noise", "parking", "traffic-flow", "weather"]
    conforms, report = shacl_report(hvd, HVD)
    assert conforms, report


BROKEN_HVD: dict[str, tuple[Callable[[rdflib.Graph], None], Finding]] = {
    "dataset-without-its-category": (
        drop((AIR, R5R.hvdCategory, None)),
        (AIR, R5R.hvdCategory, "Violation"),
    ),
    "category-outside-the-hvd-vocabulary": (
        swap(AIR, R5R.hvdCategory, ENVI),
        (AIR, R5R.hvdCategory, "Violation"),
    ),
    "category-without-the-legislation": (
        drop((AIR, R5R.applicableLegislation, None)),
        (AIR, R5R.applicableLegislation, "Violation"),
    ),
    "distribution-without-the-legislation": (
        drop((AIR_CSV, R5R.applicableLegislation, None)),
        (AIR_CSV, R5R.applicableLegislation, "Violation"),
    ),
    "distribution-under-a-share-alike-licence": (
        swap(AIR_CSV, DCT.license, ODBL),
        (AIR_CSV, DCT.license, "Violation"),
    ),
    "dataset-without-a-distribution": (
        drop((NOISE, DCAT.distribution, None)),
        (NOISE, DCAT.distribution, "Violation"),
    ),
    "api-without-the-legislation": (
        drop((API, R5R.applicableLegislation, None)),
        (API, R5R.applicableLegislation, "Violation"),
    ),
    "api-without-a-category": (
        drop((API, R5R.hvdCategory, None)),
        (API, R5R.hvdCategory, "Violation"),
    ),
    "api-without-an-endpoint": (
        drop((API, DCAT.endpointURL, None)),
        (API, DCAT.endpointURL, "Violation"),
    ),
    "api-without-documentation": (
        drop((API, FOAF.page, None)),
        (API, FOAF.page, "Violation"),
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_HVD))
def test_the_hvd_shapes_name_what_a_broken_hvd_dataset_lacks(
    graph: rdflib.Graph, broken: str
) -> None:
    change, finding = BROKEN_HVD[broken]
    change(graph)
    assert finding in shacl_findings(hvd_subgraph(graph), HVD)


def test_an_hvd_without_an_api_is_refused_by_the_hvd_shapes(graph: rdflib.Graph) -> None:
    # the regulation's API requirement: no distribution of air quality reached by a service
    for distribution in graph.objects(AIR, DCAT.distribution):
        graph.remove((distribution, DCAT.accessService, None))
    conforms, report = shacl_report(hvd_subgraph(graph), HVD)
    assert not conforms and "available through an API" in report
    assert {f[0] for f in shacl_findings(hvd_subgraph(graph), HVD)} == {AIR}


@pytest.mark.parametrize(
    ("service", "themes"),
    [
        (API, ("air-quality", "noise", "traffic-flow", "parking", "weather")),
        (OTHER_API, ("people-counts",)),
    ],
)
def test_the_catalogue_describes_the_api_and_links_it_from_every_served_distribution(
    graph: rdflib.Graph, service: URIRef, themes: tuple[str, ...]
) -> None:
    assert (CATALOG, DCAT.service, service) in graph
    assert (service, RDF.type, DCAT.DataService) in graph
    assert graph.value(service, DCAT.endpointURL) == URIRef(f"{SITE}features")
    assert graph.value(service, DCAT.endpointDescription) == URIRef(f"{SITE}features/api")
    assert set(graph.objects(service, DCT.conformsTo)) == {
        URIRef(f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{c}")
        for c in ("core", "geojson", "oas30")
    }
    served = set(graph.objects(service, DCAT.servesDataset))
    assert served == {URIRef(f"{SITE}open/velden/datasets/{t}") for t in themes}
    for dataset in served:
        distributions = set(graph.objects(dataset, DCAT.distribution))
        assert distributions
        assert {graph.value(d, DCAT.accessService) for d in distributions} == {service}
    hvd = (service, R5R.applicableLegislation, None) in graph
    assert hvd == (service == API)


def test_only_property_shapes_a_file_never_defines_are_dropped() -> None:
    shapes = rdflib.Graph().parse(
        data="""@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <urn:ex:> .
        ex:S a sh:NodeShape ; sh:property ex:defined, ex:missing .
        ex:defined sh:path ex:p ; sh:minCount 1 .""",
        format="turtle",
    )
    assert without_dangling_properties(shapes) == [URIRef("urn:ex:missing")]
    assert set(shapes.objects(URIRef("urn:ex:S"), SH.property)) == {URIRef("urn:ex:defined")}


def test_no_api_serves_the_register(graph: rdflib.Graph) -> None:
    register = URIRef(f"{SITE}open/velden/datasets/register")  # the city file's: no API's
    assert (register, RDF.type, DCAT.Dataset) in graph
    assert (None, DCAT.servesDataset, register) not in graph
    assert not [d for d in graph.objects(register, DCAT.distribution)
                if (d, DCAT.accessService, None) in graph]  # fmt: skip


def test_a_dataset_that_is_no_hvd_is_not_held_to_the_hvd_shapes(graph: rdflib.Graph) -> None:
    # people counts and the register carry no HVD tag: the HVD part leaves them out
    hvd = hvd_subgraph(graph)
    assert (URIRef(f"{SITE}open/velden/datasets/people-counts"), None, None) not in hvd
    assert (URIRef(f"{SITE}open/velden/datasets/register"), None, None) not in hvd


# --- FIWARE Smart Data Models ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("theme", "entity_type"),
    [
        ("air-quality", "AirQualityObserved"),
        ("noise", "NoiseLevelObserved"),
        ("traffic-flow", "TrafficFlowObserved CrowdFlowObserved"),
        ("people-counts", "CrowdFlowObserved"),
        ("weather", "WeatherObserved"),
    ],
)
def test_the_ngsi_ld_entities_are_valid_smart_data_models(
    open_zone: dict[str, bytes], theme: str, entity_type: str
) -> None:
    found = entities(open_zone, theme)
    assert found and {e["type"] for e in found} == set(entity_type.split())
    assert own_sdm_errors(found) == []


def test_weather_entities_carry_the_models_units(open_zone: dict[str, bytes]) -> None:
    # 65 % is a relative humidity of 0.65; 101,300 Pa an atmospheric pressure of 1,013 hPa
    [entity] = entities(open_zone, "weather")
    assert entity["temperature"] == 18.5
    assert entity["relativeHumidity"] == 0.65 and entity["atmosphericPressure"] == 1013.0


def test_heavy_vehicles_are_lorries_and_pedestrians_a_crowd_flow(
    open_zone: dict[str, bytes],
) -> None:
    found = entities(open_zone, "traffic-flow")
    flows = {e.get("vehicleType", "every vehicle"): e["intensity"] for e in found
             if e["type"] == "TrafficFlowObserved"}  # fmt: skip
    assert flows == {"every vehicle": 14.0, "lorry": 3.0, "bicycle": 7.0}
    [walkers] = [e for e in found if e["type"] == "CrowdFlowObserved"]
    assert walkers["peopleCount"] == 40
    assert walkers["description"] == (
        "peopleCount: pedestrians counted in the zone in the window by traffic counters."
    )


def test_a_crowd_flow_says_it_counts_devices_once_per_zone_not_people(
    open_zone: dict[str, bytes],
) -> None:
    found = entities(open_zone, "people-counts")
    assert found and {e["description"] for e in found} == {
        "peopleCount: distinct Wi-Fi devices (not people) seen in the zone in the window, each "
        "counted once however many sensors saw it and in at most 10 windows a day, plus "
        "differential-privacy noise (epsilon 2 per device and day)."
    }


def test_the_schemas_reject_a_broken_entity(open_zone: dict[str, bytes]) -> None:
    # the reference check's broken entity: a negative count, a start that is no date-time
    entity = entities(open_zone, "people-counts")[0]
    broken = {**entity, "peopleCount": -1, "dateObservedFrom": "yesterday"}
    errors = own_sdm_errors([broken])
    assert len(errors) == 2
    assert any("-1 is less than the minimum of 0" in e for e in errors)
    assert any("'yesterday' is not a 'date-time'" in e for e in errors)


def changed(entity: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The entity with one attribute set (``a.b.0``: nested), or removed (value None)."""
    copied = copy.deepcopy(entity)
    *parents, last = path.split(".")
    node: Any = copied
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return copied


BROKEN_ENTITIES = {
    "air-quality-time-without-offset": (
        "air-quality", "dateObserved", "2026-06-01 10:00", "is not a 'date-time'",
    ),
    "air-quality-negative-no2": ("air-quality", "no2", -3.5, "minimum of 0"),
    "air-quality-without-location": ("air-quality", "location", None, "'location' is a required"),
    "air-quality-misspelt-attribute": ("air-quality", "no2Level", 21.5, "Unevaluated properties"),
    "air-quality-id-of-another-type": (
        "air-quality", "id", "urn:ngsi-ld:WeatherObserved:velden:centrum:x", "does not match",
    ),
    "noise-without-end-of-period": (
        "noise", "dateObservedTo", None, "'dateObservedTo' is a required",
    ),
    "noise-interval-that-is-no-interval": (
        "noise", "dateObserved", "10:00-10:15", "is not valid under any",
    ),
    "traffic-unknown-vehicle-type": ("traffic-flow", "vehicleType", "hovercraft", "is not one of"),
    "traffic-count-as-text": ("traffic-flow", "intensity", "14", "is not of type 'number'"),
    "people-fractional-count": ("people-counts", "peopleCount", 10.5, "is not of type 'integer'"),
    "people-open-polygon-ring": (
        "people-counts", "location.coordinates.0", [[5.43, 51.42], [5.46, 51.42], [5.46, 51.44]],
        "is not valid under any",
    ),
    "people-longitude-out-of-range": (
        "people-counts", "location.coordinates.0.0", [200.0, 51.42], "is not valid under any",
    ),
}  # fmt: skip


@pytest.mark.parametrize("broken", sorted(BROKEN_ENTITIES))
def test_the_schemas_name_what_is_wrong_with_an_entity(
    open_zone: dict[str, bytes], broken: str
) -> None:
    theme, path, value, message = BROKEN_ENTITIES[broken]
    model = theme_named(theme).model
    entity = next(e for e in entities(open_zone, theme) if model and e["type"] == model.type)
    errors = own_sdm_errors([changed(entity, path, value)])
    assert errors and any(message in e for e in errors), errors
