"""The local runner plays Lambda's SQS event source mapping against the embedded backend:
genuine SQS records, deletes on success, partial batch failures redelivered after the
visibility timeout, and maxReceiveCount -> DLQ."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from citypipe.adapters.sqs import SqsQueue
from citypipe.domain.city import City
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.settings import StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint
from citypipe_local.fakes import InMemoryQueue
from citypipe_local.faults import Faults
from citypipe_local.runner import InvocationCrashedError, LocalRunner, Workers
from citypipe_local.stack import Clients, make_clients

VISIBILITY_S = 1
MAX_RECEIVES = 2


@dataclass
class Delivery:
    at: float
    record: dict[str, Any]


@dataclass
class RecordingHandler:
    """A Lambda handler that records every record it is given and fails the bodies that
    ``fails`` says should fail on a given receive count."""

    fails: Callable[[str, int], bool] = lambda body, receive_count: False
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        now = time.monotonic()
        failures = []
        with self._lock:
            self.events.append(event)
            for record in event["Records"]:
                self.deliveries.append(Delivery(now, record))
                count = int(record["attributes"]["ApproximateReceiveCount"])
                if self.fails(record["body"], count):
                    failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def of(self, body: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.record["body"] == body]


@pytest.fixture
def clients(embedded: Endpoint) -> Clients:
    return make_clients(embedded.settings)


@pytest.fixture
def names(city: City, clients: Clients) -> Iterator[StackNames]:
    names = StackNames(city.slug, prefix=f"lr{uuid.uuid4().hex[:10]}-")
    stack.up(
        city,
        names,
        clients,
        StackSettings(visibility_timeout_s=VISIBILITY_S, max_receive_count=MAX_RECEIVES),
    )
    yield names
    stack.down(names, clients)


@pytest.fixture
def queue(clients: Clients) -> SqsQueue:
    return SqsQueue(clients.sqs)


def run(
    names: StackNames, queue: SqsQueue, handler: RecordingHandler, gather: bool = False
) -> LocalRunner:
    """The runner on ingest's queue, an event source of ten messages a batch (``gather``:
    as ingest's, which gathers a batch from several receives)."""
    runner = LocalRunner(names, queue, handlers={Function.INGEST: handler})
    if not gather:
        runner.gathered = {}
    runner.drain([Function.INGEST], timeout_s=30)
    return runner


def drain_while_hubs_post(
    runner: LocalRunner,
    function: Function,
    count: int,
    pause_s: float,
    also: Function | None = None,
) -> None:
    """``count`` messages sent to ``function``'s queue a ``pause_s`` apart, as hubs post,
    while the runner drains it (and ``also``'s) until they are all sent."""
    sent = threading.Event()

    def hubs() -> None:
        for n in range(count):
            runner.queue.send(runner.names.queue(function), [f"ok-{n:02d}"])
            runner.wake(function)
            time.sleep(pause_s)
        sent.set()
        runner.wake()

    drained = [function] if also is None else [also, function]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hubs)
        runner.drain(drained, timeout_s=30, until=sent.is_set)


def test_ingests_event_source_gathers_what_waits_into_one_batch(
    names: StackNames, queue: SqsQueue
) -> None:
    """As serverless.yml's batch size of 1,000: the webhook's buffered requests in one."""
    bodies = [f"ok-{n:02d}" for n in range(25)]
    queue.send(names.queue(Function.INGEST), bodies)
    handler = RecordingHandler()
    run(names, queue, handler, gather=True)
    assert [len(e["Records"]) for e in handler.events] == [25]


