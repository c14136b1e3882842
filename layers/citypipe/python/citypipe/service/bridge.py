"""The MQTT bridge's work, whatever the client library: the broker's messages, batched into
edge writes, each acknowledged only once its batch is written and announced.

A client adapter (``citypipe_bridge.mqtt``: paho-mqtt, outside the Lambda layer) puts what
the broker delivers on a bounded queue — ``Connected`` when a connection (re)opens, then
its ``Delivery``s — and acknowledges what ``Bridge`` tells it to. ``Bridge.run`` takes them
one at a time:

- a message on a topic routes to the one source and format the city file declares for it
  (``sources.<s>.mqtt``); readings of another source's devices are quarantined
  (``wrong_source``), a topic no source declares is quarantined (``unknown_topic``): each
  batch goes through the edge's one entrance (``service.edge``);
- a batch is written when it holds ``Limits.messages`` messages or ``Limits.bytes`` bytes,
  or its first message is ``Limits.age_s`` old: through the edge (``edge.prepare``, the
  journal, ``edge.commit``), then every message of it is acknowledged (PUBACK);
- nothing unwritten is ever acknowledged: a step that fails transiently (``TransientError``:
  throttling, a timeout, a backend briefly away) is retried with backoff while the broker
  keeps what it could not deliver (it sends at most the client's receive maximum
  unacknowledged): a slow backend slows the bridge down, it never drops. A step is tried
  ``tries`` times (about three minutes by default): a backend away for longer, or one that
  refuses the bridge (``BackendRefusedError``, a bug in the writes), stops the bridge
  (``GaveUp``: its command exits 1 for its supervisor to restart it), the batch left
  unacknowledged to the broker (``pending``) and the journal (decision 0085);
- a message the edge fails on (a bug outside the format adapters, which are isolated
  already: ``adapter_error``) is not retried: the batch is prepared again without it,
  each message alone to find which, and it is quarantined whole (``edge_error``, the
  error's class in the row's detail, logged as an error) in the same batch as the others
  (the whole batch, if the edge fails on no message alone) — one message cannot stop the
  city's intake;
- a delivery flagged DUP that the journal holds (its packet id and digest) was written
  before a crash or a lost connection: acknowledged, not written again (``redelivered``); a
  retained value the broker replays on subscribing is no new reading (``retained``);
  deliveries of a connection that dropped before their batch was written are left to the
  broker (``discarded``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Protocol, TypeVar

from citypipe.core.decode import routed_payload
from citypipe.core.formats import FORMATS, Context, Rejection
from citypipe.core.ingest import Payload
from citypipe.domain.books import BridgeCounts, IngestCounts
from citypipe.domain.city import MqttRoute
from citypipe.domain.errors import TransientError
from citypipe.ports import KeyStore
from citypipe.service.collector import paused, resumed
from citypipe.service.edge import EdgeBatch, Inbound, Route, commit, prepare
from citypipe.service.journal import EdgeJournal, JournalEntry
from citypipe.service.kernel import Deps, log

T = TypeVar("T")
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
TRIES = 12  # a step failing transiently, with BACKOFF_S between tries: about 3 minutes
EDGE_ERROR = "edge_error"  # a message the edge failed on: quarantined whole, not retried
BOOKS_EVERY_S = 300.0  # the books are logged this often, and on shutdown
FORGET_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it on connection ``epoch``."""

    mid: int
    topic: str
    payload: bytes
    qos: int
    dup: bool
    retain: bool
    received_at: float  # epoch seconds
    epoch: int
    headers: Mapping[str, str] = field(default_factory=dict)  # MQTT 5 user properties


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection opened (``epoch`` counts them); deliveries of older ones are void."""

    epoch: int
    session_present: bool


FromBroker = Delivery | Connected


@dataclass(frozen=True)
class Limits:
    """When a batch is written: this many messages, bytes or seconds after its first."""

    messages: int = 5_000
    bytes: int = 4 * 1024 * 1024
    age_s: float = 15.0


class Acknowledge(Protocol):
    def __call__(self, mid: int, qos: int, epoch: int) -> None:
        """Acknowledge a delivery, if its connection is still the current one."""


class Stopped(Exception):
    """Shutdown was asked while a write was being retried: it stays unacknowledged."""


class GaveUp(Exception):
    """A step failed for good: an error no retry fixes, or transient ones ``tries`` times
    in a row. The bridge stops; what it had not written stays with the broker."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"{step}: {type(error).__name__}")
        self.error = type(error).__name__
        self.transient = isinstance(error, TransientError)


