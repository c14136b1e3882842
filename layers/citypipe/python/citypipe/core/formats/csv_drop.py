"""CSV drops: files a city's own systems put in the inbox (a legacy loop controller's export,
a spreadsheet of manual counts), read with a named column mapping from the city file.

Each row is one payload, judged on its own: the mapping names the device column and the
time column (RFC 3339 with an offset); every other column is a field of the device's
profile. The mapping says the file's delimiter, quote character, decimal separator and
encoding (``core.decode`` decodes the lines). Rows become documents ``{"device", "time",
"values": {column: text}}``, with ``"decimal": ","`` where the mapping says so: a number is
then written ``12,5`` or ``1.234,5`` (``.`` only between groups of three digits).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from citypipe.core.formats.common import Context, Format, Reading, Rejection, iso_epoch, obj
from citypipe.domain.city import CsvMapping

# a row's document; its columns are the registry's
SCHEMA = frozenset({"device", "time", "values", "decimal"})
# a number with a decimal comma whose thousands are grouped with dots: 1.234,5
GROUPED = re.compile(r"\s*[+-]?\d{1,3}(\.\d{3})+(,\d*)?\s*")


def documents(lines: list[str], mapping: CsvMapping) -> Iterator[tuple[int, Any]]:
    """(line number, row document or Rejection) for each data row; the first line is the
    header. A line that is not CSV, or of the wrong width, is rejected alone."""
    if not lines:
        return
    delimiter, quote = mapping.delimiter, mapping.quote
    header = next(csv.reader([lines[0]], delimiter=delimiter, quotechar=quote), [])
    missing = [c for c in (mapping.device, mapping.time) if c not in header]
    extra = {"decimal": ","} if mapping.decimal == "," else {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if missing:
            yield number, Rejection("invalid_header", f"the header lacks columns {missing}")
            continue
        try:
            cells = next(csv.reader([line], delimiter=delimiter, quotechar=quote, strict=True))
        except csv.Error as exc:
            yield number, Rejection("invalid_csv", str(exc))
            continue
        if len(cells) != len(header):
            yield number, Rejection("invalid_csv", f"{len(cells)} cells, header has {len(header)}")
            continue
        row = dict(zip(header, cells, strict=True))
        values = {k: v for k, v in row.items() if k not in (mapping.device, mapping.time)}
        yield (
            number,
            {"device": row[mapping.device], "time": row[mapping.time], "values": values, **extra},
        )


def _decimal_comma(text: Any) -> Any:
    """A cell written with a decimal comma as the edge reads numbers (``12,5`` -> ``12.5``,
    ``1.234,5`` -> ``1234.5``); None (no number) for one with a ``.`` elsewhere: ``1.5``
    is never read as 1.5, nor as 15."""
    if not isinstance(text, str):
        return text
    if "." in text:
        if not GROUPED.fullmatch(text):
            return None
        text = text.replace(".", "")
    return text.replace(",", ".")


def parse(document: Any, ctx: Context) -> list[Reading | Rejection]:
    doc = obj(document, "a CSV row")
    device, when, values = doc.get("device"), doc.get("time"), doc.get("values")
    if not isinstance(device, str) or not device or not isinstance(values, dict):
        return [Rejection("missing_device_id", "an empty device cell", "device")]
    try:
        at = iso_epoch(when)
    except (ValueError, OverflowError):
        return [Rejection("invalid_time", "the time cell is not RFC 3339 with an offset", "time")]
    comma = doc.get("decimal") == ","
    return [
        Reading("csv", device, k, _decimal_comma(v) if comma else v, at, f"values.{k}")
        for k, v in values.items()
        if v != ""
    ]


FORMAT = Format("csv", 2, "csv", parse, SCHEMA, "CSV drop with a column mapping")
