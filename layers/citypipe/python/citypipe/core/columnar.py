"""The zones' columnar formats in Arrow: Parquet bytes (the clean and aggregates zones:
zstd, one row group), and the raw zone's columns (``core.codecs``) read into arrays.

Each is read without a Python object per value and in the calling thread: a worker's peak
memory is then a few times the table it reads, not the parser's (decision 0111).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from citypipe.core.codecs import RAW_COLUMNS_VERSION
from citypipe.domain.model import RAW_FIELDS

# A raw object's columns as Arrow reads them: every one a string but the value
RAW_TYPES = {name: pa.float64() if name == "value" else pa.string() for name in RAW_FIELDS}
RAW_DOCUMENT = pa.schema(
    [
        ("v", pa.int64()),
        ("rows", pa.int64()),
        ("columns", pa.struct([(name, pa.list_(kind)) for name, kind in RAW_TYPES.items()])),
    ]
)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_parquet(body: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """The table, or only its ``columns``, by the file's own reader. (``pq.read_table``
    goes through the dataset machinery and Arrow's thread pools, whose scratch memory was
    twice the table's: ~15 MB more a read of a large clean object.)"""
    file = pq.ParquetFile(pa.BufferReader(body))
    wanted = None if columns is None else list(columns)
    if missing := sorted(set(wanted or ()) - set(file.schema_arrow.names)):
        raise ValueError(f"no column {', '.join(missing)}")  # the file reader would drop it
    return file.read(columns=wanted, use_threads=False)


def raw_arrays(body: bytes) -> dict[str, pa.Array]:
    """A raw object's columns (gzip'd JSON, one document) read by Arrow's JSON reader
    straight into arrays of ``RAW_TYPES``; a column the object lacks, or sends as null, is
    all null. ``ValueError`` for anything but that shape, and for what JSON and the edge
    never write but Arrow's reader would take: a document that is not an object (a
    top-level ``null`` crashes the reader: apache/arrow#47409), text that is not UTF-8,
    a value that is not finite (``NaN``, ``Infinity``). (Parsed into Python first, a
    70,000-reading object was ~40 MB of objects, and the parser's buffer, beside the
    arrays made of them.)"""
    try:
        text = gzip.decompress(body)
    except (OSError, EOFError) as exc:
        raise ValueError(f"not gzip'd JSON: {exc}") from None
    if not text.lstrip(b" \t\r\n").startswith(b"{"):
        raise ValueError("not a JSON object")
    document = pj.read_json(
        pa.BufferReader(text),
        read_options=pj.ReadOptions(use_threads=False, block_size=len(text) + 1),
        parse_options=pj.ParseOptions(
            explicit_schema=RAW_DOCUMENT, unexpected_field_behavior="ignore"
        ),
    )
    if document.num_rows != 1 or document["v"][0].as_py() != RAW_COLUMNS_VERSION:
        raise ValueError(f"not raw columns of version {RAW_COLUMNS_VERSION}")
    rows, columns = document["rows"][0].as_py(), document["columns"][0]
    if rows is None or not columns.is_valid:
        raise ValueError("raw columns name their rows and columns")
    found = {}
    for name, kind in RAW_TYPES.items():
        values = columns[name].values
        found[name] = pa.nulls(rows, kind) if values is None else values
        if len(found[name]) != rows:
            raise ValueError(f"column {name!r} is not a list of {rows} values")
        if kind == pa.string():
            found[name].validate(full=True)  # ArrowInvalid (a ValueError) if not UTF-8
        elif pc.any(pc.invert(pc.is_finite(found[name]))).as_py():
            raise ValueError(f"column {name!r} holds a value that is not a finite number")
    return found


def release_unused() -> None:
    """Give Arrow's freed pages back: its allocator (mimalloc) keeps them otherwise, and a
    worker that reads one object after another would hold the pages of them all."""
    pa.default_memory_pool().release_unused()
