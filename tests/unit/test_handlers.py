"""The real functions/*/handler.py, loaded as Lambda loads them, driven with events/ fixtures
on a city stack in memory: each gets its app from its function's composition root, built on
the in-memory ports (the handler's ``app`` argument)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pytest
from repo import load_event
from unit_support import (
    FailingWritesStore,
    UnreachableStore,
    apigw_request,
    claim_check,
    http_api_request,
    invoke_handler,
    lines,
    s3_notification,
    scheduled_event,
    sqs_event,
    webhook_token,
    wifi_observation,
    with_store,
)

from citypipe.core.shape import text_shape
from citypipe.domain.errors import KeyDestroyedError, TransientError
from citypipe.domain.export_books import KeyDestruction
from citypipe.domain.limits import MAX_BODY_BYTES, MAX_BODY_LINES, MAX_REJECTIONS_SHOWN
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import StackNames, input_id
from citypipe.domain.themes import OpenFormat
from citypipe.entrypoints.events import CLAIM_CHECK_NAMES
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore, InMemoryObjectStore, InMemoryWebhookTokens


class Invoke(Protocol):
    def __call__(
        self, function: Function, event: dict[str, Any], deps: Deps | None = None
    ) -> dict[str, Any]: ...


@pytest.fixture
def stack(memory_deps: Deps) -> Deps:
    return memory_deps


@pytest.fixture
def invoke(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, memory_tokens: InMemoryWebhookTokens
) -> Invoke:
    """Call a function's handler on the in-memory stack (or on ``deps``, for a fake store)."""

    def call(function: Function, event: dict[str, Any], deps: Deps | None = None) -> dict[str, Any]:
        return invoke_handler(function, event, deps or memory_deps, memory_keys, memory_tokens)

    return call


def drop(deps: Deps, *payloads: Any, fmt: str = "canonical") -> Message:
    return drop_lines(deps, fmt, lines(*payloads))


def is_done(deps: Deps, function: Function, message: Message) -> bool:
    ident = input_id(message.bucket, message.key, message.etag)
    return deps.store.exists(
        deps.names.bucket(Zone.AUDIT), StackNames("velden").lineage_key(function, ident)
    )


def quarantined_messages(deps: Deps, function: Function) -> list[dict[str, Any]]:
    bucket = deps.names.bucket(Zone.QUARANTINE)
    rows = []
    for info in deps.store.list(bucket, f"quarantine/velden/{function}/messages/"):
        text = gzip.decompress(deps.store.get(bucket, info.key).body).decode()
        rows += [json.loads(line) for line in text.splitlines()]
    return rows


def queued(deps: Deps, function: Function) -> int:
    return deps.queue.depth(deps.names.queue(function))[0]


# --- SQS batches of claim checks -------------------------------------------------------------


def test_the_fixture_batch_is_acknowledged_though_its_objects_are_gone(
    stack: Deps, invoke: Invoke
) -> None:
    # Given the recorded batch, whose drops no longer exist in this stack
    event = load_event("sqs_batch_claim_check.json")
    # When ingest receives it
    response = invoke(Function.INGEST, event)
    # Then nothing is retried: each record is quarantined as input_missing
    assert response == {"batchItemFailures": []}
    quarantine = stack.names.bucket(Zone.QUARANTINE)
    assert len(list(stack.store.list(quarantine, "quarantine/velden/ingest/"))) == 2


def test_a_batch_of_claim_checks_is_processed_record_by_record(stack: Deps, invoke: Invoke) -> None:
    first = drop(stack, wifi_observation())
    second = drop(stack, *load_event("canonical_wifi.json"))
    response = invoke(Function.INGEST, sqs_event(claim_check(first), claim_check(second)))
    assert response == {"batchItemFailures": []}
    assert is_done(stack, Function.INGEST, first)
    assert is_done(stack, Function.INGEST, second)
    assert queued(stack, Function.ANONYMIZE) == 2


