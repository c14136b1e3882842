"""The open zone of a replayed city against the official references: the catalogue with
the DCAT-AP 3.0.1 and HVD shapes, the NGSI-LD entities with the Smart Data Models' schemas.
(Moved from tests/e2e/test_open_data.py, with a small replay of their own; make test
checks a replay against the project's own shapes and schemas,
tests/e2e/test_open_data_shapes.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from open_replay import catalogue, ngsi_ld_entities, replay_small_city
from validation import hvd_subgraph, shacl_report

from citypipe.domain.city import City
from conformance.reference import DCAT_AP_SHAPES, HVD_SHAPES, sdm_errors


@pytest.fixture(scope="module")
def open_dir(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    """``out/open/`` of a small replay: the open bucket, key by key."""
    return replay_small_city(tmp_path_factory, city) / "open"


@pytest.mark.parametrize("shapes", DCAT_AP_SHAPES)
def test_the_catalogue_conforms_to_dcat_ap(
    open_dir: Path, reference_dir: Path, shapes: str
) -> None:
    conforms, report = shacl_report(catalogue(open_dir), reference_dir / "dcat-ap" / shapes)
    assert conforms, report


def test_the_hvd_datasets_conform_to_the_hvd_shapes(open_dir: Path, reference_dir: Path) -> None:
    hvd = hvd_subgraph(catalogue(open_dir))
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    # air quality, traffic flow, weather
    assert len(set(hvd.subjects(rdflib.RDF.type, dcat.Dataset))) == 3
    conforms, report = shacl_report(hvd, reference_dir / "dcat-ap" / HVD_SHAPES)
    assert conforms, report


def test_every_ngsi_ld_entity_is_a_valid_smart_data_model(
    open_dir: Path, reference_dir: Path
) -> None:
    entities = ngsi_ld_entities(open_dir)
    assert {e["type"] for e in entities} == {
        "AirQualityObserved",
        "TrafficFlowObserved",
        "CrowdFlowObserved",
        "WeatherObserved",
    }
    assert sdm_errors(reference_dir, entities) == []
