"""The webhook's buffer: hubs' requests written as batches, not an object each.

A hub posts one request per uplink (a few readings). The webhook stays the edge — it
authenticates, bounds, normalizes and pseudonymizes (``service.edge.prepare``) — then hands
what the edge made of the request, a ``Piece``, to ingest's queue (``hand_over``) and
answers 202 once the queue took it (SQS keeps it: durable). A piece holds what the raw zone
would hold, pseudonymous readings and the shapes of what was refused: no identifier. A
piece too large for a message is written at once through the same ``Batcher``, as a batch
of its own, so that it is in the manifests too (decision 123).

The queue's consumer (the batcher: Lambda's event source with a batch size and a batching
window; Scaleway's ingest drained on a schedule; the local runner) writes the pieces it is
given as **one batch** (``Batcher.write``): one raw object per source and day, one lineage
record, one claim check. Exactly once, without a write per request:

- the batch's identity is its requests' (each request's id, given at the webhook, is
  unique: a redelivery of its message carries it, a hub's resend of the same content is a
  new request); its objects are conditional puts under keys of that identity;
- before it announces anything, the batch writes its **manifest** (the raw bucket,
  ``buffer/<city>/<hour>/``, swept with the raw zone): its requests, their contents'
  identities, its readings' identities, and the claim checks and lineage it is about to
  write. Every batcher reads the manifests of the last ``WINDOW`` (a LIST per hour and a
  GET per manifest it has not seen), so that
  - a request redelivered (its batch crashed after its manifest, or was delivered again in
    another grouping) is counted nothing: its batch counted it; were that batch's claim
    checks or lineage not written, they are (``_settled``, from the manifest) — as they
    are for a batch whose content or reading another batch finds (a large request's batch
    comes back only as the hub's retry, a new request: decision 123);
  - a hub's resend of the same content is a new request, counted ``resent`` (as the
    webhook counts one it recognizes at once) and written nothing; a reading resent
    inside another request (of a quantity that is no person's) is a duplicate: the index
    replaces the per-reading claims of ``service.claims`` (a conditional put each: the
    cost this buffer removes);
  - a batch that crashed before its manifest announced nothing: its raw objects are never
    read and go with the raw zone's 24 hours, and its requests come back to a new batch.

Two batchers may hold the same request at once (SQS delivers a message twice, rarely, in
two batches), or two requests of the same content. Neither may have seen the other's
manifest when it read them, so a manifest is not yet a commitment: **a batch is written
once its decision is** (decision 120). The decision is an object beside the manifest,
put once (``If-None-Match``): ``announce`` or ``yield``, the first writer's standing.
After its manifest a batcher reads the manifests again; it yields if one that shares a
request, a content or a reading with it was announced, and it puts ``yield`` on every
such one still undecided (a batcher that crashed, or one at work); then it puts its own
``announce`` — which a rival's ``yield`` may have taken first. Of two overlapping
batches at least one reads the other's manifest after it was written (each writes before
it reads), so at most one announces. A yielded batch announced nothing: its messages come
again (``TransientError``) and are read as new, its raw objects go with the raw zone.
Only announced batches' requests, contents and readings are in the index.

The window holds what hubs resend (their retries come within minutes). A redelivery may
come much later (a queue's retries span hours; a dead-letter queue redriven): a batcher
looks back ``WINDOW`` from the time its oldest request was handed over, not from now, so
a request is recognized whenever its message comes back — up to ``MANIFESTS_KEPT``, past
which its manifest may have been swept and the request is quarantined
(``buffer_expired``) rather than risk being written twice. Its limits, and the choice of
an index over claims, are decision 90.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from citypipe.core.codecs import raw_columns
from citypipe.domain.books import IngestCounts, Lineage
from citypipe.domain.errors import TerminalError, TransientError
from citypipe.domain.model import PIECE_MARK, RAW_FIELDS, Function, Message, Zone
from citypipe.domain.naming import edge_key, input_id
from citypipe.ports import SQS_MAX_BYTES
from citypipe.service.edge import EdgeBatch, Route, raw_output
from citypipe.service.kernel import Deps, Outcome, log
from citypipe.service.stage import (
    lineage_of,
    notify,
    put_lineage,
    put_outputs,
    put_quarantine,
    record,
)

WINDOW = timedelta(hours=1)  # how far back a batcher recognizes requests and readings
# manifests live as long as the raw zone (at least 24 hours): a request handed over longer
# ago than this cannot be checked against every manifest that may name it
MANIFESTS_KEPT = timedelta(hours=22)
MANIFESTS_ZONE = Zone.RAW  # swept at 24 hours, as the raw objects the manifests name
DECIDED = 2  # a manifest's version from which its batch is written once decided (0120)
# a rival's manifest is named by its own clock and time: read again, the manifests are
# listed up to this much past this batcher's now (the next hour's, near its end)
SKEW = timedelta(minutes=5)
ANNOUNCE, YIELD = "announce", "yield"
_MANIFEST, _DECISION, _ANNOUNCED = ".json", ".decision", ".announced"
_SOURCE, _SENSOR, _QUANTITY, _OBSERVED = (
    RAW_FIELDS.index(name) for name in ("source", "sensor", "quantity", "observed_at")
)


@dataclass(frozen=True)
class Piece:
    """What the edge made of one webhook request, as the buffer holds it."""

    city: str
    request: str  # the request's id: unique per request
    content: str  # the edge's identity of its content (``edge.content_id``)
    fmt: str
    parts: list[tuple[str, int, list[list[Any]]]]  # (source, day, raw rows)
    quarantine: list[dict[str, Any]]  # shapes of what was refused (``core.shape``)
    counts: IngestCounts
    handed: float  # when the webhook handed it over (epoch seconds, UTC)

    def body(self) -> str:
        return json.dumps(
            {
                PIECE_MARK: 1,
                "city": self.city,
                "request": self.request,
                "content": self.content,
                "format": self.fmt,
                "parts": self.parts,
                "quarantine": self.quarantine,
                "counts": self.counts.model_dump(),
                "handed": self.handed,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def of_body(cls, body: str, city: str) -> Piece:
        """The piece a queue message holds, of ``city``; ``TerminalError`` else."""
        try:
            data = json.loads(body)
            piece = cls(
                city=str(data["city"]),
                request=str(data["request"]),
                content=str(data["content"]),
                fmt=str(data["format"]),
                parts=[(str(s), int(d), list(rows)) for s, d, rows in data["parts"]],
                quarantine=list(data["quarantine"]),
                counts=IngestCounts.model_validate(data["counts"]),
                handed=float(data["handed"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TerminalError("invalid_message", f"not a buffered request: {exc}") from None
        if piece.city != city:
            raise TerminalError("wrong_city", f"a request for another city reached {city!r}")
        return piece


def reading_id(row: Sequence[Any]) -> str:
    """A reading's identity in a manifest (as a claim's: source, sensor, quantity, time)."""
    text = f"{row[_SOURCE]}/{row[_SENSOR]}/{row[_QUANTITY]}/{row[_OBSERVED]}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def decision_key(manifest: str) -> str:
    """Where a batch's decision is put once, beside its manifest."""
    return manifest.removesuffix(_MANIFEST) + _DECISION