def test_ingest_waits_out_its_window_for_requests_still_coming(
    names: StackNames, queue: SqsQueue
) -> None:
    """Hubs posting a request at a time, a little apart: the batcher does not write a batch
    each time it catches up with them, but gathers for its window as Lambda's event source
    (the same requests sent at once would be one batch either way)."""
    ingest = names.queue(Function.INGEST)
    # the fixture's 1 s visibility is for the redelivery tests: here, well above the window
    queue.client.set_queue_attributes(
        QueueUrl=queue.url(ingest), Attributes={"VisibilityTimeout": "30"}
    )
    handler = RecordingHandler()
    runner = LocalRunner(names, queue, handlers={Function.INGEST: handler})
    drain_while_hubs_post(runner, Function.INGEST, 12, pause_s=0.05)
    assert [len(e["Records"]) for e in handler.events] == [12]


def test_while_ingest_gathers_the_other_stages_are_served(city: City) -> None:
    """A gathering batch does not hold up the drain: the edge's batches for anonymize are
    delivered as they come while ingest's window is open (a drop's claim check in it)."""
    names = StackNames(city.slug)
    queue = InMemoryQueue()
    for function in (Function.INGEST, Function.ANONYMIZE):
        queue.create(names.queue(function), visibility_timeout_s=60)
    ingest, anonymize = RecordingHandler(), RecordingHandler()
    runner = LocalRunner(names, queue, handlers={Function.INGEST: ingest})
    runner.handlers[Function.ANONYMIZE] = anonymize
    queue.send(names.queue(Function.INGEST), ["a drop's claim check"])
    drain_while_hubs_post(runner, Function.ANONYMIZE, 10, pause_s=0.1, also=Function.INGEST)
    (gathered,) = [d.at for d in ingest.deliveries]
    served = [d.at for d in anonymize.deliveries]
    assert len(served) == 10
    assert sum(at < gathered for at in served) >= 5  # not all after the window


def test_successful_messages_are_deleted(names: StackNames, queue: SqsQueue) -> None:
    bodies = [f"ok-{n:02d}" for n in range(25)]
    queue.send(names.queue(Function.INGEST), bodies)
    handler = RecordingHandler()

    runner = run(names, queue, handler)

    assert sorted(d.record["body"] for d in handler.deliveries) == bodies
    assert all(len(e["Records"]) <= 10 for e in handler.events)
    assert queue.depth(names.queue(Function.INGEST)) == (0, 0)
    assert queue.depth(names.dlq(Function.INGEST)) == (0, 0)
    stats = runner.stats[Function.INGEST]
    assert (stats.messages, stats.failures) == (25, 0)


def test_a_reported_failure_is_redelivered_after_the_visibility_timeout(
    names: StackNames, queue: SqsQueue
) -> None:
    queue.send(names.queue(Function.INGEST), ["ok-1", "flaky", "ok-2"])
    handler = RecordingHandler(fails=lambda body, count: body == "flaky" and count == 1)

    run(names, queue, handler)

    first, second = handler.of("flaky")
    assert first.record["messageId"] == second.record["messageId"]
    assert first.record["attributes"]["ApproximateReceiveCount"] == "1"
    assert second.record["attributes"]["ApproximateReceiveCount"] == "2"
    assert second.at - first.at >= VISIBILITY_S * 0.9
    assert len(handler.of("ok-1")) == len(handler.of("ok-2")) == 1
    assert queue.depth(names.queue(Function.INGEST)) == (0, 0)
    assert queue.depth(names.dlq(Function.INGEST)) == (0, 0)


def test_a_message_that_always_fails_lands_in_the_dlq_after_max_receives(
    names: StackNames, queue: SqsQueue
) -> None:
    queue.send(names.queue(Function.INGEST), ["ok", "poison"])
    handler = RecordingHandler(fails=lambda body, count: body == "poison")

    run(names, queue, handler)

    counts = [d.record["attributes"]["ApproximateReceiveCount"] for d in handler.of("poison")]
    assert counts == [str(n) for n in range(1, MAX_RECEIVES + 1)]
    assert len(handler.of("ok")) == 1
    dead = queue.receive(names.dlq(Function.INGEST))
    assert [m.body for m in dead] == ["poison"]
    assert queue.depth(names.queue(Function.INGEST)) == (0, 0)