@pytest.mark.parametrize(
    ("poison", "reason"),
    [
        ("{not json", "invalid_message"),
        ('{"hello": "world"}', "invalid_message"),
        ('["a", "list"]', "invalid_message"),
        (
            json.dumps({"v": 2, "city": "velden", "stage": "inbox", "bucket": "b", "key": "k"}),
            "invalid_message",
        ),
        (
            json.dumps({"v": 1, "city": "utrecht", "stage": "inbox", "bucket": "b", "key": "k"}),
            "wrong_city",
        ),
    ],
    ids=["invalid-json", "not-a-claim-check", "json-list", "unknown-version", "another-city"],
)
def test_a_poison_record_is_quarantined_and_acknowledged(
    stack: Deps, poison: str, reason: str, invoke: Invoke
) -> None:
    # Given a batch of one good claim check and one poison record
    good = drop(stack, wifi_observation())
    event = sqs_event(claim_check(good), poison)
    poison_id = event["Records"][1]["messageId"]
    # When ingest receives it
    response = invoke(Function.INGEST, event)
    # Then no record is retried: the poison is quarantined with its reason, the good one done
    assert response == {"batchItemFailures": []}
    [row] = quarantined_messages(stack, Function.INGEST)
    assert (row["reason"], row["message_id"], row["body"]) == (
        reason,
        poison_id,
        text_shape(poison, CLAIM_CHECK_NAMES),
    )
    assert is_done(stack, Function.INGEST, good)


def test_a_transient_failure_fails_exactly_that_record(memory_deps: Deps, invoke: Invoke) -> None:
    # Given two drops, the second on a store that times out when it is read
    deps = with_store(memory_deps, UnreachableStore)
    ok = drop(deps, wifi_observation())
    slow = drop(deps, wifi_observation(value=2))
    deps.store.unreachable.add(slow.key)
    event = sqs_event(claim_check(ok), claim_check(slow))
    # When ingest receives both
    response = invoke(Function.INGEST, event, deps)
    # Then only the second is reported failed, to be redelivered; it is neither done nor lost
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert is_done(deps, Function.INGEST, ok)
    assert not is_done(deps, Function.INGEST, slow)
    assert deps.store.exists(slow.bucket, slow.key)


def test_a_redelivered_record_completes_once_the_store_answers(
    memory_deps: Deps, invoke: Invoke
) -> None:
    deps = with_store(memory_deps, UnreachableStore)
    slow = drop(deps, wifi_observation())
    deps.store.unreachable.add(slow.key)
    event = sqs_event(claim_check(slow), claim_check(drop(deps, wifi_observation(value=3))))
    invoke(Function.INGEST, event, deps)
    deps.store.unreachable.clear()
    assert invoke(Function.INGEST, {"Records": event["Records"][:1]}, deps) == {
        "batchItemFailures": []
    }
    assert is_done(deps, Function.INGEST, slow)


# --- S3 event notifications as claim checks ---------------------------------------------------


def test_an_s3_notification_is_accepted_as_a_claim_check(stack: Deps, invoke: Invoke) -> None:
    # Given a drop announced by S3 itself rather than by the bridge
    dropped = drop(stack, *load_event("canonical_wifi.json"))
    body = s3_notification(dropped.bucket, dropped.key, dropped.etag)
    # When ingest receives the notification
    response = invoke(Function.INGEST, sqs_event(body, fixture="s3_notification_in_sqs.json"))
    # Then the drop is ingested, its format taken from its key
    assert response == {"batchItemFailures": []}
    assert is_done(stack, Function.INGEST, dropped)
    assert queued(stack, Function.ANONYMIZE) == 1


def test_a_notification_and_a_claim_check_for_one_object_process_it_once(
    stack: Deps, invoke: Invoke
) -> None:
    dropped = drop(stack, wifi_observation())
    notice = s3_notification(dropped.bucket, dropped.key, dropped.etag)
    invoke(Function.INGEST, sqs_event(notice, claim_check(dropped)))
    assert queued(stack, Function.ANONYMIZE) == 1


