"""anonymize's composition root: S3, SQS and the city file. No key store: pseudonyms are
made at the edge."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.service.kernel import Deps
from citypipe.settings import Settings


def build(deps: Deps) -> FunctionApp:
    # the stage's code (pyarrow): loaded by the composition root, not by the import
    from citypipe.service.anonymize import anonymize_raw

    return FunctionApp(consumer=stage_consumer(Function.ANONYMIZE, deps, anonymize_raw))


@cache
def cold_start() -> FunctionApp:
    return build(deps_from(Settings()))
