"""The open formats as pure functions: themes, day summaries, GeoJSON, Turtle, the portal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.compare import isomorphic
from unit_support import (
    DAY,
    RELEASE_KEYS,
    add_source,
    city_data,
    clean,
    devices,
    exact,
    no2,
    open_file,
    put_partial,
    vehicles,
)

from citypipe.core.aggregate import cells, partial_of
from citypipe.core.disclosure import disclose
from citypipe.core.publish.day import theme_day
from citypipe.core.publish.portal import bar_chart, index_html
from citypipe.core.publish.register import register_documents, register_of
from citypipe.core.publish.tables import summarize
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.books import Publication
from citypipe.domain.city import City, parse_city
from citypipe.domain.model import Zone
from citypipe.domain.naming import publication_key
from citypipe.domain.themes import OpenFormat, theme_named, themes_of
from citypipe.service.export import export_day
from citypipe.service.stage import Deps


def summary_of(city: City, quantity: str, *rows: dict[str, Any]) -> dict[str, Any]:
    """The centrum zone's day of one quantity."""
    found = summarize(city, [quantity], disclose(exact(city), cells(partial_of(clean(*rows)))))
    [centrum] = [s for s in found if s.zone == "centrum"]
    return centrum.model_dump()


# --- themes ------------------------------------------------------------------------------


def test_the_themes_are_those_the_citys_sources_declare(city: City) -> None:
    # (the citizen air sensors' profile maps their BME280 fields to weather quantities)
    assert [t.slug for t in themes_of(city)] == [
        "air-quality", "traffic-flow", "people-counts", "weather"
    ]  # fmt: skip


def test_a_source_of_noise_adds_the_noise_theme() -> None:
    data = city_data()
    add_source(data, "noise-monitors", "noise monitor", "noise maps", laeq="noise.laeq")
    assert "noise" in [t.slug for t in themes_of(parse_city(data))]


def test_a_family_without_a_theme_of_its_own_gets_a_plain_one() -> None:
    theme = theme_named("water")
    assert (theme.slug, theme.hvd_category, theme.model) == ("water", None, None)


# --- a zone's day ----------------------------------------------------------------------------


def test_a_concentrations_day_is_the_mean_of_its_readings(city: City) -> None:
    day = summary_of(city, "air.no2", no2(0, 20.0), no2(1, 30.0), no2(20, 40.0))
    assert (day["statistic"], day["value"], day["minimum"], day["maximum"]) == (
        "mean", 30.0, 25.0, 40.0
    )  # fmt: skip
    assert (day["latest_window"], day["latest_value"]) == ("2026-06-01T10:15:00Z", 40.0)


def test_a_counts_day_is_its_total(city: City) -> None:
    day = summary_of(city, "traffic.vehicles", vehicles(0, 7.0), vehicles(20, 9.0))
    assert (day["statistic"], day["value"]) == ("total", 16.0)


def test_a_people_day_sums_published_cells_only(city: City) -> None:
    # Given a window of 12 devices (published) and one of 4 (suppressed)
    day = summary_of(city, "people.presence", *devices(12), *devices(4, minute=20))
    # Then the day's peak is 12 and the suppressed window is counted, never added
    assert (day["value"], day["published"], day["suppressed"]) == (12.0, 1, 1)
    assert day["latest_value"] == 12.0


def test_a_zone_without_readings_has_no_value(city: City) -> None:
    found = summarize(city, ["air.no2"], disclose(city, cells(partial_of(clean(no2())))))
    noord = next(s for s in found if s.zone == "noord")
    assert (noord.value, noord.windows) == (None, 0)


# --- GeoJSON ---------------------------------------------------------------------------------


