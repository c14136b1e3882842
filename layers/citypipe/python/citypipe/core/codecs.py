"""JSON Lines (gzip): the raw edge's format. Byte-stable: sorted keys, no gzip timestamp."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from typing import Any


def jsonl_gz(rows: Iterable[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in rows)
    return gzip.compress(text.encode(), compresslevel=5, mtime=0)


def read_jsonl_gz(body: bytes) -> Iterator[str]:
    return iter(gzip.decompress(body).decode().splitlines())
