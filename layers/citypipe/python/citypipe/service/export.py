"""export's service: merge a day's partials, apply disclosure control, publish CSV and the
DCAT-AP catalogue in the open zone.

Open files live at stable public keys and are a pure function of the day's partials, so
repeated or duplicated exports write identical bytes (``put_or_replace`` writes nothing
then); a day re-exported with late data replaces its file.
"""

from __future__ import annotations

import json

from citypipe.core.aggregate import merge_partials
from citypipe.core.columnar import read_parquet
from citypipe.core.dcat import catalog
from citypipe.core.export import disclose, to_csv
from citypipe.domain.books import ExportCounts, Lineage
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import (
    DATASET,
    aggregates_prefix,
    catalog_key,
    csv_key,
    dataset_prefix,
    day_of,
    input_id,
    lineage_key,
)
from citypipe.service.stage import Deps, Outcome, Output, finish, log


def export_day(deps: Deps, day: str, trace_id: str = "") -> str:
    """Publish one day. Returns 'done', 'duplicate' (same partials already published) or
    'empty' (no partial for that day)."""
    city = deps.city.city
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = aggregates_prefix(city, day)
    # Merged in key order, whatever order the backend lists them in: float sums depend on
    # the order they are added in, and the open files must be reproducible.
    infos = sorted(deps.store.list(bucket, prefix), key=lambda info: info.key)
    if not infos:
        log.info("nothing to publish", extra={"function": "export", "window": day})
        return "empty"
    ident = input_id("export", day, *(f"{i.key}@{i.etag}" for i in infos))
    if _published(deps, lineage_key(city, Function.EXPORT, ident)):
        return "duplicate"
    merged = merge_partials([read_parquet(deps.store.get(bucket, i.key).body) for i in infos])
    result = disclose(deps.city, merged)
    open_bucket = deps.names.bucket(Zone.OPEN)
    published_prefix = f"{dataset_prefix(city)}date="
    days = sorted(
        {
            day_of(info.key, published_prefix)
            for info in deps.store.list(open_bucket, published_prefix)
        }
        | {day}
    )
    document = catalog(deps.city, DATASET, [(d, csv_key(city, d)) for d in days])
    outputs = [
        Output(
            Zone.OPEN,
            csv_key(city, day),
            to_csv(result.rows),
            len(result.rows),
            "csv",
            "text/csv",
            replace=True,
        ),
        Output(
            Zone.OPEN,
            catalog_key(city),
            json.dumps(document, indent=1, sort_keys=True).encode(),
            len(days),
            "jsonld",
            "application/ld+json",
            replace=True,
        ),
    ]
    message = Message(
        city=city, stage="aggregates", bucket=bucket, key=prefix, records=len(infos),
        window=day, trace_id=trace_id,
    )  # fmt: skip
    counts = ExportCounts(
        partials=len(infos),
        cells=len(result.rows),
        readings=int(sum(merged["count"].to_pylist())),
        published=result.published,
        suppressed=result.suppressed,
        quarantined={},
    )
    finish(Function.EXPORT, message, deps, ident, Outcome(outputs, counts, window=day))
    return "done"


def _published(deps: Deps, done_key: str) -> bool:
    """This input set was exported, and the day's file is still what that export wrote.

    An export that raced with another one (or a hand edit) may have left an older file
    in place; then the day is published again rather than reported as a duplicate.
    """
    audit = deps.names.bucket(Zone.AUDIT)
    if not deps.store.exists(audit, done_key):
        return False
    lineage = Lineage.model_validate_json(deps.store.get(audit, done_key).body)
    data = [o for o in lineage.outputs if o.key.endswith(".csv")]
    return all(
        (info := deps.store.head(o.bucket, o.key)) is not None and info.etag == o.etag for o in data
    )


def days_with_partials(deps: Deps) -> list[str]:
    """Every day that has partials: what an on-demand 'export everything' publishes."""
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = aggregates_prefix(deps.city.city)
    return sorted({day_of(i.key, prefix) for i in deps.store.list(bucket, prefix)})


def export_requested(deps: Deps, message: Message) -> str:
    """An export request from the queue: the day it names, or every day with partials."""
    days = [message.window] if message.window else days_with_partials(deps)
    return ",".join(export_day(deps, day, message.trace_id) for day in days)
