"""The open zone of a replayed city against the project's own shapes and schemas: the
catalogue with DCAT-AP 3.0.1 (tests/shapes/dcat-ap.ttl) and, for its High-Value Datasets,
DCAT-AP HVD (tests/shapes/hvd.ttl), the API requirement included; the NGSI-LD entities
with the Smart Data Models (tests/schemas/sdm/). A broken copy of each must fail. (make
conformance checks a replay against the official files, tests/conformance/test_replay.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from open_replay import catalogue, ngsi_ld_entities, replay_small_city
from validation import DCAT_AP, HVD, hvd_subgraph, own_sdm_errors, shacl_findings, shacl_report

from citypipe.domain.city import City

pytestmark = pytest.mark.slow  # a replay: `make test-fast` skips it

DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
R5R = rdflib.Namespace("http://data.europa.eu/r5r/")


@pytest.fixture(scope="module")
def open_dir(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    """``out/open/`` of a small replay: the open bucket, key by key."""
    return replay_small_city(tmp_path_factory, city) / "open"


def test_the_catalogue_conforms_to_the_dcat_ap_shapes(open_dir: Path) -> None:
    conforms, report = shacl_report(catalogue(open_dir), DCAT_AP)
    assert conforms, report


def test_the_dcat_ap_shapes_see_a_dataset_without_its_title(open_dir: Path) -> None:
    graph = catalogue(open_dir)
    [dataset] = [d for d in graph.subjects(rdflib.RDF.type, DCAT.Dataset) if "air" in str(d)]
    graph.remove((dataset, DCT.title, None))
    assert (dataset, DCT.title, "Violation") in shacl_findings(graph, DCAT_AP)


def test_the_hvd_datasets_conform_to_the_hvd_shapes(open_dir: Path) -> None:
    hvd = hvd_subgraph(catalogue(open_dir))
    # air quality, traffic flow, weather
    assert len(set(hvd.subjects(rdflib.RDF.type, DCAT.Dataset))) == 3
    conforms, report = shacl_report(hvd, HVD)
    assert conforms, report


def test_the_hvd_datasets_are_served_by_an_api_under_the_hvd_rules(open_dir: Path) -> None:
    hvd = hvd_subgraph(catalogue(open_dir))
    [service] = set(hvd.subjects(rdflib.RDF.type, DCAT.DataService))
    assert str(hvd.value(service, DCAT.endpointURL)).endswith("/features")
    assert set(hvd.objects(service, DCAT.servesDataset)) == set(
        hvd.subjects(rdflib.RDF.type, DCAT.Dataset)
    )
    assert (service, R5R.applicableLegislation, None) in hvd


def test_the_hvd_shapes_see_an_hvd_without_an_api(open_dir: Path) -> None:
    graph = catalogue(open_dir)
    graph.remove((None, DCAT.accessService, None))
    conforms, report = shacl_report(hvd_subgraph(graph), HVD)
    assert not conforms and "available through an API" in report


def test_the_hvd_shapes_see_a_dataset_without_its_category(open_dir: Path) -> None:
    graph = catalogue(open_dir)
    graph.remove((None, R5R.hvdCategory, None))
    datasets = set(graph.subjects(R5R.applicableLegislation, None)) & set(
        graph.subjects(rdflib.RDF.type, DCAT.Dataset)
    )
    findings = shacl_findings(hvd_subgraph(graph), HVD)
    assert datasets and {(d, R5R.hvdCategory, "Violation") for d in datasets} <= findings


def test_every_ngsi_ld_entity_is_a_valid_smart_data_model(open_dir: Path) -> None:
    entities = ngsi_ld_entities(open_dir)
    assert {e["type"] for e in entities} == {
        "AirQualityObserved",
        "TrafficFlowObserved",
        "CrowdFlowObserved",
        "WeatherObserved",
    }
    assert own_sdm_errors(entities) == []


def test_the_schemas_see_a_broken_entity(open_dir: Path) -> None:
    entity = next(e for e in ngsi_ld_entities(open_dir) if e["type"] == "TrafficFlowObserved")
    assert len(own_sdm_errors([{**entity, "intensity": -1, "dateObservedTo": "later"}])) == 2
