"""The open formats as pure functions: themes, day summaries, GeoJSON, Turtle, the portal."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq
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
    exporting,
    no2,
    open_file,
    put_partial,
    release_of,
    vehicles,
)

from citypipe.core.aggregate import cells, partial_of
from citypipe.core.disclosure import DisclosedCell, Status, complete_grid, disclose
from citypipe.core.publish import tables
from citypipe.core.publish.day import formats_of, theme_day
from citypipe.core.publish.jsontext import JsonArrayWriter, json_bytes
from citypipe.core.publish.ngsild import entities
from citypipe.core.publish.portal import bar_chart, index_html
from citypipe.core.publish.register import register_documents, register_of
from citypipe.core.publish.sensors import SENSOR_FORMATS, write_sensor_register
from citypipe.core.publish.tables import CsvWriter, DaySummary, ParquetWriter, summarize
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.city import City, parse_city
from citypipe.domain.export_books import Publication
from citypipe.domain.model import Zone
from citypipe.domain.naming import InputId, StackNames, input_id
from citypipe.domain.themes import OpenFormat, theme_named, themes_of
from citypipe.service.export import export_day
from citypipe.service.kernel import Deps


def disclosed_rows(city: City, *rows: dict[str, Any]) -> list[DisclosedCell]:
    """These clean rows disclosed, people counted as export counts them."""
    return disclose(city, cells(partial_of(clean(*rows))), release_of(city, *rows))


def summary_of(city: City, quantity: str, *rows: dict[str, Any]) -> dict[str, Any]:
    """The centrum zone's day of one quantity."""
    found = summarize(city, [quantity], disclosed_rows(city, *rows))
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
    # Given a window of 80 devices (published) and one of 2 (suppressed)
    rows = [*devices(80), *devices(2, minute=20, first=100)]
    shown = [c for c in disclosed_rows(city, *rows) if c.zone == "centrum"]
    assert [c.status for c in shown] == [Status.PUBLISHED, Status.SUPPRESSED]
    day = summary_of(city, "people.presence", *rows)
    # Then the day's peak is the published (noisy) figure, the suppressed window is
    # counted, never added
    figure = float(shown[0].distinct_devices or 0)
    assert (day["value"], day["published"], day["suppressed"]) == (figure, 1, 1)
    assert day["latest_value"] == figure


def test_a_zone_without_readings_has_no_value(city: City) -> None:
    found = summarize(city, ["air.no2"], disclose(city, cells(partial_of(clean(no2())))))
    noord = next(s for s in found if s.zone == "noord")
    assert (noord.value, noord.windows) == (None, 0)


# --- the open files, written a few windows at a time ---------------------------------------


def a_disclosed_day(city: City) -> list[DisclosedCell]:
    """Cells of many windows and zones, published, suppressed and flagged, people and not."""
    rows = []
    for window in range(12):
        minute = 15 * window
        rows += [no2(minute, 20.0 + window / 3), no2(minute, 31.7, zone="noord")]
        rows += [
            vehicles(minute, 4.0 + window),
            {**vehicles(minute), "quantity": "traffic.bicycles"},
        ]
        rows += devices(70 if window % 2 else 3, minute, first=100 * window)
    rows.append(no2(200, -5.0))  # implausible: flagged
    grid, _ = complete_grid(city, DAY, ["people.presence"], cells(partial_of(clean(*rows))))
    return disclose(city, grid, release_of(city, *rows))


def chunks(cells: list[DisclosedCell]) -> list[list[DisclosedCell]]:
    """The cells in chunks of whole windows, one to three windows a chunk."""
    windows = sorted({c.window_start for c in cells})
    groups = []
    start = 0
    while start < len(windows):
        groups.append(windows[start : start + 1 + start % 3])
        start += 1 + start % 3
    return [[c for c in cells if c.window_start in set(g)] for g in groups]


@pytest.mark.parametrize("personal", [False, True])
def test_a_csv_written_in_chunks_is_the_csv_written_whole(city: City, personal: bool) -> None:
    day = a_disclosed_day(city)
    whole, chunked = io.BytesIO(), io.BytesIO()
    writer = CsvWriter(whole, personal)
    writer.write(day)
    writer.close()
    writer = CsvWriter(chunked, personal)
    for chunk in chunks(day):
        writer.write(chunk)
    writer.close()
    assert chunked.getvalue() == whole.getvalue()
    assert len(whole.getvalue().decode().splitlines()) == 1 + len(day)
    assert not whole.closed  # the sink stays its owner's


