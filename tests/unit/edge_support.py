"""What the edge's privacy checks look at, for any set of hub payloads (the project's own,
tests/unit/test_hub_fixture_privacy.py; the reference set's, tests/conformance): every
zone's text, the spellings an identifier may leak in, the quarantine's rows."""

from __future__ import annotations

import gzip
import json
from typing import Any

from citypipe.domain.model import Zone
from citypipe.service.stage import Deps


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
    """Every row of the quarantine zone."""
    bucket = deps.names.bucket(Zone.QUARANTINE)
    return [
        json.loads(line)
        for info in deps.store.list(bucket)
        for line in gzip.decompress(deps.store.get(bucket, info.key).body).splitlines()
    ]
