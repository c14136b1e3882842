"""Hub payload formats. Each parser turns one payload into readings or rejections."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from citypipe.core.formats import canonical, senml
from citypipe.core.formats.common import Reading, Rejection

Parser = Callable[[Any], Iterable[Reading | Rejection]]

PARSERS: dict[str, Parser] = {"senml": senml.parse, "canonical": canonical.parse}


__all__ = ["PARSERS", "Parser", "Reading", "Rejection"]
