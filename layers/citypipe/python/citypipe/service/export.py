"""export's service: publish a day of every theme, then the open zone's metadata.

For a day, the partials are read concurrently, a few at a time, and spilled by window to
local files (``core.daypartials``); one pass over the day then merges a few windows at a
time and writes every theme's files locally (``core.publish.day``), so memory does not
grow with the day. Then each theme is published on its own: its files (CSV, Parquet,
GeoJSON, NGSI-LD) at stable public keys, put from the local files, its publication
record, and a lineage record keyed by the theme, the day and the exact set of partials.
One theme failing never blocks the others: the rest are published, the catalogue and
portal are rebuilt, then the first failure is raised so the request is retried (the
themes already done are duplicates).

Open files are a pure function of the partials, written with ``put_or_replace``: an
export of unchanged partials writes nothing. A day re-exported with late data gets a new
version when its bytes change; the publication record keeps what changed, and the
catalogue's version notes say it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from citypipe.core.aggregate import cells, of_quantities
from citypipe.core.columnar import read_parquet
from citypipe.core.daypartials import GROUP_ROWS, DayPartials
from citypipe.core.disclosure import day_windows
from citypipe.core.noise import noise_key
from citypipe.core.publish.datapackage import datapackage
from citypipe.core.publish.day import ThemeDay, ThemeDayWriter
from citypipe.core.publish.dcat import catalogue
from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.portal import portal_files
from citypipe.core.publish.register import register_documents, register_of
from citypipe.core.publish.tables import Tally, changes, csv_rows
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.books import (
    EpsilonCharge,
    ExportCounts,
    Lineage,
    Publication,
    PublishedFile,
    VersionNote,
)
from citypipe.domain.errors import NotFoundError, TransientError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import (
    day_of,
    input_id,
)
from citypipe.domain.themes import (
    OpenFormat,
    Theme,
    quantities_of,
    theme_named,
    theme_of,
    themes_of,
)
from citypipe.ports import GET_CONCURRENCY, KeyStore
from citypipe.service.kernel import Deps, Outcome, Output, log
from citypipe.service.stage import finish


def export_day(
    deps: Deps,
    day: str,
    *,
    keys: KeyStore,
    trace_id: str = "",
    metadata: bool = True,
    group_rows: int = GROUP_ROWS,
) -> str:
    """Publish one day of every theme. Returns 'done', 'duplicate' (every theme already
    published from these partials) or 'empty' (no partial for that day). ``keys``: the
    city's key store, whose release secret seeds the noise of people counts. ``metadata``:
    rebuild the catalogue, data package and portal afterwards (always, so a catalogue a
    racing export left behind is repaired by the next run). ``group_rows``: partial rows
    merged at once (the files are the same bytes whatever it is; memory is bounded by it)."""
    city = deps.city.slug
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = deps.names.aggregates_prefix(day)
    # Merged in key order, whatever order the backend lists them in: float sums depend on
    # the order they are added in, and the open files must be reproducible.
    infos = sorted(deps.store.list(bucket, prefix), key=lambda info: info.key)
    if not infos:
        log.info("nothing to publish", extra={"function": "export", "window": day})
        return "empty"
    inputs = [f"{i.key}@{i.etag}" for i in infos]
    message = Message(
        city=city, stage="aggregates", bucket=bucket, key=prefix, records=len(infos),
        window=day, trace_id=trace_id,
    )  # fmt: skip

    def ident(theme: Theme) -> str:
        return input_id("export", theme.slug, day, *inputs)

    pending = [t for t in themes_of(deps.city) if not _published(deps, ident(t), t, day)]
    failures: list[Exception] = []
    if pending:
        with scratch_directory() as scratch:
            partials = _spilled(deps, bucket, [i.key for i in infos], scratch / ".partials")
            # cells of a family the city no longer declares are still published and counted
            known = {t.slug for t in themes_of(deps.city)}
            extra = {theme_of(q).slug: theme_of(q) for q in partials.quantities()}
            pending += [extra[slug] for slug in sorted(set(extra) - known)]
            written = _written(deps, keys, day, pending, partials, group_rows, failures)
            shutil.rmtree(partials.directory)
            for result in written:
                try:
                    _tried(partial(_publish, deps, message, ident(result.theme), result))
                except Exception as exc:  # one theme's failure must not block the others
                    _failed(result.theme, day, exc, failures)
                finally:
                    shutil.rmtree(result.directory)
    if metadata:
        _tried(lambda: publish_metadata(deps))
    if failures:
        raise failures[0]
    return "done" if pending else "duplicate"


SCRATCH_PREFIX = "citypipe-export-"
SCRATCH_LOCK = ".lock"
UNLOCKED_GRACE_S = 3600  # a scratch directory without its lock yet is being made


@contextlib.contextmanager
def scratch_directory() -> Iterator[Path]:
    """This export's own directory in the temporary folder, locked while it lives, removed
    after. The spills of exports that died first are removed before: Lambda keeps /tmp
    for the next invocation of a container whose invocation timed out or ran out of
    memory (only a Python exception cleans up), and a day's spill left behind each time
    would fill it. A directory is abandoned when nobody holds its lock (a lock dies with
    its process); several exports on one machine (a laptop's workers) never remove each
    other's."""
    root = Path(tempfile.gettempdir())
    for found in root.glob(f"{SCRATCH_PREFIX}*"):
        _remove_if_abandoned(found)
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as name:
        directory = Path(name)
        with (directory / SCRATCH_LOCK).open("wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield directory


def _remove_if_abandoned(directory: Path) -> None:
    lock_path = directory / SCRATCH_LOCK
    try:
        lock = lock_path.open("rb")
    except FileNotFoundError:  # made a moment ago, or by a process that died at once
        with contextlib.suppress(OSError):
            if time.time() - directory.stat().st_mtime > UNLOCKED_GRACE_S:
                shutil.rmtree(directory, ignore_errors=True)
        return
    except OSError:
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: an export is using it
            return
        log.warning("stale export spill removed", extra={"function": "export"})
        shutil.rmtree(directory, ignore_errors=True)


def _spilled(deps: Deps, bucket: str, keys: Sequence[str], directory: Path) -> DayPartials:
    """The day's partials, read concurrently a few at a time (in key order) and spilled
    to ``directory`` by window: never the whole day in memory."""
    partials = DayPartials(directory)
    for start in range(0, len(keys), GET_CONCURRENCY):
        for body in deps.store.get_many(bucket, keys[start : start + GET_CONCURRENCY]):
            partials.add(read_parquet(body.body))
    return partials


WRITE_TRIES = 3


def _tried(publish: Callable[[], None]) -> None:
    """Publish, trying again at once when a write failed transiently (up to WRITE_TRIES):
    the writes are idempotent (conditional puts, put_or_replace), and giving the message
    back would read every partial of the day again. A lasting failure is raised."""
    for _ in range(WRITE_TRIES - 1):
        try:
            return publish()
        except TransientError:
            log.warning("publication retried", extra={"function": "export"})
    return publish()


def _published(deps: Deps, ident: str, theme: Theme, day: str) -> bool:
    """This theme's day was exported from this partial set, and its files and record are
    still what that export wrote. An export that raced with another one (or a hand edit)
    may have left other bytes in place; then the theme is published again rather than
    skipped. Three requests: the lineage, a listing of the day, the record's head."""
    try:
        body = deps.store.get(
            deps.names.bucket(Zone.AUDIT), deps.names.lineage_key(Function.EXPORT, ident)
        ).body
    except NotFoundError:
        return False
    open_bucket = deps.names.bucket(Zone.OPEN)
    written = {
        o.key: o.etag for o in Lineage.model_validate_json(body).outputs if o.bucket == open_bucket
    }
    record = deps.names.publication_key(theme.slug, day)
    found = {
        i.key: i.etag
        for i in deps.store.list(
            deps.names.bucket(Zone.OPEN), deps.names.open_day_prefix(theme.slug, day)
        )
    }
    if record in written:
        info = deps.store.head(deps.names.bucket(Zone.OPEN), record)
        found[record] = info.etag if info is not None else ""
    return all(found.get(key) == etag for key, etag in written.items())


def _previous(deps: Deps, key: str) -> Publication | None:
    try:
        body = deps.store.get(deps.names.bucket(Zone.OPEN), key).body
    except NotFoundError:
        return None
    return Publication.model_validate_json(body)


def _tally(record: Publication | ThemeDay) -> Tally:
    return Tally(record.readings, record.cells, record.published, record.suppressed,
                 record.flagged)  # fmt: skip


def _previous_csv(deps: Deps, previous: Publication) -> bytes | None:
    """The CSV the previous version published, if it is still the one in place."""
    [described] = [f for f in previous.files if f.format == OpenFormat.CSV]
    try:
        body = deps.store.get(deps.names.bucket(Zone.OPEN), described.key).body
    except NotFoundError:
        return None
    return body if hashlib.sha256(body).hexdigest() == described.sha256 else None


def _version(
    deps: Deps, result: ThemeDay, files: list[PublishedFile], partials: int
) -> Publication:
    """The day's publication record: the previous one when the bytes did not change, else
    the next version, with what changed against the version before."""
    city = deps.city.slug
    previous = _previous(deps, deps.names.publication_key(result.theme.slug, result.day))
    if previous is not None and previous.files == files:
        return previous
    tally = _tally(result)
    if previous is None:
        version, history, note = 1, [], "first publication"
    else:
        version, history = previous.version + 1, previous.history
        note = changes(
            _tally(previous),
            tally,
            csv_rows(result.files[OpenFormat.CSV].path),
            _previous_csv(deps, previous),
        )
    return Publication(
        city=city,
        theme=result.theme.slug,
        day=result.day,
        version=version,
        cells=tally.cells,
        readings=tally.readings,
        published=tally.published,
        suppressed=tally.suppressed,
        flagged=tally.flagged,
        files=files,
        summary=result.summary,
        history=[*history, VersionNote(version=version, partials=partials, note=note)],
    )


def _written(
    deps: Deps,
    keys: KeyStore,
    day: str,
    themes: Sequence[Theme],
    partials: DayPartials,
    group_rows: int,
    failures: list[Exception],
) -> list[ThemeDay]:
    """Every theme's day in every format, in local files beside the partials, from one
    pass over the day a few windows at a time. A theme that fails is left out, its
    failure added to ``failures``."""
    present = partials.quantities()
    writers: dict[str, ThemeDayWriter] = {}
    for theme in themes:
        try:
            key = None
            if _people(deps, theme) and deps.city.disclosure.noise is not None:
                key = noise_key(keys.noise_secret(), deps.city.slug)
            found = [q for q in present if theme.owns(q)]
            directory = partials.directory.parent / theme.slug
            writers[theme.slug] = ThemeDayWriter(deps.city, theme, day, directory, found, key)
        except Exception as exc:  # one theme's failure must not block the others
            _failed(theme, day, exc, failures)
    wanted = [q for w in writers.values() for q in w.present]
    grid = day_windows(day) if any(w.personal for w in writers.values()) else []
    try:
        for windows, merged in partials.groups(wanted, grid, group_rows):
            for slug, writer in list(writers.items()):
                try:
                    writer.add(cells(of_quantities(merged, writer.present)), windows)
                except Exception as exc:  # one theme's failure must not block the others
                    _failed(writer.theme, day, exc, failures)
                    writers.pop(slug).discard()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    done = []
    for writer in writers.values():
        try:
            done.append(writer.close())
        except Exception as exc:  # one theme's failure must not block the others
            _failed(writer.theme, day, exc, failures)
            writer.discard()
    return done


def _failed(theme: Theme, day: str, exc: Exception, failures: list[Exception]) -> None:
    log.exception(
        "theme not published", extra={"function": "export", "window": day, "dataset": theme.slug}
    )
    failures.append(exc)


def _publish(deps: Deps, message: Message, ident: str, result: ThemeDay) -> None:
    """One theme's day: its files, then its publication record (so the catalogue and the
    portal never list a file not yet written), then its lineage. A theme without cells
    that day publishes nothing and is recorded as done — but a people theme publishes its
    complete grid, so whether it is published says nothing of who was there. A release of
    people counts with noise is charged to the ε ledger first (an output of the export,
    written before its files), and refused when a sensor's day has no budget left for it
    (the version published before stays)."""
    theme = result.theme
    day = message.window or ""
    if not result.cells and not _people(deps, theme):
        finish(
            Function.EXPORT,
            message,
            deps,
            ident,
            Outcome([], ExportCounts.zero(), window=day, dataset=theme.slug),
        )
        return
    charged = None
    if _people(deps, theme) and deps.city.disclosure.noise is not None:
        charge = _charge(deps, message, result)
        if isinstance(charge, ExportCounts):
            finish(
                Function.EXPORT,
                message,
                deps,
                ident,
                Outcome([], charge, window=day, dataset=theme.slug),
            )
            return
        charged = charge
    files = [
        PublishedFile(
            format=fmt.value,
            key=result.key(deps.names, fmt),
            media_type=ThemeDay.media_type(fmt),
            bytes=body.size,
            sha256=body.sha256,
        )
        for fmt, body in result.files.items()
    ]
    record = _version(deps, result, files, message.records)
    outputs = [] if charged is None else [charged]  # charged first, before any file
    outputs += [
        Output(
            Zone.OPEN,
            result.key(deps.names, fmt),
            body,
            result.cells,
            fmt.value,
            ThemeDay.media_type(fmt),
            replace=True,
        )
        for fmt, body in result.files.items()
    ]
    outputs.append(
        Output(
            Zone.OPEN,
            deps.names.publication_key(theme.slug, day),
            json_bytes(record.model_dump(mode="json")),
            record.version,
            "json",
            "application/json",
            replace=True,
        )
    )
    counts = ExportCounts(
        partials=message.records,
        cells=result.cells,
        readings=result.readings,
        published=result.published,
        suppressed=result.suppressed,
        flagged=result.flagged,
        refused={},
        quarantined={},
    )
    finish(
        Function.EXPORT,
        message,
        deps,
        ident,
        Outcome(outputs, counts, window=day, dataset=theme.slug),
    )


BUDGET_SPENT = "epsilon_budget_spent"


def ledger(deps: Deps, day: str | None = None) -> list[EpsilonCharge]:
    """The ε ledger's entries: of one day, or of every day."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = [i.key for i in deps.store.list(audit, deps.names.epsilon_prefix(day))]
    return [EpsilonCharge.model_validate_json(o.body) for o in deps.store.get_many(audit, keys)]


def _charge(deps: Deps, message: Message, result: ThemeDay) -> Output | ExportCounts:
    """This release's entry of the ε ledger, to be written before its files (once: a
    release charged before is not charged again); or, when a sensor's day cannot pay for
    it, the counts of the refused release. A release of a people dataset's day is what it
    discloses: its cells' per-sensor device counts (``ThemeDay.release``), so two exports
    of the same counts are one release, whatever else changed that day (late air-quality
    data makes a new partial set, not a new release)."""
    noise = deps.city.disclosure.noise
    assert noise is not None
    city, day, theme = deps.city.slug, message.window or "", result.theme
    release, sensors = result.release, list(result.sensors)
    key = deps.names.epsilon_charge_key(day, theme.slug, release)
    entries = ledger(deps, day)
    if not any(e.release == release and e.dataset == theme.slug for e in entries):
        spent: dict[str, float] = {}
        for entry in entries:
            for sensor, epsilon in entry.charges.items():
                spent[sensor] = spent.get(sensor, 0.0) + epsilon
        over = [s for s in sensors if spent.get(s, 0.0) + noise.epsilon > noise.budget + 1e-9]
        if over:
            log.warning(
                "release refused: privacy budget spent",
                extra={"function": "export", "window": day, "dataset": theme.slug,
                       "sensors": len(over)},
            )  # fmt: skip
            return ExportCounts(
                partials=message.records, cells=result.cells, readings=result.readings,
                published=0, suppressed=0, flagged=0, refused={BUDGET_SPENT: result.cells},
                quarantined={},
            )  # fmt: skip
    entry = EpsilonCharge(
        city=city,
        dataset=theme.slug,
        day=day,
        release=release,
        mechanism=noise.mechanism,
        epsilon=noise.epsilon,
        delta=noise.delta,
        charges=dict.fromkeys(sensors, noise.epsilon),
        at=deps.clock.now(),
    )
    return Output(
        Zone.AUDIT, key, entry.model_dump_json(indent=1).encode(), 0, "json", "application/json"
    )


def _people(deps: Deps, theme: Theme) -> list[str]:
    return [q for q in quantities_of(deps.city, theme) if q in deps.city.personal_quantities]


def publications(deps: Deps) -> list[Publication]:
    """Every theme's published days, as their records say (read concurrently)."""
    bucket = deps.names.bucket(Zone.OPEN)
    keys = [i.key for i in deps.store.list(bucket, deps.names.publications_prefix())]
    return [Publication.model_validate_json(o.body) for o in deps.store.get_many(bucket, keys)]


def publish_metadata(deps: Deps) -> None:
    """The transparency register and the record of processing (from the city file), the
    catalogue (JSON-LD and Turtle), the data package and the portal, rebuilt from every
    publication record. Skipped when the files still hold what a build from these
    very records and this city file wrote (a marker in the audit zone says which, and the
    etags it wrote): an export that changed nothing writes nothing and costs four
    requests. A new citypipe release shows in the metadata with the next publication."""
    city = deps.city
    open_bucket, audit = deps.names.bucket(Zone.OPEN), deps.names.bucket(Zone.AUDIT)
    infos = list(deps.store.list(open_bucket, deps.names.publications_prefix()))
    # the records and the city file (licence, publisher, zones) are what the files show
    inputs = [city.model_dump_json(), *(f"{i.key}@{i.etag}" for i in infos)]
    marker = deps.names.metadata_marker_key(input_id("metadata", *inputs))
    if _still_built(deps, marker):
        return
    records = [
        Publication.model_validate_json(o.body)
        for o in deps.store.get_many(open_bucket, [i.key for i in infos])
    ]
    themes = themes_of(city)
    themes += [
        theme_named(s) for s in sorted({r.theme for r in records} - {t.slug for t in themes})
    ]
    documents = register_documents(city)
    register = register_of(city, documents)
    document = catalogue(city, themes, records, register)
    files = {
        **documents,  # the register and the record of processing first: the others list them
        deps.names.catalog_key(): (json_bytes(document), "application/ld+json"),
        deps.names.catalog_key("ttl"): (to_turtle(document).encode(), "text/turtle"),
        deps.names.datapackage_key(): (
            json_bytes(datapackage(city, themes, records, register)),
            "application/json",
        ),
        **portal_files(city, themes, records, register),  # the page last: it links the others
    }
    etags = {
        key: deps.store.put_or_replace(open_bucket, key, body, content_type).etag
        for key, (body, content_type) in files.items()
    }
    deps.store.put_or_replace(audit, marker, json_bytes(etags), "application/json")


def _still_built(deps: Deps, marker: str) -> bool:
    """A build from these records finished, and its first and last files (the catalogue,
    the page) are still its own: a racing build from older records writes them too."""
    try:
        body = deps.store.get(deps.names.bucket(Zone.AUDIT), marker).body
    except NotFoundError:
        return False
    etags: dict[str, str] = json.loads(body)
    for key in (deps.names.catalog_key(), deps.names.portal_key()):
        info = deps.store.head(deps.names.bucket(Zone.OPEN), key)
        if info is None or info.etag != etags.get(key):
            return False
    return True


def days_with_partials(deps: Deps) -> list[str]:
    """Every day that has partials: what an on-demand 'export everything' publishes."""
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = deps.names.aggregates_prefix()
    return sorted({day_of(i.key, prefix) for i in deps.store.list(bucket, prefix)})


def export_requested(deps: Deps, keys: KeyStore, message: Message) -> str:
    """An export request from the queue: the day it names, or every day with partials.
    Every day is attempted; the metadata is rebuilt once; the first failure is raised."""
    days = [message.window] if message.window else days_with_partials(deps)
    results, failures = [], []
    for day in days:
        try:
            results.append(
                export_day(deps, day, keys=keys, trace_id=message.trace_id, metadata=False)
            )
        except Exception as exc:  # a day's failure must not block the other days
            results.append("failed")
            failures.append(exc)
    _tried(lambda: publish_metadata(deps))
    if failures:
        raise failures[0]
    return ",".join(results)
