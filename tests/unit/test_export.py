"""export: disclosure control, a dataset per theme in five formats, versions, and a day
that is always published.

Values are exactly representable (integers and halves), so sums do not depend on the
order floats are added in (but in the test of that very order).
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE
from unit_support import (
    DAY,
    RELEASE_KEYS,
    RecordingStore,
    ReversedListingStore,
    city_data,
    clean,
    devices,
    exporting,
    no2,
    open_file,
    put_partial,
    reading,
    release_of,
    vehicles,
    with_store,
)

from citypipe.adapters import scratch
from citypipe.core.aggregate import cells, partial_of
from citypipe.core.columnar import read_parquet
from citypipe.core.disclosure import (
    IMPLAUSIBLE,
    NOT_FINITE,
    DisclosedCell,
    Status,
    complete_grid,
    disclose,
    treatment,
)
from citypipe.core.people import ABOVE_CEILING, FEWER_THAN_K
from citypipe.core.publish import geo
from citypipe.domain.city import City, parse_city
from citypipe.domain.errors import TransientError
from citypipe.domain.export_books import Publication
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.ports import Body, StoredObject
from citypipe.service.export import ExportPorts, days_with_partials, export_day, export_request
from citypipe.service.export.ledger import entries
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out
from citypipe_local.fakes import InMemoryObjectStore


def disclosed(city: City, *rows: dict[str, Any], key: bytes = b"noise") -> list[DisclosedCell]:
    """Disclosure control of these clean rows, people counted as export counts them."""
    return disclose(city, cells(partial_of(clean(*rows))), release_of(city, *rows, key=key))


def csv_rows(deps: Deps, theme: str, day: str = DAY) -> list[dict[str, str]]:
    body = open_file(deps, StackNames("velden").open_file_key(theme, OpenFormat.CSV, day))
    return list(csv.DictReader(io.StringIO(body.decode())))


def publication(deps: Deps, theme: str, day: str = DAY) -> Publication:
    return Publication.model_validate_json(
        open_file(deps, StackNames("velden").publication_key(theme, day))
    )


def open_objects(deps: Deps) -> dict[str, str]:
    """Every open object's etag, by key."""
    return {i.key: i.etag for i in deps.store.list(deps.names.bucket(Zone.OPEN))}


# --- disclosure control --------------------------------------------------------------------


def many(windows: int, count: int, first: int = 1) -> list[dict[str, Any]]:
    """``count`` devices in each of ``windows`` consecutive windows, distinct per window
    (so no device reaches the cap)."""
    return [r for w in range(windows) for r in devices(count, 15 * w, first + count * w)]


def test_a_people_cell_shows_its_devices_plus_noise_and_nothing_else(city: City) -> None:
    # Given 40 windows of 60 devices each
    found = disclosed(city, *many(40, 60))
    # Then each is published with one figure, noisy, and no count, sum or extreme
    assert {c.status for c in found} == {Status.PUBLISHED}
    assert {(c.count, c.sum, c.min, c.max, c.mean) for c in found} == {(None,) * 5}
    figures = [c.distinct_devices or 0 for c in found]
    assert len(set(figures)) > 1, "noise, not the exact 60 everywhere"
    assert abs(sum(figures) / len(figures) - 60) < 10


def test_a_people_cell_is_decided_on_its_noisy_figure_alone(city: City) -> None:
    # Given 400 windows of k devices each: their noisy figures fall on both sides of k
    found = disclosed(city, *many(400, city.disclosure.k))
    # Then a cell is published exactly when its noisy figure reached k, suppressed with
    # every figure blank (never zero) otherwise, and both happen
    published = [c for c in found if c.status is Status.PUBLISHED]
    suppressed = [c for c in found if c.status is Status.SUPPRESSED]
    assert published and suppressed and len(published) + len(suppressed) == len(found)
    assert min(c.distinct_devices or 0 for c in published) >= city.disclosure.k
    assert {(c.reason, c.distinct_devices, c.count) for c in suppressed} == {
        (FEWER_THAN_K, None, None)
    }


def test_a_device_seen_by_two_sensors_of_a_zone_counts_once(city: City) -> None:
    # Given two sensors of a zone that saw the same 30 devices in a window
    rows = [*devices(30, sensor="wifi-012"), *devices(30, sensor="wifi-013")]
    # Then the zone's exact count is 30, not 60 (one pseudonym a device for the day)
    assert set(release_of(city, *rows).counts.values()) == {30}


def test_an_empty_cell_of_the_grid_is_disclosed_like_any_other(city: City) -> None:
    # Given the complete grid of a day where one window of centrum saw 3 devices
    rows = devices(3)
    grid, _ = complete_grid(city, DAY, ["people.presence"], cells(partial_of(clean(*rows))))
    found = disclose(city, grid, release_of(city, *rows))
    # Then every zone with a counter has all 96 windows, each a noisy figure of its own:
    # suppressed or published, never by what was seen but by the noisy figure
    zones = city.zones_measuring["people.presence"]
    assert len(found) == 96 * len(zones)
    assert {c.status for c in found} <= {Status.SUPPRESSED, Status.PUBLISHED}
    assert {c.reason for c in found if c.status is Status.SUPPRESSED} == {FEWER_THAN_K}


