"""The edge: where a hub's payloads are first written, whatever route they took.

Every route — a webhook request (``service.webhook``), an AWS IoT rule
(``entrypoints.iot``), the MQTT bridge (``service.bridge``), a drop in the inbox
(``service.ingest``), a replay of captured hubs, the poller of hub APIs
(``service.poll``) — makes one ``Inbound`` of the payloads it decoded (``core.decode``)
and hands it to ``prepare``: the one entrance. It runs the
normalization path (``core.ingest``): devices resolved in the registry, the detections of
devices residents opted out dropped (``service.optout``), the data subject's identifier
replaced by its keyed pseudonym (the city's key of the day), device and network
identifiers dropped; so the raw zone holds pseudonymous observations only and
quarantine the shape of what was refused (``core.shape``: never a value). ``commit`` then
writes the raw objects (conditional puts), tells anonymize, and records the lineage;
``admit`` is the two in one.

A batch's identity is its content after normalization (the readings it gave, what it
quarantined, and a hash of what it refused as received: two payloads of one shape are two):
the same readings sent again — byte for byte, or re-serialized — are found done and written
nothing twice; on the routes a hub's credential opens (``CLAIMED``), a reading resent
inside another batch is found by its claim (``service.claims``: ``commit`` claims each
reading once before writing). A drop's
identity is the drop's own (its key and etag:
the stage machinery writes it, ``service.stage``). A long-running edge (the MQTT bridge)
records what it prepared in its journal between ``prepare`` and ``commit``
(``service.journal``), so that a crash is completed with the very same batch.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from citypipe.core.codecs import gz, jsonl, raw_columns
from citypipe.core.formats import Format
from citypipe.core.ingest import NO_PRIOR, Identity, Normalized, Partition, Payload, normalize
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.books import IngestCounts
from citypipe.domain.model import RAW_EXTENSION, RAW_FIELDS, Function, Message, Zone
from citypipe.domain.naming import StackNames, edge_key, input_id
from citypipe.ports import KeyStore
from citypipe.service.claims import RAW_GZIP_LEVEL, claimed
from citypipe.service.collector import paused
from citypipe.service.kernel import Deps, Outcome, Output, log
from citypipe.service.optout import edge_opt_outs
from citypipe.service.partners import withdrawn_sources
from citypipe.service.stage import finish

# What a quarantine row says of where and when a payload came, not of what it held: a resend
# of the same content, at another time or line, is the same batch.
WHERE = frozenset({"line", "received_at", "route"})


class Route(StrEnum):
    """How payloads reached the edge (their batch's name in lineage says it)."""

    WEBHOOK = "webhook"
    IOT_RULE = "iot-rule"
    MQTT = "mqtt"
    DROP = "drop"
    REPLAY = "replay"
    POLL = "poll"  # a hub API the city calls (service.poll)


# Routes whose rows of past days are a backfill, not a hub's resend (bounded by 2000, not by
# the keys' age): an inbox drop needs the city's cloud credentials; a poll asks the
# provider for the hours it settled, each row written once by its identity
BACKFILLS = frozenset({Route.DROP, Route.POLL})
# Routes a hub's token (or an IoT rule, a broker account) opens: what a valid credential
# could game, so each reading is claimed once across batches (``service.claims``, a
# conditional put per reading). The city's own drops and polls and a local replay of
# captured hubs are written once by their identity, without the claims' cost.
CLAIMED = frozenset({Route.WEBHOOK, Route.IOT_RULE, Route.MQTT})


@dataclass(frozen=True)
class Inbound:
    """What reaches the edge, whatever the route: a batch of payloads, and what the route
    vouches for.

    ``payloads``: read once, in order (a sender may decode each as the edge takes it, so a
    batch's payloads are never all held beside what the edge makes of them); ``fmt``: the
    payloads' hub format, or None where each payload names its own (a bridge or a replay
    batching several hubs); ``only_source``: the one source the sender was
    authenticated for (a webhook's token: readings of other sources' devices are
    quarantined, ``wrong_source``); ``identity``: the batch's id where the route has one
    (a drop's), else None (its content's); ``prior``: readings a long-running edge wrote in
    recent batches (counted as duplicates); ``salt``: makes a content identity unique
    where the sender keeps its own journal of what it wrote (two of the bridge's batches
    that normalize alike are two)."""

    payloads: Iterable[Payload]
    route: Route
    fmt: Format | None = None
    only_source: str | None = None
    trace_id: str = ""
    identity: str | None = None
    prior: Container[Identity] = NO_PRIOR
    salt: str = ""


@dataclass(frozen=True)
class EdgeWrite:
    """What the edge writes of a batch, once: its identity, the claim check it is recorded
    under, and the outputs and counts the stage machinery writes (a bridge's journal keeps
    exactly this between ``prepare`` and ``commit``)."""

    ident: str
    message: Message
    outcome: Outcome
    claimed: bool = True  # its readings are claimed once across batches (``CLAIMED``)


@dataclass(frozen=True)
class EdgeBatch:
    """A batch normalized and ready to be written once: the write, and what normalization
    made of it (for the sender's answer and a bridge's recent readings)."""

    write: EdgeWrite
    normalized: Normalized

    @property
    def ident(self) -> str:
        return self.write.ident


@dataclass(frozen=True)
class Admitted:
    """What the edge made of an inbound batch, once written."""

    normalized: Normalized
    duplicate: bool  # the same readings were received before: nothing written
    counts: IngestCounts  # as written: readings an earlier batch wrote are duplicates
    buffered: bool = False  # handed to the buffer: written with other requests' (counts as
    # received: the batch's lineage has the last word on duplicates)


def prepare(deps: Deps, keys: KeyStore | None, inbound: Inbound) -> EdgeBatch:
    """The one entrance: normalize an inbound batch into what the edge writes. Nothing is
    written yet. ``keys``: the daily secrets the pseudonyms are keyed by (None where no
    source has a data subject)."""
    now = deps.clock.now().timestamp()
    key_for = day_keys(keys, deps.city.slug) if keys is not None else None
    opt_outs = edge_opt_outs(deps, keys) if keys is not None else None  # before pseudonyms
    with paused():  # the batch's objects are alive until its bodies are made
        normalized = normalize(
            deps.city, inbound.fmt, _once(inbound.payloads), now=now, key_for=key_for,
            only_source=inbound.only_source, prior=inbound.prior,
            backfill=inbound.route in BACKFILLS, opt_outs=opt_outs,
            withdrawn=withdrawn_sources(deps),
        )  # fmt: skip
        digest = _content_digest(inbound.salt)
        bodies = _bodies(normalized, None if inbound.identity else digest)
    ident = inbound.identity or content_id(normalized, digest)
    for row in normalized.quarantine:  # which route a refused payload came by
        row["route"] = inbound.route.value
    name = inbound.fmt.name if inbound.fmt is not None else "mixed"
    message = Message(
        city=deps.city.slug,
        stage="edge",
        bucket="",
        key=edge_key(inbound.route.value, name, ident),
        records=normalized.payloads,
        format=name,
        trace_id=inbound.trace_id,
    )
    outcome = _outcome(deps.names, normalized, ident, bodies)
    return EdgeBatch(
        EdgeWrite(ident, message, outcome, claimed=inbound.route in CLAIMED), normalized
    )


def commit(deps: Deps, write: EdgeWrite) -> IngestCounts | None:
    """Write a prepared batch once, its readings another batch wrote first left out
    (``service.claims``): None when its lineage says it was written before (the same
    readings received again, or being received at this very moment: the lineage's
    conditional put tells), else the counts this call recorded. Idempotent: a call that
    failed half-way is completed by the next with the same batch (conditional puts; its
    own claims are its own)."""
    lineage = deps.names.lineage_key(Function.INGEST, write.ident)
    if deps.store.exists(deps.names.bucket(Zone.AUDIT), lineage):
        log.info("duplicate batch", extra={"function": "ingest", "input_id": write.ident})
        return None
    outcome = claimed(deps, write.ident, write.outcome) if write.claimed else write.outcome
    if not finish(Function.INGEST, write.message, deps, write.ident, outcome):
        return None
    assert isinstance(outcome.counts, IngestCounts)
    return outcome.counts


def admit(
    deps: Deps,
    keys: KeyStore | None,
    inbound: Inbound,
    buffer: Callable[[EdgeBatch], None] | None = None,
) -> Admitted:
    """``prepare``, then ``commit``: the batch written once. The collector stays paused
    until it is written: were it woken between the two, its first collection would walk
    every object of the batch. ``buffer``: where the batch is handed over instead
    (``service.buffer.Batcher.hand_over``), durable when it returns."""
    with paused():
        batch = prepare(deps, keys, inbound)
        if buffer is not None:
            buffer(batch)
            counts = batch.write.outcome.counts
            assert isinstance(counts, IngestCounts)
            return Admitted(batch.normalized, duplicate=False, counts=counts, buffered=True)
        written = commit(deps, batch.write)
        counts = batch.write.outcome.counts if written is None else written
        assert isinstance(counts, IngestCounts)
        return Admitted(batch.normalized, duplicate=written is None, counts=counts)


_READ: weakref.WeakSet[Iterator[Payload]] = weakref.WeakSet()


def _once(payloads: Iterable[Payload]) -> Iterable[Payload]:
    """``payloads``, refused when they are an iterator read already: an ``Inbound`` built
    on one (a replay's batch, decoded as the edge takes it) is spent after one ``prepare``,
    and a second would admit an empty batch and write its lineage."""
    if isinstance(payloads, Iterator):
        if payloads in _READ:
            raise ValueError("an Inbound's payloads are read once: build another to try again")
        _READ.add(payloads)
    return payloads


def _bodies(normalized: Normalized, digest: hashlib._Hash | None) -> list[tuple[Partition, bytes]]:
    """Each (source, day)'s raw records as columns, in partition order, compressed: one
    partition's uncompressed columns at a time, hashed into ``digest`` (the batch's content
    identity, where it has none of its own) before they are let go."""
    bodies = []
    for partition, rows in sorted(normalized.by_partition.items()):
        text = raw_columns(rows, RAW_FIELDS)
        if digest is not None:
            digest.update(repr(partition).encode())
            digest.update(text)
        bodies.append((partition, gz(text, RAW_GZIP_LEVEL)))
        del text  # before the next partition's are made
    return bodies


def _outcome(
    names: StackNames, normalized: Normalized, ident: str, bodies: list[tuple[Partition, bytes]]
) -> Outcome:
    outputs = [
        _raw_object(names, partition, ident, body, len(normalized.by_partition[partition]))
        for partition, body in bodies
    ]
    return Outcome(
        outputs=outputs,
        counts=IngestCounts(
            payloads=normalized.payloads,
            received=normalized.received,
            accepted=normalized.accepted,
            duplicates=normalized.duplicates,
            quarantined=dict(sorted(normalized.reasons.items())),
        ),
        quarantine=normalized.quarantine,
    )


def raw_output(
    names: StackNames, partition: Partition, ident: str, text: bytes, records: int
) -> Output:
    """A batch's raw object of one source and day: its columns (``text``), told to anonymize."""
    return _raw_object(names, partition, ident, gz(text, RAW_GZIP_LEVEL), records)


def _raw_object(
    names: StackNames, partition: Partition, ident: str, body: bytes, records: int
) -> Output:
    """``raw_output`` of columns compressed already (``body``)."""
    source, day = partition
    return Output(
        zone=Zone.RAW,
        key=names.data_key(
            Zone.RAW, datetime.fromtimestamp(day, UTC), source, ident, RAW_EXTENSION
        ),
        body=body,
        records=records,
        format=RAW_EXTENSION,
        content_type="application/json",
        notify=Function.ANONYMIZE,
    )


def _content_digest(salt: str) -> hashlib._Hash:
    """Where a batch's content identity begins: ``salt``, where the sender makes each batch
    unique itself; ``_bodies`` adds each partition's columns, ``content_id`` the rest."""
    return hashlib.sha256(salt.encode())


def content_id(normalized: Normalized, digest: hashlib._Hash) -> str:
    """A batch's identity: what normalization made of it — its columns (in ``digest``
    already: ``_bodies``), its quarantine rows (they name their adapters) — the digest of
    what it refused (shapes alone would make two refused payloads of one shape one batch),
    and the salt ``digest`` began with."""
    digest.update(
        jsonl({k: v for k, v in row.items() if k not in WHERE} for row in normalized.quarantine)
    )
    digest.update(normalized.refused.digest())
    digest.update(f"{normalized.payloads}/{normalized.received}".encode())
    return input_id("edge", digest.hexdigest())
