"""A long-running edge's journal: each message counted once across the edge's own crashes.

The MQTT bridge acknowledges a message only after its batch is written, so a crash between
the write and the acknowledgements makes the broker deliver those messages again (flagged
DUP), generally beside other messages: as a new batch, with a new content identity, they
would be counted twice. So the bridge records each batch here around its write:

1. ``begin``: the batch as prepared — what the edge writes (pseudonymous raw records,
   quarantine rows that keep shapes, never values; counts), its identity — and a keyed
   digest of each message;
2. the edge writes it (``edge.commit``: conditional puts, lineage last);
3. ``done``: the entry keeps only the digests and the identities of the batch's readings.

On start, ``recover`` completes every entry that was begun and not done with the very batch
that was prepared (the same keys, the same lineage), and remembers what was written: a
message delivered again under the packet id it was written under, with the same digest,
is acknowledged and written nothing (``written``). The packet id matters: a sensor that
sends the same bytes on the same topic every minute (a counter at rest, dated by arrival)
sends distinct messages, which brokers number in sequence; a redelivery keeps its number.
So the journal remembers the packet ids of the last ``GATE_MESSAGES`` messages written only,
well within the 65,535 a broker counts through before it numbers a message alike again.
The identities of recent readings (``prior``) let the edge count a hub's resend that lands
in a later batch as a duplicate, also after a restart.

Entries live in the raw bucket, ``bridge/<city>/<owner>/`` (the raw zone's 24 hours; the
same pseudonymous data its raw objects hold), for ``retention`` (an hour by default).
Digests are HMACs under a key derived from the day's secret (``core.pseudonyms``): a digest
of a payload holding a MAC cannot be matched by hashing guesses.
"""

from __future__ import annotations

import base64
import gzip
import hmac
from collections import Counter, deque
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from citypipe.core.codecs import gz
from citypipe.core.ingest import Identity
from citypipe.core.pseudonyms import journal_key
from citypipe.domain.books import Book, IngestCounts
from citypipe.domain.errors import KeyDestroyedError
from citypipe.domain.model import Function, Message, Zone
from citypipe.ports import Body, KeyStore
from citypipe.service.edge import EdgeBatch, EdgeWrite, commit
from citypipe.service.kernel import Deps, Outcome, Output, log

RETENTION = timedelta(hours=1)
DIGEST_CHARS = 32  # 128 bits of the HMAC: no two messages of a day collide
GATE_MESSAGES = 30_000  # the packet ids remembered: fewer than a broker counts through (65,535)


def _in_memory(body: Body) -> bytes:
    """An edge batch's object: always bytes (only export puts files)."""
    assert isinstance(body, bytes)
    return body


class StoredOutput(Book):
    zone: Zone
    key: str
    body: str  # base64
    records: int
    format: str
    content_type: str
    notify: Function | None


class PreparedWrite(Book):
    """What ``edge.commit`` writes of a batch, as ``edge.prepare`` made it."""

    message: Message
    counts: IngestCounts
    outputs: list[StoredOutput]
    quarantine: list[dict[str, Any]]

    @classmethod
    def of(cls, write: EdgeWrite) -> PreparedWrite:
        counts = write.outcome.counts
        assert isinstance(counts, IngestCounts)
        return cls(
            message=write.message,
            counts=counts,
            outputs=[
                StoredOutput(
                    zone=o.zone,
                    key=o.key,
                    body=base64.b64encode(_in_memory(o.body)).decode(),
                    records=o.records,
                    format=o.format,
                    content_type=o.content_type,
                    notify=o.notify,
                )
                for o in write.outcome.outputs
            ],
            quarantine=write.outcome.quarantine,
        )

    def write(self, ident: str) -> EdgeWrite:
        """The write as it was prepared, to be completed (``edge.commit``)."""
        return EdgeWrite(ident, self.message, self._outcome())

    def _outcome(self) -> Outcome:
        outputs = [
            Output(
                zone=o.zone,
                key=o.key,
                body=base64.b64decode(o.body),
                records=o.records,
                format=o.format,
                content_type=o.content_type,
                notify=o.notify,
            )
            for o in self.outputs
        ]
        return Outcome(outputs=outputs, counts=self.counts, quarantine=self.quarantine)


