"""Hub payload formats. Each parser turns one payload into readings or rejections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from citypipe.formats import canonical, senml
from citypipe.formats.common import Reading, Rejection

Parser = Callable[[Any], list[Reading | Rejection]]

PARSERS: dict[str, Parser] = {"senml": senml.parse, "canonical": canonical.parse}


__all__ = ["PARSERS", "Reading", "Rejection"]
