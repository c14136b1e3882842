"""The edge: where a hub's payloads are first written. One piece of code for every way in —
the webhook, the MQTT bridge, the replay (which plays the hubs), ingest of a drop.

It runs the normalization path (``core.ingest``): devices resolved in the registry, the
data subject's identifier replaced by its keyed pseudonym (per-sensor daily key), device
and network identifiers dropped; so the raw zone holds pseudonymous observations only
and quarantine a redacted copy of what was refused. Then the stage machinery writes the
raw objects (conditional puts), tells anonymize, and records the lineage.

A batch's identity is its content after normalization (the readings it gave, what it
quarantined): the same readings sent again — byte for byte, or re-serialized — are found
done and written nothing twice. ``prepare`` normalizes, ``commit`` writes: a long-running
edge (the MQTT bridge) records what it prepared in its journal between the two
(``service.journal``), so that a crash is completed with the very same batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from citypipe.core.codecs import gz, jsonl, raw_columns
from citypipe.core.collector import paused
from citypipe.core.formats import Format
from citypipe.core.ingest import NO_PRIOR, Identity, Normalized, Partition, Payload, normalize
from citypipe.core.pseudonyms import sensor_keys
from citypipe.domain.books import IngestCounts
from citypipe.domain.model import RAW_EXTENSION, RAW_FIELDS, Function, Message, Zone
from citypipe.domain.naming import StackNames, edge_key, input_id
from citypipe.ports import KeyStore
from citypipe.service.stage import Deps, Outcome, Output, finish, log


@dataclass(frozen=True)
class Received:
    """What the edge made of a batch."""

    normalized: Normalized
    duplicate: bool  # the same readings were received before: nothing written


RAW_GZIP_LEVEL = 1  # raw objects live minutes: write fast, read once


def _bodies(normalized: Normalized) -> list[tuple[Partition, bytes]]:
    """Each (source, day)'s raw records as columns, in partition order."""
    return [
        (p, raw_columns(rows, RAW_FIELDS)) for p, rows in sorted(normalized.by_partition.items())
    ]


def to_outcome(
    names: StackNames,
    normalized: Normalized,
    ident: str,
    bodies: list[tuple[Partition, bytes]] | None = None,
) -> Outcome:
    outputs = [
        Output(
            zone=Zone.RAW,
            key=names.data_key(
                Zone.RAW, datetime.fromtimestamp(day, UTC), source, ident, RAW_EXTENSION
            ),
            body=gz(text, RAW_GZIP_LEVEL),
            records=len(normalized.by_partition[source, day]),
            format=RAW_EXTENSION,
            content_type="application/json",
            notify=Function.ANONYMIZE,
        )
        for (source, day), text in (bodies if bodies is not None else _bodies(normalized))
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


def content_id(
    normalized: Normalized, bodies: list[tuple[Partition, bytes]] | None = None, salt: str = ""
) -> str:
    """A batch's identity: what normalization made of it (the quarantine rows name their
    adapters), and ``salt`` where the sender makes each batch unique itself."""
    digest = hashlib.sha256(salt.encode())
    for partition, text in bodies if bodies is not None else _bodies(normalized):
        digest.update(repr(partition).encode())
        digest.update(text)
    digest.update(
        jsonl({k: v for k, v in row.items() if k != "line"} for row in normalized.quarantine)
    )
    digest.update(f"{normalized.payloads}/{normalized.received}".encode())
    return input_id("edge", digest.hexdigest())


@dataclass(frozen=True)
class EdgeBatch:
    """A batch normalized and ready to be written once: its identity, the claim-check it is
    recorded under, and what the stage machinery writes."""

    ident: str
    message: Message
    outcome: Outcome
    normalized: Normalized


def prepare(
    deps: Deps,
    keys: KeyStore | None,
    fmt: Format | None,
    payloads: Iterable[Payload],
    trace_id: str = "",
    only_source: str | None = None,
    prior: Container[Identity] = NO_PRIOR,
    salt: str = "",
) -> EdgeBatch:
    """Normalize a batch of payloads — of format ``fmt``, or each of its own (a bridge that
    batches several hubs' messages) — into what the edge writes. Nothing is written yet.
    ``only_source``: the one source the sender was authenticated for (a webhook's token);
    ``prior``: readings a long-running edge wrote in its recent batches (duplicates);
    ``salt``: makes the batch's identity unique — a sender that keeps its own journal of
    what it wrote (the MQTT bridge) needs no recognition by content, and two of its batches
    that normalize alike (a resent message alone, a refused payload alone) are two."""
    now = deps.clock.now().timestamp()
    key_for = sensor_keys(keys, deps.city.slug) if keys is not None else None
    with paused():  # the batch's objects are alive until its bodies are made
        normalized = normalize(
            deps.city, fmt, payloads, now=now, key_for=key_for, only_source=only_source,
            prior=prior,
        )  # fmt: skip
        bodies = _bodies(normalized)
    ident = content_id(normalized, bodies, salt)
    name = fmt.name if fmt is not None else "mixed"
    city = deps.city.slug
    message = Message(
        city=city,
        stage="edge",
        bucket="",
        key=edge_key(name, ident),
        records=normalized.payloads,
        format=name,
        trace_id=trace_id,
    )
    return EdgeBatch(ident, message, to_outcome(deps.names, normalized, ident, bodies), normalized)


def commit(deps: Deps, ident: str, message: Message, outcome: Outcome) -> bool:
    """Write a prepared batch once: False when its lineage says it was written before (the
    same readings received again, or being received at this very moment: the lineage's
    conditional put tells), True when this call recorded it. Idempotent: a call that failed
    half-way is completed by the next with the same batch (conditional puts)."""
    if deps.store.exists(
        deps.names.bucket(Zone.AUDIT), deps.names.lineage_key(Function.INGEST, ident)
    ):
        log.info("duplicate batch", extra={"function": "ingest", "input_id": ident})
        return False
    return finish(Function.INGEST, message, deps, ident, outcome)


def receive(
    deps: Deps,
    keys: KeyStore | None,
    fmt: Format | None,
    payloads: Iterable[Payload],
    trace_id: str = "",
    only_source: str | None = None,
) -> Received:
    """Normalize a batch of payloads and write what it gives, once (``prepare``, then
    ``commit``). The collector stays paused until the batch is written: were it woken
    between the two, its first collection would walk every object of the batch."""
    with paused():
        batch = prepare(deps, keys, fmt, payloads, trace_id, only_source)
        written = commit(deps, batch.ident, batch.message, batch.outcome)
        return Received(batch.normalized, duplicate=not written)
