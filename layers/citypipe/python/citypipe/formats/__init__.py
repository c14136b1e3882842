"""Hub payload formats. Each parser turns one payload into readings or rejections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from citypipe.formats import canonical, senml
from citypipe.formats.common import Reading, Rejection

Parser = Callable[[Any], list[Reading | Rejection]]

PARSERS: dict[str, Parser] = {"senml": senml.parse, "canonical": canonical.parse}


@dataclass
class Parsed:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


__all__ = ["PARSERS", "Parsed", "Reading", "Rejection"]