def test_a_parquet_file_written_in_chunks_is_the_file_written_whole(
    city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_disclosed_day(city)
    monkeypatch.setattr(tables, "ROW_GROUP", 50)  # several row groups, across chunks
    whole, chunked = io.BytesIO(), io.BytesIO()
    writer = ParquetWriter(whole, personal=True)
    writer.write(day)
    writer.close()
    writer = ParquetWriter(chunked, personal=True)
    for chunk in chunks(day):
        writer.write(chunk)
    writer.close()
    assert chunked.getvalue() == whole.getvalue()
    found = pq.ParquetFile(io.BytesIO(whole.getvalue()))
    assert found.metadata.num_row_groups == -(-len(day) // 50)
    assert found.read()["zone"].to_pylist() == [c.zone for c in day]


def test_an_empty_day_is_a_parquet_file_of_no_rows() -> None:
    sink = io.BytesIO()
    ParquetWriter(sink, personal=False).close()
    assert pq.read_table(io.BytesIO(sink.getvalue())).num_rows == 0


def test_ngsi_ld_written_in_chunks_is_the_json_of_the_whole_day(city: City) -> None:
    day = a_disclosed_day(city)
    traffic = theme_named("traffic-flow")
    whole = entities(city, traffic, day, "https://example.org/day.csv")
    sink = io.BytesIO()
    writer = JsonArrayWriter(sink)
    for chunk in chunks(day):
        writer.write(entities(city, traffic, chunk, "https://example.org/day.csv"))
    writer.close()
    assert sink.getvalue() == json_bytes(whole, compact=True)
    # in window order, then by id (bicycles beside the vehicles of the same window)
    assert [e["dateObservedFrom"] for e in whole] == sorted(e["dateObservedFrom"] for e in whole)
    assert {e.get("vehicleType") for e in whole} == {None, "bicycle"}


@pytest.mark.parametrize("personal", [True, False])
def test_a_csv_row_is_the_documented_columns_values(city: City, personal: bool) -> None:
    # the CSV writes its rows by hand (for speed): the Parquet's fields, as text, in order
    writer = CsvWriter(io.BytesIO(), personal)
    for cell in a_disclosed_day(city):
        expected = [tables.text(v) for v in tables._fields(cell, personal).values()]
        assert writer._row(cell) == expected


def test_empty_chunks_leave_no_mark_in_the_json_array() -> None:
    sink = io.BytesIO()
    writer = JsonArrayWriter(sink)
    for chunk in ([], [{"b": 1, "a": "é"}], [], [[1.5], None], []):
        writer.write(chunk)
    writer.close()
    assert sink.getvalue() == json_bytes([{"a": "é", "b": 1}, [1.5], None], compact=True)


def test_an_empty_json_array_is_the_json_of_no_items() -> None:
    sink = io.BytesIO()
    JsonArrayWriter(sink).close()
    assert sink.getvalue() == json_bytes([], compact=True)


def test_a_day_summarized_in_chunks_is_the_day_summarized_whole(city: City) -> None:
    day = a_disclosed_day(city)
    quantities = ["air.no2", "people.presence", "traffic.bicycles", "traffic.vehicles"]
    summary = DaySummary(city, quantities)
    for chunk in chunks(day):
        summary.add(chunk)
    assert summary.result() == summarize(city, quantities, day)
    assert all(s.published for s in summary.result() if s.zone == "centrum")


def test_an_id_made_part_by_part_is_the_id_of_all_parts() -> None:
    made = InputId("release", "people-counts")
    made.add("a|b", "c")
    made.add()
    made.add("d")
    assert made.value() == input_id("release", "people-counts", "a|b", "c", "d")
    assert InputId().value() == input_id()


# --- GeoJSON ---------------------------------------------------------------------------------


def test_the_geojson_has_a_feature_per_zone_with_its_day(city: City) -> None:
    found = cells(partial_of(clean(no2(0, 20.0), no2(20, 30.0))))
    theme = themes_of(city)[0]
    sinks = {fmt: io.BytesIO() for fmt in formats_of(theme)}
    theme_day(city, theme, DAY, found, sinks)
    document = json.loads(sinks[OpenFormat.GEOJSON].getvalue())
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
            deps.store.get(bucket, StackNames("velden").publication_key(t, DAY)).body
        )
        for t in ("air-quality", "people-counts")
    ]


def test_a_zone_whose_cells_are_all_suppressed_says_so_instead_of_a_zero_bar(
    city: City,
) -> None:
    # Given a zone whose only people cell is suppressed (4 devices)
    four = disclosed_rows(city, *devices(4))
    assert [c.status for c in four] == [Status.SUPPRESSED]
    # When its chart is drawn
    chart = bar_chart(city, "people.presence", summarize(city, ["people.presence"], four))
    # Then it has no bar at all, and says why
    assert chart.count('class="bar"') == 0
    assert ">suppressed</text>" in chart


def test_the_portal_keeps_a_place_for_the_transparency_register(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2(), *devices(10))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    page = index_html(memory_deps.city, themes_of(memory_deps.city), records(memory_deps))
    assert 'id="register"' in page and "will be published here" in page


def test_the_register_is_shown_on_the_portal_and_listed_in_the_catalogue(
    memory_deps: Deps,
) -> None:
    # Given a day published: the metadata build writes the register and the record
    put_partial(memory_deps, "a", no2(), *devices(10))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    sinks = {ext: io.BytesIO() for ext in SENSOR_FORMATS}
    write_sensor_register(memory_deps.city, sinks)
    documents = register_documents(memory_deps.city) | {
        memory_deps.names.register_key("sensor-register", ext): (sink.getvalue(), kind)
        for (ext, sink), kind in zip(sinks.items(), SENSOR_FORMATS.values(), strict=True)
    }
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
