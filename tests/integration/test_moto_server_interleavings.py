"""Interleavings forced, not hoped for: the embedded server's SQS patches applied to moto in
this process (undone after each test), and a hook that pauses one call in the middle of its
pass over the queue while another call runs. Without ``sqs_calls_one_at_a_time`` the other
call lands inside the pass; with it, it waits for the pass to end (the hook gives up after
``PAUSE`` seconds), so each test's answer is the same every run."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.sqs import models

from citypipe_local.backends import moto_server

ACCOUNT, REGION = "123456789012", "eu-central-1"
PAUSE = 0.5  # how long a paused pass waits for the other call: enough to land, if it can


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    patched = {
        models.SQSBackend: ["get_queue_attributes", "receive_message", *moto_server.ATOMIC],
        models.Queue: [
            "attributes",
            "messages",
            "approximate_number_of_messages_not_visible",
            "approximate_number_of_messages_delayed",
        ],
    }
    for cls, names in patched.items():
        for name in names:  # monkeypatch puts moto's own back after the test
            monkeypatch.setattr(cls, name, vars(cls)[name])
    moto_server.attributes_one_at_a_time()
    moto_server.queues_looked_at_once()
    moto_server.sqs_calls_one_at_a_time()
    models.sqs_backends[ACCOUNT].reset()
    yield models.sqs_backends[ACCOUNT][REGION]
    models.sqs_backends[ACCOUNT].reset()


class Pausing(list):  # type: ignore[type-arg]
    """A queue's ``_messages`` whose iteration, in an armed thread, pauses once it has
    given every message (a pass over the queue done, its answer not yet written back),
    until ``landed`` is set or ``PAUSE`` passes; ``paused`` is set when it gets there."""

    armed: set[int]
    paused: threading.Event
    landed: threading.Event

    def __iter__(self) -> Iterator[Any]:
        yield from list.__iter__(self)
        if threading.get_ident() in self.armed:
            self.paused.set()
            self.landed.wait(PAUSE)


def pausing_pass(
    backend: Any, queue: str
) -> tuple[Callable[[], None], threading.Event, threading.Event]:
    messages = Pausing(backend.get_queue(queue)._messages)
    messages.armed, messages.paused, messages.landed = set(), threading.Event(), threading.Event()
    backend.get_queue(queue)._messages = messages
    return (lambda: messages.armed.add(threading.get_ident())), messages.paused, messages.landed


def in_thread(call: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def race(backend: Any, queue: str, first: Callable[[], Any], then: Callable[[], Any]) -> None:
    """``first`` paused after its pass over ``queue`` while ``then`` runs."""
    arm, paused, landed = pausing_pass(backend, queue)

    def paused_first() -> None:
        arm()
        first()

    a = in_thread(paused_first)
    assert paused.wait(5)

    def then_landed() -> None:
        then()
        landed.set()

    b = in_thread(then_landed)
    a.join(10)
    b.join(10)
    assert not a.is_alive() and not b.is_alive()


def handle(backend: Any, queue: str) -> str:
    [message] = backend.receive_message(queue, 1, 0, 600)
    return str(message.receipt_handle)


def bodies(backend: Any, queue: str) -> list[str]:
    return sorted(m.body for m in backend.get_queue(queue)._messages)


@pytest.mark.parametrize("batch", [True, False], ids=["DeleteMessageBatch", "DeleteMessage"])
def test_a_send_racing_a_delete_is_kept(backend: Any, batch: bool) -> None:
    backend.create_queue("q")
    backend.send_message("q", "deleted")
    receipt = handle(backend, "q")
    if batch:
        delete = lambda: backend.delete_message_batch("q", [{"Id": "0", "ReceiptHandle": receipt}])  # noqa: E731
    else:
        delete = lambda: backend.delete_message("q", receipt)  # noqa: E731
    race(backend, "q", delete, lambda: backend.send_message("q", "sent meanwhile"))
    assert bodies(backend, "q") == ["sent meanwhile"]


def test_two_deletes_at_once_bring_nothing_back(backend: Any) -> None:
    backend.create_queue("q")
    backend.send_message_batch(
        "q",
        {
            str(n): {"Id": str(n), "MessageBody": b, "MessageAttributes": {}, "DelaySeconds": None}
            for n, b in enumerate("ab")
        },
    )
    [a, b] = [m.receipt_handle for m in backend.receive_message("q", 2, 0, 600)]
    race(
        backend,
        "q",
        lambda: backend.delete_message_batch("q", [{"Id": "0", "ReceiptHandle": a}]),
        lambda: backend.delete_message_batch("q", [{"Id": "0", "ReceiptHandle": b}]),
    )
    assert bodies(backend, "q") == []


def test_a_long_poll_redriving_during_a_delete_moves_the_message_once(
    backend: Any,
) -> None:
    """A long-polling receive (``WaitTimeSeconds`` > 0) is left unlocked: it still mutates
    the queue (receive counts, in-flight set, the move to the dead-letter queue) while a
    locked delete writes back the queue's list."""
    dlq = backend.create_queue("q-dlq")
    redrive = {"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 1}
    backend.create_queue("q", RedrivePolicy=json.dumps(redrive), VisibilityTimeout="0")
    backend.send_message("q", "received once, redriven")
    redriven = handle(backend, "q")  # received once: the next receive redrives it
    backend.send_message("q", "deleted")
    deleted = handle(backend, "q")
    backend.change_message_visibility("q", redriven, 0)
    race(
        backend,
        "q",
        lambda: backend.delete_message_batch("q", [{"Id": "0", "ReceiptHandle": deleted}]),
        lambda: backend.receive_message("q", 10, 1, 600),  # a long poll
    )
    assert (bodies(backend, "q"), bodies(backend, "q-dlq")) == ([], ["received once, redriven"])


def test_a_long_poll_waits_for_a_send_without_holding_up_the_queue(backend: Any) -> None:
    """A long poll answers a send made while it waits, and the queue's other calls are not
    held up meanwhile (no lock held across the wait)."""
    import time

    backend.create_queue("q")
    got: list[Any] = []
    start = time.monotonic()
    poll = in_thread(lambda: got.extend(backend.receive_message("q", 10, 5, 600)))
    time.sleep(0.2)
    backend.get_queue_attributes("q", ["All"])  # not held up
    backend.send_message("q", "sent while polled")
    poll.join(10)
    assert [m.body for m in got] == ["sent while polled"]
    assert time.monotonic() - start < 2  # woken by the send, not the poll's end
