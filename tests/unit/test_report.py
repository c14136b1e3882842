"""The run report: books read back from the lineage records the stages really wrote, and
from the DLQs. Every scenario runs the stages on the in-memory stack; nothing is written
by hand but what the scenario is about (a lost or dead-lettered message)."""

from __future__ import annotations

import json
from functools import partial

from repo import load_event
from unit_support import RELEASE_KEYS, exporting, lines, open_file, senml_reading, wifi_observation

from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.ports import KeyStore
from citypipe.service.aggregate import aggregate_clean
from citypipe.service.anonymize import anonymize_raw
from citypipe.service.export import export_day
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe.service.stage import run_stage
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.report import build_report

DAY = "2026-06-01"


def lineage_bodies(deps: Deps, function: Function) -> list[bytes]:
    bucket = deps.names.bucket(Zone.AUDIT)
    keys = [i.key for i in deps.store.list(bucket, deps.names.lineage_prefix(function))]
    return [deps.store.get(bucket, key).body for key in keys]


def take(deps: Deps, function: Function) -> list[Message]:
    """Every claim check waiting for ``function`` (received and deleted)."""
    queue = deps.names.queue(function)
    messages = []
    while batch := deps.queue.receive(queue, 10):
        deps.queue.delete(queue, [m.receipt_handle for m in batch])
        messages += [Message.model_validate_json(m.body) for m in batch]
    return messages


def ingest(deps: Deps, payloads: list[str], fmt: str = "canonical") -> None:
    message = drop_lines(deps, fmt, payloads)
    run_stage(Function.INGEST, message, deps, partial(ingest_drop, keys=InMemoryKeyStore()))


def anonymize(deps: Deps, keys: KeyStore, messages: list[Message]) -> None:
    for message in messages:
        run_stage(Function.ANONYMIZE, message, deps, anonymize_raw)


def aggregate(deps: Deps) -> None:
    for message in take(deps, Function.AGGREGATE):
        run_stage(Function.AGGREGATE, message, deps, aggregate_clean)


def wifi_day() -> list[str]:
    """The Wi-Fi fixture (4 readings of 1 June), one broken payload, one unknown sensor."""
    return lines(
        *load_event("canonical_wifi.json"), "{not json", wifi_observation(sensor="bike-01")
    )


def one_raw_object_left(deps: Deps, keys: KeyStore) -> Message:
    """Two raw objects (the Wi-Fi day, one late reading); the first is anonymized, the
    second's claim check is returned unprocessed."""
    ingest(deps, wifi_day())
    ingest(deps, lines(wifi_observation(observed_at="2026-06-01T11:00:00Z")))
    first, left = sorted(take(deps, Function.ANONYMIZE), key=lambda m: -m.records)
    anonymize(deps, keys, [first])
    return left


def a_clean_run(deps: Deps, keys: KeyStore) -> None:
    ingest(deps, wifi_day())
    anonymize(deps, keys, take(deps, Function.ANONYMIZE))
    aggregate(deps)
    export_day(deps, exporting(RELEASE_KEYS), DAY)


def test_only_the_datasets_published_are_listed(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a day with people counters' readings only: every other theme has no cell
    a_clean_run(memory_deps, memory_keys)
    # When the report is built
    report = build_report(memory_deps, payloads_sent=6)
    # Then it lists the one dataset published, not the themes exported empty
    assert report["datasets"] == ["people-counts"]
    exported = {r["dataset"] for r in map(json.loads, lineage_bodies(memory_deps, Function.EXPORT))}
    assert exported > {"people-counts"}


def test_a_clean_run_balances(memory_deps: Deps, memory_keys: InMemoryKeyStore) -> None:
    # Given six payloads run through every stage
    a_clean_run(memory_deps, memory_keys)
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=6)
    # Then they balance, with what ingest accepted and quarantined
    assert report["balanced"], report["checks"]
    assert (report["received"], report["accepted"], report["quarantined"]) == (
        6,
        4,
        {"invalid_json": 1, "unknown_device": 1},
    )
    assert report["stages"]["aggregate"]["aggregated"] == 4
    assert (
        report["published_cells"] + report["suppressed_cells"]
        == report["stages"]["export"]["cells"]
    )
    assert report["days"] == [DAY]


def test_readings_lost_between_stages_unbalance_the_books(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a raw object whose claim check was lost (neither processed nor dead-lettered)
    lost = one_raw_object_left(memory_deps, memory_keys)
    aggregate(memory_deps)
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=7)
    # Then exactly the check between ingest and anonymize fails, by the lost readings
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == [
        "accepted = anonymize input + dead-lettered at anonymize"
    ]
    assert failed[0]["left"] - failed[0]["right"] == lost.records


