"""The open zone's metadata, rebuilt from every publication record and the city file: the
transparency register, the record of processing and the sensor register with its pages for
residents (a notice per sensor, the opt-out, the rights), the DCAT-AP catalogue (JSON-LD and
Turtle, and its month pages), the data package and the portal (its page per dataset).

A rebuild is skipped when the files still hold what a build from these very records and
this city file wrote (a marker in the audit zone says which, and the etags it wrote): an
export that changed nothing writes nothing and costs four requests. A new citypipe
release shows in the metadata with the next publication.
"""

from __future__ import annotations

import json
from functools import partial

from citypipe.core.publish.datapackage import datapackage
from citypipe.core.publish.dcat import catalogue, catalogue_pages, with_data_service
from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.odrl import policy_files
from citypipe.core.publish.portal import portal_files
from citypipe.core.publish.register import register_documents, register_of
from citypipe.core.publish.residents import residents_files
from citypipe.core.publish.sensors import sensor_documents
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.books import Publication
from citypipe.domain.errors import NotFoundError
from citypipe.domain.model import Zone
from citypipe.domain.naming import input_id
from citypipe.domain.themes import theme_named, themes_of
from citypipe.service.export.retry import retried
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out_count


def publish_metadata(deps: Deps) -> None:
    """Rebuild the metadata from every publication record, unless it is still built."""
    city, names = deps.city, deps.names
    open_bucket, audit = names.bucket(Zone.OPEN), names.bucket(Zone.AUDIT)
    infos = list(deps.store.list(open_bucket, names.publications_prefix()))
    opted_out = opt_out_count(deps)  # the opt-out page says how many, never which
    # the records, the city file (licence, publisher, zones) and the number of opt-outs are
    # what the files show
    inputs = [
        city.model_dump_json(),
        f"opt-outs:{opted_out}",
        *(f"{i.key}@{i.etag}" for i in infos),
    ]
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
    documents = {**register_documents(city), **sensor_documents(city)}
    register = register_of(city, documents)
    served = themes_of(city)  # the API serves the city's themes, on every catalogue page
    document = with_data_service(catalogue(city, themes, records, register), city, served)
    files = {
        **documents,  # the register and the record of processing first: the others list them
        **policy_files(city),  # the partners' permissions, which the catalogue names
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
        **residents_files(city, opted_out),  # the sensor register's pages, notices, opt-out
        **portal_files(city, themes, records, register),  # the page last: it links the others
    }
    etags = {  # each file tried again on its own: a build writes hundreds (a notice a
        # sensor), and were the whole build tried again, some write would fail each time
        key: retried(partial(deps.store.put_or_replace, open_bucket, key, body, content_type)).etag
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
