"""export: merge a day's partials, apply disclosure control, publish CSV and DCAT-AP.

Disclosure control: a cell of a personal quantity (one whose sources carry a data subject)
is published only when at least k distinct devices contributed; otherwise it is listed as
suppressed with its figures blank. Cells of non-personal quantities (air, traffic counts)
count no people and are published as measured. "Suppressed" is a result, not an error.

Open files live at stable public keys and are a pure function of the day's partials, so
repeated or duplicated exports write identical bytes (``put_or_replace`` writes nothing
then); a day re-exported with late data replaces its file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from citypipe.aggregate import WINDOW_MINUTES, cells, merge_partials
from citypipe.config import City
from citypipe.dcat import catalog
from citypipe.domain import Function, Message, Zone
from citypipe.naming import input_id, lineage_key
from citypipe.stage import Deps, Outcome, Output, finish, log, read_parquet

DATASET = "sensor-aggregates"
COLUMNS = [
    "window_start", "window_end", "zone", "quantity", "unit",
    "count", "sum", "min", "max", "mean", "distinct_devices", "status",
]  # fmt: skip


def _num(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return repr(round(value, 6))


@dataclass(frozen=True)
class Published:
    rows: list[dict[str, str]]
    published: int
    suppressed: int


def disclose(city: City, merged: Any) -> Published:
    """The pure core: merged partials in, rows with disclosure control applied out.

    A people cell is published only when one of its sensors alone saw at least k distinct
    devices: pseudonyms are per sensor, so that is the count we can prove; the union over
    sensors (published as ``distinct_devices``) may count one person once per sensor.
    """
    personal = city.personal_quantities
    k = city.disclosure.k
    rows: list[dict[str, str]] = []
    published = suppressed = 0
    for cell in cells(merged):
        row = {
            "window_start": cell.window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "window_end": (cell.window_start + timedelta(minutes=WINDOW_MINUTES)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "zone": cell.zone,
            "quantity": cell.quantity,
            "unit": cell.unit,
        }
        if cell.quantity in personal and (cell.min_people or 0) < k:
            suppressed += 1
            row.update(dict.fromkeys(COLUMNS[5:-1], ""), status="suppressed")
        else:
            published += 1
            row.update(
                count=_num(cell.count),
                sum=_num(cell.sum),
                min=_num(cell.min),
                max=_num(cell.max),
                mean=_num(cell.sum / cell.count),
                distinct_devices=_num(cell.distinct_devices),
                status="published",
            )
        rows.append(row)
    return Published(rows, published, suppressed)


def to_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def csv_key(city: str, day: str) -> str:
    return f"open/{city}/{DATASET}/date={day}/{DATASET}_{day}.csv"


def catalog_key(city: str) -> str:
    return f"open/{city}/catalog.jsonld"


def export_day(deps: Deps, day: str, trace_id: str = "") -> str:
    """Publish one day. Returns 'done' or 'duplicate' (same partials already published)."""
    city = deps.city.city
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = f"aggregates/{city}/date={day}/"
    infos = list(deps.store.list(bucket, prefix))
    if not infos:
        log.info("nothing to publish", extra={"function": "export", "window": day})
        return "empty"
    ident = input_id("export", day, *(f"{i.key}@{i.etag}" for i in infos))
    if _published(deps, lineage_key(city, Function.EXPORT, ident)):
        return "duplicate"
    merged = merge_partials([read_parquet(deps.store.get(bucket, i.key).body) for i in infos])
    result = disclose(deps.city, merged)
    open_bucket = deps.names.bucket(Zone.OPEN)
    data_key = csv_key(city, day)
    days = sorted(
        {
            info.key.split("date=", 1)[1].split("/", 1)[0]
            for info in deps.store.list(open_bucket, f"open/{city}/{DATASET}/")
        }
        | {day}
    )
    document = catalog(deps.city, DATASET, [(d, csv_key(city, d)) for d in days])
    outputs = [
        Output(
            Zone.OPEN,
            data_key,
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
    counts = {
        "partials": len(infos),
        "cells": len(result.rows),
        "readings": int(sum(merged["count"].to_pylist())),
        "published": result.published,
        "suppressed": result.suppressed,
    }
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
    lineage = json.loads(deps.store.get(audit, done_key).body)
    data = [o for o in lineage["outputs"] if o["key"].endswith(".csv")]
    return all(
        (info := deps.store.head(o["bucket"], o["key"])) is not None and info.etag == o["etag"]
        for o in data
    )


def days_with_partials(deps: Deps) -> list[str]:
    """Every day that has partials: what an on-demand 'export everything' publishes."""
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = f"aggregates/{deps.city.city}/date="
    return sorted({i.key[len(prefix) :].split("/", 1)[0] for i in deps.store.list(bucket, prefix)})