class JournalEntry(Book):
    """One batch of a long-running edge, at ``StackNames.journal_entry_key``."""

    v: Literal[1] = 1
    owner: str
    input_id: str
    day: date  # whose secret keys the digests
    at: datetime  # when the batch was begun
    messages: list[tuple[int, str]]  # each message's packet id and keyed digest
    readings: list[tuple[str, str, int, str | None]]  # identities of its accepted readings
    prepared: PreparedWrite | None  # the write to complete; None once written


class RecentReadings(Container[Identity]):
    """The identities of the readings written in recent batches, oldest first out."""

    def __init__(self) -> None:
        self._count: Counter[Identity] = Counter()
        self._batches: deque[tuple[datetime, list[Identity]]] = deque()

    def __contains__(self, identity: object) -> bool:
        return identity in self._count

    def __len__(self) -> int:
        return len(self._count)

    def add(self, at: datetime, identities: list[Identity]) -> None:
        self._batches.append((at, identities))
        self._count.update(identities)

    def expire(self, before: datetime) -> None:
        while self._batches and self._batches[0][0] < before:
            _, identities = self._batches.popleft()
            self._count.subtract(identities)
            for identity in identities:
                if self._count[identity] <= 0:
                    del self._count[identity]


@dataclass(frozen=True)
class _Written:
    key: str
    at: datetime


Gated = tuple[date, int, str]  # (day of the digest's key, packet id, digest)


