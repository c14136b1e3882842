"""A theme's day as a table: the documented columns, CSV and Parquet bytes, the zones'
day summaries, and what changed between two versions of a day.

One row per zone x quantity x 15-minute window, published, suppressed or flagged (see
``core.disclosure``). Rows come sorted by window, zone and quantity; the bytes depend on
nothing else, so an export of unchanged partials writes identical files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from citypipe.core.disclosure import DisclosedCell, Status
from citypipe.domain.city import City
from citypipe.domain.export_books import DayCourse, Publication, ZoneSummary
from citypipe.domain.themes import Summary, Theme, measure_of, quantities_of

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
                "Distinct devices seen in the zone in the window, plus differential-privacy "
                "noise; a device counts in at most a few windows a day (the dataset's privacy "
                "statement says how many), so it is an estimate, not a head count. The only "
                "figure of a people cell, published when it reaches k.",
                pa.int64(),
            )
        )
    found += [
        Column(
            "status",
            "string",
            "published; suppressed (too few people to publish: figures blank, never zero); "
            "flagged (figures not plausible, or more devices than the zone's sensors can "
            "hear: blank).",
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


class CsvWriter:
    """A theme's day as UTF-8 CSV with a header row of the documented columns and ``\\n``
    line ends, written to ``sink`` a chunk of cells at a time (in cell order). ``close``
    finishes the CSV; the sink stays its owner's to close."""

    def __init__(self, sink: BinaryIO, personal: bool) -> None:
        self._text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
        self._rows = csv.writer(self._text, lineterminator="\r\n")  # RFC 4180
        self._personal = personal
        self._rows.writerow([c.name for c in columns(personal)])
        self._windows: dict[datetime, list[str]] = {}  # a day's 96, written once each

    def write(self, cells: Sequence[DisclosedCell]) -> None:
        self._rows.writerows(map(self._row, cells))

    def _row(self, cell: DisclosedCell) -> list[str]:
        """``_fields``' values as ``text`` writes them, in the columns' order."""
        if (window := self._windows.get(cell.window_start)) is None:
            window = self._windows[cell.window_start] = [
                text(cell.window_start),
                text(cell.window_end),
            ]
        figures = [cell.count, cell.sum, cell.min, cell.max, cell.mean]
        if self._personal:
            figures.append(cell.distinct_devices)
        return [
            *window, cell.zone, cell.quantity, cell.unit, *map(text, figures),
            cell.status.value, cell.reason,
        ]  # fmt: skip

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


ROW_GROUP = 65_536  # rows of a Parquet row group: a day's file is one group but at the largest


class ParquetWriter:
    """The same rows as Parquet (zstd), typed (the partition ``date=`` is in the key),
    written to ``sink`` a chunk of cells at a time. Row groups hold ``ROW_GROUP`` rows
    whatever the chunks, so the bytes depend on the cells alone. ``close`` finishes the
    file; the sink stays its owner's to close."""

    def __init__(self, sink: BinaryIO, personal: bool) -> None:
        self._schema = pa.schema(
            [
                pa.field(c.name, c.arrow, metadata={"description": c.description})
                for c in columns(personal)
            ]
        )
        self._file = pq.ParquetWriter(sink, self._schema, compression="zstd")
        self._personal = personal
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._groups = 0

    def write(self, cells: Sequence[DisclosedCell]) -> None:
        rows = [_fields(cell, self._personal) for cell in cells]
        self._pending.append(pa.Table.from_pylist(rows, schema=self._schema))
        self._rows += len(rows)
        while self._rows >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables([self._schema.empty_table(), *self._pending]).combine_chunks()
        self._file.write_table(table.slice(0, rows), row_group_size=ROW_GROUP)
        self._pending, self._rows = [table.slice(rows)], table.num_rows - rows
        self._groups += 1

    def close(self) -> None:
        if self._rows or not self._groups:
            self._flush(self._rows)
        self._file.close()


def published_quantities(
    city: City, theme: Theme, publications: Sequence[Publication]
) -> list[str]:
    """The theme's quantities: what the city declares, and what its published days hold
    (a quantity published under an older city file stays described)."""
    found = {s.quantity for p in publications if p.theme == theme.slug for s in p.summary}
    return sorted(set(quantities_of(city, theme)) | found)


# --- a zone's day -------------------------------------------------------------------------


def statistic_of(city: City, quantity: str) -> Summary:
    """How a quantity's day is summed up; a quantity about people by its peak, whatever
    it measures: its cells show distinct devices only."""
    if quantity in city.personal_quantities:
        return "peak"
    return measure_of(quantity).summary


def cell_value(cell: DisclosedCell, statistic: str) -> float:
    """A published window's value for the day's statistic."""
    if statistic == "mean":
        return float(cell.mean or 0.0)
    if statistic == "peak" and cell.distinct_devices is not None:
        return float(cell.distinct_devices)
    return float(cell.sum or 0.0)


@dataclass
class _ZoneDay:
    """What a zone x quantity's summary needs of its cells: the published ones' figures
    (in window order) and how many windows were suppressed or flagged."""

    shown: list[tuple[float, int, float, datetime]] = field(default_factory=list)
    windows: int = 0
    suppressed: int = 0
    flagged: int = 0


