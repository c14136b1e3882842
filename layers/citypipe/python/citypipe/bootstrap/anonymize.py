"""anonymize's composition root: S3, SQS, the city file and the key store."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.ports import KeyStore
from citypipe.service.anonymize import anonymize_core
from citypipe.service.stage import Deps
from citypipe.settings import Settings


def build(deps: Deps, keys: KeyStore) -> FunctionApp:
    return FunctionApp(consumer=stage_consumer(Function.ANONYMIZE, deps, anonymize_core(keys)))


@cache
def cold_start() -> FunctionApp:
    settings = Settings()
    deps = deps_from(settings)
    return build(deps, key_store_from(settings, deps))
