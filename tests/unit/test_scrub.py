"""No trail outlives its key: the hourly job takes the pseudonyms out of the clean objects of
person-related sources once their day's secret is destroyed — idempotently, recorded in
the audit zone, leaving every row and every other source alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from unit_support import at, drain, exporting, push, senml_reading

from citypipe.core.columnar import read_parquet
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.domain.export_books import CleanDaySettled, CleanScrubbed
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames, is_scrubbed, scrubbed_key
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.housekeeping import hourly, scrub_clean
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryKeyStore

DAY = datetime(2026, 6, 1, tzinfo=UTC)
# the hourly job at 00:05 on 3 June: with a key retention of 2 days, 1 June's key dies
AFTER = DAY + timedelta(days=2, minutes=5)


@pytest.fixture
def stack(memory_deps: Deps) -> tuple[Deps, InMemoryKeyStore]:
    """1 June of two Wi-Fi counters (20 devices) and an air quality monitor, clean."""
    keys = InMemoryKeyStore()
    evening = at(memory_deps, DAY + timedelta(hours=23))
    push(
        evening,
        keys,
        [
            ("wifi-22", DAY + timedelta(hours=9, minutes=n), f"02:00:00:00:00:{n:02x}")
            for n in range(20)
        ]
        + [("wifi-23", DAY + timedelta(hours=17), "02:00:00:00:01:01")],
    )
    # an air quality monitor's SenML pack of the same day, through the same edge
    pack = [Payload(json.dumps(senml_reading()).encode(), Context(DAY.timestamp() + 36_000), 1)]
    admit(evening, keys, Inbound(pack, Route.REPLAY, FORMATS["senml"]))
    drain(evening)
    return memory_deps, keys


def clean_objects(deps: Deps) -> dict[str, str]:
    return {i.key: i.etag for i in deps.store.list(deps.names.bucket(Zone.CLEAN))}


def rows_of(deps: Deps, key: str) -> list[dict[str, object]]:
    body = deps.store.get(deps.names.bucket(Zone.CLEAN), key).body
    return list(read_parquet(body).to_pylist())


def test_the_day_whose_key_died_keeps_its_rows_without_pseudonyms(
    stack: tuple[Deps, InMemoryKeyStore],
) -> None:
    # Given 1 June's clean objects, each row with its pseudonym
    deps, keys = stack
    before = {k: rows_of(deps, k) for k in clean_objects(deps) if "/wifi-counters/" in k}
    assert before and all(r["pseudonym"] for rows in before.values() for r in rows)
    # When the hourly job destroys 1 June's key
    result = hourly(at(deps, AFTER), exporting(keys), AFTER)
    # Then each object is replaced by a scrubbed copy holding the same rows, no pseudonym
    assert result.clean_scrubbed == len(before)
    for key, rows in before.items():
        assert not deps.store.exists(deps.names.bucket(Zone.CLEAN), key)
        assert rows_of(deps, scrubbed_key(key)) == [{**r, "pseudonym": None} for r in rows]


def test_each_rewrite_is_recorded_in_the_audit_zone(stack: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = stack
    originals = {k: e for k, e in clean_objects(deps).items() if "/wifi-counters/" in k}
    hourly(at(deps, AFTER), exporting(keys), AFTER)
    audit = deps.names.bucket(Zone.AUDIT)
    records = [
        CleanScrubbed.model_validate_json(deps.store.get(audit, i.key).body)
        for i in deps.store.list(audit, f"{StackNames('velden').scrub_prefix()}objects/")
    ]
    assert {(r.input.key, r.input.etag) for r in records} == set(originals.items())
    assert {r.output.key for r in records} == {scrubbed_key(k) for k in originals}
    assert {r.day for r in records} == {"2026-06-01"}


def test_other_sources_clean_objects_are_left_alone(stack: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = stack
    air = {k: e for k, e in clean_objects(deps).items() if "/air-quality/" in k}
    hourly(at(deps, AFTER), exporting(keys), AFTER)
    assert {k: e for k, e in clean_objects(deps).items() if "/air-quality/" in k} == air


def test_a_day_whose_key_lives_keeps_its_pseudonyms(stack: tuple[Deps, InMemoryKeyStore]) -> None:
    # Given the hourly job on 2 June: 1 June's key is kept (today and yesterday)
    deps, keys = stack
    before = clean_objects(deps)
    fired = DAY + timedelta(days=1, minutes=5)
    assert hourly(at(deps, fired), exporting(keys), fired).clean_scrubbed == 0
    assert clean_objects(deps) == before


def test_running_the_job_again_changes_nothing(stack: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = stack
    hourly(at(deps, AFTER), exporting(keys), AFTER)
    first = clean_objects(deps)
    later = AFTER + timedelta(hours=1)
    assert hourly(at(deps, later), exporting(keys), later).clean_scrubbed == 0
    assert clean_objects(deps) == first
    assert all(is_scrubbed(k) for k in first if "/wifi-counters/" in k)


def test_a_rewrite_cut_short_is_finished_once(stack: tuple[Deps, InMemoryKeyStore]) -> None:
    # Given a run that wrote a scrubbed copy and crashed before deleting the original
    deps, keys = stack
    clean = deps.names.bucket(Zone.CLEAN)
    [key, *_] = [k for k in clean_objects(deps) if "/wifi-counters/" in k]
    original = deps.store.get(clean, key).body
    hourly(at(deps, AFTER), exporting(keys), AFTER)
    copy = deps.store.get(clean, scrubbed_key(key)).etag
    deps.store.put(clean, key, original)  # as the crash left it
    # When the next run comes
    later = AFTER + timedelta(hours=1)
    hourly(at(deps, later), exporting(keys), later)
    # Then the original is gone and the copy is the one written before, not a second one
    assert not deps.store.exists(clean, key)
    assert deps.store.get(clean, scrubbed_key(key)).etag == copy
    assert not deps.store.exists(clean, scrubbed_key(scrubbed_key(key)))


def test_a_day_is_settled_once_no_object_of_it_can_come_and_then_skipped(
    stack: tuple[Deps, InMemoryKeyStore],
) -> None:
    deps, _ = stack
    audit = deps.names.bucket(Zone.AUDIT)
    # 3 June: 1 June's key just died, raw objects of it may still be in flight
    scrub_clean(deps, DAY.date() + timedelta(days=2), AFTER)
    assert not deps.store.exists(audit, StackNames("velden").scrub_day_key("2026-06-01"))
    # 5 June: nothing of 1 June can come any more
    settled_at = DAY + timedelta(days=4)
    scrub_clean(deps, DAY.date() + timedelta(days=4), settled_at)
    mark = CleanDaySettled.model_validate_json(
        deps.store.get(audit, StackNames("velden").scrub_day_key("2026-06-01")).body
    )
    assert (mark.day, mark.scrubbed) == ("2026-06-01", 0)
    # an object appearing there anyway (written by hand) is no longer looked at
    deps.store.put(
        deps.names.bucket(Zone.CLEAN),
        "clean/velden/date=2026-06-01/hour=09/wifi-counters/late.parquet",
        b"not parquet",
    )
    assert scrub_clean(deps, DAY.date() + timedelta(days=5), settled_at) == 0
