"""Images: never processed, never kept (a red line, decision 56).

A payload whose field holds an image — base64 whose first bytes are an image format's magic
number, or a ``data:image/`` URI — is refused whole at the edge; quarantine keeps its shape
(``core.shape``), which never holds a value, so never the image either.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from citypipe.domain.limits import MAX_DEPTH

MIN_IMAGE_CHARS = 64  # no image is shorter; a short string starting like one is no image
HEAD_CHARS = 24  # base64 characters decoded: 18 bytes, more than any magic number needs
# Where a payload's text may hold a base64 image: a string starting as an image's magic
# bytes encode (JPEG /9j/, PNG, GIF, RIFF/WebP, TIFF, BMP, ISO-BMFF/HEIC, a data: URI),
# JSON's escaped slash and base64url included. A cheap look at the raw bytes (one regular
# expression, about what parsing costs: the look-ahead passes over most of a body's quotes
# at once); ``looks_like_image`` decides.
IMAGE_HINT = re.compile(
    rb'"(?=[/\\_iRUSTQAd])'
    rb"(?:/9j/|\\/9j\\/|_9j_|iVBORw0KGgo|R0lGOD|UklGR|SUkq|TU0A|Qk|AAAA|data:image)"
)
IMAGE_HINT_TEXT = re.compile(IMAGE_HINT.pattern.decode())
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")


def _decoded_head(text: str) -> bytes:
    """The bytes the string's first ``HEAD_CHARS`` characters encode, JSON's escaped slashes
    read as slashes (unescaped before the cut: each takes two characters); b"" if they are
    no base64, standard or URL-safe."""
    head = text[: 2 * HEAD_CHARS].replace("\\/", "/")[:HEAD_CHARS]
    for alphabet in (None, b"-_"):
        try:
            return base64.b64decode(head, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
    return b""


def looks_like_image(text: str) -> bool:
    """A string that holds an image: a ``data:image/`` URI, or base64 (standard or URL-safe)
    whose first bytes are an image format's magic number."""
    if len(text) < MIN_IMAGE_CHARS:
        return False
    if text[:11].lower() == "data:image/":
        return True
    raw = _decoded_head(text)
    return (
        raw.startswith(_MAGIC)
        or (raw[:2] == b"BM" and raw[6:10] == b"\x00\x00\x00\x00")  # BMP: reserved bytes 0
        or (raw[:4] == b"RIFF" and raw[8:12] in (b"WEBP", b"AVI ", b"WAVE"))
        or raw[4:8] == b"ftyp"  # HEIC, AVIF, MP4
    )


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def image_path(document: Any, path: str = "", depth: int = 0) -> str | None:
    """The JSON path of the first string of a document that holds an image, or None. Its
    keys are as received: ``core.shape.schema_path`` names them for anything kept."""
    if depth >= MAX_DEPTH:
        return None
    if isinstance(document, str):
        return path if looks_like_image(document) else None
    items = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else ()
    )
    for key, value in items:
        found = image_path(value, _child(path, key), depth + 1)
        if found is not None:
            return found
    return None
