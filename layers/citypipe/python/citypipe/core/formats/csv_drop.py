"""CSV drops: files a city's own systems put in the inbox (a legacy loop controller's export,
a spreadsheet of manual counts), read with a named column mapping from the city file.

Each row is one payload, judged on its own: the mapping names the device column and the
time column (RFC 3339 with an offset); every other column is a field of the device's
profile. Rows become documents ``{"device", "time", "values": {column: text}}``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, iso_epoch, obj
from citypipe.domain.city import CsvMapping

SCHEMA = frozenset({"device", "time", "values"})  # a row's document; its columns: the registry's


def documents(lines: list[str], mapping: CsvMapping) -> Iterator[tuple[int, Any]]:
    """(line number, row document or Rejection) for each data row; the first line is the
    header. A line that is not CSV, or of the wrong width, is rejected alone."""
    if not lines:
        return
    header = next(csv.reader([lines[0]], delimiter=mapping.delimiter), [])
    missing = [c for c in (mapping.device, mapping.time) if c not in header]
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if missing:
            yield number, Rejection("invalid_header", f"the header lacks columns {missing}")
            continue
        try:
            cells = next(csv.reader([line], delimiter=mapping.delimiter, strict=True))
        except csv.Error as exc:
            yield number, Rejection("invalid_csv", str(exc))
            continue
        if len(cells) != len(header):
            yield number, Rejection("invalid_csv", f"{len(cells)} cells, header has {len(header)}")
            continue
        row = dict(zip(header, cells, strict=True))
        values = {k: v for k, v in row.items() if k not in (mapping.device, mapping.time)}
        yield number, {"device": row[mapping.device], "time": row[mapping.time], "values": values}


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a CSV row")
    device, when, values = doc.get("device"), doc.get("time"), doc.get("values")
    if not isinstance(device, str) or not device or not isinstance(values, dict):
        return [Rejection("missing_device_id", "an empty device cell", "device")]
    try:
        at = iso_epoch(when)
    except (ValueError, OverflowError):
        return [Rejection("invalid_time", "the time cell is not RFC 3339 with an offset", "time")]
    return [Reading("csv", device, k, v, at, f"values.{k}") for k, v in values.items() if v != ""]


FORMAT = Format("csv", 1, "csv", parse, SCHEMA, "CSV drop with a column mapping")
