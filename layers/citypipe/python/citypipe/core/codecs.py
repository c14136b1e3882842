"""JSON Lines (gzip): the raw edge's format. Byte-stable: sorted keys, no gzip timestamp."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from citypipe.domain.errors import TerminalError


def jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(
        orjson.dumps(r, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE) for r in rows
    )


def gz(data: bytes, level: int = 5) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def jsonl_gz(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return gz(jsonl(rows))


def read_jsonl_gz(body: bytes) -> Iterator[str]:
    return iter(gzip.decompress(body).decode().splitlines())


def gunzip_bounded(body: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes: a small drop that
    inflates to gigabytes is refused (``TerminalError('drop_too_large')``)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise TerminalError("unreadable_input", f"not gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TerminalError("drop_too_large", f"inflates beyond {limit} bytes")
    if not inflater.eof:
        raise TerminalError("unreadable_input", "a truncated gzip stream")
    return out