def test_the_geojson_has_a_feature_per_zone_with_its_day(city: City, tmp_path: Path) -> None:
    found = cells(partial_of(clean(no2(0, 20.0), no2(20, 30.0))))
    result = theme_day(city, themes_of(city)[0], DAY, found, tmp_path)
    document = json.loads(result.files[OpenFormat.GEOJSON].path.read_bytes())
    assert document["type"] == "FeatureCollection"
    assert [f["id"] for f in document["features"]] == [f.id for f in city.zones.features]
    centrum = next(f for f in document["features"] if f["id"] == "centrum")
    assert centrum["geometry"]["type"] == "Polygon"
    assert {k: centrum["properties"][k] for k in ("no2_day_mean", "no2_latest", "no2_unit")} == {
        "no2_day_mean": 25.0,
        "no2_latest": 30.0,
        "no2_unit": "ug/m3",
    }


# --- Turtle ----------------------------------------------------------------------------------


def test_turtle_escapes_what_a_literal_and_an_iri_cannot_hold() -> None:
    document = {
        "@context": {"dct": "http://purl.org/dc/terms/"},
        "@id": "https://example.org/a b",
        "dct:title": {"@value": 'Say "hi"\\\nnow', "@language": "en"},
        "dct:extent": 3,
    }
    turtle = rdflib.Graph().parse(data=to_turtle(document), format="turtle")
    jsonld = rdflib.Graph().parse(
        data=json.dumps({**document, "@id": "https://example.org/a%20b"}), format="json-ld"
    )
    assert isomorphic(turtle, jsonld)


def test_turtle_refuses_what_it_cannot_write_faithfully() -> None:
    with pytest.raises(ValueError, match="float"):
        to_turtle({"@context": {"dct": "http://purl.org/dc/terms/"}, "dct:extent": 1.5})


# --- the portal and the transparency register's place ---------------------------------------


def records(deps: Deps) -> list[Publication]:
    bucket = deps.names.bucket(Zone.OPEN)
    return [
        Publication.model_validate_json(
            deps.store.get(bucket, publication_key("velden", t, DAY)).body
        )
        for t in ("air-quality", "people-counts")
    ]


def test_a_zone_whose_cells_are_all_suppressed_says_so_instead_of_a_zero_bar(
    city: City,
) -> None:
    # Given a zone whose only people cell is suppressed (4 devices)
    four = disclose(exact(city), cells(partial_of(clean(*devices(4)))))
    # When its chart is drawn
    chart = bar_chart(city, "people.presence", summarize(city, ["people.presence"], four))
    # Then it has no bar at all, and says why
    assert chart.count('class="bar"') == 0
    assert ">suppressed</text>" in chart


def test_the_portal_keeps_a_place_for_the_transparency_register(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2(), *devices(10))
    export_day(memory_deps, DAY, keys=RELEASE_KEYS)
    page = index_html(memory_deps.city, themes_of(memory_deps.city), records(memory_deps))
    assert 'id="register"' in page and "will be published here" in page


def test_the_register_is_shown_on_the_portal_and_listed_in_the_catalogue(
    memory_deps: Deps,
) -> None:
    # Given a day published: the metadata build writes the register and the record
    put_partial(memory_deps, "a", no2(), *devices(10))
    export_day(memory_deps, DAY, keys=RELEASE_KEYS)
    documents = register_documents(memory_deps.city)
    register = register_of(memory_deps.city, documents)
    # Then the page shows a row per source and links every file ...
    page = open_file(memory_deps, "open/velden/index.html").decode()
    assert page.count("<h3>wifi-counters · ") == 1
    for file in register.files:
        assert f'href="{file.key.removeprefix("open/velden/")}"' in page
        assert open_file(memory_deps, file.key) == documents[file.key][0]
    # ... and the catalogue lists them as a dataset with a distribution per file
    catalogue_ = json.loads(open_file(memory_deps, "open/velden/catalog.jsonld"))
    [listed] = [d for d in catalogue_["dcat:dataset"] if d["dct:identifier"] == "velden/register"]
    assert sorted(d["dcat:downloadURL"]["@id"] for d in listed["dcat:distribution"]) == sorted(
        f"https://data.velden.example/{f.key}" for f in register.files
    )
