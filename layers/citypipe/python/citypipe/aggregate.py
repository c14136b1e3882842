"""aggregate: clean observations -> mergeable partials per zone x quantity x 15-min window.

One partial object per clean input, keyed by the input's identity. A partial holds count,
sum, min and max (mean is derived when merging) and, for personal sources, an HLL sketch
of the day's pseudonyms: distinct devices without keeping any identifier. Partials merge
associatively and commutatively, so late data and any delivery order give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from datasketches import hll_sketch, hll_union

from citypipe.domain import Message, TerminalError, Zone
from citypipe.ports import StoredObject
from citypipe.stage import Deps, Outcome, Output, parquet_bytes, read_parquet

WINDOW_MINUTES = 15
HLL_LG_K = 12  # ~1.6 % relative error; exact while a cell holds few devices
CELL = ["window_start", "zone", "quantity", "unit"]

PARTIAL_SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("ms", tz="UTC")),
        ("zone", pa.string()),
        ("quantity", pa.string()),
        ("unit", pa.string()),
        ("count", pa.int64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("devices", pa.binary()),  # serialized HLL sketch, null for non-personal sources
    ]
)


def _sketches(table: pa.Table) -> dict[tuple[object, ...], bytes]:
    personal = table.filter(pc.is_valid(table["pseudonym"]))
    sketches: dict[tuple[object, ...], hll_sketch] = {}
    columns = [personal[name].to_pylist() for name in (*CELL, "pseudonym")]
    for *cell, alias in zip(*columns, strict=True):
        key = tuple(cell)
        if key not in sketches:
            sketches[key] = hll_sketch(HLL_LG_K)
        sketches[key].update(alias)
    return {key: sketch.serialize_compact() for key, sketch in sketches.items()}


def partial_of(clean: pa.Table) -> pa.Table:
    """The pure core: one clean table in, one partial table out (sorted by cell)."""
    windows = pc.floor_temporal(clean["observed_at"], multiple=WINDOW_MINUTES, unit="minute")
    table = clean.append_column("window_start", windows)
    grouped = table.group_by(CELL, use_threads=False).aggregate(
        [("value", "count"), ("value", "sum"), ("value", "min"), ("value", "max")]
    )
    grouped = grouped.sort_by([(c, "ascending") for c in CELL])
    sketches = _sketches(table)
    devices = [sketches.get(cell) for cell in _cells(grouped)]
    return _partial(grouped, "value_count", "value_sum", "value_min", "value_max", devices=devices)


def _cells(grouped: pa.Table) -> list[tuple[object, ...]]:
    return list(zip(*(grouped[c].to_pylist() for c in CELL), strict=True))


def _partial(grouped: pa.Table, *stats: str, devices: list[bytes | None]) -> pa.Table:
    columns = [grouped[c] for c in CELL] + [grouped[s] for s in stats]
    return pa.Table.from_arrays([*columns, pa.array(devices, pa.binary())], schema=PARTIAL_SCHEMA)


def merge_partials(partials: Sequence[pa.Table]) -> pa.Table:
    """Merge partials in the order given (callers sort them: float sums stay reproducible)."""
    if not partials:
        return PARTIAL_SCHEMA.empty_table()
    table = pa.concat_tables(partials)
    grouped = table.group_by(CELL, use_threads=False).aggregate(
        [("count", "sum"), ("sum", "sum"), ("min", "min"), ("max", "max")]
    )
    grouped = grouped.sort_by([(c, "ascending") for c in CELL])
    unions: dict[tuple[object, ...], hll_union] = {}
    columns = [table[name].to_pylist() for name in (*CELL, "devices")]
    for *cell, blob in zip(*columns, strict=True):
        if blob is None:
            continue
        key = tuple(cell)
        if key not in unions:
            unions[key] = hll_union(HLL_LG_K)
        unions[key].update(hll_sketch.deserialize(blob))
    devices = [
        unions[cell].get_result().serialize_compact() if cell in unions else None
        for cell in _cells(grouped)
    ]
    return _partial(grouped, "count_sum", "sum_sum", "min_min", "max_max", devices=devices)


def distinct_devices(blob: bytes | None) -> int | None:
    return None if blob is None else round(hll_sketch.deserialize(blob).get_estimate())


def aggregate_object(obj: StoredObject, message: Message, deps: Deps, ident: str) -> Outcome:
    try:
        clean = read_parquet(obj.body)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TerminalError("unreadable_input", str(exc)) from None
    partial = partial_of(clean)
    # clean/<city>/date=../hour=../<source>/<id>.parquet -> aggregates/<city>/...
    partition = message.key.split("/", 2)[2].rsplit("/", 1)[0]
    aggregated = int(pc.sum(partial["count"]).as_py() or 0)
    return Outcome(
        outputs=[
            Output(
                zone=Zone.AGGREGATES,
                key=f"aggregates/{deps.city.city}/{partition}/{ident}.parquet",
                body=parquet_bytes(partial),
                records=aggregated,
                format="parquet",
            )
        ],
        counts={"input": clean.num_rows, "aggregated": aggregated},
    )
