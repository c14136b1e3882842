"""aggregate and export: mergeable partials, disclosure control, reproducible open files.

Values in these tests are exactly representable (integers and halves), so sums do not
depend on the order floats are added in (but in the test of that very order); HLL sketches
are compared by their estimates, since a sketch's serialized bytes depend on the order
devices were added.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from datasketches import hll_sketch
from unit_support import RecordingStore, ReversedListingStore, with_store

from citypipe.core.aggregate import PARTIAL_SCHEMA, merge_partials, partial_of
from citypipe.core.anonymize import CLEAN_SCHEMA
from citypipe.core.columnar import parquet_bytes, read_parquet
from citypipe.core.dcat import catalog
from citypipe.core.export import COLUMNS, disclose, to_csv
from citypipe.domain.city import City
from citypipe.domain.model import Zone
from citypipe.domain.naming import catalog_key, csv_key
from citypipe.service.export import days_with_partials, export_day
from citypipe.service.stage import Deps

T10 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
DAY = "2026-06-01"


def reading(
    minute: float = 0,
    value: float = 1.0,
    zone: str = "centrum",
    quantity: str = "people.presence",
    device: str | None = "device-1",
    day: datetime = T10,
    sensor: str = "wifi-012",
) -> dict[str, Any]:
    """One clean-zone row. Air quality rows carry no pseudonym."""
    people = quantity == "people.presence"
    return {
        "source": "wifi-counters" if people else "air-quality",
        "sensor": sensor if people else "aq-007",
        "quantity": quantity,
        "unit": "{device}" if people else "ug/m3",
        "value": value,
        "observed_at": day + timedelta(minutes=minute),
        "zone": zone,
        # pseudonyms are per sensor: the same device has another one at each sensor
        "pseudonym": f"{sensor}:{device}" if people else None,
    }


def no2(minute: float = 0, value: float = 20.0, zone: str = "centrum") -> dict[str, Any]:
    return reading(minute, value, zone, quantity="air.no2")


def devices(
    count: int, minute: float = 0, first: int = 1, sensor: str = "wifi-012"
) -> list[dict[str, Any]]:
    """One presence reading from each of ``count`` distinct devices, seen by ``sensor``."""
    return [
        reading(minute, device=f"device-{i}", sensor=sensor) for i in range(first, first + count)
    ]


def clean(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=CLEAN_SCHEMA)


def readable(partial: pa.Table) -> list[dict[str, Any]]:
    """A partial's rows with each HLL sketch replaced by its estimate."""
    return [{**cell, "devices": estimate(cell["devices"])} for cell in partial.to_pylist()]


def estimate(blob: bytes | None) -> int | None:
    """Distinct devices of a serialized HLL sketch (None for non-personal rows)."""
    return None if blob is None else round(hll_sketch.deserialize(blob).get_estimate())


# --- partials ----------------------------------------------------------------------------


def test_a_partial_holds_count_sum_min_and_max_per_15_minute_window() -> None:
    # Given NO2 readings at 10:00, 10:07, 10:14 and 10:15, 10:29
    table = clean(no2(0, 20.0), no2(7, 24.5), no2(14, 18.0), no2(15, 30.0), no2(29, 31.5))
    # When the partial is computed
    cells = readable(partial_of(table))
    # Then there is one cell per window, with the window's statistics
    assert [(c["window_start"], c["count"], c["sum"], c["min"], c["max"]) for c in cells] == [
        (T10, 3, 62.5, 18.0, 24.5),
        (T10 + timedelta(minutes=15), 2, 61.5, 30.0, 31.5),
    ]


def test_cells_are_split_by_zone_and_quantity() -> None:
    table = clean(no2(1, zone="centrum"), no2(2, zone="noord"), reading(3, zone="centrum"))
    cells = {(c["zone"], c["quantity"]) for c in readable(partial_of(table))}
    assert cells == {
        ("centrum", "air.no2"),
        ("noord", "air.no2"),
        ("centrum", "people.presence"),
    }


def test_a_partial_keeps_one_row_per_sensor_of_a_cell() -> None:
    # Given two Wi-Fi counters in the same zone and window
    table = clean(*devices(3, sensor="wifi-012"), *devices(2, sensor="wifi-013"))
    # Then each sensor has its own row, with its own device count
    assert [(r["sensor"], r["count"], r["devices"]) for r in readable(partial_of(table))] == [
        ("wifi-012", 3, 3),
        ("wifi-013", 2, 2),
    ]


def test_a_partial_has_the_partial_schema() -> None:
    assert partial_of(clean(no2())).schema == PARTIAL_SCHEMA