def test_a_window_above_what_its_sensors_can_hear_is_flagged_never_published(
    city: City,
) -> None:
    # Given a window of centrum holding more devices than its counters can hear
    ceiling = city.device_ceilings["centrum", "people.presence"]
    [cell] = disclosed(city, *devices(ceiling + 50))
    # Then it is flagged, its figure blank
    assert (cell.status, cell.reason, cell.distinct_devices) == (
        Status.FLAGGED,
        ABOVE_CEILING,
        None,
    )


def test_the_same_release_draws_the_same_noise_and_another_key_other_noise(
    city: City,
) -> None:
    rows = many(20, 30)
    first = [c.distinct_devices for c in disclosed(city, *rows, key=b"noise-1")]
    again = [c.distinct_devices for c in disclosed(city, *rows, key=b"noise-1")]
    other = [c.distinct_devices for c in disclosed(city, *rows, key=b"noise-2")]
    assert first == again
    assert first != other


def test_one_more_device_makes_another_release_with_fresh_noise(city: City) -> None:
    rows = many(20, 30)
    before = release_of(city, *rows)
    after = release_of(city, *rows, reading(0, device="late"))
    assert before.release != after.release
    shown = [c.distinct_devices for c in disclose(city, cells(partial_of(clean(*rows))), after)]
    assert shown != [c.distinct_devices for c in disclosed(city, *rows)]


def test_people_cells_refuse_to_be_disclosed_without_a_release(city: City) -> None:
    with pytest.raises(ValueError, match="release of people counts"):
        disclose(city, cells(partial_of(clean(*devices(12)))))


@pytest.mark.parametrize("count", [1, 2], ids=["one-reading", "two-readings"])
def test_a_non_personal_cell_is_published_as_measured(city: City, count: int) -> None:
    [cell] = disclosed(city, *(no2(i, 20.0 + i) for i in range(count)))
    assert (cell.status, cell.count, cell.distinct_devices) == (Status.PUBLISHED, count, None)


def test_a_cell_whose_sum_is_not_finite_is_flagged_not_published(city: City) -> None:
    # Given two sensors of a zone that each sent 1e308: their sum overflows
    [cell] = disclosed(city, no2(0, 1e308), {**no2(1, 1e308), "sensor": "aq-008"})
    # Then the cell is flagged with every figure blank
    assert (cell.status, cell.reason) == (Status.FLAGGED, NOT_FINITE)
    assert (cell.count, cell.sum, cell.mean) == (None, None, None)


def test_a_cell_holding_a_negative_count_is_flagged_not_published(city: City) -> None:
    [cell] = disclosed(city, vehicles(0, -5.0), vehicles(1, 12.0))
    assert (cell.status, cell.reason, cell.sum) == (Status.FLAGGED, IMPLAUSIBLE, None)


def test_disclosure_answers_every_cell_in_order(city: City) -> None:
    found = disclosed(city, no2(), *devices(3), *devices(80, minute=20), no2(zone="noord"))
    assert [(c.zone, c.quantity, c.status) for c in found] == [
        ("centrum", "air.no2", Status.PUBLISHED),
        ("centrum", "people.presence", Status.SUPPRESSED),
        ("noord", "air.no2", Status.PUBLISHED),
        ("centrum", "people.presence", Status.PUBLISHED),
    ]


def test_the_people_treatment_states_k_and_the_air_treatment_no_personal_data(
    city: City,
) -> None:
    people = treatment(city, ["people.presence"])
    air = treatment(city, ["air.no2"])
    assert (people.personal, people.k) == (True, 20)
    assert "k = 20" in people.rule
    assert (air.personal, air.k, air.mechanism) == (False, None, None)


def test_the_people_treatment_states_its_guarantee_per_person_day(city: City) -> None:
    people = treatment(city, ["people.presence"])
    assert (
        people.mechanism, people.epsilon, people.delta, people.budget, people.contributions
    ) == ("laplace", 2.0, None, 2.0, 10)  # fmt: skip
    assert "the unit of privacy is one device over one utc day" in people.rule.lower()
    assert "at most 10 zone-windows of a day" in people.rule
    assert "one release of the day" in people.rule and "never again" in people.rule
    assert "ε = 2.0 per person-day over every people dataset" in people.rule
    assert people.resident and "ε = 2.0 per person per day" in people.resident


# --- export_day: a dataset per theme -----------------------------------------------------------


def test_a_day_is_published_per_theme_in_every_format(memory_deps: Deps) -> None:
    # Given a partial with air quality, traffic and people readings
    put_partial(memory_deps, "a", no2(0, 20.0), vehicles(1, 7.0), *devices(10))
    # When the day is exported
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    # Then each theme has its CSV, Parquet, GeoJSON and NGSI-LD at its stable keys
    published = open_objects(memory_deps)
    for theme in ("air-quality", "traffic-flow", "people-counts"):
        for fmt in OpenFormat:
            assert StackNames("velden").open_file_key(theme, fmt, DAY) in published
    assert [(r["quantity"], r["sum"]) for r in csv_rows(memory_deps, "traffic-flow")] == [
        ("traffic.vehicles", "7.0")
    ]


def test_a_theme_without_readings_that_day_publishes_nothing(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2())
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    assert not any("/traffic-flow/" in key for key in open_objects(memory_deps))