def announced_key(manifest: str) -> str:
    """An empty object beside an announced batch's manifest: a listing shows it, so a
    batcher reads no decision of a batch announced (nearly every one)."""
    return manifest.removesuffix(_MANIFEST) + _ANNOUNCED


@dataclass(frozen=True)
class Items:
    """What a batch holds that another may too: requests, contents, readings."""

    requests: set[str]
    contents: set[str]
    readings: set[str]

    def shared(self, manifest: dict[str, Any]) -> bool:
        return any(
            not mine.isdisjoint(manifest[name])
            for mine, name in (
                (self.requests, "requests"),
                (self.contents, "contents"),
                (self.readings, "readings"),
            )
        )


@dataclass
class Index:
    """The manifests of the last ``WINDOW``, as this process last listed them: which
    announced manifest holds each request, content and reading; the manifests read whose
    batch had not decided yet."""

    listed: set[str] = field(default_factory=set)  # manifest keys read
    requests: dict[str, str] = field(default_factory=dict)  # request id -> manifest key
    contents: dict[str, str] = field(default_factory=dict)
    readings: dict[str, str] = field(default_factory=dict)
    undecided: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> manifest
    settled: set[str] = field(default_factory=set)  # announced manifests known written whole

    def add(self, key: str, manifest: dict[str, Any]) -> None:
        self.listed.add(key)
        self.requests.update(dict.fromkeys(manifest["requests"], key))
        self.contents.update(dict.fromkeys(manifest["contents"], key))
        self.readings.update(dict.fromkeys(manifest["readings"], key))

    def holds(self, items: Items) -> bool:
        """Whether an announced batch holds any of ``items``."""
        return any(
            not table.keys().isdisjoint(mine)
            for table, mine in (
                (self.requests, items.requests),
                (self.contents, items.contents),
                (self.readings, items.readings),
            )
        )

    def forget_before(self, oldest: str) -> None:
        """Manifests older than the window (their keys sort before ``oldest``) forgotten."""
        gone = {key for key in self.listed if key < oldest}
        if not gone:
            return
        self.listed -= gone
        self.settled -= gone
        for key in gone:
            self.undecided.pop(key, None)
        for table in (self.requests, self.contents, self.readings):
            for item in [i for i, key in table.items() if key in gone]:
                del table[item]