def test_a_personal_cell_counts_distinct_devices_not_readings() -> None:
    # Given five readings from three devices in one window
    table = clean(*devices(3), *devices(2, minute=5))
    # Then the cell counts five readings and three devices
    [cell] = readable(partial_of(table))
    assert (cell["count"], cell["devices"]) == (5, 3)


def test_a_non_personal_cell_has_no_device_sketch() -> None:
    [cell] = partial_of(clean(no2())).to_pylist()
    assert cell["devices"] is None


def test_a_partial_keeps_no_pseudonym() -> None:
    # Given three devices' pseudonyms in the clean rows
    pseudonyms = {row["pseudonym"] for row in devices(3)}
    # When their partial is written and read back as the aggregates zone holds it
    partial = read_parquet(parquet_bytes(partial_of(clean(*devices(3)))))
    # Then no column holds a pseudonym, in clear or inside the device sketch's bytes
    assert partial.column_names == PARTIAL_SCHEMA.names
    assert "pseudonym" not in partial.column_names
    [row] = partial.to_pylist()
    assert not pseudonyms & {v for v in row.values() if isinstance(v, str)}
    assert all(p.encode() not in row["devices"] for p in pseudonyms)
    assert estimate(row["devices"]) == 3


# --- merging -------------------------------------------------------------------------------

A = clean(no2(0, 20.0), no2(16, 22.5), *devices(4), *devices(2, minute=20))
B = clean(no2(3, 19.0), no2(40, 25.0), *devices(3, minute=9, first=3))
C = clean(no2(8, 21.5, zone="noord"), *devices(6, minute=14, first=2, sensor="wifi-013"))


def test_merging_is_order_independent() -> None:
    a, b = partial_of(A), partial_of(B)
    assert readable(merge_partials([a, b])) == readable(merge_partials([b, a]))


def test_merging_is_associative() -> None:
    a, b, c = partial_of(A), partial_of(B), partial_of(C)
    left = merge_partials([merge_partials([a, b]), c])
    right = merge_partials([a, merge_partials([b, c])])
    assert readable(left) == readable(right)


def test_merged_partials_equal_the_partial_of_all_readings_at_once() -> None:
    merged = merge_partials([partial_of(A), partial_of(B), partial_of(C)])
    whole = partial_of(pa.concat_tables([A, B, C]))
    assert readable(merged) == readable(whole)


def test_a_device_seen_in_two_partials_is_counted_once() -> None:
    # Given devices 1-4 in one partial and devices 3-5 in another, same window
    merged = merge_partials(
        [partial_of(clean(*devices(4))), partial_of(clean(*devices(3, first=3)))]
    )
    # Then the merged cell counts five devices
    [cell] = readable(merged)
    assert (cell["count"], cell["devices"]) == (7, 5)


def test_merging_one_partial_changes_nothing_but_the_sketch_bytes() -> None:
    a = partial_of(A)
    assert readable(merge_partials([a])) == readable(a)


def test_merging_nothing_gives_an_empty_partial() -> None:
    merged = merge_partials([])
    assert (merged.num_rows, merged.schema) == (0, PARTIAL_SCHEMA)


# --- disclosure control --------------------------------------------------------------------


def published(city: City, *rows: dict[str, Any]) -> list[dict[str, str]]:
    return disclose(city, partial_of(clean(*rows))).rows


def test_a_personal_cell_of_fewer_than_k_devices_is_suppressed(city: City) -> None:
    # Given a cell of k - 1 = 9 devices
    [row] = published(city, *devices(city.disclosure.k - 1))
    # Then it is listed as suppressed with every figure blank
    assert row["status"] == "suppressed"
    assert [row[c] for c in ("count", "sum", "min", "max", "mean", "distinct_devices")] == [""] * 6
    assert (row["zone"], row["quantity"]) == ("centrum", "people.presence")


def test_a_personal_cell_of_k_devices_is_published(city: City) -> None:
    [row] = published(city, *devices(city.disclosure.k), *devices(2, minute=1))
    assert row["status"] == "published"
    assert (row["count"], row["distinct_devices"]) == ("12", "10")


def test_a_people_cell_is_suppressed_when_no_single_sensor_saw_k_devices(city: City) -> None:
    # Given two sensors of a zone that saw 6 devices each: 12 pseudonyms, but a person
    # seen by both has two of them, so only 6 people are proven
    rows = published(city, *devices(6, sensor="wifi-012"), *devices(6, sensor="wifi-013"))
    # Then the cell is suppressed
    assert [row["status"] for row in rows] == ["suppressed"]


def test_a_people_cell_is_published_when_one_sensor_saw_k_devices(city: City) -> None:
    # Given one sensor that saw 10 devices and another that saw 3
    rows = published(city, *devices(10, sensor="wifi-012"), *devices(3, sensor="wifi-013"))
    # Then the cell is published over both sensors, distinct devices counted per sensor
    [row] = rows
    assert (row["status"], row["count"], row["distinct_devices"]) == ("published", "13", "13")


