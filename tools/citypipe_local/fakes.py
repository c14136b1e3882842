"""In-memory fakes of every port, for unit tests and the inner loop. They honour the same
contracts as the real adapters (the contract suite runs against both)."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from citypipe.domain.errors import AlreadyExistsError, BackendRefusedError, NotFoundError
from citypipe.ports import (
    ApiKeys,
    Body,
    Clock,
    FileBody,
    KeyStore,
    ObjectInfo,
    ObjectStore,
    Queue,
    ReceivedMessage,
    StoredObject,
    WebhookTokens,
    md5_etag,
)


class InMemoryObjectStore(ObjectStore):
    def __init__(self, buckets: Sequence[str] = ()) -> None:
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.modified: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def _bucket(self, bucket: str) -> dict[str, StoredObject]:
        if bucket not in self.buckets:
            raise BackendRefusedError("NoSuchBucket", bucket)
        return self.buckets[bucket]

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        data = body.path.read_bytes() if isinstance(body, FileBody) else bytes(body)
        with self._lock:
            objects = self._bucket(bucket)
            if if_absent and key in objects:
                raise AlreadyExistsError(key)
            objects[key] = StoredObject(key, md5_etag(data), data)
            self.modified[bucket, key] = datetime.now(UTC)
            return objects[key].etag

    def get(self, bucket: str, key: str) -> StoredObject:
        try:
            return self._bucket(bucket)[key]
        except KeyError:
            raise NotFoundError(f"NoSuchKey {key}") from None

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        obj = self._bucket(bucket).get(key)
        return (
            ObjectInfo(key, obj.etag, len(obj.body), self.modified.get((bucket, key)))
            if obj
            else None
        )

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._bucket(bucket).pop(key, None)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        objects = sorted(self._bucket(bucket).values(), key=lambda o: o.key)
        return iter(
            [
                ObjectInfo(o.key, o.etag, len(o.body), self.modified.get((bucket, o.key)))
                for o in objects
                if o.key.startswith(prefix)
            ]
        )


@dataclass
class _Message:
    message_id: str
    body: str
    sent_at: float
    receive_count: int = 0
    visible_at: float = 0.0
    receipt: str = ""


@dataclass
class _Queue:
    visibility_timeout_s: float
    dlq: str | None = None
    max_receive_count: int = 0
    messages: list[_Message] = field(default_factory=list)


class InMemoryQueue(Queue):
    """SQS semantics that matter here: visibility timeout, receive counts, redrive to a DLQ."""

    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        visibility_timeout_s: float = 30,
        dlq: str | None = None,
        max_receive_count: int = 0,
    ) -> None:
        self.queues.setdefault(name, _Queue(visibility_timeout_s, dlq, max_receive_count))

    def _queue(self, name: str) -> _Queue:
        if name not in self.queues:
            raise BackendRefusedError("QueueDoesNotExist", name)
        return self.queues[name]

    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        with self._lock:
            target = self._queue(queue)
            for body in bodies:
                target.messages.append(_Message(f"m-{next(self._ids)}", body, time.time()))

    def receive(self, queue: str, max_messages: int = 10, wait_s: int = 0) -> list[ReceivedMessage]:
        now = time.monotonic()
        received: list[ReceivedMessage] = []
        with self._lock:
            target = self._queue(queue)
            for message in list(target.messages):
                if len(received) == max_messages:
                    break
                if message.visible_at > now:
                    continue
                if (
                    target.dlq
                    and target.max_receive_count
                    and message.receive_count >= target.max_receive_count
                ):
                    target.messages.remove(message)
                    message.receive_count = 0
                    message.visible_at = 0.0
                    self._queue(target.dlq).messages.append(message)
                    continue
                message.receive_count += 1
                message.visible_at = now + target.visibility_timeout_s
                message.receipt = secrets.token_hex(8)
                received.append(
                    ReceivedMessage(
                        message.message_id,
                        message.receipt,
                        message.body,
                        {
                            "ApproximateReceiveCount": str(message.receive_count),
                            "SentTimestamp": str(int(message.sent_at * 1000)),
                        },
                    )
                )
        return received

    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None:
        handles = set(receipt_handles)
        with self._lock:
            target = self._queue(queue)
            target.messages = [m for m in target.messages if m.receipt not in handles]

    def depth(self, queue: str) -> tuple[int, int]:
        now = time.monotonic()
        messages = self._queue(queue).messages
        visible = sum(1 for m in messages if m.visible_at <= now)
        return visible, len(messages) - visible

    def arn(self, queue: str) -> str:
        self._queue(queue)
        return f"arn:aws:sqs:eu-central-1:000000000000:{queue}"


class InMemoryKeyStore(KeyStore):
    """``noise_secret``: the release secret, for tests that need reproducible noise."""

    def __init__(self, noise_secret: bytes | None = None) -> None:
        self.secrets: dict[date, bytes] = {}
        self.horizon: date | None = None
        self.noise = noise_secret
        self.lasting: dict[str, bytes] = {}  # the other secrets never destroyed (opt-outs')
        self._lock = threading.Lock()

    def _lasting_secret(self, name: str) -> bytes:
        with self._lock:
            if name != "noise":
                return self.lasting.setdefault(name, secrets.token_bytes(32))
            if self.noise is None:
                self.noise = secrets.token_bytes(32)
            return self.noise

    def _secret(self, day: date) -> bytes:
        with self._lock:
            return self.secrets.setdefault(day, secrets.token_bytes(32))

    def _destroy(self, day: date, previous_horizon: date | None) -> int:
        with self._lock:
            old = [d for d in self.secrets if d < day]
            for d in old:
                del self.secrets[d]
            return len(old)

    def _destroyed_before(self) -> date | None:
        return self.horizon

    def _set_destroyed_before(self, day: date) -> None:
        self.horizon = day


class FixedClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class InMemoryApiKeys(ApiKeys):
    """The polled APIs' keys, in memory."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.keys.get(name)

    def put(self, name: str, key: str) -> None:
        self.keys[name] = key


class InMemoryWebhookTokens(WebhookTokens):
    """Digests of webhook tokens per source, in memory; ``minted`` keeps the tokens so
    tests can present them (a real store never holds a token)."""

    def __init__(self) -> None:
        self.digests: dict[str, list[str]] = {}
        self.minted: dict[str, str] = {}

    def mint(self, source: str, revoke_previous: bool = False) -> str:
        self.minted[source] = super().mint(source, revoke_previous)
        return self.minted[source]

    def _digests(self, source: str) -> list[str]:
        return list(self.digests.get(source, []))

    def _set_digests(self, source: str, digests: list[str]) -> None:
        self.digests[source] = list(digests)
