"""A theme's day as a table: the documented columns, CSV and Parquet bytes, the zones'
day summaries, and what changed between two versions of a day.

One row per zone x quantity x 15-minute window, published, suppressed or flagged (see
``core.disclosure``). Rows come sorted by window, zone and quantity; the bytes depend on
nothing else, so an export of unchanged partials writes identical files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from citypipe.core.columnar import parquet_bytes
from citypipe.core.disclosure import DisclosedCell, Status
from citypipe.domain.books import Publication, ZoneSummary
from citypipe.domain.city import City
from citypipe.domain.themes import Theme, measure_of, quantities_of

ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Column:
    """A documented column: its name, Frictionless type, and what it holds."""

    name: str
    type: str  # Frictionless Table Schema type
    description: str
    arrow: pa.DataType


def columns(personal: bool) -> list[Column]:
    """The columns of a theme's table; ``distinct_devices`` only where people are counted."""
    utc = pa.timestamp("s", tz="UTC")
    found = [
        Column("window_start", "datetime", "Start of the 15-minute window, ISO 8601 UTC.", utc),
        Column("window_end", "datetime", "End of the window (exclusive), ISO 8601 UTC.", utc),
        Column("zone", "string", "The zone's id (see the GeoJSON of the zones).", pa.string()),
        Column(
            "quantity", "string", "What was measured (citypipe's controlled name).", pa.string()
        ),
        Column("unit", "string", "The unit of sum, min, max and mean (UCUM code).", pa.string()),
        Column("count", "integer", "Readings in the cell.", pa.int64()),
        Column("sum", "number", "Sum of the readings, in unit.", pa.float64()),
        Column("min", "number", "Lowest reading, in unit.", pa.float64()),
        Column("max", "number", "Highest reading, in unit.", pa.float64()),
        Column("mean", "number", "Mean of the readings (sum / count), in unit.", pa.float64()),
    ]
    if personal:
        found.append(
            Column(
                "distinct_devices",
                "integer",
                "Distinct devices seen in the window by the sensors that alone saw at least k "
                "(each device counted once per sensor that saw it: an upper bound on people, "
                "not a head count), with differential-privacy noise where the dataset says so; "
                "then the only figure of a people cell.",
                pa.int64(),
            )
        )
    found += [
        Column(
            "status",
            "string",
            "published; suppressed (too few people to publish: figures blank, never zero); "
            "flagged (figures not plausible: blank).",
            pa.string(),
        ),
        Column(
            "reason",
            "string",
            "Why a cell is not published (machine-readable), empty when published.",
            pa.string(),
        ),
    ]
    return found


def _fields(cell: DisclosedCell, personal: bool) -> dict[str, object]:
    values: dict[str, object] = {
        "window_start": cell.window_start,
        "window_end": cell.window_end,
        "zone": cell.zone,
        "quantity": cell.quantity,
        "unit": cell.unit,
        "count": cell.count,
        "sum": cell.sum,
        "min": cell.min,
        "max": cell.max,
        "mean": cell.mean,
        "distinct_devices": cell.distinct_devices,
        "status": cell.status.value,
        "reason": cell.reason,
    }
    if not personal:
        del values["distinct_devices"]
    return values


def text(value: object) -> str:
    """A value as the CSV writes it: ISO 8601 UTC times, floats rounded to 6 decimals."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    if hasattr(value, "strftime"):
        return str(value.strftime(ISO))
    return str(value)


def csv_bytes(cells: Sequence[DisclosedCell], personal: bool) -> bytes:
    """UTF-8 CSV with a header row of the documented columns, ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in columns(personal)])
    for cell in cells:
        writer.writerow([text(v) for v in _fields(cell, personal).values()])
    return buffer.getvalue().encode()


def parquet_table(cells: Sequence[DisclosedCell], personal: bool) -> pa.Table:
    schema = pa.schema(
        [
            pa.field(c.name, c.arrow, metadata={"description": c.description})
            for c in columns(personal)
        ]
    )
    rows = [_fields(cell, personal) for cell in cells]
    return pa.Table.from_pylist(rows, schema=schema)


def parquet(cells: Sequence[DisclosedCell], personal: bool) -> bytes:
    """Parquet (zstd) of the same rows, typed: the partition ``date=`` is in the key."""
    return parquet_bytes(parquet_table(cells, personal))


