"""Sends from concurrent threads go out together, each returned once its own is sent
(adapters/grouped_queue.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from citypipe.adapters.grouped_queue import GroupedSends
from citypipe.domain.errors import TransientError
from citypipe_local.fakes import InMemoryQueue


class SlowQueue(InMemoryQueue):
    """A queue whose every call takes a while (a network round trip), and that refuses the
    batches holding a body starting with ``refused``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        time.sleep(0.02)
        self.batches.append(list(bodies))
        if any(body.startswith("refused") for body in bodies):
            raise TransientError("1 of the messages not sent")
        super()._send_batch(queue, bodies)


def _bodies(queue: InMemoryQueue, name: str) -> list[str]:
    return sorted(m.body for m in queue.receive(name, 1000))


def test_one_sender_sends_as_the_queue_does() -> None:
    queue = SlowQueue()
    queue.create("ingest")
    grouped = GroupedSends(queue)
    assert grouped.send("ingest", [f"b{n:02d}" for n in range(23)]) == 23
    assert [len(b) for b in queue.batches] == [10, 10, 3] and grouped.calls == 3
    assert _bodies(queue, "ingest") == [f"b{n:02d}" for n in range(23)]


def test_concurrent_senders_share_batches_and_each_message_is_sent_once() -> None:
    queue = SlowQueue()
    queue.create("ingest")
    grouped = GroupedSends(queue)
    bodies = [f"r{n:03d}" for n in range(96)]
    with ThreadPoolExecutor(16) as pool:
        sent = list(pool.map(lambda body: grouped.send("ingest", [body]), bodies))
    assert sent == [1] * 96
    assert _bodies(queue, "ingest") == bodies
    assert all(len(batch) <= 10 for batch in queue.batches)
    assert grouped.calls == len(queue.batches) < 96 / 3  # grouped, not one a request


def test_a_send_returns_only_once_its_own_message_is_sent() -> None:
    queue = SlowQueue()
    queue.create("ingest")
    grouped = GroupedSends(queue)
    returned: list[bool] = []

    def send(body: str) -> None:
        grouped.send("ingest", [body])
        returned.append(body in [m for b in queue.batches for m in b])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [f"r{n}" for n in range(40)]))
    assert returned == [True] * 40


def test_a_refused_batch_fails_every_send_in_it_and_only_those() -> None:
    queue = SlowQueue()
    queue.create("ingest")
    queue.create("other")
    grouped = GroupedSends(queue)
    outcomes: dict[str, str] = {}

    def send(target: str, body: str) -> None:
        try:
            grouped.send(target, [body])
            outcomes[body] = "sent"
        except TransientError:
            outcomes[body] = "refused"

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(send, "ingest", "refused-0")]
        futures += [pool.submit(send, "other", f"ok-{n}") for n in range(5)]
    for future in futures:
        future.result()
    assert outcomes["refused-0"] == "refused"
    other = [body for body, outcome in outcomes.items() if body.startswith("ok")]
    assert sorted(other) == _bodies(queue, "other")  # another queue's batch, not failed
    assert all(outcomes[body] == "sent" for body in other)
    for batch in queue.batches:  # whoever shared the refused batch was told so
        if "refused-0" in batch:
            assert all(outcomes[body] == "refused" for body in batch)


def test_an_error_reaches_the_sender_and_the_queue_goes_on() -> None:
    queue = SlowQueue()
    queue.create("ingest")
    grouped = GroupedSends(queue)
    with pytest.raises(TransientError):
        grouped.send("ingest", ["refused"])
    assert grouped.send("ingest", ["fine"]) == 1
    assert _bodies(queue, "ingest") == ["fine"]
