"""Ports: the small interfaces the cores and services talk through (ObjectStore, Queue,
KeyStore, WebhookTokens, Scratch, Http, ApiKeys, Clock).

Shared behaviour (chunking to API limits, conditional-put semantics, checksums) is written
once here; each backend fills in a few primitives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from citypipe.domain.errors import AlreadyExistsError, KeyDestroyedError, TransientError

SQS_BATCH = 10
SQS_MAX_BYTES = 256 * 1024
GET_CONCURRENCY = 16  # requests in flight when reading many objects: S3 latency, not bandwidth
GET_TRIES = 2  # a read that failed transiently is tried once more before get_many gives up
FILE_CHUNK = 1 << 20  # a local file is read this much at a time

Item = TypeVar("Item")
Result = TypeVar("Result")


def in_parallel(work: Callable[[Item], Result], items: Sequence[Item], limit: int) -> list[Result]:
    """``work`` done for each item, ``limit`` at a time on threads (calls that wait on a
    backend, not on the CPU), the results in the order given; in line when there is one
    item or the limit is 1. A failure is raised when its item's turn comes in that order,
    once the calls in flight are done; the calls not started by then are cancelled (a
    later item's failure waits for the earlier items, and so do the calls queued behind
    them)."""
    if len(items) <= 1 or limit <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(limit, len(items))) as pool:
        return list(pool.map(work, items))  # map cancels what is left


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    body: bytes


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    modified: datetime | None = None  # None where a backend does not say


@dataclass(frozen=True)
class PutResult:
    etag: str
    created: bool  # False: an object was already there (a duplicate delivery)


@dataclass(frozen=True)
class FileBody:
    """A body put from a local file (a day's open file: streamed, never held whole), with
    its size and digests: the md5 an S3 etag is, the sha256 a publication record lists."""

    path: Path
    size: int
    md5: str
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileBody:
        """The file as it is now (read once, in chunks)."""
        md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        with path.open("rb") as file:
            while chunk := file.read(FILE_CHUNK):
                md5.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
        return cls(path, size, md5.hexdigest(), sha256.hexdigest())


Body = bytes | FileBody


def md5_etag(body: Body) -> str:
    if isinstance(body, FileBody):
        return body.md5
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def sha256_hex(body: Body) -> str:
    return body.sha256 if isinstance(body, FileBody) else hashlib.sha256(body).hexdigest()


def size_of(body: Body) -> int:
    return body.size if isinstance(body, FileBody) else len(body)


class ObjectStore(ABC):
    """S3-API object storage. Backends implement the five primitives."""

    @abstractmethod
    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        """Write (bytes, or a local file streamed); return the etag. With ``if_absent``,
        raise ``AlreadyExists`` if taken."""

    @abstractmethod
    def get(self, bucket: str, key: str) -> StoredObject:
        """Raise ``NotFoundError`` when missing."""

    @abstractmethod
    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Deleting what is not there is not an error."""

    @abstractmethod
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """All objects under ``prefix``, in key order."""

    def put(self, bucket: str, key: str, body: Body, content_type: str = "") -> str:
        return self._put(bucket, key, body, content_type, if_absent=False)

    def put_if_absent(self, bucket: str, key: str, body: Body, content_type: str = "") -> PutResult:
        """Conditional put (``If-None-Match: *``): the first writer wins, duplicates no-op."""
        try:
            return PutResult(self._put(bucket, key, body, content_type, if_absent=True), True)
        except AlreadyExistsError:
            info = self.head(bucket, key)
            if info is None:  # deleted between the refused put and the head: try again
                raise TransientError(f"{bucket}/{key} vanished during a conditional put") from None
            return PutResult(info.etag, False)

    def put_or_replace(
        self, bucket: str, key: str, body: Body, content_type: str = ""
    ) -> PutResult:
        """For outputs recomputed from a growing input set (a day re-published with late
        data): a put only when the bytes differ, so identical re-runs write nothing."""
        result = self.put_if_absent(bucket, key, body, content_type)
        if result.created or result.etag.strip('"') == md5_etag(body):
            return result
        return PutResult(self.put(bucket, key, body, content_type), True)

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def get_many(
        self, bucket: str, keys: Sequence[str], concurrency: int = GET_CONCURRENCY
    ) -> Sequence[StoredObject]:
        """Every key's object, in the order given, read concurrently (a day's partials,
        the open zone's publication records). A read that fails transiently is tried once
        more: reads are idempotent, and one slow object should not make the caller start
        a hundred reads over. The first error that remains is raised."""

        def read(key: str) -> StoredObject:
            for _ in range(GET_TRIES - 1):
                try:
                    return self.get(bucket, key)
                except TransientError:
                    continue
            return self.get(bucket, key)

        return in_parallel(read, keys, concurrency)


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]


