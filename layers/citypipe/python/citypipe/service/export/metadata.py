"""The open zone's metadata, rebuilt from every publication record and the city file: the
transparency register and the record of processing, the DCAT-AP catalogue (JSON-LD and
Turtle), the data package and the portal.

A rebuild is skipped when the files still hold what a build from these very records and
this city file wrote (a marker in the audit zone says which, and the etags it wrote): an
export that changed nothing writes nothing and costs four requests. A new citypipe
release shows in the metadata with the next publication.
"""

from __future__ import annotations

import json

from citypipe.core.publish.datapackage import datapackage
from citypipe.core.publish.dcat import catalogue
from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.odrl import policy_files
from citypipe.core.publish.portal import portal_files
from citypipe.core.publish.register import register_documents, register_of
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.books import Publication
from citypipe.domain.errors import NotFoundError
from citypipe.domain.model import Zone
from citypipe.domain.naming import input_id
from citypipe.domain.themes import theme_named, themes_of
from citypipe.service.kernel import Deps


def publish_metadata(deps: Deps) -> None:
    """Rebuild the metadata from every publication record, unless it is still built."""
    city, names = deps.city, deps.names
    open_bucket, audit = names.bucket(Zone.OPEN), names.bucket(Zone.AUDIT)
    infos = list(deps.store.list(open_bucket, names.publications_prefix()))
    # the records and the city file (licence, publisher, zones) are what the files show
    inputs = [city.model_dump_json(), *(f"{i.key}@{i.etag}" for i in infos)]
    marker = names.metadata_marker_key(input_id("metadata", *inputs))
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
        **policy_files(city),  # the partners' permissions, which the catalogue names
        names.catalog_key(): (json_bytes(document), "application/ld+json"),
        names.catalog_key("ttl"): (to_turtle(document).encode(), "text/turtle"),
        names.datapackage_key(): (
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
