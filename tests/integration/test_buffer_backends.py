"""The webhook's buffer (decision 90) on real S3 and SQS APIs — the moto server citypipe
starts, and LocalStack: what the queue holds has no identifier; a batch written, a crash
after its manifest and a redelivery in another grouping still count each request once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from citypipe.domain.books import IngestCounts, Lineage
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function, Zone
from citypipe.ports import TOKEN_HEADER, ReceivedMessage
from citypipe.service.buffer import Batcher
from citypipe.service.kernel import Deps
from citypipe.service.webhook import WebhookRequest, answer
from citypipe.settings import Settings
from citypipe_local.backends import Endpoint
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens

BACKENDS = [
    "embedded",
    pytest.param(
        "localstack", marks=[pytest.mark.localstack, pytest.mark.xdist_group("localstack")]
    ),
]
COUNTER = "urn:dev:mac:0024befffe800001"  # tc-001, traffic-counters
MACS = ("AA:BB:CC:00:11:22", "de:ad:be:ef:00:01")
KEYS = InMemoryKeyStore()


@pytest.fixture(params=BACKENDS)
def deps(
    request: pytest.FixtureRequest, fresh_stack: Callable[[Endpoint], tuple[Settings, Deps]]
) -> Deps:
    return fresh_stack(request.getfixturevalue(request.param))[1]


def post(deps: Deps, source: str, fmt: str, body: str) -> dict[str, Any]:
    tokens = InMemoryWebhookTokens()
    token = tokens.mint(source)
    request = WebhookRequest(
        "POST", source, fmt, {TOKEN_HEADER: token}, body, request_id=uuid.uuid4().hex
    )
    response = answer(deps, tokens, KEYS, request, Batcher(deps))
    assert response.status == 202, response.body
    return response.body


def pack(minute: int) -> str:
    at = (int(time.time()) // 3600 - 1) * 3600 + 60 * minute  # the hour before this one
    return json.dumps(
        [{"bn": f"{COUNTER}/", "bt": at, "bu": "count"}, {"n": "vehicles", "v": minute}]
    )


def sightings() -> str:
    at = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 3600))
    return "\n".join(
        json.dumps(
            {
                "sensor": "wifi-21",
                "quantity": "people.presence",
                "unit": "{device}",
                "value": 1,
                "observed_at": at,
                "personal": {"device_mac": mac},
            }
        )
        for mac in MACS
    )


def queued(deps: Deps) -> list[ReceivedMessage]:
    queue, messages = deps.names.queue(Function.INGEST), []
    while batch := deps.queue.receive(queue, 10):
        messages += batch
    return messages


def books(deps: Deps) -> IngestCounts:
    audit = deps.names.bucket(Zone.AUDIT)
    total = IngestCounts.zero()
    for info in deps.store.list(audit, deps.names.lineage_prefix(Function.INGEST)):
        lineage = Lineage.model_validate_json(deps.store.get(audit, info.key).body)
        assert isinstance(lineage.counts, IngestCounts)
        total += lineage.counts
    return total


class Crash(Exception):
    pass


def test_the_queue_holds_no_identifier(deps: Deps) -> None:
    assert post(deps, "wifi-counters", "canonical", sightings())["accepted"] == 2
    [message] = queued(deps)
    text = message.body.lower()
    spellings = {s for mac in MACS for s in (mac.lower(), mac.replace(":", "").lower())}
    assert not [s for s in spellings if s in text]


def test_requests_are_counted_once_across_a_crash_and_another_grouping(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    for minute in range(6):
        post(deps, "traffic-counters", "senml", pack(minute))
    post(deps, "traffic-counters", "senml", pack(0))  # a hub's resend
    messages = queued(deps)
    assert len(messages) == 7
    import citypipe.service.buffer as buffer

    def die(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:  # killed after its manifest, before announcing
        patched.setattr(buffer, "record", die)
        with pytest.raises(Crash):
            Batcher(deps).take([(m.body, m.message_id) for m in messages[:4]])
    # every message again, in other groupings, to fresh batchers
    for group in (messages[2:], messages[:2], messages):
        assert Batcher(deps).take([(m.body, m.message_id) for m in group]) == []
    counts = books(deps)
    assert (counts.payloads, counts.resent, counts.accepted, counts.duplicates) == (6, 1, 6, 0)
    raw = deps.names.bucket(Zone.RAW)
    assert len(list(deps.store.list(raw, "raw/"))) == 2  # the crashed batch's, and the rest's
    notices = queued_anonymize(deps)  # each raw object announced once, each reading in one
    assert (len(notices), sum(n["records"] for n in notices)) == (2, 6)


def queued_anonymize(deps: Deps) -> list[dict[str, Any]]:
    queue, found = deps.names.queue(Function.ANONYMIZE), []
    while batch := deps.queue.receive(queue, 10):
        found += [json.loads(m.body) for m in batch]
    return found


def test_two_batchers_given_the_same_requests_at_once_write_them_once(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS delivers messages twice at once, in two batches (decision 120): the second
    batcher writes while the first has read the manifests and not yet written its own.
    The first yields when it reads them again; its messages come again and are found."""
    for minute in range(5):
        post(deps, "traffic-counters", "senml", pack(minute))
    messages = queued(deps)
    first, second = messages[:3], messages[1:]
    real = deps.store.put_if_absent
    other = [lambda: Batcher(deps).take([(m.body, m.message_id) for m in second])]

    def put(bucket: str, key: str, *args: Any) -> Any:
        if key.startswith("raw/") and other:
            assert other.pop()() == []  # the other batcher, start to end
        return real(bucket, key, *args)

    with monkeypatch.context() as patched:
        patched.setattr(deps.store, "put_if_absent", put)
        with pytest.raises(TransientError, match="yielded"):
            Batcher(deps).take([(m.body, m.message_id) for m in first])
    assert Batcher(deps).take([(m.body, m.message_id) for m in first]) == []  # again
    counts = books(deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (5, 5, 0)
    notices = queued_anonymize(deps)
    assert (len(notices), sum(n["records"] for n in notices)) == (2, 5)


def test_a_large_request_and_a_buffered_one_share_a_reading_written_once(deps: Deps) -> None:
    """A request too large for a message is written through the batcher, into the same
    manifests (decision 123): its reading sent again in a small request is a duplicate."""
    at = (int(time.time()) // 3600 - 1) * 3600  # the hour before this one
    big = "\n".join(
        json.dumps([{"bn": f"{COUNTER}/", "bt": at + i, "bu": "count"}, {"n": "vehicles", "v": 1}])
        for i in range(3_000)
    )
    post(deps, "traffic-counters", "senml", big)
    assert queued(deps) == []  # written at once: no message
    post(deps, "traffic-counters", "senml", pack(0))  # its first reading again (at, 0 vehicles)
    assert Batcher(deps).take([(m.body, m.message_id) for m in queued(deps)]) == []
    counts = books(deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (3_001, 3_000, 1)
