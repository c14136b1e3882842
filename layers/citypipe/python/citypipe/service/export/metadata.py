"""The open zone's metadata, rebuilt from every publication record and the city file: the
transparency register, the record of processing and the sensor register with its pages for
residents (a notice per sensor, the opt-out, the rights), the DCAT-AP catalogue (JSON-LD and
Turtle, and its month pages), the data package and the portal (its page per dataset).

A rebuild is skipped when the files still hold what a build from these very inputs wrote
(a marker in the audit zone says which, and the etags it wrote), in two parts: what the
city file makes (a notice a sensor) is not rewritten by a publication, and an export that
changed nothing writes nothing and costs a few requests. Its first and last files tell
whether a racing build wrote over it; a file in between that a racing build from other
inputs wrote last stays until the next build of its part (a new city file or opt-out
count; for the records' part, the next publication). A new citypipe release shows in the
first part at the next export (it is known by its files' digests), in the second with the
next publication. The first part is not even made while the city file, the opt-out count
and the release's code that built it are the same and its build still stands (a second
marker, named by those inputs, says which build): an export or an hourly job then costs
a few requests, not a notice rendered per sensor (decision 0110).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from functools import cache, partial
from pathlib import Path
from urllib.parse import quote

from citypipe.core.publish.datapackage import datapackage
from citypipe.core.publish.dcat import catalogue, catalogue_pages, with_data_service
from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.odrl import policy_files
from citypipe.core.publish.portal import portal_files
from citypipe.core.publish.register import (
    SENSORS,
    Register,
    register_documents,
    register_of,
    register_rows,
)
from citypipe.core.publish.residents import residents_files
from citypipe.core.publish.sensors import SENSOR_FORMATS, write_sensor_register
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.city import City
from citypipe.domain.errors import NotFoundError
from citypipe.domain.export_books import Publication, PublishedFile
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames, input_id
from citypipe.domain.themes import theme_named, themes_of
from citypipe.ports import Body, FileBody, ObjectInfo, Scratch, in_parallel, sha256_hex
from citypipe.service.export.retry import retried
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out_count


def publish_metadata(deps: Deps, scratch: Scratch) -> None:
    """Rebuild the metadata, in two parts each skipped while it is still built: what the
    city file and the opt-outs make (the registers, the partners' permissions, a notice a
    sensor: thousands of files in a big city, rewritten by every publication before),
    then what the publication records make (the catalogue, the data package, the portal).
    ``scratch``: where the first part's files are written as they are made."""
    city, names = deps.city, deps.names
    with scratch.directory() as directory:
        register = _publish_city_files(deps, opt_out_count(deps), directory)
    open_bucket = names.bucket(Zone.OPEN)
    infos = list(deps.store.list(open_bucket, names.publications_prefix()))
    inputs = [city.identity, *(f"{i.key}@{i.etag}" for i in infos)]
    _build(deps, input_id("metadata/2", *inputs), lambda: _record_files(deps, infos, register))


Files = list[tuple[str, tuple[Body, str]]]  # key, (body, content type), in the order put
PUT_CONCURRENCY = 16  # the metadata's files in flight at once, as a day's partials are read