class Queue(ABC):
    """SQS-API queues, addressed by name. Backends implement the primitives."""

    @abstractmethod
    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        """Send at most 10 bodies; raise ``TransientError`` when any failed."""

    @abstractmethod
    def receive(
        self, queue: str, max_messages: int = SQS_BATCH, wait_s: int = 0
    ) -> list[ReceivedMessage]: ...

    @abstractmethod
    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None: ...

    @abstractmethod
    def depth(self, queue: str) -> tuple[int, int]:
        """(visible, in flight) — approximate on real SQS."""

    @abstractmethod
    def arn(self, queue: str) -> str: ...

    def send(self, queue: str, bodies: Iterable[str]) -> int:
        """Send any number of bodies, in batches within SQS's count and size limits."""
        batch: list[str] = []
        size = sent = 0
        for body in bodies:
            length = len(body.encode())
            if length > SQS_MAX_BYTES:
                raise ValueError(f"message of {length} bytes exceeds SQS's 256 KiB")
            if batch and (len(batch) == SQS_BATCH or size + length > SQS_MAX_BYTES):
                self._send_batch(queue, batch)
                sent += len(batch)
                batch, size = [], 0
            batch.append(body)
            size += length
        if batch:
            self._send_batch(queue, batch)
            sent += len(batch)
        return sent

    def send_json(self, queue: str, payloads: Iterable[dict[str, object]]) -> int:
        return self.send(queue, (json.dumps(p, sort_keys=True) for p in payloads))


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Expiring(Generic[K, V]):
    """What a backend answered, remembered by a warm container for at most ``seconds``
    (0: never remembered). Thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The remembered value while it is fresh, else ``load()``'s (then remembered)."""
        with self._lock:
            item = self._items.get(key)
        if item is not None and time.monotonic() - item[1] < self.seconds:
            return item[0]
        value = load()
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if self.seconds > 0:
            with self._lock:
                self._items[key] = (value, time.monotonic())

    def forget(self, keep: Callable[[K], bool] = lambda _: False) -> None:
        """Forget every key but those ``keep`` says to keep."""
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if keep(k)}


class KeyStore(ABC):
    """Daily secret key material for pseudonymization.

    The city's key of the day is derived from the day's secret with HMAC (a KDF), so a
    backend stores one secret a day and destroying it destroys every sensor's key.
    Destroyed days stay destroyed: the store remembers how far it destroyed and refuses
    those days, so late data can never get a fresh secret for a day whose pseudonyms are
    already counted (the same device would be counted twice). Backends implement the
    four primitives, uncached; a store on a remote backend sets ``CACHE_S``: a warm
    container then remembers a secret, and the horizon, that long.
    """

    CACHE_S: ClassVar[float] = 0.0

    @cached_property
    def _secrets(self) -> Expiring[date, bytes]:
        return Expiring(self.CACHE_S)

    @cached_property
    def _horizon(self) -> Expiring[str, date | None]:
        return Expiring(self.CACHE_S)

    def daily_secret(self, day: date) -> bytes:
        """The day's 32-byte secret, created on first use (atomically: concurrent
        callers get the same bytes). Raises KeyDestroyedError for a destroyed day."""
        horizon = self._horizon.get("horizon", self._destroyed_before)
        if horizon is not None and day < horizon:
            raise KeyDestroyedError(day.isoformat())
        return self._secrets.get(day, lambda: self._secret(day))

    def noise_secret(self) -> bytes:
        """The city's release secret (32 bytes): it seeds the differential-privacy noise of
        published people counts, so a re-export of unchanged inputs draws the same noise,
        and nobody without it can subtract the noise. Created on first use (concurrent
        callers agree); kept apart from the daily secrets and never destroyed with them (it
        links nothing to anyone: it only hides the noise). Remembered by the instance."""
        return self._lasting("noise")

    def optout_secret(self) -> bytes:
        """The key of residents' opt-outs (32 bytes): an address a resident opts out is kept
        only as its HMAC under this key (``service.optout``), never in clear. Created on
        first use, never destroyed with the daily secrets (an opt-out holds for good), and
        never used for a pseudonym. Remembered by the instance."""
        return self._lasting("optout")

    def _lasting(self, name: str) -> bytes:
        secret = self._kept.get(name)
        if secret is None:
            secret = self._kept[name] = self._lasting_secret(name)
        return secret

    @cached_property
    def _kept(self) -> dict[str, bytes]:
        return {}

    def destroy_before(self, day: date) -> int:
        """Destroy the secrets of days before ``day`` for good; return how many."""
        horizon = self._destroyed_before()  # the backend's, never a remembered one
        if horizon is None or day > horizon:
            self._set_destroyed_before(day)  # first: no new secret for those days from now on
            self._horizon.put("horizon", day)
        destroyed = self._destroy(day, horizon)
        self._secrets.forget(keep=lambda kept: kept >= day)
        return destroyed

    @abstractmethod
    def _secret(self, day: date) -> bytes:
        """The day's secret from the backend, created if it has none; a backend checks
        the horizon itself (uncached) before it creates one."""

    @abstractmethod
    def _destroy(self, day: date, previous_horizon: date | None) -> int:
        """Destroy the secrets of days before ``day``. ``previous_horizon`` is how far an
        earlier call destroyed (None: never), for stores that destroy by name."""

    @abstractmethod
    def _lasting_secret(self, name: str) -> bytes:
        """A secret never destroyed with the daily ones (``noise``: the release secret;
        ``optout``: the opt-outs' key) from the backend, created if it has none."""

    @abstractmethod
    def _destroyed_before(self) -> date | None: ...

    @abstractmethod
    def _set_destroyed_before(self, day: date) -> None: ...