def test_a_crashed_invocation_fails_its_whole_batch(names: StackNames, queue: SqsQueue) -> None:
    queue.send(names.queue(Function.INGEST), ["a", "b", "c"])
    recorder = RecordingHandler()
    crashed: list[bool] = []

    def crash_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
        recorder(event, context)
        if not crashed:
            crashed.append(True)
            raise RuntimeError("container died")
        return {"batchItemFailures": []}

    runner = LocalRunner(names, queue, handlers={Function.INGEST: crash_once})
    runner.drain([Function.INGEST], timeout_s=30)

    first_batch = {r["body"] for r in recorder.events[0]["Records"]}
    for body in first_batch:
        assert [d.record["attributes"]["ApproximateReceiveCount"] for d in recorder.of(body)] == [
            "1",
            "2",
        ]
    assert queue.depth(names.queue(Function.INGEST)) == (0, 0)
    assert queue.depth(names.dlq(Function.INGEST)) == (0, 0)


class StaleReceipts(InMemoryQueue):
    """SQS refusing the first delete: the invocation outlived its visibility timeout, the
    message was received again, the receipt the runner holds is stale."""

    refused = 0

    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None:
        if not self.refused:
            self.refused += 1
            for message in self._queue(queue).messages:
                message.visible_at = 0.0  # visible again, as after the timeout
            raise TransientError("could not delete 1 messages")
        super().delete(queue, receipt_handles)


def test_a_refused_delete_leaves_the_message_to_be_delivered_again(city: City) -> None:
    # Given a queue that refuses the delete of a message's first delivery
    names = StackNames(city.slug)
    queue = StaleReceipts()
    queue.create(names.queue(Function.INGEST), visibility_timeout_s=VISIBILITY_S)
    queue.send(names.queue(Function.INGEST), ["slow"])
    recorder = RecordingHandler()

    # When the runner drains it
    runner = LocalRunner(names, queue, handlers={Function.INGEST: recorder})
    runner.drain([Function.INGEST], timeout_s=30)

    # Then the runner carries on: the message, delivered again, is consumed
    assert [d.record["body"] for d in recorder.deliveries] == ["slow", "slow"]
    assert runner.stats[Function.INGEST].undeleted == 1
    assert queue.depth(names.queue(Function.INGEST)) == (0, 0)


def test_the_handler_gets_genuine_sqs_records(
    names: StackNames, queue: SqsQueue, embedded: Endpoint
) -> None:
    body = '{"v": 1, "city": "velden"}'
    queue.send(names.queue(Function.INGEST), [body])
    handler = RecordingHandler()

    run(names, queue, handler)

    [event] = handler.events
    [record] = event["Records"]
    assert record["messageId"]
    assert record["receiptHandle"]
    assert record["body"] == body
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(record["attributes"]["SentTimestamp"]) > 0
    assert int(record["attributes"]["ApproximateFirstReceiveTimestamp"]) > 0
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn(names.queue(Function.INGEST))
    assert record["eventSourceARN"].startswith("arn:aws:sqs:eu-central-1:")
    assert record["awsRegion"] == embedded.settings.region
    SqsModel.model_validate(event)  # Powertools' strict model of a Lambda SQS event


def test_a_worker_that_dies_fails_only_its_own_invocation() -> None:
    # Given two worker processes, one busy with a long invocation
    workers = Workers(2, ({}, None, Faults(), None))
    try:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(workers.run, time.sleep, 1.0)
            time.sleep(0.2)
            # When the other one dies mid-invocation
            with pytest.raises(InvocationCrashedError):
                workers.run(os._exit, 137)
            # Then the busy one finishes its work, and the pool goes on with it
            assert busy.result(timeout=30) is None
        assert workers.crashes == 1
        assert workers.run(os.getpid) != os.getpid()
    finally:
        workers.close()