def test_dead_lettered_readings_are_counted_and_balance_the_books(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given the same lost claim check, dead-lettered by the queue's redrive policy
    poisoned = one_raw_object_left(memory_deps, memory_keys)
    memory_deps.queue.send_json(
        memory_deps.names.dlq(Function.ANONYMIZE), [poisoned.model_dump(exclude_none=True)]
    )
    aggregate(memory_deps)
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=7)
    # Then the dead letter is counted, and the books balance
    assert report["balanced"], report["checks"]
    assert report["dead_lettered"] == poisoned.records == 1
    assert report["stages"]["anonymize"]["dead_lettered_messages"] == 1


def test_a_payload_never_ingested_unbalances_the_books(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    a_clean_run(memory_deps, memory_keys)

    report = build_report(memory_deps, payloads_sent=7)

    assert not report["balanced"]
    assert [c["check"] for c in report["checks"] if not c["ok"]] == [
        "payloads sent = ingested + resent + dead-lettered at ingest"
    ]


def test_only_the_latest_export_of_a_day_is_counted(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a day published, then late data aggregated and the day published again
    a_clean_run(memory_deps, memory_keys)
    ingest(memory_deps, lines(wifi_observation(observed_at="2026-06-01T23:50:00Z")))
    anonymize(memory_deps, memory_keys, take(memory_deps, Function.ANONYMIZE))
    aggregate(memory_deps)
    assert export_day(memory_deps, exporting(RELEASE_KEYS), DAY) == "done"
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=7)
    # Then the day counts once, with every reading: the first publication is superseded
    assert report["balanced"], report["checks"]
    assert report["stages"]["export"]["readings"] == 5
    assert report["stages"]["export"]["partials"] == 2


def test_a_dead_letter_whose_input_was_processed_is_not_counted_twice(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a claim check that was processed, and also reached the DLQ (it failed after
    # its lineage was written, e.g. while being acknowledged)
    ingest(memory_deps, wifi_day())
    [raw] = take(memory_deps, Function.ANONYMIZE)
    anonymize(memory_deps, memory_keys, [raw])
    memory_deps.queue.send_json(
        memory_deps.names.dlq(Function.ANONYMIZE), [raw.model_dump(exclude_none=True)]
    )
    aggregate(memory_deps)
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=6)
    # Then it is counted by its lineage alone
    assert report["dead_lettered"] == 0
    assert report["balanced"], report["checks"]


def test_two_readings_of_1e308_are_quarantined_and_the_day_is_still_published(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given two air quality monitors of a zone that each sent 1e308 ug/m3 of NO2, and a
    # sane pack of the first one
    broken = senml_reading(value=1e308)
    twin = [{**broken[0], "bn": "2001:db8:7e1d::6e/"}, *broken[1:]]  # aq-110, same zone
    ingest(memory_deps, lines(broken, twin, senml_reading(value=21.5)), fmt="senml")
    # When they run through every stage
    anonymize(memory_deps, memory_keys, take(memory_deps, Function.ANONYMIZE))
    aggregate(memory_deps)
    result = export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    # Then the day is published with the sane reading, the others quarantined with a reason
    assert result == "done"
    key = StackNames("velden").open_file_key("air-quality", OpenFormat.CSV, DAY)
    [row] = open_file(memory_deps, key).decode().splitlines()[1:]
    assert row.endswith(",1,21.5,21.5,21.5,21.5,published,")
    report = build_report(memory_deps, payloads_sent=3)
    assert report["quarantined"] == {"out_of_range": 2}
    assert report["balanced"], report["checks"]


def test_late_people_data_after_the_release_keeps_it_and_the_ledger_balances(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given the Wi-Fi day released, then late devices arriving again and again: each
    # export of the day publishes the one release it was charged for, never another
    a_clean_run(memory_deps, memory_keys)
    open_zone = memory_deps.names.bucket(Zone.OPEN)
    published = []
    for minute in range(1, 6):
        late = wifi_observation(
            observed_at=f"2026-06-01T11:0{minute}:00Z",
            personal={"device_mac": f"AA:BB:CC:DD:EE:{10 + minute}"},
        )
        ingest(memory_deps, lines(late))
        anonymize(memory_deps, memory_keys, take(memory_deps, Function.ANONYMIZE))
        aggregate(memory_deps)
        export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
        published.append({i.key: i.etag for i in memory_deps.store.list(open_zone)})
    # When the books are read back
    report = build_report(memory_deps, payloads_sent=11)
    # Then they balance (every late reading is in a cell of the standing release), one
    # release was charged, and the open zone never changed
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert report["refused_cells"] == {}
    assert report["privacy_budget"]["releases"] == 1
    assert report["privacy_budget"]["most_spent"] == 2.0
    assert all(p == published[0] for p in published)
