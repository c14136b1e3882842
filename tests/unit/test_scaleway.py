"""The Scaleway entry points (functions/*/scaleway.py), loaded as Scaleway loads them, driven
with the Scaleway fixtures in events/: one queue message per POST, the hourly CRON, and a
context that is a plain dict."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from datetime import date
from typing import Any

import pytest
from repo import load_event
from unit_support import (
    UnreachableStore,
    claim_check,
    lines,
    wifi_observation,
    with_store,
)

from citypipe.core.shape import text_shape
from citypipe.domain.errors import BackendRefusedError, KeyDestroyedError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import StackNames, input_id
from citypipe.entrypoints.events import CLAIM_CHECK_NAMES
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore, InMemoryObjectStore, InMemoryWebhookTokens
from citypipe_local.runner import app_for, load_handler


def post(body: str, fixture: str = "scaleway_queue_claim_check.json") -> dict[str, Any]:
    """The Scaleway queue-trigger fixture POSTing ``body``."""
    event = copy.deepcopy(load_event(fixture))
    event["body"] = body
    event["headers"]["Content-Length"] = str(len(body.encode()))
    return event


def invoke(function: Function, event: dict[str, Any], deps: Deps, keys: Any) -> dict[str, Any]:
    handle = load_handler(function, platform="scaleway")
    response = handle(event, load_event("scaleway_context.json"), app=app_for(function, deps, keys))
    return {**response, "body": json.loads(response["body"])}


def drop(deps: Deps) -> Message:
    return drop_lines(deps, "canonical", lines(wifi_observation()))


def is_done(deps: Deps, function: Function, message: Message) -> bool:
    ident = input_id(message.bucket, message.key, message.etag)
    return deps.store.exists(
        deps.names.bucket(Zone.AUDIT), StackNames("velden").lineage_key(function, ident)
    )


def test_the_queue_fixture_is_acknowledged_though_its_drop_is_gone(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given the recorded queue-trigger POST, whose drop does not exist in this stack
    expected = load_event("expected/scaleway_queue_claim_check.response.json")
    # When ingest's Scaleway entry point receives it, with Scaleway's dict context
    response = invoke(
        Function.INGEST, load_event("scaleway_queue_claim_check.json"), memory_deps, memory_keys
    )
    # Then the message is acknowledged (no retry can bring the drop back): quarantined
    assert response == expected
    quarantine = memory_deps.names.bucket(Zone.QUARANTINE)
    [row] = memory_deps.store.list(quarantine, "quarantine/velden/ingest/")
    text = gzip.decompress(memory_deps.store.get(quarantine, row.key).body).decode()
    assert json.loads(text)["reason"] == "input_missing"


def test_a_claim_check_posted_by_the_queue_trigger_is_processed(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    dropped = drop(memory_deps)

    response = invoke(Function.INGEST, post(claim_check(dropped)), memory_deps, memory_keys)

    assert response["statusCode"] == 200
    assert is_done(memory_deps, Function.INGEST, dropped)
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


def test_a_base64_encoded_message_is_decoded(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    dropped = drop(memory_deps)
    event = post(base64.b64encode(claim_check(dropped).encode()).decode())
    event["isBase64Encoded"] = True

    assert invoke(Function.INGEST, event, memory_deps, memory_keys)["statusCode"] == 200
    assert is_done(memory_deps, Function.INGEST, dropped)


def test_a_transient_failure_asks_the_trigger_to_retry_and_the_retry_completes(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a drop whose object times out when read
    deps = with_store(memory_deps, UnreachableStore)
    dropped = drop(deps)
    deps.store.unreachable.add(dropped.key)
    # When the trigger POSTs it, then (the store back) POSTs it again
    first = invoke(Function.INGEST, post(claim_check(dropped)), deps, memory_keys)
    deps.store.unreachable.clear()
    again = invoke(Function.INGEST, post(claim_check(dropped)), deps, memory_keys)
    # Then the first answer asks for a retry (>= 300) and the second acknowledges
    assert (first["statusCode"], first["body"]["error"]) == (500, "retry")
    assert again["statusCode"] == 200
    assert is_done(deps, Function.INGEST, dropped)


@pytest.mark.parametrize(
    "body",
    ["{not json", '{"hello": "world"}', json.dumps({"citypipe": "hourly"})],
    ids=["invalid-json", "not-a-claim-check", "cron-body-at-a-stage"],
)
def test_a_poison_message_is_quarantined_and_acknowledged(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, body: str
) -> None:
    response = invoke(Function.ANONYMIZE, post(body), memory_deps, memory_keys)

    assert response["statusCode"] == 200  # acknowledged: three retries cannot help
    quarantine = memory_deps.names.bucket(Zone.QUARANTINE)
    [row] = memory_deps.store.list(quarantine, "quarantine/velden/anonymize/messages/")
    text = gzip.decompress(memory_deps.store.get(quarantine, row.key).body).decode()
    # (kept as its shape: a message body may carry anything)
    assert (json.loads(text)["reason"], json.loads(text)["body"]) == (
        "invalid_message",
        text_shape(body, CLAIM_CHECK_NAMES),
    )


class RefusingStore(InMemoryObjectStore):
    def get(self, bucket: str, key: str) -> Any:
        raise BackendRefusedError("AccessDenied", f"{bucket}/{key}")


def test_a_refusing_backend_is_not_acknowledged_and_says_why(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    deps = with_store(memory_deps, RefusingStore)
    dropped = drop_lines(memory_deps, "canonical", lines(wifi_observation()))

    response = invoke(Function.INGEST, post(claim_check(dropped)), deps, memory_keys)

    assert response["statusCode"] == 500
    assert response["body"] == {"error": "backend_refused", "detail": "AccessDenied"}


def test_the_cron_trigger_runs_the_hourly_job(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given secrets of days long past
    memory_keys.daily_secret(date(2020, 1, 1))
    # When the CRON fixture reaches export
    response = invoke(
        Function.EXPORT, load_event("scaleway_cron_hourly.json"), memory_deps, memory_keys
    )
    # Then the hourly job ran: the old secret is gone
    assert response["statusCode"] == 200
    assert response["body"]["keys_destroyed"] == 1
    with pytest.raises(KeyDestroyedError):
        memory_keys.daily_secret(date(2020, 1, 1))


def test_a_queue_message_at_export_is_an_export_request_never_the_hourly_job(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given an old secret, and an export request on export's queue
    secret = memory_keys.daily_secret(date(2020, 1, 1))
    request = Message(city="velden", stage="export", bucket="", key="", window="2026-06-01")
    # When the queue trigger POSTs it
    response = invoke(Function.EXPORT, post(claim_check(request)), memory_deps, memory_keys)
    # Then it is acknowledged and no key was destroyed
    assert response["statusCode"] == 200
    assert memory_keys.daily_secret(date(2020, 1, 1)) == secret


# --- the public webhook function: the same authentication as on AWS -------------------------


def webhook(event: dict[str, Any], deps: Deps, tokens: InMemoryWebhookTokens) -> dict[str, Any]:
    handle = load_handler(Function.INGEST, platform="scaleway", entry="webhook")
    app = app_for(Function.INGEST, deps, InMemoryKeyStore(), tokens)
    response = handle(event, load_event("scaleway_context.json"), app=app)
    return {**response, "body": json.loads(response["body"])}


def test_the_webhook_fixture_is_accepted_with_its_sources_token(
    memory_deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    # Given the recorded POST /ingest/air-quality/senml to the public function, with the token
    expected = load_event("expected/scaleway_webhook_senml.response.json")
    # When the webhook entry point handles it
    response = webhook(load_event("scaleway_webhook_senml.json"), memory_deps, memory_tokens)
    # Then the hub gets the same 202 as through API Gateway, and anonymize is told
    assert response == expected
    assert memory_deps.queue.depth(memory_deps.names.queue(Function.ANONYMIZE)) == (1, 0)


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("cpt-air-quality-someone-elses", 401)],
    ids=["no-token", "wrong-token"],
)
def test_a_webhook_without_a_valid_token_is_refused_and_nothing_is_written(
    memory_deps: Deps, memory_tokens: InMemoryWebhookTokens, token: str | None, status: int
) -> None:
    event = load_event("scaleway_webhook_senml.json")
    del event["headers"]["X-Citypipe-Token"]
    if token is not None:
        event["headers"]["X-Citypipe-Token"] = token

    response = webhook(event, memory_deps, memory_tokens)

    assert response["statusCode"] == status
    assert list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW))) == []
    assert list(memory_deps.store.list(memory_deps.names.bucket(Zone.AUDIT))) == []


def test_a_webhook_body_that_is_not_utf8_gets_a_400(
    memory_deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    event = load_event("scaleway_webhook_senml.json")
    event["body"] = base64.b64encode(b'[{"bn": "aq-007/\xff"}]').decode()  # one stray byte
    event["isBase64Encoded"] = True

    response = webhook(event, memory_deps, memory_tokens)

    assert (response["statusCode"], response["body"]["error"]) == (400, "no_usable_reading")
    assert response["body"]["reasons"] == {"invalid_encoding": 1}
