"""Byte-stable JSON: whole documents, and JSON arrays written an item at a time whose
bytes are those of the whole array's ``json_bytes``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, BinaryIO


def json_bytes(document: Any, compact: bool = False) -> bytes:
    """Byte-stable JSON: sorted keys, UTF-8, a newline at the end; indented for people
    (metadata) or ``compact`` for data."""
    return (_text(document, compact) + "\n").encode()


def _text(document: Any, compact: bool) -> str:
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 1}
    return json.dumps(document, sort_keys=True, ensure_ascii=False, **layout)


class JsonArrayWriter:
    """A compact JSON array written to ``sink`` as its items come, a chunk at a time: the
    sink gets exactly ``json_bytes(items, compact=True)`` of every item written. ``close``
    ends the array; the sink stays its owner's to close."""

    def __init__(self, sink: BinaryIO) -> None:
        self._file = sink
        self._file.write(b"[")
        self._first = True

    def write(self, items: Iterable[Any]) -> None:
        chunk = list(items)
        if not chunk:
            return
        text = _text(chunk, compact=True)[1:-1]  # the chunk's items, as the array has them
        self._file.write((text if self._first else "," + text).encode())
        self._first = False

    def close(self) -> None:
        self._file.write(b"]\n")
