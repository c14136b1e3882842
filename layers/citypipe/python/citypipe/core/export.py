"""export's core: disclosure control on a day's merged partials, and the day's CSV.

Disclosure control: a cell of a personal quantity (one whose sources carry a data subject)
is published only when at least k distinct devices contributed; otherwise it is listed as
suppressed with its figures blank. Cells of non-personal quantities (air, traffic counts)
count no people and are published as measured. "Suppressed" is a result, not an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa

from citypipe.core.aggregate import WINDOW_MINUTES, cells
from citypipe.domain.city import City

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


def disclose(city: City, merged: pa.Table) -> Published:
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