class DaySummary:
    """Every zone x quantity's day, from its published cells only, the cells given a chunk
    at a time (in cell order); ``summarize`` is the one-chunk case.

    The day's value: mean (sum of sums / sum of counts), total (sum of sums) or peak (most
    distinct devices in one window); minimum and maximum are over the published windows'
    values. Suppressed cells are counted, never summed: adding them to a total would let
    anyone recover them by subtraction.
    """

    def __init__(self, city: City, quantities: Sequence[str]) -> None:
        self._city, self._quantities = city, quantities
        self._days: dict[tuple[str, str], _ZoneDay] = {}
        # (quantity, window) -> [sum of sums, sum of counts, sum of values] over the zones
        self._windows: dict[tuple[str, datetime], list[float]] = {}
        self._statistics: dict[str, Summary] = {}

    def add(self, cells: Iterable[DisclosedCell]) -> None:
        for cell in cells:
            day = self._days.setdefault((cell.zone, cell.quantity), _ZoneDay())
            day.windows += 1
            day.suppressed += cell.status is Status.SUPPRESSED
            day.flagged += cell.status is Status.FLAGGED
            if cell.status is Status.PUBLISHED:
                value = cell_value(cell, self._statistic(cell.quantity))
                day.shown.append((cell.sum or 0.0, cell.count or 0, value, cell.window_start))
                window = self._windows.setdefault((cell.quantity, cell.window_start), [0.0] * 3)
                window[0] += cell.sum or 0.0
                window[1] += cell.count or 0
                window[2] += value

    def _statistic(self, quantity: str) -> Summary:
        if (statistic := self._statistics.get(quantity)) is None:  # a cell's: once a quantity
            statistic = self._statistics[quantity] = statistic_of(self._city, quantity)
        return statistic

    def result(self) -> list[ZoneSummary]:
        """In zone (the city file's order), quantity order."""
        return [
            self._summary(feature.id, quantity)
            for feature in self._city.zones.features
            for quantity in self._quantities
        ]

    def course(self) -> list[DayCourse]:
        """Every quantity's course of the day over the city (``DayCourse``)."""
        return [self._course(quantity) for quantity in self._quantities]

    def _course(self, quantity: str) -> DayCourse:
        statistic = self._statistic(quantity)
        hours: list[list[list[float]]] = [[] for _ in range(24)]
        for (shown, start), window in self._windows.items():
            if shown == quantity:
                hours[start.hour].append(window)
        values: list[float | None] = []
        for windows in hours:
            if not windows:
                values.append(None)
            elif statistic == "mean":
                counted = sum(w[1] for w in windows)
                values.append(_round(sum(w[0] for w in windows) / counted) if counted else None)
            elif statistic == "total":
                values.append(_round(sum(w[2] for w in windows)))
            else:
                values.append(_round(max(w[2] for w in windows)))
        return DayCourse(
            quantity=quantity, unit=measure_of(quantity).unit, statistic=statistic, hours=values
        )

    def _summary(self, zone: str, quantity: str) -> ZoneSummary:
        measure = measure_of(quantity)
        statistic = self._statistic(quantity)
        day = self._days.get((zone, quantity), _ZoneDay())
        values = [value for _, _, value, _ in day.shown]
        if not day.shown:
            value = None
        elif statistic == "mean":
            value = sum(total for total, _, _, _ in day.shown) / sum(n for _, n, _, _ in day.shown)
        elif statistic == "total":
            value = sum(values)
        else:
            value = max(values)
        latest = max(day.shown, key=lambda shown: shown[3]) if day.shown else None
        return ZoneSummary(
            zone=zone,
            quantity=quantity,
            unit=measure.unit,
            statistic=statistic,
            value=_round(value),
            minimum=_round(min(values)) if values else None,
            maximum=_round(max(values)) if values else None,
            windows=day.windows,
            published=len(day.shown),
            suppressed=day.suppressed,
            flagged=day.flagged,
            latest_window=latest[3].strftime(ISO) if latest else None,
            latest_value=_round(latest[2]) if latest else None,
        )


def summarize(
    city: City, quantities: Sequence[str], cells: Sequence[DisclosedCell]
) -> list[ZoneSummary]:
    """Every zone x quantity's day (see ``DaySummary``) from a whole day's cells."""
    summary = DaySummary(city, quantities)
    summary.add(cells)
    return summary.result()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# --- what changed between two versions of a day ---------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A version's counts, as its publication record keeps them."""

    readings: int | None  # None for a people dataset: nothing exact about people is public
    cells: int
    published: int
    suppressed: int
    flagged: int


def changes(
    before: Tally,
    after: Tally,
    rows: Iterable[dict[str, str]],
    previous_csv: bytes | None,
) -> str:
    """A version note: what the new version changes. The counts always; cell by cell too
    when the CSV the previous version published is at hand (``previous_csv``), against
    the new version's CSV ``rows``. A people dataset's note holds only what its published
    files show (its readings are never stated)."""
    exact = before.readings is not None and after.readings is not None
    note = "late data: " + ", ".join(
        f"{name} {getattr(before, name):,} -> {getattr(after, name):,}"
        for name in ("readings", "cells", "published", "suppressed", "flagged")
        if exact or name != "readings"
    )
    if previous_csv is None:
        return note
    old_rows = {
        (row["window_start"], row["zone"], row["quantity"]): row
        for row in csv.DictReader(io.StringIO(previous_csv.decode("utf-8")))
    }
    added = changed = newly_published = newly_withheld = 0
    for row in rows:
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
