"""aggregate's service: a clean object in, one mergeable partial out (keyed by the input)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.aggregate import partial_of
from citypipe.core.columnar import parquet_bytes, read_parquet, release_unused
from citypipe.domain.books import AggregateCounts
from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Message, Zone
from citypipe.ports import StoredObject
from citypipe.service.kernel import Deps, Outcome, Output


def aggregate_clean(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    """The stage core. Aggregate sends nothing onwards: export merges a day on schedule."""
    body, counts = _partial(obj)
    release_unused()  # the object's tables are gone: their pages too, before the next one
    return Outcome(
        outputs=[
            Output(
                zone=Zone.AGGREGATES,
                key=deps.names.next_key(Zone.AGGREGATES, message.key, ident, "parquet"),
                body=body,
                records=counts.aggregated,
                format="parquet",
            )
        ],
        counts=counts,
    )


def _partial(obj: StoredObject) -> tuple[bytes, AggregateCounts]:
    """The partial's bytes and the counts."""
    try:
        clean = read_parquet(obj.body)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    partial = partial_of(clean)
    aggregated = int(pc.sum(partial["count"]).as_py() or 0)
    counts = AggregateCounts(input=clean.num_rows, aggregated=aggregated, quarantined={})
    return parquet_bytes(partial), counts