def test_an_s3_notification_key_is_url_decoded(stack: Deps, invoke: Invoke) -> None:
    # Given a raw object, whose key S3 notifies URL-encoded (date%3D2026-06-01/...)
    dropped = drop(stack, wifi_observation())
    invoke(Function.INGEST, sqs_event(claim_check(dropped)))
    [raw] = stack.queue.receive(stack.names.queue(Function.ANONYMIZE))
    raw_message = Message.model_validate_json(raw.body)
    body = s3_notification(raw_message.bucket, raw_message.key, raw_message.etag)
    assert "date%3D2026-06-01" in body
    # When anonymize receives the notification
    response = invoke(Function.ANONYMIZE, sqs_event(body))
    # Then the raw object is found and anonymized
    assert response == {"batchItemFailures": []}
    assert is_done(stack, Function.ANONYMIZE, raw_message)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "velden-raw"}),
        s3_notification(
            "velden-raw", "inbox/velden/senml/gone.jsonl.gz", "", "ObjectRemoved:Delete"
        ),
    ],
    ids=["s3-test-event", "object-removed"],
)
def test_s3_notifications_of_no_new_object_are_acknowledged_and_ignored(
    stack: Deps, body: str, invoke: Invoke
) -> None:
    response = invoke(Function.INGEST, sqs_event(body))
    assert response == {"batchItemFailures": []}
    assert list(stack.store.list(stack.names.bucket(Zone.QUARANTINE), "quarantine/")) == []
    assert list(stack.store.list(stack.names.bucket(Zone.AUDIT))) == []


# --- the webhook: API Gateway HTTP API (payload 2.0) and REST API (1.0) ----------------------


def written(deps: Deps) -> list[str]:
    """Every object in every zone of the stack."""
    return [info.key for zone in Zone for info in deps.store.list(deps.names.bucket(zone))]


@pytest.mark.parametrize(
    "fixture", ["httpapi_webhook_senml.json", "apigw_webhook_senml.json"], ids=["2.0", "1.0"]
)
def test_the_webhook_fixtures_are_accepted(stack: Deps, invoke: Invoke, fixture: str) -> None:
    # Given the recorded POST /ingest/air-quality/senml (with the source's token) and its response
    expected = load_event(f"expected/{fixture.replace('.json', '.response.json')}")
    # When ingest handles it
    response = invoke(Function.INGEST, load_event(fixture))
    # Then the hub gets a 202 with the counts, and anonymize is told of the raw object
    assert {**response, "body": json.loads(response["body"])} == expected
    assert queued(stack, Function.ANONYMIZE) == 1


def test_an_http_api_request_without_a_token_gets_401_and_writes_nothing(
    stack: Deps, invoke: Invoke
) -> None:
    # Given the 2.0 fixture without its token header
    event = http_api_request(json.dumps(load_event("senml_pack.json")), token=None)
    # When ingest handles it
    response = invoke(Function.INGEST, event)
    # Then it is refused with a reason, and no zone holds anything, no stage is told
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"] == "unauthorized"
    assert response["headers"]["www-authenticate"].startswith("Bearer")
    assert written(stack) == []
    assert queued(stack, Function.ANONYMIZE) == 0


@pytest.mark.parametrize(
    "token",
    ["not-a-token", webhook_token("traffic-counters"), webhook_token("air-quality") + "x"],
    ids=["made-up", "another-sources-token", "one-character-more"],
)
def test_an_http_api_request_with_a_wrong_token_gets_the_same_401_and_writes_nothing(
    stack: Deps, invoke: Invoke, token: str
) -> None:
    event = http_api_request(json.dumps(load_event("senml_pack.json")), token=token)
    response = invoke(Function.INGEST, event)
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"] == "unauthorized"
    assert written(stack) == []


def test_a_rest_api_request_without_a_token_gets_401(stack: Deps, invoke: Invoke) -> None:
    response = invoke(Function.INGEST, apigw_request("[]", token=None))
    assert response["statusCode"] == 401
    assert written(stack) == []


def test_a_bearer_token_in_the_authorization_header_is_accepted(
    stack: Deps, invoke: Invoke
) -> None:
    event = http_api_request(
        json.dumps(load_event("senml_pack.json")),
        token=None,
        authorization=f"Bearer {webhook_token('air-quality')}",
    )
    response = invoke(Function.INGEST, event)
    assert (response["statusCode"], json.loads(response["body"])["accepted"]) == (202, 6)