def test_a_cell_adds_up_its_sensors(city: City) -> None:
    [row] = published(
        city,
        reading(1, 1.0, device="a", sensor="wifi-012"),
        *devices(10, minute=2, sensor="wifi-012"),
        reading(3, 4.0, device="b", sensor="wifi-013"),
    )
    assert (row["count"], row["sum"], row["min"], row["max"]) == ("12", "15.0", "1.0", "4.0")


@pytest.mark.parametrize("count", [1, 2], ids=["one-reading", "two-readings"])
def test_a_non_personal_cell_is_always_published(city: City, count: int) -> None:
    [row] = published(city, *(no2(i, 20.0 + i) for i in range(count)))
    assert row["status"] == "published"
    assert row["distinct_devices"] == ""


def test_a_published_row_has_the_windows_figures(city: City) -> None:
    [row] = published(city, no2(1, 20.0), no2(2, 25.0), no2(3, 22.5))
    assert row == {
        "window_start": "2026-06-01T10:00:00Z",
        "window_end": "2026-06-01T10:15:00Z",
        "zone": "centrum",
        "quantity": "air.no2",
        "unit": "ug/m3",
        "count": "3",
        "sum": "67.5",
        "min": "20.0",
        "max": "25.0",
        "mean": "22.5",
        "distinct_devices": "",
        "status": "published",
    }


def test_disclosure_counts_published_and_suppressed_cells(city: City) -> None:
    result = disclose(
        city, partial_of(clean(no2(), *devices(3), *devices(10, minute=20), no2(zone="noord")))
    )
    assert (result.published, result.suppressed, len(result.rows)) == (3, 1, 4)


def test_the_csv_has_the_documented_columns_in_order(city: City) -> None:
    body = to_csv(published(city, no2(), *devices(3)))
    header, *rows = body.decode().splitlines()
    assert header == (
        "window_start,window_end,zone,quantity,unit,count,sum,min,max,mean,distinct_devices,status"
    )
    assert header.split(",") == COLUMNS
    assert rows == [
        "2026-06-01T10:00:00Z,2026-06-01T10:15:00Z,centrum,air.no2,ug/m3,1,20.0,20.0,20.0,20.0,,"
        "published",
        "2026-06-01T10:00:00Z,2026-06-01T10:15:00Z,centrum,people.presence,{device},,,,,,,"
        "suppressed",
    ]


# --- export_day: the day's open file and catalogue ------------------------------------------


def put_partial(deps: Deps, name: str, *rows: dict[str, Any], day: str = DAY) -> str:
    key = f"aggregates/velden/date={day}/hour=10/mixed/{name}.parquet"
    deps.store.put(deps.names.bucket(Zone.AGGREGATES), key, parquet_bytes(partial_of(clean(*rows))))
    return key


def open_file(deps: Deps, key: str) -> bytes:
    return deps.store.get(deps.names.bucket(Zone.OPEN), key).body


def test_export_publishes_the_days_csv_and_catalogue(memory_deps: Deps) -> None:
    # Given two partials of 1 June
    put_partial(memory_deps, "a", no2(0, 20.0), *devices(10))
    put_partial(memory_deps, "b", no2(5, 25.0))
    # When the day is exported
    result = export_day(memory_deps, DAY)
    # Then the CSV holds the merged cells and the catalogue lists the day
    assert result == "done"
    rows = list(
        csv.DictReader(io.StringIO(open_file(memory_deps, csv_key("velden", DAY)).decode()))
    )
    assert [(r["quantity"], r["count"], r["status"]) for r in rows] == [
        ("air.no2", "2", "published"),
        ("people.presence", "10", "published"),
    ]
    document = json.loads(open_file(memory_deps, catalog_key("velden")))
    [dataset] = document["dcat:dataset"]
    assert [d["dct:title"]["@value"] for d in dataset["dcat:distribution"]] == [
        f"sensor-aggregates {DAY}"
    ]


def test_exporting_the_same_partials_again_is_a_duplicate_that_writes_nothing(
    memory_deps: Deps,
) -> None:
    # Given a day already exported
    deps = with_store(memory_deps, RecordingStore)
    put_partial(deps, "a", no2(), *devices(10))
    assert export_day(deps, DAY) == "done"
    before = {k: o.etag for k, o in deps.store.buckets[deps.names.bucket(Zone.OPEN)].items()}
    writes = len(deps.store.operations)
    # When it is exported again with the same partials
    again = export_day(deps, DAY)
    # Then it is a duplicate: nothing written, the open files unchanged
    assert again == "duplicate"
    assert len(deps.store.operations) == writes
    after = {k: o.etag for k, o in deps.store.buckets[deps.names.bucket(Zone.OPEN)].items()}
    assert after == before