TOKEN_HEADER = "x-citypipe-token"  # noqa: S105 (a header's name)


def token_digest(token: str) -> str:
    """What a store keeps of a webhook token: its SHA-256 (tokens are 256 random bits, so a
    plain hash cannot be brute-forced; a slow hash would only slow every request)."""
    return hashlib.sha256(token.encode()).hexdigest()


class WebhookTokens(ABC):
    """Who may push readings for a source: bearer tokens, one family per source, kept as
    digests only. A token is shown once, when minted. Minting keeps the previous token
    valid (a hub can be switched over without downtime) unless told to revoke it.
    Backends implement two primitives."""

    KEEP = 2  # the newest token and the one before it
    CACHE_S: ClassVar[float] = 0.0  # a remote store's: a revoked token works that long

    @cached_property
    def _remembered(self) -> Expiring[str, list[str]]:
        return Expiring(self.CACHE_S)

    def verify(self, source: str, token: str) -> bool:
        """Whether ``token`` is one of ``source``'s, compared in constant time against
        every digest the source has (no early exit)."""
        presented = token_digest(token)
        matched = False
        for digest in self._remembered.get(source, lambda: self._digests(source)):
            matched |= hmac.compare_digest(presented, digest)
        return matched

    def mint(self, source: str, revoke_previous: bool = False) -> str:
        """A new token for ``source``; its digest is stored, the token returned once."""
        token = secrets.token_urlsafe(32)
        kept = [] if revoke_previous else self._digests(source)
        self._set_digests(source, [token_digest(token), *kept][: self.KEEP])
        self._remembered.forget()
        return token

    @abstractmethod
    def _digests(self, source: str) -> list[str]:
        """The source's token digests, newest first; [] when it has none."""

    @abstractmethod
    def _set_digests(self, source: str, digests: list[str]) -> None: ...


class Scratch(ABC):
    """Local disk for work that outgrows memory (export's spill of a day): a directory of
    one's own while the work lasts, gone after; never shared with a concurrent user.
    ``compressed``: spills into it are to be compressed (a disk too small for a big city's
    day uncompressed, at the price of some CPU)."""

    compressed: bool = False

    @abstractmethod
    def directory(self) -> AbstractContextManager[Path]:
        """A fresh private directory, removed when the context ends."""


@dataclass(frozen=True)
class HttpAnswer:
    """What a hub's API answered: any status is an answer. ``headers``: names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes


class Http(ABC):
    """Requests to the hub APIs a city polls (``service.poll``)."""

    @abstractmethod
    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float,
        limit: int,
    ) -> HttpAnswer:
        """One request, not retried. Raises ``TransientError`` where no whole answer came
        (refused or reset, timed out, a body over ``limit`` bytes: never read whole)."""


class ApiKeys(ABC):
    """The keys of the hub APIs a city polls, by the name its city file gives them, in the
    stack's secret store: never in the city file, never logged."""

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The key, or None where none was set."""

    @abstractmethod
    def put(self, name: str, key: str) -> None: ...


class Clock(ABC):
    @abstractmethod
    def now(self) -> datetime: ...


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)
