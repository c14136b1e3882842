"""What the edge's privacy checks do and look at, for any set of hub payloads (the project's
own, tests/unit/test_hub_fixture_privacy.py; the reference set's, tests/conformance): a
push to the webhook, a drop through ingest; every zone's text, the spellings an identifier
may leak in, the quarantine's rows. (The one module these tests reach the services by.)"""

from __future__ import annotations

import gzip
import json
from functools import partial
from typing import Any

from unit_support import post

from citypipe.domain.model import Function, Message, Zone
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe.service.stage import run_stage
from citypipe_local.fakes import InMemoryKeyStore


def spellings(identifier: str) -> set[str]:
    """An identifier as written, and bare (``00:26:ab`` -> ``0026ab``), lower-cased."""
    bare = "".join(ch for ch in identifier if ch.isalnum())
    return {identifier.lower(), bare.lower()}


def stored_text(deps: Deps) -> str:
    """Everything every zone holds, decompressed, lower-cased."""
    texts = []
    for zone in Zone:
        bucket = deps.names.bucket(zone)
        for info in deps.store.list(bucket):
            body = deps.store.get(bucket, info.key).body
            texts.append((gzip.decompress(body) if info.key.endswith(".gz") else body).decode())
    return "\n".join(texts).lower()


def leaks(identifiers: tuple[str, ...], body: bytes, stored: str) -> list[str]:
    """The identifiers the body carries that ``stored`` holds in any spelling."""
    present = {i for i in identifiers if i.lower() in body.decode(errors="replace").lower()}
    return [i for i in sorted(present) if any(s in stored for s in spellings(i))]


def quarantine_rows(deps: Deps) -> list[dict[str, Any]]:
    """Every row of the quarantine zone (its bucket also holds the readings' claims)."""
    bucket = deps.names.bucket(Zone.QUARANTINE)
    return [
        json.loads(line)
        for info in deps.store.list(bucket, "quarantine/")
        for line in gzip.decompress(deps.store.get(bucket, info.key).body).splitlines()
    ]


def push_to_webhook(
    deps: Deps, source: str, fmt: str, body: bytes, headers: dict[str, str] | None = None
) -> None:
    """A hub's push to ``POST /ingest/{source}/{fmt}``, processed by the edge (a fresh key
    store: the day's secrets)."""
    post(deps, InMemoryKeyStore(), source, fmt, body, headers=headers)


def ingest_dropped(deps: Deps, message: Message) -> None:
    """A drop in the inbox, through the ingest stage."""
    run_stage(Function.INGEST, message, deps, partial(ingest_drop, keys=InMemoryKeyStore()))