def test_the_open_files_do_not_depend_on_the_order_partials_are_listed(
    memory_deps: Deps,
) -> None:
    # Given two stacks holding the same partials, one listing them in reverse key order.
    # Float addition is not associative: summed as a, b, c the cell is (1e16 - 1e16) + 1 = 1,
    # as c, b, a it is (1 - 1e16) + 1e16 = 0; only a fixed merge order is reproducible.
    other = with_store(memory_deps, ReversedListingStore)
    for deps in (memory_deps, other):
        put_partial(deps, "a", no2(0, 1e16))
        put_partial(deps, "b", no2(1, -1e16))
        put_partial(deps, "c", no2(2, 1.0))
    # When each exports the day
    export_day(memory_deps, DAY)
    export_day(other, DAY)
    # Then both publish byte-identical files, with the sum of the key order
    for key in (csv_key("velden", DAY), catalog_key("velden")):
        assert open_file(memory_deps, key) == open_file(other, key)
    [row] = csv.DictReader(io.StringIO(open_file(other, csv_key("velden", DAY)).decode()))
    assert row["sum"] == "1.0"


def test_a_late_partial_republishes_the_day(memory_deps: Deps) -> None:
    # Given a day exported with 9 devices in a cell (suppressed)
    put_partial(memory_deps, "a", *devices(9))
    export_day(memory_deps, DAY)
    # When a late partial brings a tenth device and the day is exported again
    put_partial(memory_deps, "late", *devices(1, first=10))
    result = export_day(memory_deps, DAY)
    # Then the file is replaced and the cell is now published
    assert result == "done"
    text = open_file(memory_deps, csv_key("velden", DAY)).decode()
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["status"], row["distinct_devices"]) == ("published", "10")


def test_the_catalogue_lists_every_published_day(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2(), day="2026-06-01")
    put_partial(memory_deps, "b", no2(), day="2026-06-02")
    export_day(memory_deps, "2026-06-02")
    export_day(memory_deps, "2026-06-01")
    document = json.loads(open_file(memory_deps, catalog_key("velden")))
    [dataset] = document["dcat:dataset"]
    assert [d["dcat:downloadURL"]["@id"] for d in dataset["dcat:distribution"]] == [
        "https://data.velden.example/open/velden/sensor-aggregates/date=2026-06-01/"
        "sensor-aggregates_2026-06-01.csv",
        "https://data.velden.example/open/velden/sensor-aggregates/date=2026-06-02/"
        "sensor-aggregates_2026-06-02.csv",
    ]


def test_days_with_partials_are_the_days_an_export_of_everything_publishes(
    memory_deps: Deps,
) -> None:
    put_partial(memory_deps, "a", no2(), day="2026-06-02")
    put_partial(memory_deps, "b", no2(), day="2026-06-01")
    put_partial(memory_deps, "c", no2(), day="2026-06-01")
    assert days_with_partials(memory_deps) == ["2026-06-01", "2026-06-02"]


# --- the DCAT-AP catalogue -------------------------------------------------------------------


def test_the_catalogue_spans_the_published_days_under_the_citys_licence(city: City) -> None:
    document = catalog(
        city, "sensor-aggregates", [("2026-06-01", "open/a.csv"), ("2026-06-03", "open/b.csv")]
    )
    [dataset] = document["dcat:dataset"]
    assert dataset["dct:temporal"]["dcat:startDate"]["@value"] == "2026-06-01"
    assert dataset["dct:temporal"]["dcat:endDate"]["@value"] == "2026-06-03"
    assert {d["dct:license"]["@id"] for d in dataset["dcat:distribution"]} == {city.licence}
    assert document["dct:publisher"]["foaf:name"] == city.publisher.name


def test_the_catalogue_states_the_disclosure_threshold(city: City) -> None:
    [dataset] = catalog(city, "sensor-aggregates", [])["dcat:dataset"]
    assert f"{city.disclosure.k} distinct devices" in dataset["dct:description"]["@value"]


def test_a_day_whose_file_was_overwritten_by_a_racing_export_is_published_again(
    memory_deps: Deps,
) -> None:
    # Given a day exported, then its file replaced by an older export that finished last
    put_partial(memory_deps, "a", no2())
    assert export_day(memory_deps, DAY) == "done"
    key = csv_key("velden", DAY)
    good = open_file(memory_deps, key)
    memory_deps.store.put(memory_deps.names.bucket(Zone.OPEN), key, b"stale\n")
    # When the day is exported again with the same partials
    result = export_day(memory_deps, DAY)
    # Then the file is repaired instead of the export being taken for a duplicate
    assert result == "done"
    assert open_file(memory_deps, key) == good
