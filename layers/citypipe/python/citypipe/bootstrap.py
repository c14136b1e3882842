"""The composition root: settings -> adapters -> one app per function.

Built lazily at the first invocation (cold start), never at import. Tests and the local
runner hand in their own ``Deps`` with ``use``.
"""

from __future__ import annotations

from functools import cache

from citypipe.adapters.aws import S3ObjectStore, SqsQueue
from citypipe.adapters.keys import FileKeyStore, SecretsManagerKeyStore
from citypipe.adapters.memory import InMemoryKeyStore
from citypipe.aggregate import aggregate_object
from citypipe.anonymize import anonymize_object
from citypipe.clients import make_clients
from citypipe.config import load_city
from citypipe.domain import Function
from citypipe.ingest import ingest_drop
from citypipe.naming import StackNames
from citypipe.ports import KeyStore, SystemClock
from citypipe.runtime.apps import StageApp, export_app, stage_app
from citypipe.settings import Settings
from citypipe.stage import Deps

_override: Deps | None = None


def use(deps: Deps | None) -> None:
    """Run the functions on these dependencies (None: back to the environment's)."""
    global _override  # noqa: PLW0603 (the one mutable seam of the root)
    _override = deps
    _apps.cache_clear()


def deps_from(settings: Settings) -> Deps:
    city = load_city(settings.stack.city_file)
    clients = make_clients(settings.backend)
    keys: KeyStore
    if settings.keys.store == "secretsmanager":
        keys = SecretsManagerKeyStore(
            clients.secretsmanager, f"{settings.keys.secret_prefix}/{city.city}"
        )
    elif settings.keys.store == "memory":
        keys = InMemoryKeyStore()
    else:
        keys = FileKeyStore(settings.keys.directory / city.city)
    return Deps(
        city=city,
        names=StackNames(city.city, settings.stack.name_prefix),
        store=S3ObjectStore(clients.s3),
        queue=SqsQueue(clients.sqs),
        keys=keys,
        clock=SystemClock(),
    )


@cache
def _environment_deps() -> Deps:
    return deps_from(Settings())


def deps() -> Deps:
    return _override or _environment_deps()


@cache
def _apps(function: Function) -> StageApp:
    current = deps()
    cores = {
        Function.INGEST: ingest_drop,
        Function.ANONYMIZE: anonymize_object,
        Function.AGGREGATE: aggregate_object,
    }
    if function is Function.EXPORT:
        return export_app(current)
    return stage_app(function, current, cores[function])


def app(function: Function) -> StageApp:
    return _apps(function)