@dataclass
class _Books:
    messages: int = 0
    written: int = 0
    redelivered: int = 0
    retained: int = 0
    discarded: int = 0
    pending: int = 0
    batches: int = 0
    recovered: int = 0
    readings: IngestCounts = field(default_factory=IngestCounts.zero)

    def typed(self) -> BridgeCounts:
        return BridgeCounts(**self.__dict__)


@dataclass
class _Held:
    delivery: Delivery
    route: MqttRoute | None


def _same(first: Delivery, second: Delivery) -> bool:
    return (first.mid, first.topic, first.payload) == (second.mid, second.topic, second.payload)


class Bridge:
    """Batches deliveries into edge writes; acknowledges what is written."""

    def __init__(
        self,
        deps: Deps,
        keys: KeyStore,
        journal: EdgeJournal,
        acknowledge: Acknowledge,
        limits: Limits = Limits(),
        monotonic: Callable[[], float] = time.monotonic,
        on_taken: Callable[[Delivery], None] | None = None,
        backoff: Sequence[float] = BACKOFF_S,
        tries: int = TRIES,
    ) -> None:
        """``on_taken``: told of every delivery put in a batch, in the order taken (a
        replay's progress); ``backoff``: the pauses between tries of a step that failed
        transiently, ``tries`` how often it is tried before the bridge gives up."""
        self.deps = deps
        self.keys = keys
        self.journal = journal
        self.acknowledge = acknowledge
        self.limits = limits
        self.monotonic = monotonic
        self.on_taken = on_taken
        self.backoff = backoff
        self.tries = tries
        self.failure: str | None = None  # why the bridge gave up, if it did
        self.epoch = 0
        self.batch: list[_Held] = []
        self.batch_bytes = 0
        self.deadline = 0.0
        self._books = _Books()
        self._routes: dict[str, MqttRoute | None] = {}
        self._stop = threading.Event()

    @property
    def books(self) -> BridgeCounts:
        return self._books.typed()

    # --- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        """Complete what an earlier run began (the journal), before taking any delivery."""
        self._books.recovered += self._retry("journal recovery", self.journal.recover)

    def run(self, inbound: queue.Queue[FromBroker], stop: threading.Event) -> BridgeCounts:
        """Take deliveries until ``stop``; then write what is batched and leave the rest
        to the broker. Returns this process's books; ``failure`` says why it stopped
        before ``stop`` was set, if it did."""
        self._stop = stop
        try:
            self._loop(inbound, stop)
        except GaveUp as exc:
            self.failure = f"the bridge gave up writing ({exc})"
            log.error("bridge: gave up; stopping", extra={"step": str(exc)})
        books = self.books
        log.info("bridge stopped", extra={"books": books.model_dump(), "balanced": books.balanced})
        return books

    def _loop(self, inbound: queue.Queue[FromBroker], stop: threading.Event) -> None:
        self.start()
        logged = forgot = self.monotonic()
        try:
            while not stop.is_set():
                now = self.monotonic()
                wait = self.deadline - now if self.batch else 0.5
                try:
                    item = inbound.get(timeout=max(0.0, min(wait, 0.5)))
                except queue.Empty:
                    item = None
                if item is not None:
                    self.offer(item)
                if self.due():
                    self.flush()
                now = self.monotonic()
                if now - forgot >= FORGET_EVERY_S:
                    self._retry("journal housekeeping", self.journal.forget)
                    forgot = now
                if now - logged >= BOOKS_EVERY_S:
                    log.info("bridge books", extra={"books": self.books.model_dump()})
                    logged = now
            self.flush()  # the batch taken so far: each step is tried once more
        except Stopped:
            pass

    # --- one delivery --------------------------------------------------------------------------

    def offer(self, item: FromBroker) -> None:
        """Take one item from the client: a connection opened, or a delivery."""
        if isinstance(item, Connected):
            self._connected(item)
            return
        books = self._books
        books.messages += 1
        if item.epoch < self.epoch:  # its connection is gone: the broker delivers it again
            books.discarded += 1
            return
        if item.retain:  # a last value replayed on subscribing, not a reading sent now
            books.retained += 1
            self.acknowledge(item.mid, item.qos, item.epoch)
            return
        if item.dup:
            if self.journal.written(item.mid, item.topic, item.payload):
                books.redelivered += 1
                self.acknowledge(item.mid, item.qos, item.epoch)
                return
            if any(_same(h.delivery, item) for h in self.batch):
                books.redelivered += 1  # sent again on this connection: the same message
                return
        if not self.batch:
            self.deadline = self.monotonic() + self.limits.age_s
        self.batch.append(_Held(item, self._route(item.topic)))
        self.batch_bytes += len(item.payload)
        if self.on_taken is not None:
            self.on_taken(item)

    def due(self) -> bool:
        return bool(self.batch) and (
            len(self.batch) >= self.limits.messages
            or self.batch_bytes >= self.limits.bytes
            or self.monotonic() >= self.deadline
        )

    def _connected(self, item: Connected) -> None:
        self.epoch = item.epoch
        void = [h for h in self.batch if h.delivery.epoch < item.epoch]
        if void:
            self.batch = [h for h in self.batch if h.delivery.epoch >= item.epoch]
            self.batch_bytes = sum(len(h.delivery.payload) for h in self.batch)
            self._books.discarded += len(void)
            log.info("bridge: unwritten deliveries left to the broker", extra={"count": len(void)})
        log.info(
            "bridge connected",
            extra={"epoch": item.epoch, "session_present": item.session_present},
        )
        if not item.session_present and item.epoch > 1:
            log.warning(
                "bridge: the broker kept no session for this client; what was published "
                "while it was away, beyond the broker's queue, is lost"
            )

    def _route(self, topic: str) -> MqttRoute | None:
        if topic not in self._routes:
            if len(self._routes) > 100_000:
                self._routes.clear()
            self._routes[topic] = self.deps.city.route(topic)
        return self._routes[topic]

    # --- one batch -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the batch through the edge, once, then acknowledge every message of it."""
        held, self.batch, self.batch_bytes = self.batch, [], 0
        if not held:
            return
        started = time.perf_counter()
        # each batch its own identity: exactly once is the journal's work here, and two
        # batches that normalize alike (one resent message each) are still two
        salt = f"{self.journal.owner}/{time.time_ns()}"
        try:
            with paused():  # the batch let go before the collector wakes: it would walk it all
                ident, counts, written = self._write(held, salt)
        except (Stopped, GaveUp):
            self._books.pending += len(held)
            raise
        for h in held:
            if h.delivery.qos > 0:
                self.acknowledge(h.delivery.mid, h.delivery.qos, h.delivery.epoch)
        books = self._books
        books.written += len(held)
        books.batches += 1
        if written:
            books.readings += counts
        log.info(
            "bridge batch written",
            extra={
                "input_id": ident,
                "messages": len(held),
                "written": written,
                "accepted": counts.accepted,
                "duplicates": counts.duplicates,
                "quarantined": sum(counts.quarantined.values()),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _write(self, held: list[_Held], salt: str) -> tuple[str, IngestCounts, bool]:
        """The batch through the edge, journalled: its identity, its counts (as written, or
        as prepared where its lineage says it was written before) and whether this call
        wrote it."""
        day = self.journal.today()
        digests = self._retry("journal", lambda: self._digests(held, day))
        batch = self._prepare(held, salt)
        entry = self._retry("journal", lambda: self.journal.begin(batch, digests, day))
        written = self._retry("edge", lambda: commit(self.deps, batch.write))
        self._retry("journal", lambda: self.journal.done(entry))
        if written is not None:
            return batch.ident, written, True
        prepared = batch.write.outcome.counts
        assert isinstance(prepared, IngestCounts)
        return batch.ident, prepared, False

    def _digests(self, held: list[_Held], day: date) -> list[tuple[int, str]]:
        return [
            (h.delivery.mid, self.journal.digest(h.delivery.topic, h.delivery.payload, day))
            for h in held
        ]

    def _prepare(self, held: list[_Held], salt: str) -> EdgeBatch:
        """The batch through the edge's entrance. Where the edge fails on it (not
        transiently), each message is tried alone: those it fails on are quarantined
        (``edge_error``) in the batch, the others prepared as ever — all of them, should
        the edge fail on none alone (a bug only messages together meet)."""
        try:
            return self._retry("edge", lambda: self._edge_batch(held, {}, salt))
        except GaveUp as exc:
            if exc.transient:
                raise
            together = exc.error
        failed: dict[int, str] = {}
        for number, h in enumerate(held, start=1):
            error = self._retry("edge", partial(self._fails, h))
            if error is not None:
                failed[number] = error
        if not failed:
            failed = dict.fromkeys(range(1, len(held) + 1), together)
        log.error(
            "bridge: the edge failed on messages; quarantined",
            extra={"messages": len(failed), "errors": sorted(set(failed.values()))},
        )
        return self._retry("edge", lambda: self._edge_batch(held, failed, salt))

    def _edge_batch(self, held: list[_Held], failed: Mapping[int, str], salt: str) -> EdgeBatch:
        """Prepare ``held``, the messages numbered in ``failed`` quarantined whole."""
        payloads = [
            _refused(number, h, failed[number]) if number in failed else _payload(number, h)
            for number, h in enumerate(held, start=1)
        ]
        inbound = Inbound(
            payloads, Route.MQTT, trace_id=f"mqtt:{self.journal.owner}",
            prior=self.journal.prior, salt=salt,
        )  # fmt: skip
        return prepare(self.deps, self.keys, inbound)

    def _fails(self, held: _Held) -> str | None:
        """The class of the error the edge fails on with this message alone (None: it
        does not). A transient error is raised: it says nothing of the message."""
        try:
            self._edge_batch([held], {}, "")
        except TransientError:
            raise
        except Exception as exc:
            return type(exc).__name__
        return None

    def _retry(self, what: str, step: Callable[[], T]) -> T:
        """``step``, tried again with backoff while it fails transiently, ``tries`` times
        at most; ``GaveUp`` when it fails otherwise or that often, ``Stopped`` when
        shutdown is asked meanwhile (what is unwritten stays with the broker)."""
        for attempt in range(self.tries):
            try:
                return step()
            except TransientError as exc:
                if attempt + 1 >= self.tries:
                    raise GaveUp(what, exc) from exc
                pause = self.backoff[min(attempt, len(self.backoff) - 1)]
                log.warning(
                    "bridge: a step failed; retrying",
                    extra={"step": what, "error": type(exc).__name__, "retry_in_s": pause},
                )
                with resumed():  # a batch's pause is not the back-off's: minutes of it
                    stopping = self._stop.wait(pause)
                if stopping:
                    raise Stopped from exc
            except Exception as exc:
                log.error(
                    "bridge: a step failed", extra={"step": what, "error": type(exc).__name__}
                )
                raise GaveUp(what, exc) from exc
        raise GaveUp(what, TransientError("never tried"))


def _payload(number: int, held: _Held) -> Payload:
    d = held.delivery
    ctx = Context(received_at=d.received_at, topic=d.topic, headers=d.headers)
    return routed_payload(d.payload, ctx, number, held.route, FORMATS)


def _refused(number: int, held: _Held, error: str) -> Payload:
    """A message the edge failed on: quarantined whole, its content left out (what failed
    on it might fail on its shape too)."""
    ctx = Context(received_at=held.delivery.received_at, topic=held.delivery.topic)
    failed = Rejection(EDGE_ERROR, f"the edge failed on this message: {error} (a bug, logged)")
    return Payload(b"", ctx, number, rejection=failed)


__all__ = ["Bridge", "Connected", "Delivery", "FromBroker", "GaveUp", "JournalEntry", "Limits"]