def test_a_sources_token_cannot_push_another_sources_readings(stack: Deps, invoke: Invoke) -> None:
    # Given a pack of traffic counter tc-002, pushed with the air-quality token
    pack = [
        {"bn": "urn:dev:mac:0024befffe800002:", "bt": 1780308000, "bu": "count"},
        {"n": "lat", "u": "lat", "v": 51.4312},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": "vehicles", "v": 12},
    ]
    # When ingest handles it on the air-quality route
    response = invoke(Function.INGEST, http_api_request(json.dumps(pack), source="air-quality"))
    # Then nothing reaches the raw zone: the reading is quarantined as wrong_source
    body = json.loads(response["body"])
    assert (response["statusCode"], body["reasons"]) == (400, {"wrong_source": 1})
    assert list(stack.store.list(stack.names.bucket(Zone.RAW))) == []


def test_a_non_utf8_body_gets_400_with_the_reason(stack: Deps, invoke: Invoke) -> None:
    # Given a body in Latin-1 (a hub misconfigured), base64-encoded as HTTP APIs pass bytes
    event = http_api_request('{"n": "caf\xe9"}'.encode("latin-1"), base64_encoded=True)
    # When ingest handles it
    response = invoke(Function.INGEST, event)
    # Then the sender is told it is not UTF-8; nothing reaches the raw zone, and the payload
    # is quarantined (its shape) so that the books count it
    body = json.loads(response["body"])
    assert (response["statusCode"], body["error"]) == (400, "no_usable_reading")
    assert body["reasons"] == {"invalid_encoding": 1}
    assert list(stack.store.list(stack.names.bucket(Zone.RAW))) == []


def test_a_base64_body_that_does_not_decode_gets_400(stack: Deps, invoke: Invoke) -> None:
    event = http_api_request("[]")
    event.update(body="not base64!", isBase64Encoded=True)
    response = invoke(Function.INGEST, event)
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (
        400,
        "invalid_base64",
    )


def test_a_gzipped_body_is_accepted(stack: Deps, invoke: Invoke) -> None:
    body = gzip.compress(json.dumps(load_event("senml_pack.json")).encode())
    event = http_api_request(body, base64_encoded=True, content_encoding="gzip")
    response = invoke(Function.INGEST, event)
    assert (response["statusCode"], json.loads(response["body"])["accepted"]) == (202, 6)


def test_a_gzip_bomb_gets_413_and_is_never_inflated_whole(stack: Deps, invoke: Invoke) -> None:
    # Given 64 MiB of spaces, gzipped to ~64 KiB
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    event = http_api_request(bomb, base64_encoded=True, content_encoding="gzip")
    response = invoke(Function.INGEST, event)
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (
        413,
        "body_too_large",
    )
    assert written(stack) == []


def test_a_body_over_the_size_limit_gets_413(stack: Deps, invoke: Invoke) -> None:
    response = invoke(Function.INGEST, http_api_request(" " * (MAX_BODY_BYTES + 1)))
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (
        413,
        "body_too_large",
    )


def test_a_body_of_too_many_lines_gets_413(stack: Deps, invoke: Invoke) -> None:
    response = invoke(Function.INGEST, http_api_request("{}\n" * (MAX_BODY_LINES + 1)))
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (
        413,
        "too_many_lines",
    )
    assert written(stack) == []


def test_a_response_never_echoes_thousands_of_rejections(stack: Deps, invoke: Invoke) -> None:
    # Given 5,000 payloads, every one of them garbage (JSON, but no SenML pack)
    event = http_api_request("\n".join(json.dumps({"garbage": i}) for i in range(5000)))
    # When ingest handles them
    body = json.loads(invoke(Function.INGEST, event)["body"])
    # Then the response names a few and counts them all; the ledger has all of them
    assert len(body["rejected"]) == MAX_REJECTIONS_SHOWN
    assert (body["rejected_total"], sum(body["reasons"].values())) == (5000, 5000)


def test_a_base64_encoded_webhook_body_is_decoded(stack: Deps, invoke: Invoke) -> None:
    event = apigw_request(
        json.dumps(wifi_observation()), "wifi-counters", base64_encoded=True, fmt="canonical"
    )
    response = invoke(Function.INGEST, event)
    assert (response["statusCode"], json.loads(response["body"])["accepted"]) == (202, 1)


