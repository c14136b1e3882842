"""aggregate's composition root: S3, SQS and the city file. No key store."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.service.kernel import Deps
from citypipe.settings import Settings


def build(deps: Deps) -> FunctionApp:
    # the stage's code (pyarrow): loaded by the composition root, not by the import
    from citypipe.service.aggregate import aggregate_clean

    return FunctionApp(consumer=stage_consumer(Function.AGGREGATE, deps, aggregate_clean))


@cache
def cold_start() -> FunctionApp:
    return build(deps_from(Settings()))
