"""What every HTML page of the open zone shares: its document's first lines, and links
between its objects, relative so that the pages work wherever the zone is served from."""

from __future__ import annotations

import posixpath

DOCUMENT_START = (
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
)


def relative(page: str, key: str) -> str:
    """A link (not yet HTML-escaped) from the page at object key ``page`` to ``key``."""
    return posixpath.relpath(key, posixpath.dirname(page))