@pytest.mark.parametrize(
    ("source", "method", "status"),
    [("xml", "POST", 401), ("air-quality", "GET", 405), ("air-quality", "PUT", 405)],
    ids=["unknown-source", "get", "put"],
)
def test_a_webhook_request_that_is_no_ingest_post_is_refused(
    stack: Deps, source: str, method: str, status: int, invoke: Invoke
) -> None:
    body = json.dumps(load_event("senml_pack.json"))
    response = invoke(Function.INGEST, http_api_request(body, source, method))
    assert response["statusCode"] == status
    assert written(stack) == []


# --- export: scheduled, or requested on its queue ---------------------------------------------


def pipeline_day(deps: Deps, invoke: Invoke) -> None:
    """1 June's readings through ingest, anonymize and aggregate, by their handlers."""
    dropped = drop(deps, *load_event("canonical_wifi.json"))
    invoke(Function.INGEST, sqs_event(claim_check(dropped)))
    for function in (Function.ANONYMIZE, Function.AGGREGATE):
        bodies = [m.body for m in deps.queue.receive(deps.names.queue(function))]
        assert invoke(function, sqs_event(*bodies)) == {"batchItemFailures": []}


PEOPLE_CSV = StackNames("velden").open_file_key("people-counts", OpenFormat.CSV, "2026-06-01")


def test_a_scheduled_event_exports_yesterday(stack: Deps, invoke: Invoke) -> None:
    # Given 1 June aggregated, and the schedule firing at 01:00 UTC on 2 June
    pipeline_day(stack, invoke)
    expected = load_event("expected/eventbridge_scheduled.response.json")
    # When export receives the scheduled event
    response = invoke(Function.EXPORT, load_event("eventbridge_scheduled.json"))
    # Then 1 June is published
    assert response == expected
    assert stack.store.exists(stack.names.bucket(Zone.OPEN), PEOPLE_CSV)


def test_a_repeated_scheduled_event_is_a_duplicate(stack: Deps, invoke: Invoke) -> None:
    pipeline_day(stack, invoke)
    invoke(Function.EXPORT, load_event("eventbridge_scheduled.json"))
    response = invoke(Function.EXPORT, scheduled_event("2026-06-02T01:05:00Z"))
    assert response["result"] == "duplicate"


def test_the_daily_job_destroys_secrets_past_the_key_retention(
    invoke: Invoke, memory_keys: InMemoryKeyStore
) -> None:
    # Given secrets for 30 May to 2 June and a key retention of 2 days
    secrets = {
        day: memory_keys.daily_secret(day)
        for day in (date(2026, 5, 30), date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 2))
    }
    # When the schedule fires on 2 June
    response = invoke(Function.EXPORT, scheduled_event("2026-06-02T01:00:00Z"))
    # Then 1 and 2 June keep their very secrets; 30 and 31 May's are gone for good
    assert response["keys_destroyed"] == 2
    assert memory_keys.daily_secret(date(2026, 6, 1)) == secrets[date(2026, 6, 1)]
    assert memory_keys.daily_secret(date(2026, 6, 2)) == secrets[date(2026, 6, 2)]
    assert set(memory_keys.secrets) == {date(2026, 6, 1), date(2026, 6, 2)}
    with pytest.raises(KeyDestroyedError):
        memory_keys.daily_secret(date(2026, 5, 31))


def test_the_daily_job_records_each_destruction_in_the_audit_zone(
    stack: Deps, invoke: Invoke, memory_keys: InMemoryKeyStore
) -> None:
    # Given two secrets past the key retention
    memory_keys.daily_secret(date(2026, 5, 30))
    memory_keys.daily_secret(date(2026, 5, 31))
    # When the schedule fires on 2 June, then again an hour later
    invoke(Function.EXPORT, scheduled_event("2026-06-02T01:00:00Z"))
    invoke(Function.EXPORT, scheduled_event("2026-06-02T02:00:00Z"))
    # Then the audit zone says, once, which days are gone and when
    audit = stack.names.bucket(Zone.AUDIT)
    [record] = list(stack.store.list(audit, "keys/velden/destroyed/"))
    written = KeyDestruction.model_validate_json(stack.store.get(audit, record.key).body)
    assert (written.destroyed_before, written.destroyed) == (date(2026, 6, 1), 2)
    assert written.at == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)