def test_two_readings_of_1e308_still_publish_the_day_with_that_cell_flagged(
    memory_deps: Deps,
) -> None:
    # Given a day where two sensors of a zone sent 1e308 in one window, beside sane cells
    put_partial(
        memory_deps,
        "a",
        no2(0, 1e308),
        {**no2(1, 1e308), "sensor": "aq-008"},
        no2(20, 22.5),
        vehicles(2, 9.0),
    )
    # When the day is exported
    result = export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # Then the day is published: the cell flagged and blank, the others as measured
    assert result == "done"
    rows = csv_rows(memory_deps, "air-quality")
    assert [(r["window_start"], r["status"], r["reason"], r["sum"]) for r in rows] == [
        ("2026-06-01T10:00:00Z", "flagged", NOT_FINITE, ""),
        ("2026-06-01T10:15:00Z", "published", "", "22.5"),
    ]
    assert csv_rows(memory_deps, "traffic-flow")[0]["sum"] == "9.0"


def test_a_negative_count_is_never_published_as_measured(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", vehicles(0, -5.0), vehicles(1, 12.0))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    [row] = csv_rows(memory_deps, "traffic-flow")
    assert (row["status"], row["sum"], row["min"]) == ("flagged", "", "")


def test_the_csv_of_a_theme_without_people_has_no_device_column(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2(1, 20.0), no2(2, 25.0), *devices(3))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    air = open_file(
        memory_deps, StackNames("velden").open_file_key("air-quality", OpenFormat.CSV, DAY)
    )
    people = open_file(
        memory_deps, StackNames("velden").open_file_key("people-counts", OpenFormat.CSV, DAY)
    )
    assert air.decode().splitlines() == [
        "window_start,window_end,zone,quantity,unit,count,sum,min,max,mean,status,reason",
        "2026-06-01T10:00:00Z,2026-06-01T10:15:00Z,centrum,air.no2,ug/m3,2,45.0,20.0,25.0,22.5,"
        "published,",
    ]
    header, *rows = people.decode().splitlines()
    assert header == (
        "window_start,window_end,zone,quantity,unit,count,sum,min,max,mean,distinct_devices,"
        "status,reason"
    )
    assert (
        "2026-06-01T10:00:00Z,2026-06-01T10:15:00Z,centrum,people.presence,{device},,,,,,,"
        "suppressed,fewer_than_k_devices"
    ) in rows


def test_exporting_the_same_partials_again_is_a_duplicate_that_writes_nothing(
    memory_deps: Deps,
) -> None:
    # Given a day already exported
    deps = with_store(memory_deps, RecordingStore)
    put_partial(deps, "a", no2(), *devices(10))
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    before, writes = open_objects(deps), len(deps.store.operations)
    # When it is exported again with the same partials
    again = export_day(deps, exporting(RELEASE_KEYS), DAY)
    # Then it is a duplicate: nothing written, the open files unchanged
    assert again == "duplicate"
    assert len(deps.store.operations) == writes
    assert open_objects(deps) == before


def test_the_open_files_do_not_depend_on_the_order_partials_are_listed(
    memory_deps: Deps,
) -> None:
    # Given two stacks holding the same partials, one listing them in reverse key order.
    # Float addition is not associative: summed as a, b, c the cell is (1e9 - 1e9) + 3e-7,
    # as c, b, a it is (3e-7 - 1e9) + 1e9 = 2.38e-7; only a fixed merge order is
    # reproducible (the Parquet keeps every bit of the sum).
    other = with_store(memory_deps, ReversedListingStore)
    for deps in (memory_deps, other):
        for name, value in (("a", 1e9), ("b", -1e9), ("c", 3e-7)):
            put_partial(deps, name, reading(0, value, quantity="energy.active"))
    # When each exports the day
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    export_day(other, exporting(RELEASE_KEYS), DAY)
    # Then both publish byte-identical open zones, with the sum of the key order
    first = memory_deps.store.buckets[memory_deps.names.bucket(Zone.OPEN)]
    second = other.store.buckets[other.names.bucket(Zone.OPEN)]
    assert {k: o.body for k, o in first.items()} == {k: o.body for k, o in second.items()}
    parquet = open_file(
        other, StackNames("velden").open_file_key("energy", OpenFormat.PARQUET, DAY)
    )
    assert read_parquet(parquet)["sum"].to_pylist() == [3e-7]


def test_a_day_is_read_from_its_partials_concurrently(memory_deps: Deps) -> None:
    # Given a store whose reads of partials wait until a second read is in flight
    deps = with_store(memory_deps, PairedReadsStore)
    put_partial(deps, "a", no2(0))
    put_partial(deps, "b", no2(1))
    # When the day is exported, then the two reads overlapped (else the barrier breaks)
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    assert deps.store.paired == 2


class PairedReadsStore(InMemoryObjectStore):
    """Each read of an aggregates object waits for another one to be in flight."""

    def __init__(self, buckets: Any = ()) -> None:
        super().__init__(list(buckets))
        self.barrier = threading.Barrier(2, timeout=5)
        self.paired = 0

    def get(self, bucket: str, key: str) -> StoredObject:
        if key.startswith("aggregates/"):
            self.barrier.wait()
            self.paired += 1
        return super().get(bucket, key)


# --- a day of any size: a few windows at a time ------------------------------------------------


def a_busy_day(deps: Deps) -> None:
    """Three partials of a day across every window of it: air quality of several sensors
    with values whose float sums depend on their order, traffic in two zones, and people
    counts (with noise) where some windows reach k and some do not."""
    for part in range(3):
        rows = []
        for window in range(0, 96, 3):
            minute = window * 15 - 600 + part  # T10 - 10 h: the day's first window
            for sensor in range(3):
                value = 20.1 + 0.37 * sensor + 0.013 * part + window / 7
                rows.append({**no2(minute, value), "sensor": f"aq-{sensor:03}"})
                rows.append({**no2(minute, value * 1.1, zone="noord"), "sensor": f"aq-1{sensor}"})
            rows.append(vehicles(minute, 3.3 + part, zone="west"))
            rows.append(vehicles(minute, 1.7 * window, zone="oost"))
            if window % 2 == 0:
                rows += devices(4 + 3 * part, minute, first=100 * part)
                rows += devices(5, minute, first=100 * part, sensor="wifi-013")
        put_partial(deps, f"part-{part}", *rows)


def test_a_day_merged_a_few_windows_at_a_time_publishes_the_same_bytes(
    city: City, memory_stack: Callable[[City], Deps]
) -> None:
    # Given the same busy day in two stacks
    whole, grouped = memory_stack(city), memory_stack(city)
    a_busy_day(whole)
    a_busy_day(grouped)
    # When one exports it in one group and the other a window (a partial row) at a time
    assert export_day(whole, exporting(RELEASE_KEYS), DAY, group_rows=10**9) == "done"
    assert export_day(grouped, exporting(RELEASE_KEYS), DAY, group_rows=1) == "done"
    # Then every open file, publication record and ε charge is the same bytes
    files = {k: open_file(whole, k) for k in open_objects(whole) if DAY in k}
    assert {k: open_file(grouped, k) for k in open_objects(grouped) if DAY in k} == files
    assert len(files) == 3 * 6  # air quality, traffic, people: 5 formats and a record each
    assert entries(grouped) == entries(whole) and len(entries(whole)) == 1
    # And the people day was published in part, with noise, and suppressed in part
    statuses = {r["status"] for r in csv_rows(grouped, "people-counts")}
    assert statuses == {"published", "suppressed"}


# --- versions: late data ---------------------------------------------------------------------


def test_a_late_partial_publishes_a_new_version_with_a_note(memory_deps: Deps) -> None:
    # Given a day exported with one traffic cell
    put_partial(memory_deps, "a", vehicles(0, 7.0))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # When a late partial brings a reading of that cell and one of another zone
    put_partial(memory_deps, "late", vehicles(1, 3.0), vehicles(2, 5.0, zone="noord"))
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    # Then the file at the same key holds both cells: version 2, and why
    assert [(r["zone"], r["sum"]) for r in csv_rows(memory_deps, "traffic-flow")] == [
        ("centrum", "10.0"),
        ("noord", "5.0"),
    ]
    record = publication(memory_deps, "traffic-flow")
    assert [(n.version, n.partials, n.note) for n in record.history] == [
        (1, None, "first publication"),
        (2, None, NOTE),
    ]


NOTE = (
    "late data: readings 1 -> 3, cells 1 -> 2, published 1 -> 2, suppressed 0 -> 0, "
    "flagged 0 -> 0; 1 cells added, 1 changed (0 newly published, 0 newly suppressed or "
    "flagged)"
)


def test_a_version_note_keeps_the_counts_when_the_previous_csv_is_gone(
    memory_deps: Deps,
) -> None:
    # Given a day exported, and its CSV then lost
    put_partial(memory_deps, "a", vehicles(0, 7.0))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    key = StackNames("velden").open_file_key("traffic-flow", OpenFormat.CSV, DAY)
    memory_deps.store.delete(memory_deps.names.bucket(Zone.OPEN), key)
    # When late data is exported
    put_partial(memory_deps, "late", vehicles(1, 3.0), vehicles(2, 5.0, zone="noord"))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # Then version 2 says what the counts say, and no more
    assert (
        publication(memory_deps, "traffic-flow").history[-1].note == NOTE.split(";", maxsplit=1)[0]
    )


def test_the_catalogue_records_what_a_new_version_changed(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", vehicles(0, 7.0))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    put_partial(memory_deps, "late", vehicles(1, 3.0), vehicles(2, 5.0, zone="noord"))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    document = json.loads(open_file(memory_deps, StackNames("velden").catalog_key()))
    [traffic] = [
        d for d in document["dcat:dataset"] if d["dct:identifier"] == "velden/traffic-flow"
    ]
    assert traffic["adms:versionNotes"]["@value"] == f"2026-06-01 version 2: {NOTE}."
    titles = {d["dct:title"]["@value"] for d in traffic["dcat:distribution"]}
    assert "Traffic flow, 2026-06-01 (CSV), version 2" in titles


def test_a_people_day_is_released_once_and_late_people_data_changes_nothing_published(
    memory_deps: Deps,
) -> None:
    # Given a people day released (97 detections of 37 devices), then one late device
    put_partial(memory_deps, "a", *devices(37), *devices(30, minute=20), *devices(30, minute=40))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    catalogue = open_file(memory_deps, StackNames("velden").catalog_key())
    put_partial(memory_deps, "late", *devices(1, first=99))
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    # Then the day's one release stands: version 1, the same files and catalogue, one
    # ledger entry — whether the late device came shows nowhere — and the record states
    # no readings
    record = publication(memory_deps, "people-counts")
    assert (record.version, record.readings) == (1, None)
    assert open_file(memory_deps, StackNames("velden").catalog_key()) == catalogue
    assert [e.dataset for _, e in entries(memory_deps)] == ["people-counts"]
    shown = open_file(memory_deps, StackNames("velden").publication_key("people-counts", DAY))
    for exact in (b'"readings": 97', b'"readings": 98', b": 97,", b": 37,"):
        assert exact not in shown


def test_late_data_of_one_theme_leaves_the_others_files_and_version_alone(
    memory_deps: Deps,
) -> None:
    # Given a day of air quality and traffic exported
    deps = with_store(memory_deps, RecordingStore)
    put_partial(deps, "a", no2(0), vehicles(1))
    export_day(deps, exporting(RELEASE_KEYS), DAY)
    writes = len(deps.store.operations)
    # When a late partial brings air quality only
    put_partial(deps, "late", no2(30))
    export_day(deps, exporting(RELEASE_KEYS), DAY)
    # Then traffic's files were not written again, and it stays at version 1
    written = [key for _, _, key in deps.store.operations[writes:]]
    assert not [k for k in written if "/traffic-flow/" in k]
    assert publication(deps, "traffic-flow").version == 1
    assert publication(deps, "air-quality").version == 2


# --- one theme failing never blocks the others ----------------------------------------------


class FailingThemeStore(InMemoryObjectStore):
    """Writes of one theme's open files fail transiently until ``heal()``."""

    def __init__(self, buckets: Any = (), theme: str = "") -> None:
        super().__init__(list(buckets))
        self.theme = theme

    def heal(self) -> None:
        self.theme = ""

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        published = key.startswith("open/") and not key.endswith(".json")
        if self.theme and published and f"/{self.theme}/" in key:
            raise TransientError(f"SlowDown: {key}")
        return super()._put(bucket, key, body, content_type, if_absent)


def test_a_theme_that_fails_does_not_block_the_others(memory_deps: Deps) -> None:
    # Given a store that refuses the air quality files
    deps = with_store(memory_deps, FailingThemeStore, theme="air-quality")
    put_partial(deps, "a", no2(0), vehicles(1), *devices(10))
    # When the day is exported, the failure is raised for a retry...
    with pytest.raises(TransientError):
        export_day(deps, exporting(RELEASE_KEYS), DAY)
    # ...after traffic and people were published and the portal lists them
    assert csv_rows(deps, "traffic-flow") and csv_rows(deps, "people-counts")
    portal = open_file(deps, StackNames("velden").portal_key()).decode()
    assert 'id="traffic-flow"' in portal and 'id="air-quality"' not in portal


def test_a_theme_that_fails_as_its_files_are_finished_does_not_block_the_others(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the air quality day failing as its GeoJSON is made (after every cell was written)
    made = geo.zones_geojson

    def failing(city: City, theme: Any, *args: Any) -> Any:
        if theme.slug == "air-quality":
            raise ValueError("the zones' map failed")
        return made(city, theme, *args)

    monkeypatch.setattr(geo, "zones_geojson", failing)
    put_partial(memory_deps, "a", no2(0), vehicles(1), *devices(10))
    # When the day is exported, the failure is raised for a retry...
    with pytest.raises(ValueError, match="map failed"):
        export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # ...after traffic and people were published and the portal lists them
    assert csv_rows(memory_deps, "traffic-flow") and csv_rows(memory_deps, "people-counts")
    portal = open_file(memory_deps, StackNames("velden").portal_key()).decode()
    assert 'id="traffic-flow"' in portal and 'id="air-quality"' not in portal


def test_an_export_removes_the_spill_an_export_that_died_left_and_no_living_ones(
    memory_deps: Deps, tmp_path: Path
) -> None:
    # Given the spill of an export killed mid-way (its lock free: its process is gone) and
    # the spill of an export still running (its lock held)
    dead = tmp_path / f"{scratch.PREFIX}dead"
    (dead / "partials").mkdir(parents=True)
    (dead / scratch.LOCK).touch()
    living = tmp_path / f"{scratch.PREFIX}living"
    living.mkdir()
    (living / scratch.LOCK).touch()
    put_partial(memory_deps, "a", no2(0))
    with (living / scratch.LOCK).open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        # When a day is exported with its scratch space there
        ports = ExportPorts(RELEASE_KEYS, scratch.TempScratch(tmp_path))
        assert export_day(memory_deps, ports, DAY) == "done"
    # Then the dead export's spill is gone, the living one's kept, and its own removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [living.name]


def test_the_retry_after_a_theme_failed_publishes_it_and_skips_the_others(
    memory_deps: Deps,
) -> None:
    deps = with_store(memory_deps, FailingThemeStore, theme="air-quality")
    put_partial(deps, "a", no2(0), vehicles(1))
    with pytest.raises(TransientError):
        export_day(deps, exporting(RELEASE_KEYS), DAY)
    traffic = open_objects(deps)[
        StackNames("velden").open_file_key("traffic-flow", OpenFormat.CSV, DAY)
    ]
    deps.store.heal()
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    assert csv_rows(deps, "air-quality")[0]["status"] == "published"
    assert open_objects(deps)[
        StackNames("velden").open_file_key("traffic-flow", OpenFormat.CSV, DAY)
    ] == (traffic)


class OnceFailingStore(InMemoryObjectStore):
    """The first read of every partial and the first write of every day's CSV and of the
    catalogue fail transiently."""

    def __init__(self, buckets: Any = ()) -> None:
        super().__init__(list(buckets))
        self.failed: set[tuple[str, str]] = set()

    def _once(self, what: str, key: str) -> None:
        if (what, key) not in self.failed:
            self.failed.add((what, key))
            raise TransientError(f"SlowDown: {key}")

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        if (key.endswith(".csv") and "/date=" in key) or key.endswith("catalog.jsonld"):
            self._once("put", key)
        return super()._put(bucket, key, body, content_type, if_absent)

    def get(self, bucket: str, key: str) -> StoredObject:
        if key.startswith("aggregates/"):
            self._once("get", key)
        return super().get(bucket, key)


def test_reads_and_writes_that_fail_once_are_tried_again_at_once(memory_deps: Deps) -> None:
    # Given a store where every partial's first read and every CSV's first write fail
    deps = with_store(memory_deps, OnceFailingStore)
    put_partial(deps, "a", no2(0), vehicles(1))
    put_partial(deps, "b", no2(2))
    # When the day is exported, then it is published in this one attempt
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    assert csv_rows(deps, "air-quality") and csv_rows(deps, "traffic-flow")


def test_a_day_that_fails_does_not_block_the_other_days_of_a_request(memory_deps: Deps) -> None:
    deps = with_store(memory_deps, FailingThemeStore, theme="air-quality")
    put_partial(deps, "a", no2(0), day="2026-06-01")
    put_partial(deps, "b", vehicles(0), day="2026-06-02")
    request = deps.city.slug
    with pytest.raises(TransientError):
        export_request(deps, exporting(RELEASE_KEYS), _request(request))
    assert csv_rows(deps, "traffic-flow", "2026-06-02")


def _request(city: str) -> Any:
    from citypipe.domain.model import Message

    return Message(city=city, stage="export", bucket="", key="")


# --- repairs and listings ---------------------------------------------------------------------


def test_a_day_whose_file_was_overwritten_by_a_racing_export_is_published_again(
    memory_deps: Deps,
) -> None:
    # Given a day exported, then its file replaced by an older export that finished last
    put_partial(memory_deps, "a", no2())
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    key = StackNames("velden").open_file_key("air-quality", OpenFormat.CSV, DAY)
    good = open_file(memory_deps, key)
    memory_deps.store.put(memory_deps.names.bucket(Zone.OPEN), key, b"stale\n")
    # When the day is exported again with the same partials
    result = export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # Then the file is repaired instead of the export being taken for a duplicate
    assert result == "done"
    assert open_file(memory_deps, key) == good
    assert publication(memory_deps, "air-quality").version == 1


def test_a_catalogue_overwritten_by_a_racing_build_is_built_again(memory_deps: Deps) -> None:
    # Given a day exported, then its catalogue replaced by a build from older records
    put_partial(memory_deps, "a", no2())
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    good = open_file(memory_deps, StackNames("velden").catalog_key())
    memory_deps.store.put(
        memory_deps.names.bucket(Zone.OPEN), StackNames("velden").catalog_key(), b"{}"
    )
    # When the day is exported again with the same partials
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "duplicate"
    # Then the catalogue is repaired
    assert open_file(memory_deps, StackNames("velden").catalog_key()) == good


def test_the_catalogue_lists_every_published_day(memory_deps: Deps) -> None:
    put_partial(memory_deps, "a", no2(), day="2026-06-01")
    put_partial(memory_deps, "b", no2(), day="2026-06-02")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-02")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-01")
    document = json.loads(open_file(memory_deps, StackNames("velden").catalog_key()))
    [dataset] = [d for d in document["dcat:dataset"] if d["dct:identifier"] == "velden/air-quality"]
    csvs = [
        d["dcat:downloadURL"]["@id"]
        for d in dataset["dcat:distribution"]
        if d["dct:title"]["@value"].endswith("(CSV)")
    ]
    assert csvs == [
        "https://data.velden.example/open/velden/air-quality/date=2026-06-01/"
        "air-quality_2026-06-01.csv",
        "https://data.velden.example/open/velden/air-quality/date=2026-06-02/"
        "air-quality_2026-06-02.csv",
    ]


def test_days_with_partials_are_the_days_an_export_of_everything_publishes(
    memory_deps: Deps,
) -> None:
    put_partial(memory_deps, "a", no2(), day="2026-06-02")
    put_partial(memory_deps, "b", no2(), day="2026-06-01")
    put_partial(memory_deps, "c", no2(), day="2026-06-01")
    assert days_with_partials(memory_deps) == ["2026-06-01", "2026-06-02"]


def test_late_data_of_another_theme_charges_no_budget_for_the_people_counts(
    memory_deps: Deps,
) -> None:
    # Given a day of people counts published (one release charged)
    put_partial(memory_deps, "a", *devices(12), no2(0))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    key = StackNames("velden").open_file_key("people-counts", OpenFormat.CSV, DAY)
    people = open_file(memory_deps, key)
    # When late air quality data makes a new partial set and the day is exported again
    put_partial(memory_deps, "late", no2(5, 30.0))
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    # Then the people counts are the same bytes and the same release: charged once
    assert open_file(
        memory_deps, StackNames("velden").open_file_key("people-counts", OpenFormat.CSV, DAY)
    ) == (people)
    assert [(e.dataset, e.epsilon, e.spent) for _, e in entries(memory_deps)] == [
        ("people-counts", 2.0, 2.0)
    ]


def test_a_new_day_rewrites_the_catalogue_but_not_a_notice_a_sensor(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What only the city file makes (the registers, a notice per sensor: thousands in a
    big city) is not written again by a publication; the catalogue is."""
    put_partial(memory_deps, "a", no2(), day="2026-06-01")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-01")
    names = StackNames("velden")
    notices = names.notice_key("x").rsplit("/", 1)[0]
    assert list(memory_deps.store.list(memory_deps.names.bucket(Zone.OPEN), notices))
    written: list[str] = []
    put = memory_deps.store.put_or_replace

    def recorded(bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        written.append(key)
        return put(bucket, key, *args, **kwargs)

    monkeypatch.setattr(memory_deps.store, "put_or_replace", recorded)
    put_partial(memory_deps, "b", no2(), day="2026-06-02")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-02")
    assert names.catalog_key() in written
    assert [key for key in written if key.startswith(notices)] == []


def made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a build made the city's files (rendered a notice per sensor)."""
    from citypipe.service.export import metadata

    made = [0]
    render = metadata.residents_files

    def counted(*args: Any) -> Any:
        made[0] += 1
        return render(*args)

    monkeypatch.setattr(metadata, "residents_files", counted)
    return made


def test_the_citys_files_are_not_made_again_while_this_city_count_and_release_built_them(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a day published (the city's files made once) and its catalogue
    rendered = made(monkeypatch)
    put_partial(memory_deps, "a", no2(), day="2026-06-01")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-01")
    catalogue = open_file(memory_deps, StackNames("velden").catalog_key())
    assert rendered == [1]
    # When the next day is published, by the same city file, count and release
    put_partial(memory_deps, "b", no2(), day="2026-06-02")
    export_day(memory_deps, exporting(RELEASE_KEYS), "2026-06-02")
    # Then no notice was made again, and the catalogue describes the same register files
    assert rendered == [1]
    document = json.loads(open_file(memory_deps, StackNames("velden").catalog_key()))

    def registers(document: dict[str, Any]) -> list[Any]:
        """The register's files as the catalogue describes them (sizes, checksums)."""
        return [
            d["dcat:distribution"]
            for d in document["dcat:dataset"]
            if d["dct:identifier"] == "velden/register"
        ]

    assert registers(document) == registers(json.loads(catalogue)) != []


def test_the_builds_are_named_alike_in_every_container() -> None:
    """A function's containers hash strings each their own way (PYTHONHASHSEED): what
    names a metadata build must not follow (a set's order did: every new container made
    the city's files again and rewrote the catalogue)."""
    code = (
        "from citypipe.domain.city import load_city; "
        "from citypipe.service.export.metadata import _made_by; "
        f"print(_made_by(load_city({str(CITY_FILE)!r}), 3))"
    )

    def named(seed: str) -> str:
        environment = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", code]
        run = subprocess.run(command, check=False, env=environment, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-500:]
        return run.stdout

    names = {named(seed) for seed in ("1", "2", "3")}
    assert len(names) == 1 and names != {"None\n"}


def test_a_new_release_an_opt_out_or_a_racing_build_makes_the_citys_files_again(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citypipe.service.export import metadata

    rendered = made(monkeypatch)
    put_partial(memory_deps, "a", no2())
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # a new release (its code's digest)
    monkeypatch.setattr(metadata, "_release", lambda: "another release")
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    assert rendered == [2]
    # a resident opts out: the count on the opt-out page
    optout, bucket = memory_deps.names.optout_page_key(), memory_deps.names.bucket(Zone.OPEN)
    opt_out(memory_deps, RELEASE_KEYS, "aabbccddee01")
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    assert rendered == [3]
    assert "1 device is opted out." in open_file(memory_deps, optout).decode()
    # a racing build's older opt-out page, written after this one's
    memory_deps.store.put(bucket, optout, b"0 devices are opted out.")
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    assert rendered == [4]
    assert "1 device is opted out." in open_file(memory_deps, optout).decode()


def test_a_city_file_changed_and_changed_back_republishes_its_notices(memory_deps: Deps) -> None:
    """A build stands only while no other wrote after it: the register (a build's first
    file before) says nothing of a notice's owner, so a city file changed and changed
    back left the changed notices up (the reviewer's finding)."""
    data = city_data()
    data["sources"]["air-quality"]["notice"]["owner"] = "Acme Sensors GmbH"
    changed = parse_city(data, "velden.yaml")
    bucket = memory_deps.names.bucket(Zone.OPEN)
    publish_metadata(memory_deps, exporting().scratch)
    notices = {i.key: i.etag for i in memory_deps.store.list(bucket) if "/notices/" in i.key}
    publish_metadata(dataclasses.replace(memory_deps, city=changed), exporting().scratch)
    assert {i.key: i.etag for i in memory_deps.store.list(bucket) if "/notices/" in i.key} != (
        notices
    )
    publish_metadata(memory_deps, exporting().scratch)
    assert {i.key: i.etag for i in memory_deps.store.list(bucket) if "/notices/" in i.key} == (
        notices
    )


def test_a_marker_not_of_this_shape_makes_the_citys_files_again(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citypipe.service.export import metadata

    rendered = made(monkeypatch)
    made_by = metadata._made_by(memory_deps.city, 0)
    assert made_by is not None
    audit = memory_deps.names.bucket(Zone.AUDIT)
    shapes = (b"[]", b"{}", b"not json", b"\xff", b"[1]", b'[["k"]]', b'"ab"')
    shapes += (b'{"built": 1, "register": []}', b'{"built": "x", "register": [1]}')
    publish_metadata(memory_deps, exporting().scratch)
    for times, body in enumerate(shapes, start=2):
        # the marker naming the build by its inputs, then the build's own marker
        made_by_marker = memory_deps.names.metadata_marker_key(made_by)
        built = json.loads(memory_deps.store.get(audit, made_by_marker).body)["built"]
        marker = made_by_marker if times % 2 else memory_deps.names.metadata_marker_key(built)
        memory_deps.store.put_or_replace(audit, marker, body, "application/json")
        publish_metadata(memory_deps, exporting().scratch)  # made again, not a crash
        assert rendered == [times]


def test_a_racing_builds_older_opt_out_page_is_written_over(memory_deps: Deps) -> None:
    """The opt-out page (the count of opt-outs) is the residents' part's last file: an
    older build's page written after this one's is seen, and written over."""
    put_partial(memory_deps, "a", no2())
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    optout = memory_deps.names.optout_page_key()
    current = open_file(memory_deps, optout)
    memory_deps.store.put(memory_deps.names.bucket(Zone.OPEN), optout, b"an older count")
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "duplicate"
    assert open_file(memory_deps, optout) == current


def test_the_metadata_s_files_between_the_first_and_last_are_written_concurrently(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build puts hundreds of files (a notice a sensor), each a round trip to S3: those
    between its first and last are in flight together. The first and last, which tell
    whether a racing build wrote over it, are written alone, first and last."""
    put_partial(memory_deps, "a", no2())
    store, names = memory_deps.store, memory_deps.names
    notices = names.notice_key("x").rsplit("/", 1)[0]
    put = store.put_or_replace
    events: list[tuple[str, str]] = []  # ("start" | "end", key), in the order they happened
    waiting = [2]  # the first two notices written wait for each other
    together, lock = threading.Barrier(2, timeout=10), threading.Lock()

    def recorded(bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            events.append(("start", key))
            wait = key.startswith(notices) and waiting[0] > 0
            waiting[0] -= wait
        if wait:
            together.wait()  # broken (the export fails) if the second waits after the first
        else:
            time.sleep(0.005)  # a round trip: the others in flight while one is written
        result = put(bucket, key, *args, **kwargs)
        with lock:
            events.append(("end", key))
        return result

    monkeypatch.setattr(store, "put_or_replace", recorded)
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    begun = [key for kind, key in events if kind == "start"]
    first = [k for k in begun if k.startswith(names.register_key("x", "y").rsplit("/", 1)[0])]
    residents = begun[begun.index(first[0]) : begun.index(names.optout_page_key()) + 1]
    assert sum(k.startswith(notices) for k in residents) > 2
    assert residents[0] == first[0]  # its manifest (register/), before anything else of its part
    assert residents[-1] == names.optout_page_key()  # the opt-out page, after every other
    # written alone: the first finished before any other of its part began, the last
    # began once every other had finished
    first_done = events.index(("end", residents[0]))
    last_begun = events.index(("start", residents[-1]))
    assert all(events.index(("start", key)) > first_done for key in residents[1:])
    assert all(events.index(("end", key)) < last_begun for key in residents[:-1])


def test_a_metadata_build_writes_the_sensor_register_once_to_scratch(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensor register (a row a sensor: megabytes in a big city) is written once a
    build, a row at a time, into files: the records' part describes it from them, and the
    city's files are put from scratch, never all in memory (decision 0111)."""
    from citypipe.service.export import metadata

    sinks: list[type] = []
    real = metadata.write_sensor_register

    def counted(city: City, to: dict[str, Any]) -> None:
        sinks.extend(type(sink) for sink in to.values())
        real(city, to)

    monkeypatch.setattr(metadata, "write_sensor_register", counted)
    put_partial(memory_deps, "a", no2())
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    assert sinks and all(not issubclass(kind, io.BytesIO) for kind in sinks)
    assert len(sinks) == len(metadata.SENSOR_FORMATS)


def test_a_new_release_rewrites_the_residents_pages_it_changed(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The residents' part is made again by a new release (its code's digest differs) and
    known by its files' digests: what the release renders differently is written at the
    next export, without a new publication."""
    from citypipe.service.export import metadata

    put_partial(memory_deps, "a", no2())
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    rights = memory_deps.names.rights_page_key()
    rendered = metadata.residents_files

    def new_release(city: City, opted_out: int) -> Iterator[tuple[str, tuple[bytes, str]]]:
        for key, (body, content_type) in rendered(city, opted_out):
            yield key, (body + b"<!-- a new release -->" if key == rights else body, content_type)

    monkeypatch.setattr(metadata, "residents_files", new_release)
    monkeypatch.setattr(metadata, "_release", lambda: "a new release")
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    assert open_file(memory_deps, rights).endswith(b"<!-- a new release -->")
