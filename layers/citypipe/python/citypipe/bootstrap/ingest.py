"""ingest's composition root: S3, SQS, the city file and the key store (the edge makes the
pseudonyms before the first write). No pyarrow, no DataSketches."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.http import webhook
from citypipe.entrypoints.iot import iot_rule
from citypipe.ports import KeyStore
from citypipe.service.ingest import ingest_core
from citypipe.service.stage import Deps
from citypipe.settings import Settings


def build(deps: Deps, keys: KeyStore) -> FunctionApp:
    return FunctionApp(
        consumer=stage_consumer(Function.INGEST, deps, ingest_core(keys)),
        http=lambda event: webhook(deps, keys, event),
        iot=lambda event: iot_rule(deps, keys, event),
    )


@cache
def cold_start() -> FunctionApp:
    settings = Settings()
    deps = deps_from(settings)
    return build(deps, key_store_from(settings, deps.city))