@dataclass
class Batcher:
    """Ingest's writer of buffered requests: one per warm container (its index)."""

    deps: Deps
    index: Index = field(default_factory=Index)
    # a local server's threads share one (a Lambda or Scaleway container takes one event
    # at a time): one batch is written at a time
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def hand_over(self, batch: EdgeBatch, request: str = "") -> None:
        """A prepared webhook request sent to ingest's queue; one too large for a message
        (``SQS_MAX_BYTES``) written at once, as a batch of its own (decision 123): it reads
        and writes the manifests every buffered batch does, so a reading or a content it
        shares with a buffered request is written once. Either way durable when it
        returns; raises when it is not (the request fails, and the hub sends it again)."""
        deps = self.deps
        counts = batch.write.outcome.counts
        assert isinstance(counts, IngestCounts)
        piece = Piece(
            city=deps.city.slug,
            request=request or uuid.uuid4().hex,
            content=batch.ident,
            fmt=batch.write.message.format,
            parts=[
                (source, day, [list(row) for row in rows])
                for (source, day), rows in sorted(batch.normalized.by_partition.items())
            ],
            quarantine=batch.normalized.quarantine,
            counts=counts,
            handed=deps.clock.now().timestamp(),
        )
        body = piece.body()
        if len(body.encode()) <= SQS_MAX_BYTES:
            deps.queue.send(deps.names.queue(Function.INGEST), [body])
        else:
            self.write([piece])

    def take(self, messages: list[tuple[str, str]]) -> list[tuple[str, str, TerminalError]]:
        """Queue messages (body, message id) of buffered requests written as one batch;
        returns those that hold none (to quarantine). Raises when they should all come
        again."""
        pieces, poison = [], []
        expired = (self.deps.clock.now() - MANIFESTS_KEPT).timestamp()
        for body, message_id in messages:
            try:
                piece = Piece.of_body(body, self.deps.city.slug)
                if piece.handed < expired:
                    raise TerminalError(
                        "buffer_expired",
                        "handed over too long ago to be told from a request already written",
                    )
                pieces.append(piece)
            except TerminalError as exc:
                poison.append((body, message_id, exc))
        self.write(pieces)
        return poison

    def write(self, pieces: Iterable[Piece]) -> int:
        """Buffered requests written as one batch; returns the requests written (redelivered
        ones are not). Raises to have them all delivered again: nothing is announced before
        the batch's manifest and its decision, and a batch that yields announces nothing."""
        with self.lock:
            return self._write(list(pieces))

    def _write(self, pieces: list[Piece]) -> int:
        deps = self.deps
        now = deps.clock.now()
        handed = min((p.handed for p in pieces), default=now.timestamp())
        since = min(now, datetime.fromtimestamp(handed, UTC)) - WINDOW
        self._refresh(now, since)
        fresh: dict[str, Piece] = {}
        relied: set[str] = set()  # announced batches this one counts on: made whole first
        for piece in pieces:
            if piece.request in self.index.requests:  # a redelivery: its batch counted it
                relied.add(self.index.requests[piece.request])
            else:
                fresh.setdefault(piece.request, piece)  # one delivery of a request counts
        batch = _merged(deps, self.index, list(fresh.values()))
        # and those holding a resend's content or a reading of it: a large request's batch
        # that announced and failed before its lineage never comes again under its own
        # request id, only as the hub's retry (a new request)
        for key in sorted((relied | batch.found) - self.index.settled):
            self._settled(key)
            self.index.settled.add(key)
        if not fresh:
            return 0
        # its requests and what of them it writes: a batch that yielded, its requests
        # grouped alike again after the index changed, writes other objects than its own
        ident = input_id("buffer", *sorted(fresh), *sorted(batch.contents), *sorted(batch.readings))
        if deps.store.exists(
            deps.names.bucket(Zone.AUDIT), deps.names.lineage_key(Function.INGEST, ident)
        ):
            return 0  # the very same batch, delivered again
        message = Message(
            city=deps.city.slug,
            stage="edge",
            bucket="",
            key=edge_key(Route.WEBHOOK.value, "buffer", ident),
            records=batch.counts.payloads,
            format="buffer",
        )
        outcome = Outcome(
            outputs=[
                raw_output(deps.names, partition, ident, raw_columns(rows, RAW_FIELDS), len(rows))
                for partition, rows in sorted(batch.parts.items())
                if rows
            ],
            counts=batch.counts,  # its quarantine rows: once it announced (below)
        )
        put = put_outputs(Function.INGEST, message, deps, ident, outcome)
        manifest = {
            "v": DECIDED,
            "batch": ident,
            "requests": sorted(fresh),
            "contents": sorted(batch.contents),
            "readings": sorted(batch.readings),
            "quarantine": batch.quarantine,  # shapes, as the quarantine zone keeps them
            "notices": {f.value: n for f, n in put.notices.items()},
            "lineage": lineage_of(
                Function.INGEST, message, deps, ident, outcome, put.outputs
            ).model_dump(mode="json"),
        }
        # each attempt's own manifest, so its own decision (a clock may stand still)
        key = deps.names.buffer_manifest_key(now, f"{ident}-{uuid.uuid4().hex[:8]}")
        deps.store.put_if_absent(
            deps.names.bucket(MANIFESTS_ZONE),
            key,
            json.dumps(manifest).encode(),
            "application/json",
        )
        self.index.listed.add(key)  # read again below: not from the store
        self.index.undecided[key] = manifest
        if not self._announces(key, now, since, Items(set(fresh), batch.contents, batch.readings)):
            log.warning("buffered batch yielded", extra={"input_id": ident})
            raise TransientError(f"buffered batch {ident} yielded to another: comes again")
        # a refused payload's row kept once: by the batch that announced, never one that yielded
        put_quarantine(Function.INGEST, deps, ident, batch.quarantine)
        record(Function.INGEST, message, deps, ident, outcome, put)
        return len(fresh)

    def _announces(self, key: str, now: datetime, since: datetime, items: Items) -> bool:
        """This batch's decision, once its manifest is written: the manifests read again, it
        yields to an announced one that shares an item with it, makes the undecided ones
        that do yield, then announces — unless one of them made it yield first."""
        self._refresh(max(now, self.deps.clock.now()) + SKEW, since)
        if key not in self.index.undecided:  # a rival put yield on it (only this one announces)
            return False
        rival = self.index.holds(items) or self._rivals(items, own=key)
        decision = self._decide(key, YIELD if rival else ANNOUNCE)
        manifest = self.index.undecided.pop(key)
        if decision == ANNOUNCE:
            self.index.add(key, manifest)
        return decision == ANNOUNCE

    def _rivals(self, items: Items, own: str = "") -> bool:
        """Every undecided batch sharing an item with ``items`` made to yield; whether one
        of them had announced first (it is then in the index)."""
        announced = False
        for key, manifest in list(self.index.undecided.items()):
            if key == own or not items.shared(manifest):
                continue
            decision = self._decide(key, YIELD)
            del self.index.undecided[key]
            if decision == ANNOUNCE:
                self.index.add(key, manifest)
                announced = True
        return announced

    def _decide(self, key: str, wanted: str) -> str:
        """A batch's decision: ``wanted`` if this call put it first, else the one put."""
        store, bucket = self.deps.store, self.deps.names.bucket(MANIFESTS_ZONE)
        put = store.put_if_absent(bucket, decision_key(key), wanted.encode(), "text/plain")
        decision = wanted if put.created else self._decision(key)
        if decision == ANNOUNCE:
            store.put_if_absent(bucket, announced_key(key), b"", "text/plain")
        return decision

    def _decision(self, key: str) -> str:
        bucket = self.deps.names.bucket(MANIFESTS_ZONE)
        text = self.deps.store.get(bucket, decision_key(key)).body.decode()
        return ANNOUNCE if text == ANNOUNCE else YIELD

    def _refresh(self, until: datetime, since: datetime) -> None:
        """The manifests other batchers wrote from ``since`` (the window before the oldest
        request's hand-over) to ``until``'s hour, read once each."""
        deps = self.deps
        bucket = deps.names.bucket(MANIFESTS_ZONE)
        oldest = deps.names.buffer_manifest_key(since, "")
        self.index.forget_before(oldest)
        hour = since.replace(minute=0, second=0, microsecond=0)
        keys: set[str] = set()
        while hour <= until:
            prefix = deps.names.buffer_hour_prefix(hour)
            keys.update(info.key for info in deps.store.list(bucket, prefix) if info.key >= oldest)
            hour += timedelta(hours=1)
        new = sorted(k for k in keys if k.endswith(_MANIFEST) and k not in self.index.listed)
        for read in deps.store.get_many(bucket, new):  # read at once, retried in place
            self.index.listed.add(read.key)
            self.index.undecided[read.key] = json.loads(read.body)
        for key, manifest in list(self.index.undecided.items()):
            # before decisions (0120) a manifest was its batch's commitment
            if "v" not in manifest or announced_key(key) in keys:
                decision = ANNOUNCE
            elif decision_key(key) in keys:
                decision = self._decision(key)
            else:
                continue
            del self.index.undecided[key]
            if decision == ANNOUNCE:
                self.index.add(key, manifest)

    def _settled(self, key: str) -> None:
        """A redelivered request's batch made whole: its claim checks and lineage written
        from its manifest, were they not (it crashed after the manifest)."""
        deps = self.deps
        manifest = json.loads(deps.store.get(deps.names.bucket(MANIFESTS_ZONE), key).body)
        lineage = Lineage.model_validate(manifest["lineage"])
        # its rows first, lineage or not: code from before 0125 completing it wrote none
        put_quarantine(Function.INGEST, deps, lineage.input_id, manifest.get("quarantine", []))
        audit = deps.names.bucket(Zone.AUDIT)
        if deps.store.exists(audit, deps.names.lineage_key(Function.INGEST, lineage.input_id)):
            return
        log.warning("buffered batch completed", extra={"input_id": lineage.input_id})
        notify(deps, {Function(f): n for f, n in manifest["notices"].items()})
        put_lineage(deps, lineage)


