"""The open zone as published: the catalogue's datasets and HVD tags, the entities' figures,
Frictionless.

A day of a city with every theme (air quality, noise, traffic, parking, people) is
exported in memory (tests/unit/open_support.py). The project's own DCAT-AP, HVD and Smart
Data Models checks of it are tests/unit/test_open_shapes.py; those against the official
files of the reference set are make conformance (tests/conformance/test_open_zone.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
import rdflib
from open_support import (
    THEMES,
    catalogue_graph,
    entities,
    every_theme_city,
    export_every_theme,
    open_body,
)
from rdflib.compare import isomorphic
from unit_support import DAY, RELEASE_KEYS, exporting
from validation import frictionless_validate

from citypipe.domain.city import parse_city
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import HVD_ENVIRONMENT, HVD_METEOROLOGICAL, HVD_MOBILITY, OpenFormat
from citypipe.service.export import export_day
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.kernel import Deps


@pytest.fixture
def exported(memory_deps: Deps) -> Deps:
    return export_every_theme(memory_deps)


# --- the catalogue: datasets and HVD tags -------------------------------------------------


def test_the_catalogue_lists_every_theme_and_distribution(exported: Deps) -> None:
    graph = catalogue_graph(exported)
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    datasets = sorted(str(d).rsplit("/", 1)[1] for d in graph.objects(None, dcat.dataset))
    assert datasets == sorted([*THEMES, "register"])
    # five formats a day for themes with a Smart Data Model, four for parking, and the
    # register, the record of processing and the sensor register in JSON and CSV
    assert len(set(graph.objects(None, dcat.distribution))) == 5 * 5 + 4 + 6


def test_environment_mobility_and_weather_themes_are_tagged_hvd_and_people_counts_are_not(
    exported: Deps,
) -> None:
    r5r = rdflib.Namespace("http://data.europa.eu/r5r/")
    graph = catalogue_graph(exported)
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    categories = {
        str(s).rsplit("/", 1)[1]: str(o)
        for s, o in graph.subject_objects(r5r.hvdCategory)
        if (s, rdflib.RDF.type, dcat.Dataset) in graph
    }
    assert categories == {
        "air-quality": HVD_ENVIRONMENT,
        "noise": HVD_ENVIRONMENT,
        "traffic-flow": HVD_MOBILITY,
        "parking": HVD_MOBILITY,
        "weather": HVD_METEOROLOGICAL,
    }


def test_no_dataset_is_tagged_hvd_under_a_licence_less_open_than_cc_by(
    exported: Deps,
) -> None:
    # Given the same city publishing under ODbL (share-alike: not allowed for HVD)
    data = every_theme_city().model_dump(mode="json")
    data["licence"] = "https://opendatacommons.org/licenses/odbl/1-0/"
    data["partners"]["velden-mobility"]["licence"] = data["licence"]  # its partner agrees
    deps = dataclasses.replace(exported, city=parse_city(data))
    # no partials: nothing new, the metadata rebuilt
    export_day(deps, exporting(RELEASE_KEYS), "2026-06-02")
    publish_metadata(deps, exporting(RELEASE_KEYS).scratch)
    # Then the catalogue claims no High-Value Dataset
    graph = catalogue_graph(deps)
    assert not set(graph.objects(None, rdflib.URIRef("http://data.europa.eu/r5r/hvdCategory")))


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
    assert "reaches k = 20" in descriptions["velden/people-counts"]
    assert "ε = 2.0 per person-day" in descriptions["velden/people-counts"]
    assert "No personal data" in descriptions["velden/air-quality"]


# --- NGSI-LD entities -----------------------------------------------------------------------


def test_a_suppressed_people_cell_gives_no_entity(exported: Deps) -> None:
    # Given the people day's CSV: centrum's 60 devices published among noisy figures
    key = StackNames("velden").open_file_key("people-counts", OpenFormat.CSV, DAY)
    body = open_body(exported, key)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    published = {(r["zone"], r["window_start"]) for r in rows if r["status"] == "published"}
    assert ("centrum", "2026-06-01T10:00:00Z") in published
    # Then exactly the published cells are entities, with their published figure
    names = {f.id: f.properties["name"] for f in exported.city.zones.features}
    found = {(e["areaServed"], e["dateObservedFrom"]) for e in entities(exported, "people-counts")}
    assert found == {(names[zone], start) for zone, start in published}


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
        [
            *(f"{t}-{DAY}" for t in THEMES),
            "transparency-register",
            "records-of-processing",
            "sensor-register",
        ]
    )


def test_frictionless_sees_a_file_that_is_not_the_one_described(
    exported: Deps, tmp_path: Path
) -> None:
    descriptor = copy_open_zone(exported, tmp_path)
    csv = tmp_path / StackNames("velden").open_file_key("noise", OpenFormat.CSV, DAY)
    csv.write_text(csv.read_text().replace("62.0", "63.0"))
    assert not json.loads(frictionless_validate(descriptor).stdout)["valid"]
