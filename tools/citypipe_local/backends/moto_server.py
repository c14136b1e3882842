"""The embedded backend's moto server: ``python -m citypipe_local.backends.moto_server
[--clock OFFSET_FILE] [moto.server's arguments]``. Laptop tooling only, as is moto.

Three changes to ``moto.server``, none to what it answers:

- **no directory walk per request**: moto looks up every request's host among its own
  package folders (``list_of_moto_modules``: a ``listdir`` and ~150 ``stat`` calls); the
  folders don't change while it runs, so the list is read once. With the line per request
  werkzeug logs (to nowhere: the launcher discards it), a fifth of the server's CPU.
  (werkzeug's development server closes every connection after its response, so each
  request still opens a TCP connection and a server thread: not changed here.)
- **a queue's attributes read one at a time**: moto builds every attribute of a queue,
  its three message counts among them (a scan of the queue each), whenever it reads one:
  on every ``SendMessage`` (is the queue content-deduplicated?) and, in a receive, for
  every message it looks at (its retention period). A receive was quadratic in the
  queue's length: a buffered webhook's queue of a few thousand requests took seconds a
  call, where SQS takes milliseconds (decision 102). The queue's ``attributes`` are now a
  mapping that computes the one asked for; ``GetQueueAttributes`` answers the same
  (``tests/integration/test_moto_server.py`` compares it with moto's own).
- **a queue's messages looked at once per call**: moto reads the clock (~6 µs) twice for
  every message of a queue — visible? delayed? — each time it lists what a receive may take
  or counts the queue, and a ``DeleteMessageBatch`` looks through the whole queue twice per
  receipt handle. On a queue of 2,000 messages, 1,000 in flight (ingest's batching window
  on the webhook's queue), a receive took 15 to 30 ms and a batch delete 4 to 7 ms, where SQS
  takes milliseconds. The list of what a receive may take now reads the clock once (moto
  still reads it for each message it then examines) and a batch of deletes is one pass over
  the queue (``queues_looked_at_once``): ~1 ms and ~0.4 ms, the webhook slice's server CPU
  ~4.5 s instead of ~6.2 (decision 112). What they answer is moto's
  (``tests/integration/test_moto_server.py`` replays receives, deletes and delays on both).
- **a queue's calls one at a time**: moto's SQS is not thread-safe, and its server
  answers each request in a thread of its own. A delete writes back the queue's list of
  messages without the deleted ones: a message sent meanwhile could be lost (a request
  answered 202 whose readings never arrived: the webhook slice's books once came out five
  requests short), and of two deletes at once one could bring the other's messages back,
  delivered again after their visibility timeout (a 30-second stall; the batcher counts
  them nothing). A receive racing a delete failed outright (``Set changed size during
  iteration``: a 500, retried). SQS's calls are each atomic: here every SQS call that reads
  or changes queues takes one lock, the same for every queue of the server
  (``sqs_calls_one_at_a_time``: no order between two queues' locks to get wrong when a
  receive moves a message to its dead-letter queue). A long-polling receive
  (``WaitTimeSeconds``, which citypipe never asks for) is a series of short ones, waiting
  between them without the lock for a send to wake it, timed on the real clock.
  ``tests/integration/test_moto_server_interleavings.py`` forces each race and shows it
  gone. (moto's Lambda event-source mappings, which citypipe does not use here, would
  invoke a function inside a locked send.)
- **a simulated clock**, with ``--clock``: moto reads the time through
  ``moto.core.utils.utcnow`` (objects' ``LastModified``, queue timers: every module calls
  it, or imports it before its first request), so replacing that one function before the
  server loads a service puts the whole backend on the replay's clock
  (``citypipe_local.clock``).

And one setting: moto serves a region AWS does not have (Scaleway's fr-par, nl-ams,
pl-waw: a Scaleway city's stack is kept in its own region here too).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moto import backends
from moto.core import utils

from citypipe_local.clock import Offset


def on_clock(offset_file: Path) -> None:
    offset = Offset(offset_file)
    real = utils.utcnow

    def utcnow() -> datetime:
        return real() + timedelta(seconds=offset.seconds())

    utils.utcnow = utcnow  # before moto.server loads any service's models


class QueueAttributes(Mapping[str, Any]):
    """``moto.sqs.models.Queue.attributes``, each computed when read: the same keys and
    values (booleans as ``"true"``/``"false"``), without counting the queue's messages
    for a question about its retention period."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:  # without computing it
        return name in self._names()

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        value = getattr(self._queue, utils.camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            value = json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value


def attributes_one_at_a_time() -> None:
    from moto.sqs import models

    get_queue_attributes = models.SQSBackend.get_queue_attributes

    def answered(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        return dict(get_queue_attributes(self, queue_name, attribute_names))  # a plain dict

    models.Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]
    models.SQSBackend.get_queue_attributes = answered  # type: ignore[method-assign]


def queues_looked_at_once() -> None:
    from moto.sqs import models

    def messages(queue: Any) -> list[Any]:  # ``Queue.messages``: visible, not delayed
        now = utils.unix_time_millis()
        return [m for m in queue._messages if now > m.visible_at and now >= m.delayed_until]

    def not_visible(queue: Any) -> int:
        now = utils.unix_time_millis()
        return sum(1 for m in queue._messages if now <= m.visible_at)

    def delayed(queue: Any) -> int:
        now = utils.unix_time_millis()
        return sum(1 for m in queue._messages if now < m.delayed_until)

    delete_message_batch = models.SQSBackend.delete_message_batch

    def deleted_at_once(
        self: Any, queue_name: str, receipts: list[dict[str, Any]]
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Every message a receipt names deleted in one pass; a receipt of no message is
        left to moto's own, which refuses it as it does."""
        queue = self.get_queue(queue_name)
        wanted = {r["ReceiptHandle"] for r in receipts} - queue.deleted_messages
        kept = []
        for message in queue._messages:
            if wanted.isdisjoint(message.all_receipt_handles):
                kept.append(message)
            else:
                queue.pending_messages.discard(message)
                queue.deleted_messages.update(message.all_receipt_handles)
        queue._messages = kept
        done = [r["Id"] for r in receipts if r["ReceiptHandle"] in queue.deleted_messages]
        unknown = [r for r in receipts if r["ReceiptHandle"] not in queue.deleted_messages]
        refused: list[dict[str, str]] = delete_message_batch(self, queue_name, unknown)[1]
        return done, refused

    models.Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    models.Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[assignment,method-assign]
    models.Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[assignment,method-assign]
    models.SQSBackend.delete_message_batch = deleted_at_once  # type: ignore[method-assign]


ATOMIC = (
    "create_queue",
    "delete_queue",
    "list_queues",
    "set_queue_attributes",
    "list_dead_letter_source_queues",
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
)


def sqs_calls_one_at_a_time() -> None:
    from moto.sqs import models

    lock = threading.RLock()  # a batch delete deletes through ``delete_message``

    def atomic(method: Any) -> Any:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)

        return call

    for name in ATOMIC:
        setattr(models.SQSBackend, name, atomic(getattr(models.SQSBackend, name)))
    receive = models.SQSBackend.receive_message

    def received(self: Any, queue_name: str, count: int, wait_s: int, *rest: Any) -> Any:
        """A short poll atomic; a long poll (``WaitTimeSeconds``) a series of them, waiting
        between them without the lock for a send to wake it, until ``wait_s`` has passed."""
        end = time.monotonic() + wait_s
        while True:
            with lock:
                got = receive(self, queue_name, count, 0, *rest)
            left = end - time.monotonic()
            if got or left <= 0:
                return got
            self.get_queue(queue_name).wait_for_messages(min(left, 1))

    models.SQSBackend.receive_message = received  # type: ignore[method-assign,assignment]


# What the changes replace or read of moto's: a moto that renamed one would be patched
# silently (a new, unused property) or fail only at its first request.
PATCHED = {
    "moto.sqs.models.SQSBackend": [*ATOMIC, "receive_message", "get_queue"],
    "moto.sqs.models.Queue": [
        "messages",
        "approximate_number_of_messages_not_visible",
        "approximate_number_of_messages_delayed",
        "wait_for_messages",
        "attributes",
    ],
}


def moto_as_patched() -> None:
    """Refuse to start on a moto without what the changes replace, saying what is gone."""
    from moto.sqs import models

    classes = {
        "moto.sqs.models.SQSBackend": models.SQSBackend,
        "moto.sqs.models.Queue": models.Queue,
    }
    gone = [
        f"{where}.{name}"
        for where, names in PATCHED.items()
        for name in names
        if not hasattr(classes[where], name)
    ]
    if gone:
        raise SystemExit(f"citypipe's moto server: this moto has no {', '.join(gone)}")


def main(argv: list[str]) -> None:
    os.environ["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
    moto_as_patched()
    if argv[:1] == ["--clock"]:
        on_clock(Path(argv[1]))
        argv = argv[2:]
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = functools.wraps(backends.list_of_moto_modules)(
        list_of_moto_modules
    )
    attributes_one_at_a_time()
    queues_looked_at_once()
    sqs_calls_one_at_a_time()
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import main as serve

    MotoRequestHandler.log_request = lambda self, code="-", size="-": None  # type: ignore[method-assign]
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
