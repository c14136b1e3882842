"""export's composition root: S3, SQS, the city file and the key store (the hourly job
destroys old secrets)."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.schedule import scheduled
from citypipe.entrypoints.sqs import ClaimCheckConsumer
from citypipe.ports import KeyStore
from citypipe.service.export import export_requested
from citypipe.service.kernel import Deps
from citypipe.settings import Settings


def build(deps: Deps, keys: KeyStore) -> FunctionApp:
    return FunctionApp(
        consumer=ClaimCheckConsumer(
            Function.EXPORT, deps, lambda m: export_requested(deps, keys, m)
        ),
        schedule=lambda event: scheduled(deps, keys, event),
    )


@cache
def cold_start() -> FunctionApp:
    settings = Settings()
    deps = deps_from(settings)
    return build(deps, key_store_from(settings, deps))
