"""A published day's versions: its publication record in the open zone.

The record of a theme's day (``versions/<theme>/<theme>_<day>.json``) lists its files and
their hashes, its counts and zone summaries, and its history. An export whose files are
the bytes already published keeps the record as it is; one whose bytes changed (late
data) is the next version, with a note of what changed against the version before.

A people dataset's record holds nothing exact about people: no readings (its counts of
cells are those its files show, its notes compare published files only).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

from citypipe.core.publish.day import ThemeDay
from citypipe.core.publish.tables import Tally, changes
from citypipe.domain.errors import NotFoundError
from citypipe.domain.export_books import Publication, PublishedFile, VersionNote
from citypipe.domain.model import Zone
from citypipe.domain.themes import OpenFormat
from citypipe.service.kernel import Deps


def publications(deps: Deps) -> list[Publication]:
    """Every theme's published days, as their records say (read concurrently)."""
    bucket = deps.names.bucket(Zone.OPEN)
    keys = [i.key for i in deps.store.list(bucket, deps.names.publications_prefix())]
    return [Publication.model_validate_json(o.body) for o in deps.store.get_many(bucket, keys)]


def version(
    deps: Deps, result: ThemeDay, files: list[PublishedFile], csv_file: Path
) -> Publication:
    """The day's publication record: the previous one when the bytes did not change, else
    the next version, with what changed against the version before (``csv_file``: the new
    version's CSV, on local disk)."""
    previous = _previous(deps, deps.names.publication_key(result.theme.slug, result.day))
    if previous is not None and previous.files == files:
        return previous
    tally = _tally(result)
    if previous is None:
        number, history, note = 1, [], "first publication"
    else:
        number, history = previous.version + 1, previous.history
        note = changes(_tally(previous), tally, _rows(csv_file), _previous_csv(deps, previous))
    return Publication(
        city=deps.city.slug,
        theme=result.theme.slug,
        day=result.day,
        version=number,
        cells=tally.cells,
        readings=tally.readings,  # None for a people dataset (``_tally``)
        published=tally.published,
        suppressed=tally.suppressed,
        flagged=tally.flagged,
        files=files,
        summary=result.summary,
        course=result.course,
        history=[*history, VersionNote(version=number, note=note)],
    )


def _previous(deps: Deps, key: str) -> Publication | None:
    try:
        body = deps.store.get(deps.names.bucket(Zone.OPEN), key).body
    except NotFoundError:
        return None
    return Publication.model_validate_json(body)


def _tally(record: Publication | ThemeDay) -> Tally:
    personal = isinstance(record, ThemeDay) and record.personal
    return Tally(None if personal else record.readings, record.cells, record.published,
                 record.suppressed, record.flagged)  # fmt: skip


def _previous_csv(deps: Deps, previous: Publication) -> bytes | None:
    """The CSV the previous version published, if it is still the one in place."""
    [described] = [f for f in previous.files if f.format == OpenFormat.CSV]
    try:
        body = deps.store.get(deps.names.bucket(Zone.OPEN), described.key).body
    except NotFoundError:
        return None
    return body if hashlib.sha256(body).hexdigest() == described.sha256 else None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a local CSV file, read as they are needed."""
    with path.open(encoding="utf-8", newline="") as file:
        yield from csv.DictReader(file)
