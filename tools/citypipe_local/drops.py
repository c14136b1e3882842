"""Drops: files a city's own systems put in the inbox for the ingest function (a loop
controller's CSV export, a batch of JSON Lines), announced with a claim check. What the
replay and the tests do in their place."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from citypipe.domain.model import Function, Message, Zone
from citypipe.service.kernel import Deps


def drop(deps: Deps, fmt: str, name: str, body: bytes, records: int) -> Message:
    """Put a file at ``inbox/<city>/<fmt>/<name>`` (once: a conditional put) and return the
    claim check that announces it (not sent)."""
    bucket = deps.names.bucket(Zone.RAW)
    key = deps.names.inbox_key(fmt, name)
    result = deps.store.put_if_absent(bucket, key, body, "application/octet-stream")
    return Message(
        city=deps.city.slug,
        stage="inbox",
        bucket=bucket,
        key=key,
        etag=result.etag,
        records=records,
        format=fmt,
    )


def drop_lines(deps: Deps, fmt: str, payloads: Sequence[str], trace_id: str = "") -> Message:
    """A batch of payloads as JSON Lines, named by its content (the same batch is one file)."""
    body = "".join(p.replace("\r", " ").replace("\n", " ") + "\n" for p in payloads).encode()
    name = hashlib.sha256(body).hexdigest()[:24] + ".jsonl"
    message = drop(deps, fmt, name, body, len(payloads))
    return message.model_copy(update={"trace_id": trace_id})


def announce(deps: Deps, message: Message) -> None:
    deps.queue.send_json(deps.names.queue(Function.INGEST), [message.model_dump()])
