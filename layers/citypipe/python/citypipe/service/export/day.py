"""A day's export: every theme published on its own, from one pass over the day.

The day's partials are spilled by window to the export's scratch directory
(``spill``); a theme that counts people gets the release of the day's people counts, read
from the clean zone (``people``); every theme's files are written from one pass over the
spill (``writer``), then each theme is published on its own: its ε charge first where it
counts people (``ledger``), its files (CSV, Parquet, GeoJSON, NGSI-LD) at stable public
keys, put from the local files, its publication record (``versions``), and a lineage
record keyed by the theme, the day and the exact set of partials. One theme failing never
blocks the others: the rest are published, the metadata is rebuilt (``metadata``), then
the first failure is raised so the request is retried (the themes already done are
duplicates).

Open files are a pure function of the partials, written with ``put_or_replace``: an export
of unchanged partials writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from citypipe.core.publish.day import ThemeDay
from citypipe.core.publish.jsontext import json_bytes
from citypipe.domain.books import ExportCounts, Lineage
from citypipe.domain.errors import NotFoundError
from citypipe.domain.export_books import PublishedFile
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import input_id
from citypipe.domain.themes import OpenFormat, Theme, theme_of, themes_of
from citypipe.ports import KeyStore, Scratch
from citypipe.service.export.ledger import (
    COUNTER_REMOVED,
    OUTSIDE_THE_GRID,
    ledger_output,
    people_quantities,
    refused,
)
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.export.people import PeopleDay, people_day, release_time, withheld
from citypipe.service.export.retry import retried
from citypipe.service.export.spill import GROUP_ROWS, DayPartials, spill_day
from citypipe.service.export.versions import version
from citypipe.service.export.writer import Failures, WrittenTheme, write_themes
from citypipe.service.kernel import Deps, Outcome, Output, log
from citypipe.service.stage import finish


@dataclass(frozen=True)
class ExportPorts:
    """What export needs beyond the stack: the key store (the release secret seeding the
    noise of people counts; the hourly job destroys old daily secrets) and local scratch
    space for the day's spill and files."""

    keys: KeyStore
    scratch: Scratch


def export_day(
    deps: Deps,
    ports: ExportPorts,
    day: str,
    *,
    trace_id: str = "",
    metadata: bool = True,
    group_rows: int = GROUP_ROWS,
    closing: bool = False,
) -> str:
    """Publish one day of every theme. Returns 'done', 'duplicate' (every theme already
    published from these partials) or 'empty' (no partial for that day, and no people
    release due). ``metadata``: rebuild the catalogue, data package and portal afterwards
    (always, so a catalogue a racing export left behind is repaired by the next run), and
    the city's files — on a day without data too: the hourly job publishes a new city
    file's register and notices within the hour, whether or not any hub has sent yet.
    ``group_rows``: partial rows merged at once (the files are the same bytes whatever it
    is; memory is bounded by it). ``closing``: the day's key is about to be destroyed, so
    its people counts are released now if they were not (``people.release_time``)."""
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = deps.names.aggregates_prefix(day)
    # Merged in key order, whatever order the backend lists them in: float sums depend on
    # the order they are added in, and the open files must be reproducible.
    infos = sorted(deps.store.list(bucket, prefix), key=lambda info: info.key)
    inputs = [f"{i.key}@{i.etag}" for i in infos]
    message = Message(
        city=deps.city.slug, stage="aggregates", bucket=bucket, key=prefix,
        records=len(infos), window=day, trace_id=trace_id,
    )  # fmt: skip

    def ident(theme: Theme) -> str:
        return input_id("export", theme.slug, day, *inputs)

    # a day's people counts are due at their release time, or when the day's key is about
    # to die; they are released for a day that holds any reading of any source (a city's
    # other sensors report every day: whether people were seen changes nothing), never for
    # the days before a stack ran
    due = bool(infos) and (closing or deps.clock.now() >= release_time(deps.city, day))
    themes = [t for t in themes_of(deps.city) if infos and (due or not people_quantities(deps, t))]
    pending = [t for t in themes if not _published(deps, ident(t), t, day)]
    failures = Failures()
    done = False
    if pending:
        with ports.scratch.directory() as scratch:
            compressed = ports.scratch.compressed
            keys = [i.key for i in infos]
            partials = spill_day(deps, bucket, keys, scratch / "partials", compressed)
            # cells of a family the city no longer declares are still published and counted
            known = {t.slug for t in themes_of(deps.city)}
            extra = {theme_of(q).slug: theme_of(q) for q in partials.quantities()}
            pending += [extra[slug] for slug in sorted(set(extra) - known)]
            people = _people_days(deps, ports, day, pending, partials, failures, due, scratch)
            releases = {slug: found.release for slug, found in people.items()}
            written = write_themes(
                deps, day, pending, partials, scratch, group_rows, failures, releases
            )
            partials.remove()
            for theme in written:
                about = theme.result.theme
                publish = partial(
                    _publish, deps, message, ident(about), theme, people.get(about.slug)
                )
                try:
                    retried(publish)
                except Exception as exc:  # one theme's failure must not block the others
                    failures.add(about, day, exc)
            done = bool(written)
    if metadata:  # the city's files too: on a day without data they are still the city's
        retried(lambda: publish_metadata(deps, ports.scratch))
    if failures:
        raise failures[0]
    if not infos and not done:
        log.info("nothing to publish", extra={"function": "export", "window": day})
        return "empty"
    return "done" if done else "duplicate"


