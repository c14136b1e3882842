"""ingest's composition root: S3, SQS and the city file. No pyarrow, no key store."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.http import webhook
from citypipe.service.ingest import ingest_drop
from citypipe.service.stage import Deps
from citypipe.settings import Settings


def build(deps: Deps) -> FunctionApp:
    return FunctionApp(
        consumer=stage_consumer(Function.INGEST, deps, ingest_drop),
        http=lambda event: webhook(deps, event),
    )


@cache
def cold_start() -> FunctionApp:
    return build(deps_from(Settings()))