class EdgeJournal:
    """The journal of one long-running edge (``owner``: the bridge's client id)."""

    def __init__(
        self, deps: Deps, keys: KeyStore, owner: str, retention: timedelta = RETENTION
    ) -> None:
        self.deps = deps
        self.keys = keys
        self.owner = owner
        self.retention = retention
        self.bucket = deps.names.bucket(Zone.RAW)
        self.prior = RecentReadings()
        self._written: deque[_Written] = deque()
        self._gate: Counter[Gated] = Counter()
        self._gate_order: deque[tuple[datetime, Gated]] = deque()
        self._days: Counter[date] = Counter()
        self._hmac_keys: dict[date, bytes] = {}

    # --- digests ---------------------------------------------------------------------------

    def _key(self, day: date) -> bytes:
        key = self._hmac_keys.get(day)
        if key is None:
            key = self._hmac_keys[day] = journal_key(self.keys, self.deps.city.slug, day)
        return key

    def today(self) -> date:
        return self.deps.clock.now().astimezone(UTC).date()

    def digest(self, topic: str, payload: bytes, day: date | None = None) -> str:
        """A message's keyed digest (the day's key; today's by default)."""
        mac = hmac.new(self._key(day or self.today()), topic.encode(), "sha256")
        mac.update(b"\x00")
        mac.update(payload)
        return mac.hexdigest()[:DIGEST_CHARS]

    def written(self, mid: int, topic: str, payload: bytes) -> bool:
        """Whether this message — packet id ``mid``, this topic and payload — is in a batch
        written recently."""
        return any((day, mid, self.digest(topic, payload, day)) in self._gate for day in self._days)

    # --- the write of one batch --------------------------------------------------------------

    def begin(self, batch: EdgeBatch, digests: list[tuple[int, str]], day: date) -> JournalEntry:
        """Record a prepared batch before it is written (durably: the put returns after)."""
        entry = JournalEntry(
            owner=self.owner,
            input_id=batch.ident,
            day=day,
            at=self.deps.clock.now(),
            messages=digests,
            readings=sorted(batch.normalized.seen, key=_order),
            prepared=PreparedWrite.of(batch.write),
        )
        self._put(entry)
        return entry

    def done(self, entry: JournalEntry) -> None:
        """The batch is written: keep its digests and readings, drop what it wrote."""
        settled = entry.model_copy(update={"prepared": None})
        self._put(settled)
        self._remember(settled)

    # --- start-up and housekeeping -------------------------------------------------------------

    def recover(self) -> int:
        """Read the journal: complete the batches begun and not done (with the batch that
        was prepared), remember what was written, delete entries past the retention.
        Returns how many batches were completed."""
        horizon = self.deps.clock.now() - self.retention
        completed = 0
        for key in list(self._keys()):
            entry = self._get(key)
            if entry is None or entry.at < horizon:
                self.deps.store.delete(self.bucket, key)
                continue
            if entry.prepared is not None:
                prepared = entry.prepared
                if commit(self.deps, prepared.write(entry.input_id)) is not None:
                    completed += 1
                    log.warning(
                        "journal: a batch begun before a crash was completed",
                        extra={"input_id": entry.input_id, "messages": len(entry.messages)},
                    )
                entry = entry.model_copy(update={"prepared": None})
                self._put(entry)
            try:
                self._key(entry.day)  # a day whose secret is destroyed: no digest to match
            except KeyDestroyedError:
                self.deps.store.delete(self.bucket, key)
                continue
            self._remember(entry)
        return completed

    def forget(self) -> int:
        """Delete the entries older than the retention (and forget them); return how many."""
        horizon = self.deps.clock.now() - self.retention
        forgotten = 0
        while self._written and self._written[0].at < horizon:
            self.deps.store.delete(self.bucket, self._written.popleft().key)
            forgotten += 1
        self._ungate(lambda at: at < horizon)
        self.prior.expire(horizon)
        return forgotten

    # --- storage -------------------------------------------------------------------------------

    def _remember(self, entry: JournalEntry) -> None:
        key = self.deps.names.journal_entry_key(self.owner, entry.at, entry.input_id)
        self._written.append(_Written(key, entry.at))
        for mid, digest in entry.messages:
            gated = (entry.day, mid, digest)
            self._gate[gated] += 1
            self._gate_order.append((entry.at, gated))
            self._days[entry.day] += 1
        self._ungate(lambda at: len(self._gate_order) > GATE_MESSAGES)
        self.prior.add(entry.at, [tuple(r) for r in entry.readings])  # type: ignore[misc]

    def _ungate(self, drop: Callable[[datetime], bool]) -> None:
        """Forget the oldest packet ids while ``drop`` says so."""
        while self._gate_order and drop(self._gate_order[0][0]):
            _, gated = self._gate_order.popleft()
            day = gated[0]
            self._gate[gated] -= 1
            if self._gate[gated] <= 0:
                del self._gate[gated]
            self._days[day] -= 1
            if self._days[day] <= 0:
                del self._days[day]
                self._hmac_keys.pop(day, None)

    def _keys(self) -> Iterator[str]:
        prefix = self.deps.names.journal_prefix(self.owner)
        for info in self.deps.store.list(self.bucket, prefix):
            yield info.key

    def _put(self, entry: JournalEntry) -> None:
        key = self.deps.names.journal_entry_key(self.owner, entry.at, entry.input_id)
        body = gz(entry.model_dump_json().encode())
        self.deps.store.put(self.bucket, key, body, "application/json")

    def _get(self, key: str) -> JournalEntry | None:
        try:
            body = gzip.decompress(self.deps.store.get(self.bucket, key).body)
            return JournalEntry.model_validate_json(body)
        except (OSError, ValueError) as exc:  # not an entry of this version: not ours to finish
            log.error(
                "journal: an unreadable entry was deleted",
                extra={"key": key, "error": type(exc).__name__},
            )
            return None


def _order(identity: Identity) -> tuple[str, str, int, str]:
    sensor, quantity, micros, alias = identity
    return sensor, quantity, micros, alias or ""
