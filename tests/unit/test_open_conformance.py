"""The open zone conforms to the official references: DCAT-AP 3.0.1 and HVD shapes, the
FIWARE Smart Data Models, Frictionless.

A day of a city with every theme (air quality, noise, traffic, parking, people) is
exported in memory; the reference files are read from ``CITYPIPE_REFERENCE_DIR`` (never
copied into this repository). Each validator is also shown a broken document, so a test
cannot pass because its validator saw nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from conformance import (
    DCAT_AP_SHAPES,
    HVD_SHAPES,
    frictionless_validate,
    hvd_subgraph,
    sdm_errors,
    shacl_report,
)
from rdflib.compare import isomorphic
from unit_support import (
    DAY,
    RELEASE_KEYS,
    add_source,
    city_data,
    devices,
    exporting,
    no2,
    put_partial,
    reading,
    vehicles,
)

from citypipe.domain.city import City, parse_city
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import HVD_ENVIRONMENT, HVD_MOBILITY, OpenFormat
from citypipe.service.export import export_day
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.kernel import Deps

THEMES = ["air-quality", "noise", "traffic-flow", "parking", "people-counts"]


def every_theme_city() -> City:
    """The example city, with noise monitors and parking sensors declared too."""
    data = city_data()
    add_source(
        data,
        "noise-monitors",
        "noise monitor",
        "noise mapping under the Environmental Noise Directive",
        laeq="noise.laeq",
    )
    add_source(data, "parking-sensors", "parking occupancy sensor", "parking guidance",
               occupancy="parking.occupancy")  # fmt: skip
    return parse_city(data)


@pytest.fixture
def exported(memory_deps: Deps) -> Deps:
    deps = dataclasses.replace(memory_deps, city=every_theme_city())
    put_partial(
        deps,
        "a",
        no2(0, 21.5),
        no2(20, 30.0, zone="noord"),
        reading(1, 48.5, quantity="air.pm10"),
        reading(2, 62.0, quantity="noise.laeq"),
        reading(3, 7.0, quantity="traffic.bicycles"),
        reading(4, 81.0, quantity="parking.occupancy", zone="west"),
        vehicles(5, 14.0),
        *devices(12),
        *devices(3, zone="noord"),
    )
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    return deps


def open_body(deps: Deps, key: str) -> bytes:
    return deps.store.get(deps.names.bucket(Zone.OPEN), key).body


def catalogue_graph(deps: Deps) -> rdflib.Graph:
    return rdflib.Graph().parse(
        data=open_body(deps, StackNames("velden").catalog_key()), format="json-ld"
    )


def entities(deps: Deps, theme: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        open_body(deps, StackNames("velden").open_file_key(theme, OpenFormat.NGSI_LD, DAY))
    )
    return found


# --- DCAT-AP 3.0.1 and HVD ------------------------------------------------------------------


@pytest.mark.parametrize("shapes", DCAT_AP_SHAPES)
def test_the_catalogue_conforms_to_the_dcat_ap_shapes(
    exported: Deps, reference_dir: Path, shapes: str
) -> None:
    conforms, report = shacl_report(catalogue_graph(exported), reference_dir / "dcat-ap" / shapes)
    assert conforms, report


def test_the_catalogue_lists_every_theme_and_distribution(exported: Deps) -> None:
    graph = catalogue_graph(exported)
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    datasets = sorted(str(d).rsplit("/", 1)[1] for d in graph.objects(None, dcat.dataset))
    assert datasets == sorted([*THEMES, "register"])
    # four formats a day for themes with a Smart Data Model, three for parking, and the
    # register and the record of processing in JSON and CSV
    assert len(set(graph.objects(None, dcat.distribution))) == 4 * 4 + 3 + 4


def test_the_hvd_datasets_conform_to_the_hvd_shapes(exported: Deps, reference_dir: Path) -> None:
    hvd = hvd_subgraph(catalogue_graph(exported))
    conforms, report = shacl_report(hvd, reference_dir / "dcat-ap" / HVD_SHAPES)
    assert conforms, report


def test_environment_and_mobility_themes_are_tagged_hvd_and_people_counts_are_not(
    exported: Deps,
) -> None:
    r5r = rdflib.Namespace("http://data.europa.eu/r5r/")
    graph = catalogue_graph(exported)
    categories = {
        str(s).rsplit("/", 1)[1]: str(o) for s, o in graph.subject_objects(r5r.hvdCategory)
    }
    assert categories == {
        "air-quality": HVD_ENVIRONMENT,
        "noise": HVD_ENVIRONMENT,
        "traffic-flow": HVD_MOBILITY,
        "parking": HVD_MOBILITY,
    }


def test_no_dataset_is_tagged_hvd_under_a_licence_less_open_than_cc_by(
    exported: Deps,
) -> None:
    # Given the same city publishing under ODbL (share-alike: not allowed for HVD)
    data = every_theme_city().model_dump(mode="json")
    data["licence"] = "https://opendatacommons.org/licenses/odbl/1-0/"
    deps = dataclasses.replace(exported, city=parse_city(data))
    # no partials: nothing new, the metadata rebuilt
    export_day(deps, exporting(RELEASE_KEYS), "2026-06-02")
    publish_metadata(deps)
    # Then the catalogue claims no High-Value Dataset
    graph = catalogue_graph(deps)
    assert not set(graph.objects(None, rdflib.URIRef("http://data.europa.eu/r5r/hvdCategory")))


def test_the_hvd_shapes_see_a_dataset_without_its_category(
    exported: Deps, reference_dir: Path
) -> None:
    # the negative control: the shapes are live on the graph the test hands them
    graph = catalogue_graph(exported)
    graph.remove((None, rdflib.URIRef("http://data.europa.eu/r5r/hvdCategory"), None))
    conforms, _ = shacl_report(hvd_subgraph(graph), reference_dir / "dcat-ap" / HVD_SHAPES)
    assert not conforms


def test_the_turtle_catalogue_is_the_same_graph_as_the_json_ld_one(exported: Deps) -> None:
    turtle = rdflib.Graph().parse(
        data=open_body(exported, StackNames("velden").catalog_key("ttl")), format="turtle"
    )
    assert len(turtle) > 200
    assert isomorphic(turtle, catalogue_graph(exported))


def test_every_dataset_states_its_privacy_treatment(exported: Deps) -> None:
    document = json.loads(open_body(exported, StackNames("velden").catalog_key()))
    descriptions = {
        d["dct:identifier"]: d["dct:description"]["@value"] for d in document["dcat:dataset"]
    }
    assert "k = 10 distinct devices" in descriptions["velden/people-counts"]
    assert "No personal data" in descriptions["velden/air-quality"]


# --- FIWARE Smart Data Models ------------------------------------------------------------


@pytest.mark.parametrize(
    ("theme", "entity_type"),
    [
        ("air-quality", "AirQualityObserved"),
        ("noise", "NoiseLevelObserved"),
        ("traffic-flow", "TrafficFlowObserved"),
        ("people-counts", "CrowdFlowObserved"),
    ],
)
def test_the_ngsi_ld_entities_are_valid_smart_data_models(
    exported: Deps, reference_dir: Path, theme: str, entity_type: str
) -> None:
    found = entities(exported, theme)
    assert found and {e["type"] for e in found} == {entity_type}
    assert sdm_errors(reference_dir, found) == []


def test_the_schemas_reject_a_broken_entity(exported: Deps, reference_dir: Path) -> None:
    [entity] = entities(exported, "people-counts")
    broken = {**entity, "peopleCount": -1, "dateObservedFrom": "yesterday"}
    assert len(sdm_errors(reference_dir, [broken])) == 2


def test_a_suppressed_people_cell_gives_no_entity(exported: Deps) -> None:
    # noord saw 3 devices (under k): only centrum's cell is an entity
    assert [e["areaServed"] for e in entities(exported, "people-counts")] == ["Centrum"]


def test_air_quality_entities_hold_each_pollutants_mean(exported: Deps) -> None:
    centrum = next(e for e in entities(exported, "air-quality") if e["areaServed"] == "Centrum")
    assert (centrum["no2"], centrum["pm10"], centrum["dateObserved"]) == (
        21.5,
        48.5,
        "2026-06-01T10:00:00Z",
    )


# --- Frictionless ---------------------------------------------------------------------------


def copy_open_zone(deps: Deps, target: Path) -> Path:
    bucket = deps.names.bucket(Zone.OPEN)
    for info in deps.store.list(bucket):
        path = target / info.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(deps.store.get(bucket, info.key).body)
    return target / StackNames("velden").datapackage_key()


def test_the_data_package_passes_frictionless_validate(exported: Deps, tmp_path: Path) -> None:
    descriptor = copy_open_zone(exported, tmp_path)
    result = frictionless_validate(descriptor)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["tasks"], indent=1)[:4000]
    assert sorted(t["name"] for t in report["tasks"]) == sorted(
        [*(f"{t}-{DAY}" for t in THEMES), "transparency-register", "records-of-processing"]
    )


def test_frictionless_sees_a_file_that_is_not_the_one_described(
    exported: Deps, tmp_path: Path
) -> None:
    descriptor = copy_open_zone(exported, tmp_path)
    csv = tmp_path / StackNames("velden").open_file_key("noise", OpenFormat.CSV, DAY)
    csv.write_text(csv.read_text().replace("62.0", "63.0"))
    assert not json.loads(frictionless_validate(descriptor).stdout)["valid"]