def test_an_export_request_on_the_queue_exports_its_day(stack: Deps, invoke: Invoke) -> None:
    pipeline_day(stack, invoke)
    request = Message(city="velden", stage="export", bucket="", key="", window="2026-06-01")
    response = invoke(Function.EXPORT, sqs_event(claim_check(request)))
    assert response == {"batchItemFailures": []}
    assert stack.store.exists(stack.names.bucket(Zone.OPEN), PEOPLE_CSV)


# --- the fixtures themselves ------------------------------------------------------------------

SQS_RECORD_FIELDS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


@pytest.mark.parametrize("name", ["sqs_batch_claim_check.json", "s3_notification_in_sqs.json"])
def test_the_sqs_fixtures_carry_every_field_lambda_sends(name: str) -> None:
    for record in load_event(name)["Records"]:
        assert set(record) == SQS_RECORD_FIELDS
        assert set(record["attributes"]) == {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert record["eventSource"] == "aws:sqs"


def test_the_sqs_builder_keeps_the_fixture_shape() -> None:
    event = sqs_event("one", "two")
    assert [r["body"] for r in event["Records"]] == ["one", "two"]
    assert len({r["messageId"] for r in event["Records"]}) == 2
    assert all(
        r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest() for r in event["Records"]
    )


def test_the_hourly_job_deletes_raw_objects_older_than_24_hours(
    stack: Deps, invoke: Invoke
) -> None:
    # Given a drop left in the raw zone for 25 hours (its message was dead-lettered) and
    # one that arrived an hour ago
    old, fresh = drop(stack, wifi_observation()), drop(stack, wifi_observation(sensor="wifi-23"))
    store = stack.store
    assert isinstance(store, InMemoryObjectStore)
    store.modified[old.bucket, old.key] = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    store.modified[fresh.bucket, fresh.key] = datetime(2026, 6, 2, 0, 30, tzinfo=UTC)
    # When the hourly job fires at 01:30 on 2 June
    response = invoke(Function.EXPORT, scheduled_event("2026-06-02T01:30:00Z"))
    # Then only the old drop is gone
    assert response["raw_swept"] == 1
    assert not store.exists(old.bucket, old.key)
    assert store.exists(fresh.bucket, fresh.key)


def test_the_hourly_job_deletes_quarantine_rows_past_the_quarantine_retention(
    stack: Deps, invoke: Invoke
) -> None:
    # Given two quarantine rows: one written 8 days ago (retention: 7 days), one yesterday
    bucket = stack.names.bucket(Zone.QUARANTINE)
    store = stack.store
    assert isinstance(store, InMemoryObjectStore)
    old_key, fresh_key = (
        "quarantine/velden/ingest/old.jsonl.gz",
        "quarantine/velden/ingest/new.jsonl.gz",
    )
    for key in (old_key, fresh_key):
        store.put(bucket, key, gzip.compress(b'{"reason": "invalid_json"}\n'))
    store.modified[bucket, old_key] = datetime(2026, 5, 25, 1, 0, tzinfo=UTC)
    store.modified[bucket, fresh_key] = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    # When the hourly job fires at 01:30 on 2 June
    response = invoke(Function.EXPORT, scheduled_event("2026-06-02T01:30:00Z"))
    # Then the row past its retention is gone, the other kept
    assert response["quarantine_swept"] == 1
    assert not store.exists(bucket, old_key)
    assert store.exists(bucket, fresh_key)


@pytest.mark.parametrize(
    ("zone", "key", "old", "fresh"),
    [
        # clean: 90 days; a detection row of 91 days ago goes, one of 89 days stays
        (Zone.CLEAN, "clean/velden/date={day}/air-quality/{name}.parquet", 91, 89),
        # aggregates: 730 days
        (Zone.AGGREGATES, "aggregates/velden/date={day}/air-quality/{name}.parquet", 731, 729),
        # audit: 1825 days (lineage, ledger, scrub and key records alike)
        (Zone.AUDIT, "lineage/velden/aggregate/{name}-{day}.json", 1826, 1824),
    ],
    ids=["clean", "aggregates", "audit"],
)
def test_the_hourly_job_deletes_objects_past_their_zones_retention_on_every_cloud(
    stack: Deps,
    invoke: Invoke,
    caplog: pytest.LogCaptureFixture,
    zone: Zone,
    key: str,
    old: int,
    fresh: int,
) -> None:
    # Given two objects of a zone whose lifecycle rule has not run (a local backend, a
    # Scaleway bucket, S3 rounding to the next midnight): one past the zone's retention
    fired = datetime(2026, 6, 2, 1, 30, tzinfo=UTC)
    bucket, store = stack.names.bucket(zone), stack.store
    assert isinstance(store, InMemoryObjectStore)
    written = {}
    for name, days in (("old", old), ("fresh", fresh)):
        at = fired - timedelta(days=days)
        written[name] = key.format(day=at.date().isoformat(), name=name)
        store.put(bucket, written[name], b"{}")
        store.modified[bucket, written[name]] = at
    # When the hourly job fires
    with caplog.at_level(logging.INFO, "citypipe"):
        response = invoke(Function.EXPORT, scheduled_event("2026-06-02T01:30:00Z"))
    # Then the object past its retention is gone, the other kept, and the job says so
    assert response[f"{zone.value}_swept"] == 1
    [line] = [r for r in caplog.records if r.getMessage() == "housekeeping"]
    assert getattr(line, f"{zone.value}_swept") == 1
    assert not store.exists(bucket, written["old"])
    assert store.exists(bucket, written["fresh"])


def test_an_iot_rule_invokes_ingest_with_the_devices_topic(stack: Deps, invoke: Invoke) -> None:
    # Given an IoT rule's output: a radar counter's JSON and the topic the rule adds
    event = {
        "vehicles": 12,
        "battery": 3.4,
        "citypipe_topic": "velden/traffic/loop-5a00e8cd/counts",
    }
    # When ingest is invoked with it
    response = invoke(Function.INGEST, event)
    # Then the reading is accepted for the device of that topic, and sent on to anonymize
    assert (response["accepted"], response["quarantined"]) == (1, {})
    [raw] = stack.queue.receive(stack.names.queue(Function.ANONYMIZE))
    assert "/traffic-counters/" in json.loads(raw.body)["key"]


def test_an_iot_rules_event_that_cannot_be_written_fails_the_invocation(
    memory_deps: Deps, invoke: Invoke
) -> None:
    # Given a raw zone that times out, and the event of the IoT test above
    deps = with_store(
        memory_deps, FailingWritesStore, failing_bucket=memory_deps.names.bucket(Zone.RAW)
    )
    event = load_event("lambda_on_failure_iot_rule.json")["requestPayload"]
    # When ingest is invoked with it, the invocation fails: Lambda tries it twice more, then
    # records it in the IoT failures queue (its OnFailure destination, decision 0085) —
    # an answer would tell Lambda it was done, and the reading would be lost
    with pytest.raises(TransientError):
        invoke(Function.INGEST, event, deps)
    # And once the store answers, the same event (a retry, or a redrive of the record's
    # requestPayload) is written
    deps.store.heal()  # type: ignore[attr-defined]
    assert invoke(Function.INGEST, event, deps)["accepted"] == 1


def test_a_hub_payload_sent_to_the_ingest_queue_is_quarantined_as_its_shape(
    stack: Deps, invoke: Invoke
) -> None:
    # Given a device's JSON sent straight to the queue (a misrouted IoT rule), no claim check
    poison = json.dumps({"clientMac": "00:26:ab:b8:a9:a4", "rssi": -60})
    # When ingest receives it
    invoke(Function.INGEST, sqs_event(poison))
    # Then the quarantine row keeps its shape, not the MAC
    [row] = quarantined_messages(stack, Function.INGEST)
    assert row["reason"] == "invalid_message"
    assert "00:26:ab" not in json.dumps(row)