def _publish_city_files(deps: Deps, opted_out: int, directory: Path) -> Register:
    """The first part built, unless still built (the opt-out page says how many opted out,
    never which), and its register described for the second part. It is known by what it
    holds (this release's rendering of this city file and count: a new release rewrites
    what it changed, and the catalogue's checksums of the registers stay true). Made at
    all only when this city file, count and release did not build it yet (``_made_by``):
    a notice a sensor, rendered by every export and hourly job before."""
    city, optout = deps.city, deps.names.optout_page_key()
    made_by = _made_by(city, opted_out)
    built = _built_by(deps, made_by)
    if built is not None:
        return Register(register_rows(city), built)
    # the register and the record of processing first: the others list them
    files, register = _documents(city, directory)
    files += _spilled(directory, policy_files(city).items())  # which the catalogue names
    files += _spilled(directory, residents_files(city, opted_out))  # pages, notices, opt-out
    # the opt-out page last: the one file an opt-out changes is then the one a build's
    # check reads, so a racing build's older count on it is seen and written over
    files.sort(key=lambda file: file[0] == optout)  # stable: the others keep their order
    digests = _digest_pairs(files)  # each file read once: hundreds, from scratch
    ident = input_id("residents/1", *(f"{key}:{digest}" for key, digest in digests))
    _build(deps, ident, lambda: [_manifest(deps.names, ident, digests), *files])
    if made_by is not None:
        made = {"built": ident, "register": [f.model_dump(mode="json") for f in register.files]}
        audit = deps.names.bucket(Zone.AUDIT)
        key = deps.names.metadata_marker_key(made_by)
        deps.store.put_or_replace(audit, key, json_bytes(made), "application/json")
    return register


def _manifest(
    names: StackNames, ident: str, digests: list[tuple[str, str]]
) -> tuple[str, tuple[Body, str]]:
    """The build's first file: which build it is and the SHA-256 of each file it writes.
    Any other build writes its own first, so a build is known to stand only while no
    other wrote after it — one from a city file changed and changed back included, whose
    first file (the register) would be the same bytes while its notices were not."""
    manifest = {"build": ident, "files": dict(digests)}
    return names.register_key("manifest", "json"), (json_bytes(manifest), "application/json")


def _made_by(city: City, opted_out: int) -> str | None:
    """What the first part is made from, named without making it: the city file, the
    opt-out count and this release's code (None where the code cannot be read: then the
    part is made to be known by its files' digests)."""
    release = _release()
    if release is None:
        return None
    return input_id("residents/made-by/1", release, city.identity, str(opted_out))


def _built_by(deps: Deps, made_by: str | None) -> list[PublishedFile] | None:
    """The register's files as described when the first part was built from ``made_by``'s
    inputs, if that build is still there (its own marker's first and last files: a racing
    build from other inputs writes them too); None: make the part."""
    if made_by is None:
        return None
    try:
        marker = deps.store.get(
            deps.names.bucket(Zone.AUDIT), deps.names.metadata_marker_key(made_by)
        )
        made = json.loads(marker.body)
        built, register = made["built"], made["register"]
        files = [PublishedFile.model_validate(file) for file in register]
    except (NotFoundError, ValueError, TypeError, KeyError):  # not there, or not ours
        return None
    if not isinstance(built, str) or not _still_built(deps, deps.names.metadata_marker_key(built)):
        return None
    return files


@cache
def _release() -> str | None:
    """This release's code, by its sources' digest (every module of the library: any of
    them may change what the city's files say); None when no source ships."""
    root = Path(__file__).resolve().parents[2]  # the citypipe package
    digest = hashlib.sha256()
    sources = sorted(root.rglob("*.py"))
    for path in sources:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest() if sources else None


def _documents(city: City, directory: Path) -> tuple[Files, Register]:
    """The register's documents in ``directory``, the sensor register's written a row at a
    time, and the register they make, described."""
    files = _spilled(directory, register_documents(city).items())
    names = StackNames(city.slug)
    paths = {
        ext: directory / quote(names.register_key(SENSORS, ext), safe="") for ext in SENSOR_FORMATS
    }
    with contextlib.ExitStack() as stack:
        write_sensor_register(
            city, {ext: stack.enter_context(path.open("wb")) for ext, path in paths.items()}
        )
    files += [
        (names.register_key(SENSORS, ext), (FileBody.of(path), SENSOR_FORMATS[ext]))
        for ext, path in paths.items()
    ]
    return files, register_of(city, dict(files))