def published_quantities(
    city: City, theme: Theme, publications: Sequence[Publication]
) -> list[str]:
    """The theme's quantities: what the city declares, and what its published days hold
    (a quantity published under an older city file stays described)."""
    found = {s.quantity for p in publications if p.theme == theme.slug for s in p.summary}
    return sorted(set(quantities_of(city, theme)) | found)


# --- a zone's day -------------------------------------------------------------------------


def _value(cell: DisclosedCell, statistic: str) -> float:
    """A published window's value for the day's statistic."""
    if statistic == "mean":
        return float(cell.mean or 0.0)
    if statistic == "peak" and cell.distinct_devices is not None:
        return float(cell.distinct_devices)
    return float(cell.sum or 0.0)


def summarize(
    city: City, quantities: Sequence[str], cells: Sequence[DisclosedCell]
) -> list[ZoneSummary]:
    """Every zone x quantity's day, from its published cells only (in zone, quantity order).

    The day's value: mean (sum of sums / sum of counts), total (sum of sums) or peak (most
    distinct devices in one window); minimum and maximum are over the published windows'
    values. Suppressed cells are counted, never summed: adding them to a total would let
    anyone recover them by subtraction.
    """
    by_key: dict[tuple[str, str], list[DisclosedCell]] = {}
    for cell in cells:
        by_key.setdefault((cell.zone, cell.quantity), []).append(cell)
    out = []
    for feature in city.zones.features:
        for quantity in quantities:
            measure = measure_of(quantity)
            found = by_key.get((feature.id, quantity), [])
            shown = [c for c in found if c.status is Status.PUBLISHED]
            values = [_value(c, measure.summary) for c in shown]
            if not shown:
                value = None
            elif measure.summary == "mean":
                value = sum(c.sum or 0.0 for c in shown) / sum(c.count or 0 for c in shown)
            elif measure.summary == "total":
                value = sum(values)
            else:
                value = max(values)
            latest = max(shown, key=lambda c: c.window_start) if shown else None
            out.append(
                ZoneSummary(
                    zone=feature.id,
                    quantity=quantity,
                    unit=measure.unit,
                    statistic=measure.summary,
                    value=_round(value),
                    minimum=_round(min(values)) if values else None,
                    maximum=_round(max(values)) if values else None,
                    windows=len(found),
                    published=len(shown),
                    suppressed=sum(c.status is Status.SUPPRESSED for c in found),
                    flagged=sum(c.status is Status.FLAGGED for c in found),
                    latest_window=latest.window_start.strftime(ISO) if latest else None,
                    latest_value=_round(_value(latest, measure.summary)) if latest else None,
                )
            )
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# --- what changed between two versions of a day ---------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A version's counts, as its publication record keeps them."""

    readings: int
    cells: int
    published: int
    suppressed: int
    flagged: int


def changes(
    before: Tally,
    after: Tally,
    cells: Sequence[DisclosedCell],
    personal: bool,
    previous_csv: bytes | None,
) -> str:
    """A version note: what the new version changes. The counts always; cell by cell too
    when the CSV the previous version published is at hand (``previous_csv``)."""
    note = "late data: " + ", ".join(
        f"{name} {getattr(before, name):,} -> {getattr(after, name):,}"
        for name in ("readings", "cells", "published", "suppressed", "flagged")
    )
    if previous_csv is None:
        return note
    old_rows = {
        (row["window_start"], row["zone"], row["quantity"]): row
        for row in csv.DictReader(io.StringIO(previous_csv.decode("utf-8")))
    }
    added = changed = newly_published = newly_withheld = 0
    for cell in cells:
        row = {k: text(v) for k, v in _fields(cell, personal).items()}
        old = old_rows.pop((row["window_start"], row["zone"], row["quantity"]), None)
        if old is None:
            added += 1
        elif old != row:
            changed += 1
            if old["status"] != row["status"] and row["status"] == Status.PUBLISHED:
                newly_published += 1
            elif old["status"] != row["status"]:
                newly_withheld += 1
    return (
        f"{note}; {added} cells added, {changed} changed ({newly_published} newly published, "
        f"{newly_withheld} newly suppressed or flagged)"
    )
