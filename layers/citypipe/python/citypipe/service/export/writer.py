"""Every theme's files of a day, from one pass over the day's spill, into local files.

The spill (``spill.DayPartials``) is merged a few windows at a time; each theme takes its
cells of those windows (``core.aggregate.cells``) and its writer (``core.publish.day``)
turns them into CSV, Parquet, NGSI-LD and, at the end, GeoJSON, streamed into files of
the export's scratch directory: memory holds a group of windows, never the day. A theme
that fails is left out, its failure kept (``Failures``); the others go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from citypipe.core.aggregate import cells, of_quantities
from citypipe.core.disclosure import day_windows
from citypipe.core.people import PeopleRelease
from citypipe.core.publish.day import ThemeDay, ThemeDayWriter, formats_of
from citypipe.domain.themes import OpenFormat, Theme
from citypipe.ports import FileBody
from citypipe.service.export.spill import DayPartials
from citypipe.service.kernel import Deps, log


class Failures(list[Exception]):
    """The failures of an export's themes: logged as they happen, the first raised at the
    end (so the request is retried), none blocking another theme."""

    def add(self, theme: Theme, day: str, exc: Exception) -> None:
        log.error(
            "theme not published",
            exc_info=exc,
            extra={"function": "export", "window": day, "dataset": theme.slug},
        )
        self.append(exc)


@dataclass(frozen=True)
class WrittenTheme:
    """A theme's day in local files, ready to be put."""

    result: ThemeDay
    files: dict[OpenFormat, FileBody]  # a local file per format


class _ThemeFiles:
    """One theme's day being written into its own directory, a file per format."""

    def __init__(
        self,
        deps: Deps,
        theme: Theme,
        day: str,
        directory: Path,
        present: Sequence[str],
        people: PeopleRelease | None,
    ) -> None:
        directory.mkdir(parents=True)
        self.paths = {f: directory / f"{theme.slug}.{f.value}" for f in formats_of(theme)}
        self.sinks = {f: path.open("wb") for f, path in self.paths.items()}
        self.writer = ThemeDayWriter(deps.city, theme, day, self.sinks, present, people)

    def close(self) -> WrittenTheme:
        result = self.writer.close()
        self._close_sinks()
        files = {f: FileBody.of(path) for f, path in self.paths.items()}
        return WrittenTheme(result, files)

    def discard(self) -> None:
        self.writer.discard()
        self._close_sinks()

    def _close_sinks(self) -> None:
        for sink in self.sinks.values():
            with contextlib.suppress(OSError):
                sink.close()


def write_themes(
    deps: Deps,
    day: str,
    themes: Sequence[Theme],
    partials: DayPartials,
    directory: Path,
    group_rows: int,
    failures: Failures,
    people: Mapping[str, PeopleRelease],
) -> list[WrittenTheme]:
    """Every theme's day in every format, in local files under ``directory``, from one
    pass over the spilled day a few windows at a time. ``people``: the release of the
    day's people counts of each theme that counts people."""
    opened = _opened(deps, day, themes, partials.quantities(), directory, failures, people)
    wanted = [q for files in opened.values() for q in files.writer.present]
    grid = day_windows(day) if any(f.writer.personal for f in opened.values()) else []
    try:
        for windows, merged in partials.groups(wanted, grid, group_rows):
            _add(opened, windows, merged, day, failures, deps.city.window_ceilings)
    except BaseException:
        for files in opened.values():
            files.discard()
        raise
    return _closed(opened, day, failures)


def _opened(
    deps: Deps,
    day: str,
    themes: Sequence[Theme],
    present: Sequence[str],
    directory: Path,
    failures: Failures,
    people: Mapping[str, PeopleRelease],
) -> dict[str, _ThemeFiles]:
    opened = {}
    for theme in themes:
        try:
            found = [q for q in present if theme.owns(q)]
            release = people.get(theme.slug)
            opened[theme.slug] = _ThemeFiles(
                deps, theme, day, directory / theme.slug, found, release
            )
        except Exception as exc:  # one theme's failure must not block the others
            failures.add(theme, day, exc)
    return opened


def _add(
    opened: dict[str, _ThemeFiles],
    windows: list[datetime],
    merged: pa.Table,
    day: str,
    failures: Failures,
    ceilings: Mapping[tuple[str, str], float],
) -> None:
    """A group of windows to every theme still being written (a cell with a sensor above
    its ``ceilings`` in a window is flagged)."""
    for slug, files in list(opened.items()):
        try:
            present = of_quantities(merged, files.writer.present)
            files.writer.add(cells(present, ceilings), windows)
        except Exception as exc:  # one theme's failure must not block the others
            failures.add(files.writer.theme, day, exc)
            opened.pop(slug).discard()


def _closed(opened: dict[str, _ThemeFiles], day: str, failures: Failures) -> list[WrittenTheme]:
    done = []
    for files in opened.values():
        try:
            done.append(files.close())
        except Exception as exc:  # one theme's failure must not block the others
            failures.add(files.writer.theme, day, exc)
            files.discard()
    return done
