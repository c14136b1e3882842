"""A Queue whose sends from concurrent threads go out together (group commit).

A server that takes many requests at once — the local webhook server, a bridge's — hands
each request to ingest's queue before it answers (``service.buffer.Batcher.hand_over``). Sent one
by one, every request costs a ``SendMessage``; here a sender whose message is not sent yet
either sends everything waiting (as many ``SendMessageBatch`` calls as SQS's limits ask,
each with up to ten messages of the same queue) or waits for the sender that does. A send
returns only once its own messages are sent, and raises when their queue's send failed
(a message of an earlier batch of it may be told so too: its hub posts it again, and the
batcher counts the request ``resent``): each request is still answered "2xx once durable",
or not at all. One thread alone sends as
the queue it wraps.

A function invoked once per request (Lambda, Scaleway Functions) sends its own message:
there is nothing to group, and ``bench/run.py`` prices the webhook's sends as a message a
request whatever this does locally.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from citypipe.domain.errors import TransientError
from citypipe.ports import Queue, ReceivedMessage

WAIT_S = 0.002  # a waiting sender looks again after this, should the sender have just left


@dataclass
class _Send:
    queue: str
    bodies: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupedSends(Queue):
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.calls = 0  # SendMessageBatch calls made (the grouped sends)
        self._waiting: list[_Send] = []
        self._lock = threading.Lock()
        self._sending = threading.Lock()

    def send(self, queue: str, bodies: Iterable[str]) -> int:
        mine = _Send(queue, list(bodies))
        with self._lock:
            self._waiting.append(mine)
        while not mine.done.is_set():
            if self._sending.acquire(blocking=False):
                try:
                    self._send_waiting()
                finally:
                    self._sending.release()
            else:
                mine.done.wait(WAIT_S)
        if mine.error is not None:
            raise mine.error
        return len(mine.bodies)

    def _send_waiting(self) -> None:
        """Send what is waiting now, queue by queue: one round, then the sender is free to
        return if its own message went (under steady traffic it would otherwise go on
        sending others' while its own request waited for its answer)."""
        with self._lock:
            sends, self._waiting = self._waiting, []
        try:
            for name in dict.fromkeys(s.queue for s in sends):
                group = [s for s in sends if s.queue == name]
                try:  # within SQS's limits, through this queue's ``_send_batch``
                    Queue.send(self, name, (body for s in group for body in s.bodies))
                except Exception as exc:  # each sender raises it; none is answered 2xx
                    for send in group:
                        send.error = TransientError(f"not sent to {name}: {exc}")
                for send in group:
                    send.done.set()
        finally:  # whatever escaped, no sender is left waiting for a round that ended
            for send in sends:
                if not send.done.is_set():
                    send.error = send.error or TransientError("the grouped send stopped")
                    send.done.set()

    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        self.calls += 1
        self.queue._send_batch(queue, bodies)

    def receive(self, queue: str, max_messages: int = 10, wait_s: int = 0) -> list[ReceivedMessage]:
        return self.queue.receive(queue, max_messages, wait_s)

    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None:
        self.queue.delete(queue, receipt_handles)

    def depth(self, queue: str) -> tuple[int, int]:
        return self.queue.depth(queue)

    def arn(self, queue: str) -> str:
        return self.queue.arn(queue)
