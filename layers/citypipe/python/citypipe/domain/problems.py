"""What is wrong with a city file, said on one line: the file, the line, the key, the fix.

A ``Problem`` is one thing wrong (or, as a warning, probably unmeant) in a city's files;
``ConfigError`` carries the problems that refuse a city; ``Refusals`` is what the city
model's validators raise so that each problem keeps its own key (pydantic would give them
all the validator's). ``validation_problems`` turns pydantic's errors into problems, placed
by a locator (``domain.cityfile.CityMap.locate`` where the city came from files).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]
# where a key of the city was written: the file, its line (1-based) if known, and the key's
# path in that file (a registry file's keys do not start with ``registry``)
Located = tuple[str, int | None, Loc]
Locator = Callable[[Loc], Located]


def dotted(loc: Loc) -> str:
    """A key path as the city file's reader writes it: ``sources.wifi-counters.policy``."""
    return ".".join(str(part) for part in loc)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a city's files. ``str()`` is one line:
    ``<file>:<line>: <key>: <message>; fix: <fix>`` (no line, key or fix: left out)."""

    file: str
    line: int | None  # 1-based; None where the problem has no line (a missing file)
    key: str  # dotted, in the file named: ``devices.aq-001.hub`` in a registry file
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        text = f"{text}; fix: {self.fix}" if self.fix else text
        return " ".join(text.splitlines())


class ConfigError(ValueError):
    """A city file that cannot be used. ``problems`` lists everything found; ``str()`` is
    one line: the first problem, and how many more there are."""

    def __init__(self, problems: Sequence[Problem] | str, city_file: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = () if isinstance(problems, str) else tuple(problems)
        if not self.problems:
            super().__init__(problems or "a city file that cannot be used")
            return
        first, more = str(self.problems[0]), len(self.problems) - 1
        named = city_file or self.problems[0].file
        if more:
            first += f" (and {more} more: citypipe check-city {named} lists them)"
        super().__init__(first)


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem a validator found, at a key below the model it validates."""

    loc: Loc
    message: str
    fix: str | None = None


class Refusals(ValueError):
    """What a model validator refuses, each finding at its own key (pydantic keeps this
    exception in the error's context, so the keys survive validation)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__("; ".join(f"{dotted(f.loc)}: {f.message}" for f in self.findings))


# fixes of pydantic's own errors, by type
_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it, or correct its spelling",
}


# keys an earlier release called otherwise, and what they are called now
_RENAMED: dict[Loc, str] = {("city",): "it is called slug: now (the city's short name)"}


def _findings(error: Any) -> list[Finding]:
    """One pydantic error as findings at keys relative to the whole city."""
    loc: Loc = tuple(p for p in error["loc"] if p != "[key]")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Refusals):
        return [Finding((*loc, *f.loc), f.message, f.fix) for f in cause.findings]
    message = str(cause) if isinstance(cause, ValueError) else str(error["msg"])
    return [Finding(loc, message, _RENAMED.get(loc) or _FIXES.get(error["type"]))]


def validation_problems(exc: ValidationError, locate: Locator) -> list[Problem]:
    """pydantic's errors as problems, each placed by ``locate`` (file, line, key there)."""
    problems = []
    for error in exc.errors():
        for finding in _findings(error):
            file, line, key = locate(finding.loc)
            problems.append(Problem(file, line, dotted(key), finding.message, finding.fix))
    return problems
