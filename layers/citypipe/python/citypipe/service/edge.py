"""The edge: where a hub's payloads are first written. One piece of code for every way in —
the webhook, the MQTT bridge, the replay (which plays the hubs), ingest of a drop.

It runs the normalization path (``core.ingest``): devices resolved in the registry, the
data subject's identifier replaced by its keyed pseudonym (per-sensor daily key), device
and network identifiers dropped; so the raw zone holds pseudonymous observations only
and quarantine a redacted copy of what was refused. Then the stage machinery writes the
raw objects (conditional puts), tells anonymize, and records the lineage.

A batch's identity is its content after normalization (the readings it gave, what it
quarantined): the same readings sent again — byte for byte, or re-serialized — are found
done and written nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from citypipe.core.codecs import gz, jsonl
from citypipe.core.formats import Format
from citypipe.core.ingest import Normalized, Payload, normalize
from citypipe.core.pseudonyms import sensor_keys
from citypipe.domain.books import IngestCounts
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import data_key, edge_key, input_id, lineage_key
from citypipe.ports import KeyStore
from citypipe.service.stage import Deps, Outcome, Output, finish, log


@dataclass(frozen=True)
class Received:
    """What the edge made of a batch."""

    normalized: Normalized
    duplicate: bool  # the same readings were received before: nothing written


def to_outcome(city: str, fmt: Format, normalized: Normalized, ident: str) -> Outcome:
    outputs = [
        Output(
            zone=Zone.RAW,
            key=data_key(
                Zone.RAW, city, datetime.fromtimestamp(hour, UTC), source, ident, "jsonl.gz"
            ),
            body=gz(jsonl(rows)),
            records=len(rows),
            format="jsonl.gz",
            content_type="application/x-ndjson",
            notify=Function.ANONYMIZE,
        )
        for (source, hour), rows in sorted(normalized.by_partition.items())
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


def content_id(fmt: Format, normalized: Normalized) -> str:
    """A batch's identity: the adapter and what normalization made of it."""
    digest = hashlib.sha256(fmt.label.encode())
    for partition, rows in sorted(normalized.by_partition.items()):
        digest.update(repr(partition).encode())
        digest.update(jsonl(rows))
    digest.update(
        jsonl({k: v for k, v in row.items() if k != "line"} for row in normalized.quarantine)
    )
    digest.update(f"{normalized.payloads}/{normalized.received}".encode())
    return input_id("edge", digest.hexdigest())


def receive(
    deps: Deps,
    keys: KeyStore | None,
    fmt: Format,
    payloads: Iterable[Payload],
    trace_id: str = "",
) -> Received:
    """Normalize a batch of one format's payloads and write what it gives, once."""
    now = deps.clock.now().timestamp()
    key_for = sensor_keys(keys, deps.city.city) if keys is not None else None
    normalized = normalize(deps.city, fmt, payloads, now=now, key_for=key_for)
    ident = content_id(fmt, normalized)
    city = deps.city.city
    if deps.store.exists(deps.names.bucket(Zone.AUDIT), lineage_key(city, Function.INGEST, ident)):
        log.info("duplicate batch", extra={"function": "ingest", "input_id": ident})
        return Received(normalized, duplicate=True)
    message = Message(
        city=city,
        stage="edge",
        bucket="",
        key=edge_key(fmt.name, ident),
        records=normalized.payloads,
        format=fmt.name,
        trace_id=trace_id,
    )
    finish(Function.INGEST, message, deps, ident, to_outcome(city, fmt, normalized, ident))
    return Received(normalized, duplicate=False)
