"""Parquet bytes: the format of the clean and aggregates zones (zstd, one row group)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_parquet(body: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """The table, or only its ``columns``."""
    return pq.read_table(io.BytesIO(body), columns=None if columns is None else list(columns))
