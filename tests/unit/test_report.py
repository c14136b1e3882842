"""The run report: books read back from lineage records and DLQs, balanced or not."""

from __future__ import annotations

import json
from typing import Any

from citypipe.domain import Function, Message, Zone
from citypipe.naming import input_id, lineage_key
from citypipe.report import build_report
from citypipe.stage import Deps


def record(
    deps: Deps, function: Function, ident: str, counts: dict[str, Any], **extra: Any
) -> None:
    body = {"function": function.value, "counts": counts, "window": None, "at": "t0", **extra}
    key = lineage_key(deps.city.city, function, ident)
    deps.store.put(deps.names.bucket(Zone.AUDIT), key, json.dumps(body).encode())


def dead_letter(deps: Deps, function: Function, records: int) -> None:
    message = Message(city=deps.city.city, stage="raw", bucket="b", key="k", records=records)
    deps.queue.send_json(deps.names.dlq(function), [message.model_dump()])


def a_clean_run(deps: Deps, anonymize_input: int = 10) -> None:
    record(
        deps,
        Function.INGEST,
        "i1",
        {"payloads": 4, "received": 12, "accepted": 10, "quarantined": {"invalid_json": 2}},
    )
    record(
        deps,
        Function.ANONYMIZE,
        "a1",
        {"input": anonymize_input, "anonymized": anonymize_input, "refused": {}},
    )
    record(
        deps, Function.AGGREGATE, "g1", {"input": anonymize_input, "aggregated": anonymize_input}
    )
    record(
        deps, Function.EXPORT, "e1",
        {"cells": 3, "readings": anonymize_input, "published": 2, "suppressed": 1},
        window="2026-06-01",
    )  # fmt: skip


def test_a_clean_run_balances(memory_deps: Deps) -> None:
    a_clean_run(memory_deps)

    report = build_report(memory_deps, payloads_sent=4)

    assert report["balanced"]
    assert (report["received"], report["accepted"], report["quarantined"]) == (
        12,
        10,
        {"invalid_json": 2},
    )
    assert (report["published_cells"], report["suppressed_cells"]) == (2, 1)


def test_readings_lost_between_stages_unbalance_the_books(memory_deps: Deps) -> None:
    a_clean_run(memory_deps, anonymize_input=7)

    report = build_report(memory_deps, payloads_sent=4)

    assert not report["balanced"]
    failed = [c["check"] for c in report["checks"] if not c["ok"]]
    assert failed == ["accepted = anonymize input + dead-lettered at anonymize"]


def test_dead_lettered_readings_are_counted_and_balance_the_books(memory_deps: Deps) -> None:
    a_clean_run(memory_deps, anonymize_input=7)
    dead_letter(memory_deps, Function.ANONYMIZE, records=3)

    report = build_report(memory_deps, payloads_sent=4)

    assert report["balanced"]
    assert report["dead_lettered"] == 3
    assert report["stages"]["anonymize"]["dead_lettered_messages"] == 1


def test_a_payload_never_ingested_unbalances_the_books(memory_deps: Deps) -> None:
    a_clean_run(memory_deps)

    report = build_report(memory_deps, payloads_sent=5)

    assert not report["balanced"]


def test_only_the_latest_export_of_a_day_is_counted(memory_deps: Deps) -> None:
    a_clean_run(memory_deps)
    record(
        memory_deps, Function.EXPORT, "e0",
        {"cells": 1, "readings": 4, "published": 1, "suppressed": 0},
        window="2026-06-01", at="t-earlier",
    )  # fmt: skip

    report = build_report(memory_deps, payloads_sent=4)

    assert report["balanced"]
    assert report["published_cells"] == 2


def test_a_dead_letter_whose_input_was_processed_is_not_counted_twice(memory_deps: Deps) -> None:
    # Given a claim check that reached the DLQ although its lineage was written (it failed
    # after its outputs, e.g. while being acknowledged)
    a_clean_run(memory_deps)
    message = Message(city="velden", stage="raw", bucket="b", key="k", etag="e", records=10)
    record(memory_deps, Function.ANONYMIZE, input_id("b", "k", "e"), {"input": 0, "anonymized": 0})
    memory_deps.queue.send_json(memory_deps.names.dlq(Function.ANONYMIZE), [message.model_dump()])

    report = build_report(memory_deps, payloads_sent=4)

    assert report["dead_lettered"] == 0
    assert report["balanced"]