@dataclass
class _Batch:
    parts: dict[tuple[str, int], list[list[Any]]] = field(default_factory=dict)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    contents: set[str] = field(default_factory=set)
    readings: set[str] = field(default_factory=set)
    counts: IngestCounts = field(default_factory=IngestCounts.zero)
    found: set[str] = field(default_factory=set)  # announced manifests of its resends, duplicates


def _merged(deps: Deps, index: Index, pieces: list[Piece]) -> _Batch:
    """The pieces as one batch: a content received before is a resend (its payloads counted
    ``resent``, nothing written); a reading written before (of a quantity that is no
    person's) is a duplicate."""
    personal = deps.city.personal_quantities
    batch = _Batch()
    for piece in sorted(pieces, key=lambda p: p.request):
        c = piece.counts
        if piece.content in index.contents or piece.content in batch.contents:
            if piece.content in index.contents:
                batch.found.add(index.contents[piece.content])
            batch.counts += IngestCounts(
                payloads=0, received=0, accepted=0, duplicates=0, quarantined={},
                resent=c.payloads,
            )  # fmt: skip
            continue
        batch.contents.add(piece.content)
        earlier = 0
        for source, day, rows in piece.parts:
            kept = batch.parts.setdefault((source, day), [])
            for row in rows:
                reading = reading_id(row) if row[_QUANTITY] not in personal else None
                if reading is not None and (reading in index.readings or reading in batch.readings):
                    earlier += 1
                    if reading in index.readings:
                        batch.found.add(index.readings[reading])
                    continue
                if reading is not None:
                    batch.readings.add(reading)
                kept.append(row)
        batch.quarantine.extend(piece.quarantine)
        batch.counts += c.model_copy(
            update={"accepted": c.accepted - earlier, "duplicates": c.duplicates + earlier}
        )
    return batch


def written_requests(deps: Deps) -> set[str]:
    """Every request a batch wrote, by the manifests the raw zone still holds whose lineage
    is recorded (the run report: a dead-lettered request written after all is not lost)."""
    bucket = deps.names.bucket(MANIFESTS_ZONE)
    audit = deps.names.bucket(Zone.AUDIT)
    written: set[str] = set()
    for info in deps.store.list(bucket, deps.names.buffer_prefix()):
        if not info.key.endswith(_MANIFEST):
            continue
        manifest = json.loads(deps.store.get(bucket, info.key).body)
        if deps.store.exists(audit, deps.names.lineage_key(Function.INGEST, manifest["batch"])):
            written.update(manifest["requests"])
    return written
