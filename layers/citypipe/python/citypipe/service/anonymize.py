"""anonymize's service: a raw object in, a clean Parquet object out (then raw is deleted)."""

from __future__ import annotations

import orjson

from citypipe.core.anonymize import anonymize_records
from citypipe.core.codecs import read_jsonl_gz
from citypipe.core.columnar import parquet_bytes
from citypipe.domain.books import AnonymizeCounts
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import next_key
from citypipe.ports import StoredObject
from citypipe.service.stage import Deps, Outcome, Output


def anonymize_object(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    """The stage core: a raw object of pseudonymous records -> a clean Parquet object."""
    try:
        records = [orjson.loads(line) for line in read_jsonl_gz(obj.body) if line]
    except (OSError, EOFError, ValueError) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    result = anonymize_records(deps.city, records)
    outputs = []
    if result.count:
        outputs.append(
            Output(
                zone=Zone.CLEAN,
                key=next_key(Zone.CLEAN, deps.city.city, message.key, ident, "parquet"),
                body=parquet_bytes(result.table()),
                records=result.count,
                format="parquet",
                notify=Function.AGGREGATE,
            )
        )
    return Outcome(
        outputs=outputs,
        counts=AnonymizeCounts(
            input=len(records),
            anonymized=result.count,
            refused=dict(sorted(result.refused.items())),
            quarantined={},
        ),
    )
