"""The stage machinery through the real cores: exactly-once effects on at-least-once delivery."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from repo import load_event
from unit_support import (
    FailingWritesStore,
    RecordingStore,
    lines,
    wifi_observation,
    with_store,
)

from citypipe.core.codecs import jsonl_gz
from citypipe.domain.books import AnonymizeCounts, IngestCounts, Lineage, ObjectRef
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import StackNames, input_id
from citypipe.ports import ObjectInfo
from citypipe.service.aggregate import aggregate_clean
from citypipe.service.anonymize import anonymize_raw
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Core, Deps
from citypipe.service.metrics import NAMESPACE, READINGS_IN, READINGS_QUARANTINED
from citypipe.service.stage import run_stage
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore

CORES: dict[Function, Core] = {
    Function.INGEST: partial(ingest_drop, keys=InMemoryKeyStore()),
    # the stage machinery is under test here, not the keys: one store for the module
    Function.ANONYMIZE: anonymize_raw,
    Function.AGGREGATE: aggregate_clean,
}


def drop_wifi(deps: Deps) -> Message:
    """The Wi-Fi fixture dropped in the inbox, announced to ingest."""
    return drop_lines(deps, "canonical", lines(*load_event("canonical_wifi.json")))


def run(function: Function, message: Message, deps: Deps) -> str:
    return run_stage(function, message, deps, CORES[function])


def next_message(deps: Deps, function: Function) -> Message:
    [received] = deps.queue.receive(deps.names.queue(function), 1)
    return Message.model_validate_json(received.body)


INPUT_ZONE = {
    Function.INGEST: Zone.RAW,
    Function.ANONYMIZE: Zone.RAW,
    Function.AGGREGATE: Zone.CLEAN,
}
NEXT = {Function.INGEST: Function.ANONYMIZE, Function.ANONYMIZE: Function.AGGREGATE}


def through(deps: Deps, function: Function) -> Message:
    """Run the Wi-Fi fixture from the inbox up to the claim check ``function`` receives."""
    stage, message = Function.INGEST, drop_wifi(deps)
    while stage is not function:
        run(stage, message, deps)
        stage = NEXT[stage]
        message = next_message(deps, stage)
    return message


def keys(deps: Deps, zone: Zone, prefix: str = "") -> list[str]:
    return [i.key for i in deps.store.list(deps.names.bucket(zone), prefix)]


def lineage(deps: Deps, function: Function, message: Message) -> Lineage:
    """The lineage record as the run report reads it back."""
    ident = input_id(message.bucket, message.key, message.etag)
    body = deps.store.get(
        deps.names.bucket(Zone.AUDIT), StackNames("velden").lineage_key(function, ident)
    )
    return Lineage.model_validate_json(body.body)


def quarantined(deps: Deps, function: Function) -> list[dict[str, Any]]:
    rows = []
    bucket = deps.names.bucket(Zone.QUARANTINE)
    for key in keys(deps, Zone.QUARANTINE, f"quarantine/velden/{function}/"):
        text = gzip.decompress(deps.store.get(bucket, key).body).decode()
        rows += [json.loads(line) for line in text.splitlines()]
    return rows


# --- one delivery --------------------------------------------------------------------------


def test_the_processed_log_line_carries_the_quarantine_metrics(
    memory_deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a drop of two payloads, one of them garbage
    message = drop_lines(memory_deps, "canonical", lines(wifi_observation(), "{garbage"))
    # When ingest processes it
    with caplog.at_level("INFO", logger="citypipe"):
        run(Function.INGEST, message, memory_deps)
    # Then its "processed" line is a CloudWatch embedded-metric document: per city and
    # function, readings in and quarantined (what the quarantine-rate alarm reads)
    [record] = [r for r in caplog.records if r.getMessage() == "processed"]
    fields = record.__dict__
    [directive] = fields["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["city", "function"]]
    assert (fields["city"], fields["function"]) == ("velden", "ingest")
    assert (fields[READINGS_IN], fields[READINGS_QUARANTINED]) == (2, 1)


def test_ingest_writes_raw_objects_announces_them_and_consumes_the_drop(
    memory_deps: Deps,
) -> None:
    # Given a drop in the inbox
    message = drop_wifi(memory_deps)
    # When ingest processes its claim check
    result = run(Function.INGEST, message, memory_deps)
    # Then the raw object exists, anonymize is told, and the drop is gone
    assert result == "done"
    [raw] = keys(memory_deps, Zone.RAW, "raw/")
    assert raw.startswith("raw/velden/date=2026-06-01/wifi-counters/")
    assert next_message(memory_deps, Function.ANONYMIZE).key == raw
    assert keys(memory_deps, Zone.RAW, "inbox/") == []


def test_lineage_records_the_input_the_outputs_and_the_counts(memory_deps: Deps) -> None:
    message = drop_wifi(memory_deps)
    run(Function.INGEST, message, memory_deps)
    record = lineage(memory_deps, Function.INGEST, message)
    assert record.input == ObjectRef(bucket="velden-raw", key=message.key, etag=message.etag)
    assert record.counts == IngestCounts(
        payloads=4, received=4, accepted=4, duplicates=0, quarantined={}
    )
    assert [(o.bucket, o.records) for o in record.outputs] == [("velden-raw", 4)]
    assert record.at == datetime(2026, 6, 2, 23, 30, tzinfo=UTC)


def test_anonymize_lineage_counts_refusals(memory_deps: Deps) -> None:
    # Given a raw object of two records, one in a zone the city no longer has
    record = {
        "source": "air-quality", "sensor": "aq-101", "quantity": "air.no2", "unit": "ug/m3",
        "value": 1.0, "observed_at": "2026-06-01T10:00:00.000000Z", "zone": "noord",
        "pseudonym": None,
    }  # fmt: skip
    body = jsonl_gz([record, {**record, "zone": "dissolved-district"}])
    key = "raw/velden/date=2026-06-01/air-quality/0123456789abcdef01234567.jsonl.gz"
    etag = memory_deps.store.put(memory_deps.names.bucket(Zone.RAW), key, body)
    raw = Message(city="velden", stage="raw", bucket="velden-raw", key=key, etag=etag, records=2)
    # When anonymize processes it
    run(Function.ANONYMIZE, raw, memory_deps)
    # Then its lineage counts the refusal
    assert lineage(memory_deps, Function.ANONYMIZE, raw).counts == AnonymizeCounts(
        input=2, anonymized=1, refused={"outside_zones": 1}, quarantined={}
    )


def test_a_raw_object_an_earlier_release_wrote_is_anonymized_into_its_day(
    memory_deps: Deps,
) -> None:
    # Given a raw object in flight across an upgrade: JSON Lines, in an hour partition
    record = {
        "source": "air-quality", "sensor": "aq-101", "quantity": "air.no2", "unit": "ug/m3",
        "value": 1.0, "observed_at": "2026-06-01T10:00:00.000000Z", "zone": "noord",
        "pseudonym": None,
    }  # fmt: skip
    key = "raw/velden/date=2026-06-01/hour=10/air-quality/0123456789abcdef01234567.jsonl.gz"
    etag = memory_deps.store.put(memory_deps.names.bucket(Zone.RAW), key, jsonl_gz([record]))
    raw = Message(city="velden", stage="raw", bucket="velden-raw", key=key, etag=etag, records=1)
    # When anonymize processes it
    run(Function.ANONYMIZE, raw, memory_deps)
    # Then its reading is in the day's clean partition, and the raw object is gone
    [clean] = keys(memory_deps, Zone.CLEAN, "clean/")
    assert clean.startswith("clean/velden/date=2026-06-01/air-quality/")
    assert lineage(memory_deps, Function.ANONYMIZE, raw).counts.anonymized == 1  # type: ignore[union-attr]
    assert keys(memory_deps, Zone.RAW, "raw/") == []


def test_a_drop_spanning_two_sources_gives_one_raw_object_and_one_notice_each(
    memory_deps: Deps,
) -> None:
    pack = load_event("senml_pack.json")
    traffic = [
        {"bn": "urn:dev:mac:0024befffe80000d/", "bt": 1780308000},
        *pack[1:3],
        {"n": "vehicles", "u": "count", "v": 9},
    ]
    message = drop_lines(memory_deps, "senml", lines(pack, traffic))
    run(Function.INGEST, message, memory_deps)
    assert len(keys(memory_deps, Zone.RAW, "raw/")) == 2
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (2, 0)


# --- repeated and late deliveries ----------------------------------------------------------


def test_a_duplicate_delivery_is_a_no_op(memory_deps: Deps) -> None:
    # Given a clean object aggregated once (aggregate keeps its input)
    deps = with_store(memory_deps, RecordingStore)
    message = through(deps, Function.AGGREGATE)
    assert run(Function.AGGREGATE, message, deps) == "done"
    operations = list(deps.store.operations)
    # When the same claim check is delivered again
    result = run(Function.AGGREGATE, message, deps)
    # Then nothing is written
    assert result == "duplicate"
    assert deps.store.operations == operations


def test_a_delivery_after_the_input_was_consumed_is_a_no_op(memory_deps: Deps) -> None:
    # Given a raw object anonymized and deleted
    message = through(memory_deps, Function.ANONYMIZE)
    run(Function.ANONYMIZE, message, memory_deps)
    assert not memory_deps.store.exists(message.bucket, message.key)
    # When its claim check arrives again, later
    result = run(Function.ANONYMIZE, message, memory_deps)
    # Then it is a duplicate: no quarantine, no second notice
    assert result == "duplicate"
    assert quarantined(memory_deps, Function.ANONYMIZE) == []
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.AGGREGATE)) == (1, 0)


class LineageLagStore(RecordingStore):
    """The first look at lineage misses it: a concurrent duplicate finished just after."""

    def __init__(self, buckets: Any = ()) -> None:
        super().__init__(buckets)
        self.misses = 1

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        if key.startswith("lineage/") and self.misses:
            self.misses -= 1
            return None
        return super().head(bucket, key)


def test_a_concurrent_duplicate_that_consumed_the_input_is_a_no_op(memory_deps: Deps) -> None:
    # Given a raw object anonymized (and deleted) by one worker
    deps = with_store(memory_deps, LineageLagStore)
    deps.store.misses = 0
    message = through(deps, Function.ANONYMIZE)
    run(Function.ANONYMIZE, message, deps)
    # When a second worker checked lineage just before the first one wrote it
    deps.store.misses = 1
    result = run(Function.ANONYMIZE, message, deps)
    # Then finding the input gone it looks again, and does nothing
    assert result == "duplicate"
    assert quarantined(deps, Function.ANONYMIZE) == []


# --- inputs that cannot be used --------------------------------------------------------------


def test_a_missing_input_without_lineage_is_quarantined_as_input_missing(
    memory_deps: Deps,
) -> None:
    # Given a claim check for an object that was never written
    message = Message(
        city="velden",
        stage="inbox",
        bucket="velden-raw",
        records=3,
        format="senml",
        key="inbox/velden/senml/000000000000000000000000.jsonl.gz",
        etag="d41d8cd98f00b204e9800998ecf8427e",
    )
    # When ingest receives it
    result = run(Function.INGEST, message, memory_deps)
    # Then it is acknowledged, quarantined with the reason, and counted in the lineage
    assert result == "done"
    assert [q["reason"] for q in quarantined(memory_deps, Function.INGEST)] == ["input_missing"]
    assert lineage(memory_deps, Function.INGEST, message).counts == IngestCounts(
        payloads=3, received=3, accepted=0, duplicates=0, quarantined={"input_missing": 3}
    )


@pytest.mark.parametrize(
    ("function", "key", "body"),
    [
        (Function.INGEST, "inbox/velden/senml/0123456789abcdef01234567.jsonl.gz", b"{not gzip"),
        (
            Function.ANONYMIZE,
            "raw/velden/date=2026-06-01/wifi-counters/0123456789abcdef01234567.jsonl.gz",
            gzip.compress(b"{truncated json\n"),
        ),
        (
            Function.ANONYMIZE,
            "raw/velden/date=2026-06-01/wifi-counters/0123456789abcdef01234567.jsonl.gz",
            b"\x1f\x8b\x08\x00 cut short",
        ),
        (
            Function.ANONYMIZE,
            "raw/velden/date=2026-06-01/wifi-counters/0123456789abcdef01234567.columns.json.gz",
            gzip.compress(b'{"v":1,"rows":2,"columns":{"source":["wifi-counters"]}}'),
        ),
        (
            Function.ANONYMIZE,
            "raw/velden/date=2026-06-01/wifi-counters/0123456789abcdef01234567.columns.json.gz",
            gzip.compress(b'[{"source":"wifi-counters"}]'),
        ),
        (
            Function.AGGREGATE,
            "clean/velden/date=2026-06-01/wifi-counters/0123456789abcdef01234567.parquet",
            b"PAR1 not really parquet",
        ),
    ],
    ids=[
        "ingest-not-gzip",
        "anonymize-not-json-lines",
        "anonymize-truncated-gzip",
        "anonymize-columns-of-unequal-length",
        "anonymize-records-where-columns-belong",
        "aggregate-not-parquet",
    ],
)
def test_an_unreadable_input_is_quarantined_as_unreadable_input(
    memory_deps: Deps, function: Function, key: str, body: bytes
) -> None:
    # Given a corrupt object and its claim check
    bucket = memory_deps.names.bucket(INPUT_ZONE[function])
    etag = memory_deps.store.put(bucket, key, body)
    message = Message(
        city="velden",
        stage=key.split("/", 1)[0],
        bucket=bucket,
        key=key,
        etag=etag,
        records=2,
        format="senml",
    )
    # When the stage receives it
    result = run(function, message, memory_deps)
    # Then it is acknowledged and quarantined with the reason; nothing goes onwards
    assert result == "done"
    assert [q["reason"] for q in quarantined(memory_deps, function)] == ["unreadable_input"]
    assert lineage(memory_deps, function, message).outputs == []


def test_an_input_changed_since_it_was_announced_is_quarantined(memory_deps: Deps) -> None:
    message = drop_wifi(memory_deps)
    stale = message.model_copy(update={"etag": "0" * 32})
    run(Function.INGEST, stale, memory_deps)
    assert [q["reason"] for q in quarantined(memory_deps, Function.INGEST)] == ["etag_mismatch"]


def test_a_drop_with_bad_payloads_quarantines_them_and_ingests_the_rest(
    memory_deps: Deps,
) -> None:
    message = drop_lines(memory_deps, "canonical", ["{broken", *lines(wifi_observation())])
    run(Function.INGEST, message, memory_deps)
    assert [q["rejected"] for q in quarantined(memory_deps, Function.INGEST)] == [
        {"invalid_json": 1}
    ]
    assert len(keys(memory_deps, Zone.RAW, "raw/")) == 1


# --- the order of effects ----------------------------------------------------------------------


def test_the_raw_object_is_deleted_only_after_the_clean_one_exists(memory_deps: Deps) -> None:
    # Given a raw object of personal data
    deps = with_store(memory_deps, RecordingStore)
    message = through(deps, Function.ANONYMIZE)
    deps.store.operations.clear()
    # When anonymize processes it
    run(Function.ANONYMIZE, message, deps)
    # Then the clean object, then the lineage, are written before the raw one is deleted
    clean = deps.store.index("put", "clean/")
    recorded = deps.store.index("put", "lineage/velden/anonymize/")
    deleted = deps.store.index("delete", "raw/")
    assert clean < recorded < deleted


def test_a_failed_clean_write_keeps_the_raw_object_for_the_retry(memory_deps: Deps) -> None:
    # Given a clean zone that is briefly unavailable
    deps = with_store(memory_deps, FailingWritesStore, failing_bucket="velden-clean")
    message = through(deps, Function.ANONYMIZE)
    # When anonymize processes the raw object, the failure is raised to be retried
    with pytest.raises(TransientError):
        run(Function.ANONYMIZE, message, deps)
    # Then the raw object is still there and no lineage claims it done
    assert deps.store.exists(message.bucket, message.key)
    assert keys(deps, Zone.AUDIT, "lineage/velden/anonymize/") == []
    # And the retry, once the zone is back, completes
    deps.store.heal()
    assert run(Function.ANONYMIZE, message, deps) == "done"
    assert not deps.store.exists(message.bucket, message.key)
    assert len(keys(deps, Zone.CLEAN)) == 1


def test_a_claim_check_without_etag_is_quarantined_as_invalid(memory_deps: Deps) -> None:
    # Given a claim check that does not say which version of the object it names
    message = drop_wifi(memory_deps).model_copy(update={"etag": ""})
    # When ingest receives it
    result = run(Function.INGEST, message, memory_deps)
    # Then it is acknowledged and quarantined, and the drop is left for an operator
    assert result == "done"
    assert [q["reason"] for q in quarantined(memory_deps, Function.INGEST)] == ["invalid_message"]
    assert memory_deps.store.exists(message.bucket, message.key)


def test_a_duplicate_deletes_an_input_recreated_after_it_was_consumed(memory_deps: Deps) -> None:
    # Given a raw object anonymized (and deleted), then written again by a late duplicate
    message = through(memory_deps, Function.ANONYMIZE)
    raw = memory_deps.store.get(message.bucket, message.key)
    run(Function.ANONYMIZE, message, memory_deps)
    memory_deps.store.put(message.bucket, message.key, raw.body)
    # When its claim check is delivered again
    result = run(Function.ANONYMIZE, message, memory_deps)
    # Then it is a duplicate, and the re-created raw object is gone
    assert result == "duplicate"
    assert not memory_deps.store.exists(message.bucket, message.key)


def test_a_claim_check_for_a_key_outside_the_layout_is_quarantined(memory_deps: Deps) -> None:
    # Given a raw object under a key anonymize cannot place (e.g. from an S3 notification)
    raw = through(memory_deps, Function.ANONYMIZE)
    body = memory_deps.store.get(raw.bucket, raw.key).body
    put = memory_deps.store.put(memory_deps.names.bucket(Zone.RAW), "stray.jsonl.gz", body)
    message = Message(
        city="velden", stage="raw", bucket="velden-raw", key="stray.jsonl.gz", etag=put, records=0
    )
    # When anonymize receives it
    result = run(Function.ANONYMIZE, message, memory_deps)
    # Then it is quarantined with a reason instead of failing into the DLQ
    assert result == "done"
    assert [q["reason"] for q in quarantined(memory_deps, Function.ANONYMIZE)] == ["invalid_key"]