def _people_days(
    deps: Deps,
    ports: ExportPorts,
    day: str,
    themes: list[Theme],
    partials: DayPartials,
    failures: Failures,
    due: bool,
    scratch: Path,
) -> dict[str, PeopleDay]:
    """The people day of each theme that counts people (a quantity of it the city no
    longer declares is refused, never counted); a theme whose people counts are not due
    yet, or cannot be read, is left out of ``themes`` (the latter failing on its own)."""
    present = set(partials.quantities())
    found = {}
    for theme in list(themes):
        declared = people_quantities(deps, theme)
        dropped = sorted(
            q for q in present if theme.owns(q) and q in deps.city.personal_quantities
            and q not in declared
        )  # fmt: skip
        if not declared and not dropped:
            continue
        try:
            people = (
                people_day(
                    deps, ports.keys, theme.slug, day, declared, due, scratch,
                    compressed=ports.scratch.compressed,
                ) if declared
                else withheld(deps, ports.keys, COUNTER_REMOVED)
            )  # fmt: skip
        except Exception as exc:  # one theme's failure must not block the others
            failures.add(theme, day, exc)
            themes.remove(theme)
            continue
        if people is None:  # not due: nothing of it is published yet
            themes.remove(theme)
        else:
            found[theme.slug] = people
    return found


def _published(deps: Deps, ident: str, theme: Theme, day: str) -> bool:
    """This theme's day was exported from this partial set, and its files and record are
    still what that export wrote. An export that raced with another one (or a hand edit)
    may have left other bytes in place; then the theme is published again rather than
    skipped. Three requests: the lineage, a listing of the day, the record's head."""
    names = deps.names
    try:
        lineage = deps.store.get(
            names.bucket(Zone.AUDIT), names.lineage_key(Function.EXPORT, ident)
        )
    except NotFoundError:
        return False
    open_bucket = names.bucket(Zone.OPEN)
    outputs = Lineage.model_validate_json(lineage.body).outputs
    written = {o.key: o.etag for o in outputs if o.bucket == open_bucket}
    found = {
        i.key: i.etag for i in deps.store.list(open_bucket, names.open_day_prefix(theme.slug, day))
    }
    record = names.publication_key(theme.slug, day)
    if record in written:
        info = deps.store.head(open_bucket, record)
        found[record] = info.etag if info is not None else ""
    return all(found.get(key) == etag for key, etag in written.items())


def _publish(
    deps: Deps, message: Message, ident: str, written: WrittenTheme, people: PeopleDay | None
) -> None:
    """One theme's day: its files, then its publication record (so the catalogue and the
    portal never list a file not yet written), then its lineage. A theme without cells
    that day publishes nothing and is recorded as done. A people theme publishes its
    complete grid under its day's one release, whose ledger entry (written before any
    file) the lineage names; a release that is refused publishes nothing (the version
    published before, if any, stays)."""
    result, day = written.result, message.window or ""
    outputs: list[Output] = []
    counts = ExportCounts.zero()
    if people is not None and people.refused:
        counts = refused(message, result.cells, result.readings, people.refused)
    elif people is not None and people.charged is not None:
        outputs = [ledger_output(deps, people.charged), *_files(deps, message, written)]
        counts = _counts(message, result)
    elif result.cells:
        outputs = _files(deps, message, written)
        counts = _counts(message, result)
    outcome = Outcome(outputs, counts, window=day, dataset=result.theme.slug)
    finish(Function.EXPORT, message, deps, ident, outcome)


def _files(deps: Deps, message: Message, written: WrittenTheme) -> list[Output]:
    """A theme's day's open files, then its publication record."""
    result = written.result
    described = [
        PublishedFile(
            format=fmt.value,
            key=result.key(deps.names, fmt),
            media_type=ThemeDay.media_type(fmt),
            bytes=body.size,
            sha256=body.sha256,
        )
        for fmt, body in written.files.items()
    ]
    csv_file = written.files[OpenFormat.CSV].path
    record = version(deps, result, described, csv_file)
    outputs = [
        Output(
            Zone.OPEN,
            result.key(deps.names, fmt),
            body,
            result.cells,
            fmt.value,
            ThemeDay.media_type(fmt),
            replace=True,
        )
        for fmt, body in written.files.items()
    ]
    outputs.append(
        Output(
            Zone.OPEN,
            deps.names.publication_key(result.theme.slug, result.day),
            json_bytes(record.model_dump(mode="json")),
            record.version,
            "json",
            "application/json",
            replace=True,
        )
    )
    return outputs


def _counts(message: Message, result: ThemeDay) -> ExportCounts:
    return ExportCounts(
        partials=message.records,
        cells=result.cells + result.outside,
        readings=result.readings,
        published=result.published,
        suppressed=result.suppressed,
        flagged=result.flagged,
        refused={OUTSIDE_THE_GRID: result.outside} if result.outside else {},
        quarantined={},
    )