def _spilled(directory: Path, made: Iterable[tuple[str, tuple[bytes, str]]]) -> Files:
    """Each file written to ``directory`` as it is made, and put from there: the city's
    files grow with its sensors, and are never all in memory (decision 0111)."""
    files: Files = []
    for key, (body, content_type) in made:
        path = directory / quote(key, safe="")
        path.write_bytes(body)
        files.append((key, (FileBody.of(path), content_type)))
    return files


def _digest_pairs(files: Files) -> list[tuple[str, str]]:
    return [(key, sha256_hex(body)) for key, (body, _) in files]


def _record_files(deps: Deps, infos: list[ObjectInfo], register: Register) -> Files:
    city, names = deps.city, deps.names
    records = [
        Publication.model_validate_json(o.body)
        for o in deps.store.get_many(names.bucket(Zone.OPEN), [i.key for i in infos])
    ]
    themes = themes_of(city)
    themes += [
        theme_named(s) for s in sorted({r.theme for r in records} - {t.slug for t in themes})
    ]
    served = themes_of(city)  # the API serves the city's themes, on every catalogue page
    document = with_data_service(catalogue(city, themes, records, register), city, served)
    files: dict[str, tuple[Body, str]] = {
        names.catalog_key(): (json_bytes(document), "application/ld+json"),
        names.catalog_key("ttl"): (to_turtle(document).encode(), "text/turtle"),
        **{
            key: (json_bytes(with_data_service(page, city, served)), "application/ld+json")
            for key, page in catalogue_pages(city, themes, records, register).items()
        },
        names.datapackage_key(): (
            json_bytes(datapackage(city, themes, records, register)),
            "application/json",
        ),
        **portal_files(city, themes, records, register),  # the page last: it links the others
    }
    return list(files.items())


def _build(deps: Deps, ident: str, files: Callable[[], Files]) -> None:
    """Write ``files()`` unless a build from the same inputs (``ident``) is still there,
    then the marker that says so, with the etags it wrote."""
    marker = deps.names.metadata_marker_key(ident)
    if _still_built(deps, marker):
        return
    written = _written(deps, files())
    audit = deps.names.bucket(Zone.AUDIT)
    deps.store.put_or_replace(audit, marker, json_bytes(written), "application/json")


def _written(deps: Deps, files: Files) -> list[list[str]]:
    """Every file put, as [key, etag] in the order given: the first alone, then the ones
    in between ``PUT_CONCURRENCY`` at a time (a build writes hundreds: a notice a sensor,
    and a request waits on S3, not on the function's CPU), then the last alone, so that
    ``_still_built``'s first and last files are the first and last written. Each file is
    tried again on its own: were the whole build tried again, some write would fail each
    time. A write that still fails is raised as ``in_parallel`` raises: those in flight
    are done first, those not started by then are not."""
    open_bucket = deps.names.bucket(Zone.OPEN)

    def put(file: tuple[str, tuple[Body, str]]) -> list[str]:
        key, (body, content_type) = file
        store = deps.store
        return [
            key,
            retried(partial(store.put_or_replace, open_bucket, key, body, content_type)).etag,
        ]

    if len(files) <= 2:
        return [put(file) for file in files]
    first, *between, last = files
    written = [put(first)]
    written += in_parallel(put, between, PUT_CONCURRENCY)  # those not started: redone
    return [*written, put(last)]


def _still_built(deps: Deps, marker: str) -> bool:
    """A build from these inputs finished, and its first and last files are still its own:
    a racing build from older inputs writes them too."""
    try:
        written = json.loads(deps.store.get(deps.names.bucket(Zone.AUDIT), marker).body)
        ends = [(str(key), etag) for key, etag in (written[0], written[-1])]
    except (NotFoundError, ValueError, TypeError, KeyError, IndexError):
        return False  # not there, or not of this shape (an older release's): built again
    for key, etag in ends:
        info = deps.store.head(deps.names.bucket(Zone.OPEN), key)
        if info is None or info.etag != etag:
            return False
    return True
