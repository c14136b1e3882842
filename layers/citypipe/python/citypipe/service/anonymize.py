"""anonymize's service: a raw object in, a clean Parquet object out (then raw is deleted)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from citypipe.core.anonymize import anonymize_columns
from citypipe.core.codecs import read_jsonl_gz
from citypipe.core.columnar import parquet_bytes, raw_arrays, release_unused
from citypipe.domain.books import AnonymizeCounts
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import RAW_EXTENSION, RAW_FIELDS, Function, Message, Zone
from citypipe.ports import StoredObject
from citypipe.service.kernel import Deps, Outcome, Output


def raw_columns_of(obj: StoredObject) -> dict[str, pa.Array] | dict[str, list[Any]]:
    """A raw object's columns: the edge's columns (as Arrow arrays), or the JSON Lines of
    records an earlier release wrote (a raw object in flight across an upgrade)."""
    if obj.key.endswith(RAW_EXTENSION):
        return raw_arrays(obj.body)
    records = [orjson.loads(line) for line in read_jsonl_gz(obj.body) if line]
    return {name: [r.get(name) for r in records] for name in RAW_FIELDS}


def anonymize_raw(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    """The stage core: a raw object of pseudonymous readings -> a clean Parquet object."""
    key = deps.names.next_key(Zone.CLEAN, message.key, ident, "parquet")
    body, counts = _anonymized(obj, deps)
    release_unused()  # the object's arrays are gone: their pages too, before the next one
    outputs = []
    if body is not None:
        outputs.append(
            Output(
                zone=Zone.CLEAN,
                key=key,
                body=body,
                records=counts.anonymized,
                format="parquet",
                notify=Function.AGGREGATE,
            )
        )
    return Outcome(outputs=outputs, counts=counts)


def _anonymized(obj: StoredObject, deps: Deps) -> tuple[bytes | None, AnonymizeCounts]:
    """The clean object's bytes (None: no reading is kept) and the counts."""
    try:
        columns = raw_columns_of(obj)
        result = anonymize_columns(deps.city, columns)
    except (OSError, EOFError, ValueError, pa.ArrowException) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    counts = AnonymizeCounts(
        input=len(columns["source"]),
        anonymized=result.count,
        refused=dict(sorted(result.refused.items())),
        quarantined={},
    )
    return (parquet_bytes(result.table()) if result.count else None), counts
