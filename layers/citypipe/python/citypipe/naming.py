"""Names of a city's buckets and queues, and the deterministic keys of every object."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from citypipe.domain import Function, TerminalError, Zone


@dataclass(frozen=True)
class StackNames:
    """Every resource of a city stack is named ``<prefix><city>-<what>``."""

    city: str
    prefix: str = ""

    def bucket(self, zone: Zone) -> str:
        return f"{self.prefix}{self.city}-{zone.value}"

    def queue(self, function: Function) -> str:
        return f"{self.prefix}{self.city}-{function.value}"

    def dlq(self, function: Function) -> str:
        return f"{self.queue(function)}-dlq"


def input_id(*parts: str) -> str:
    """A short stable id from an input's identity (key + etag, or a content hash)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:24]


def partition(at: datetime) -> str:
    return f"date={at:%Y-%m-%d}/hour={at:%H}"


def data_key(stage: str, city: str, at: datetime, source: str, ident: str, ext: str) -> str:
    """``<stage>/<city>/date=YYYY-MM-DD/hour=HH/<source>/<input-id>.<ext>`` (Hive-style)."""
    return f"{stage}/{city}/{partition(at)}/{source}/{ident}.{ext}"


def partition_of(key: str) -> str:
    """``<zone>/<city>/date=../hour=../<source>`` of a data key, for the next stage's key."""
    parts = key.split("/")
    if len(parts) != 6 or not parts[2].startswith("date=") or not parts[3].startswith("hour="):
        raise TerminalError(
            "invalid_key", f"{key!r} is not <zone>/<city>/date=/hour=/<source>/<id>"
        )
    return "/".join(parts[2:5])


def inbox_key(city: str, fmt: str, ident: str) -> str:
    return f"inbox/{city}/{fmt}/{ident}.jsonl.gz"


def lineage_key(city: str, function: Function, ident: str) -> str:
    return f"lineage/{city}/{function.value}/{ident}.json"


def quarantine_key(city: str, function: Function, ident: str) -> str:
    return f"quarantine/{city}/{function.value}/{ident}.jsonl.gz"
