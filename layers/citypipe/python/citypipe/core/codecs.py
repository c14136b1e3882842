"""The byte formats written before the clean zone, byte-stable (sorted keys, no gzip
timestamp): JSON Lines (gzip) for quarantine rows and drops, and the raw zone's columns.

A raw object holds one (source, hour) of a batch as **columns** — ``{"v": 1, "rows": n,
"columns": {"source": [...], "sensor": [...], ...}}``, gzip — so the edge writes it with
one ``orjson.dumps`` and anonymize reads it straight into Arrow arrays: no JSON object, no
dict per reading on either side. Ingest stays free of pyarrow: the columns are plain JSON.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson


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


RAW_COLUMNS_VERSION = 1


def raw_columns(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> bytes:
    """Rows (tuples of values in ``names`` order) as a raw object's columns, uncompressed."""
    columns = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {}
    document = {
        "v": RAW_COLUMNS_VERSION,
        "rows": len(rows),
        "columns": {name: columns.get(name, ()) for name in names},
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def read_raw_columns(body: bytes, names: Sequence[str]) -> dict[str, list[Any]]:
    """A raw object's columns (gzip); ``ValueError`` for anything but that shape."""
    try:
        document = orjson.loads(gzip.decompress(body))
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not gzip'd JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("v") != RAW_COLUMNS_VERSION:
        raise ValueError(f"not raw columns of version {RAW_COLUMNS_VERSION}")
    rows, columns = document.get("rows"), document.get("columns")
    if not isinstance(rows, int) or not isinstance(columns, dict):
        raise ValueError("raw columns name their rows and columns")
    found = {}
    for name in names:
        column = columns.get(name, [None] * rows)
        if not isinstance(column, list) or len(column) != rows:
            raise ValueError(f"column {name!r} is not a list of {rows} values")
        found[name] = column
    return found
