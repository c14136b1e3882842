"""The zones' columnar formats read into Arrow (``core/columnar.py``): a raw object's
columns as arrays, the same values the edge wrote, read without a Python object per value
(decision 0111)."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from unit_support import normalized, raw_rows, wifi_observation

from citypipe.core.codecs import gz, raw_columns, read_raw_columns
from citypipe.core.columnar import RAW_TYPES, parquet_bytes, raw_arrays, read_parquet
from citypipe.domain.city import City
from citypipe.domain.model import RAW_FIELDS


def raw_object(rows: list[dict[str, Any]]) -> bytes:
    """A raw object of these records, as the edge writes one."""
    return gz(raw_columns([tuple(r.get(n) for n in RAW_FIELDS) for r in rows], RAW_FIELDS))


def wifi_rows(city: City, count: int) -> list[dict[str, Any]]:
    [row] = raw_rows(normalized(city, "canonical", wifi_observation()))
    return [{**row, "value": float(i % 7), "pseudonym": f"p{i}"} for i in range(count)]


def test_a_raw_objects_arrays_hold_what_its_columns_hold(city: City) -> None:
    rows = wifi_rows(city, 3)
    rows[1] |= {"pseudonym": None, "refused": "image", "value": 2.5}
    body = raw_object(rows)
    arrays, columns = raw_arrays(body), read_raw_columns(body, RAW_FIELDS)
    assert list(arrays) == list(RAW_FIELDS)
    for name in RAW_FIELDS:
        assert arrays[name].equals(pa.array(columns[name], RAW_TYPES[name])), name


def test_a_column_a_raw_object_lacks_is_all_null() -> None:
    body = gzip.compress(b'{"v":1,"rows":2,"columns":{"source":["a","b"]}}')
    arrays = raw_arrays(body)
    assert arrays["source"].to_pylist() == ["a", "b"]
    assert arrays["refused"].to_pylist() == [None, None]
    assert arrays["value"].type == pa.float64()


@pytest.mark.parametrize(
    "document",
    [
        b'{"v":2,"rows":1,"columns":{"source":["a"]}}',
        b'{"rows":1,"columns":{"source":["a"]}}',
        b'{"v":1,"columns":{"source":["a"]}}',
        b'{"v":1,"rows":1}',
        b'{"v":1,"rows":2,"columns":{"source":["a"]}}',
        b'{"v":1,"rows":1,"columns":{"source":["a"]}}\n{"v":1,"rows":1,"columns":{}}',
        b"null",
        b' null\n{"v":1,"rows":1,"columns":{"source":["a"]}}',
        b"\xef\xbb\xbf" + b'{"v":1,"rows":1,"columns":{"source":["a"]}}',
        b'{"v":1,"rows":1,"columns":{"source":["wifi\xff22"]}}',
        b'{"v":1,"rows":1,"columns":{"pseudonym":["\xc0\xaf0f26"]}}',
        b'{"v":1,"rows":2,"columns":{"value":[NaN,21.0]}}',
        b'{"v":1,"rows":1,"columns":{"value":[Infinity]}}',
        b'{"v":1,"rows":1,"columns":{"value":[-Infinity]}}',
    ],
    ids=[
        "version", "no-rows", "no-columns-count", "no-columns", "short-column", "two",
        "null", "null-then-object", "bom", "not-utf8", "not-utf8-pseudonym", "nan",
        "infinity", "minus-infinity",
    ],
)  # fmt: skip
def test_anything_but_raw_columns_is_refused(document: bytes) -> None:
    with pytest.raises(ValueError):
        raw_arrays(gzip.compress(document))


def test_a_column_sent_as_null_is_all_null() -> None:
    body = gzip.compress(b'{"v":1,"rows":2,"columns":{"source":["a","b"],"pseudonym":null}}')
    assert raw_arrays(body)["pseudonym"].to_pylist() == [None, None]


def test_a_parquet_column_asked_for_and_missing_is_refused() -> None:
    body = parquet_bytes(pa.table({"a": [1, 2]}))
    assert read_parquet(body, ["a"]).column_names == ["a"]
    with pytest.raises(ValueError, match="no column pseudonym"):
        read_parquet(body, ["a", "pseudonym"])


def test_a_body_that_is_not_gzip_is_refused() -> None:
    with pytest.raises(ValueError, match="not gzip'd JSON"):
        raw_arrays(b'{"v":1}')


def peak_of(read: Callable[[], object]) -> int:
    """The peak of Python's allocations while ``read`` runs."""
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_raw_object_is_read_without_a_python_object_per_value(city: City) -> None:
    # Given a raw object of 20,000 readings (~2 MB of JSON)
    body = raw_object(wifi_rows(city, 20_000))
    text = len(gzip.decompress(body))
    # When it is read, Python's allocations peak where decompressing it alone does (its
    # text, and the buffer it grew in), give or take a fraction of the text: parsed into
    # Python objects first, the peak was five times that
    assert peak_of(lambda: raw_arrays(body)) < peak_of(lambda: gzip.decompress(body)) + text / 2
