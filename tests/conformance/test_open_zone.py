"""The open zone conforms to the official references: DCAT-AP 3.0.1 and HVD shapes, the
FIWARE Smart Data Models.

A day of a city with every theme (air quality, noise, traffic, parking, people) is
exported in memory (tests/unit/open_support.py); the reference files are read from
``CITYPIPE_REFERENCE_DIR`` (never copied into this repository). Each validator is also
shown a broken document, so a test cannot pass because its validator saw nothing. (Moved
from tests/unit/test_open_conformance.py; make test checks the same export against the
project's own shapes and schemas, tests/unit/test_open_shapes.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from open_support import catalogue_graph, entities, export_every_theme
from validation import hvd_subgraph, shacl_report

from citypipe.service.kernel import Deps
from conformance.reference import DCAT_AP_SHAPES, HVD_SHAPES, sdm_errors


@pytest.fixture
def exported(memory_deps: Deps) -> Deps:
    return export_every_theme(memory_deps)


# --- DCAT-AP 3.0.1 and HVD ------------------------------------------------------------------


@pytest.mark.parametrize("shapes", DCAT_AP_SHAPES)
def test_the_catalogue_conforms_to_the_dcat_ap_shapes(
    exported: Deps, reference_dir: Path, shapes: str
) -> None:
    conforms, report = shacl_report(catalogue_graph(exported), reference_dir / "dcat-ap" / shapes)
    assert conforms, report


def test_the_hvd_datasets_conform_to_the_hvd_shapes(exported: Deps, reference_dir: Path) -> None:
    hvd = hvd_subgraph(catalogue_graph(exported))
    conforms, report = shacl_report(hvd, reference_dir / "dcat-ap" / HVD_SHAPES)
    assert conforms, report


def test_the_hvd_shapes_see_a_dataset_without_its_category(
    exported: Deps, reference_dir: Path
) -> None:
    # the negative control: the shapes are live on the graph the test hands them
    graph = catalogue_graph(exported)
    graph.remove((None, rdflib.URIRef("http://data.europa.eu/r5r/hvdCategory"), None))
    conforms, _ = shacl_report(hvd_subgraph(graph), reference_dir / "dcat-ap" / HVD_SHAPES)
    assert not conforms


# --- FIWARE Smart Data Models ------------------------------------------------------------


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
    exported: Deps, reference_dir: Path, theme: str, entity_type: str
) -> None:
    found = entities(exported, theme)
    assert found and {e["type"] for e in found} == set(entity_type.split())
    assert sdm_errors(reference_dir, found) == []


def test_the_schemas_reject_a_broken_entity(exported: Deps, reference_dir: Path) -> None:
    entity = entities(exported, "people-counts")[0]
    broken = {**entity, "peopleCount": -1, "dateObservedFrom": "yesterday"}
    assert len(sdm_errors(reference_dir, [broken])) == 2
