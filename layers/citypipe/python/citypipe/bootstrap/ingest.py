"""ingest's composition root: S3, SQS, the city file, the key store (the edge makes the
pseudonyms before the first write) and the webhook tokens' digests. No pyarrow, no
DataSketches."""

from __future__ import annotations

import time
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import EventHandler, FunctionApp
from citypipe.entrypoints.drain import drained
from citypipe.ports import ApiKeys, KeyStore, WebhookTokens
from citypipe.service.buffer import Batcher
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe.service.poll import Poller  # a city that polls builds its poller at cold start
from citypipe.settings import Settings

if TYPE_CHECKING:
    from citypipe.service.optout_http import OptOutRate


def build(
    deps: Deps,
    keys: KeyStore,
    tokens: WebhookTokens,
    poller: Poller | None = None,
    buffered: bool = False,
) -> FunctionApp:
    """``poller``: the hub APIs the city polls, at each tick (None: it polls none);
    ``buffered``: webhook requests handed to the queue, written in batches by its consumer
    (which writes the buffered requests it is given either way)."""
    consumer = stage_consumer(Function.INGEST, deps, partial(ingest_drop, keys=keys))
    batcher = Batcher(deps)  # the container's: its index of the manifests read
    consumer.batcher = batcher.take
    return FunctionApp(
        consumer=consumer,
        http=_webhook(deps, tokens, keys, batcher if buffered else None),
        iot=_iot(deps, keys),
        schedule=_schedule(poller),
        drain=lambda: drained(consumer),
    )


# Each route's own code (the webhook's tokens and opt-outs, an IoT rule's payloads, the
# poller's tick) is loaded by the first event it takes, not by the cold start: a container
# SQS wakes never takes a request (docs/decisions/0105).


def _webhook(
    deps: Deps, tokens: WebhookTokens, keys: KeyStore, batcher: Batcher | None
) -> EventHandler:
    @cache
    def rate() -> OptOutRate:  # residents' opt-outs this container takes an hour
        from citypipe.service.optout_http import OptOutRate

        return OptOutRate()

    def http(event: dict[str, Any]) -> dict[str, Any]:
        from citypipe.entrypoints.http import webhook

        return webhook(deps, tokens, keys, rate(), event, batcher)

    return http


def _iot(deps: Deps, keys: KeyStore) -> EventHandler:
    def iot(event: dict[str, Any]) -> dict[str, Any]:
        from citypipe.entrypoints.iot import iot_rule

        return iot_rule(deps, keys, event)

    return iot


def _schedule(poller: Poller | None) -> EventHandler:
    def schedule(event: dict[str, Any]) -> dict[str, Any]:
        from citypipe.entrypoints.polls import polled

        return polled(poller, event)

    return schedule


def poller_from(settings: Settings, deps: Deps, keys: KeyStore) -> Poller | None:
    """The poller of a city that polls hub APIs (``sources.<s>.poll``), else None."""
    if not any(source.poll for source in deps.city.sources.values()):
        return None
    from citypipe.adapters.http import UrllibHttp

    api_keys = api_keys_from(settings, deps)
    return Poller(deps, keys, UrllibHttp(), api_keys, time.sleep, settings.poll.budget_s)


def api_keys_from(settings: Settings, deps: Deps) -> ApiKeys:
    """The polled APIs' keys, in the stack's keys bucket by default."""
    city = deps.city.slug
    if settings.poll.keys == "object":
        from citypipe.adapters.apikeys import ObjectApiKeys

        return ObjectApiKeys(deps.store, deps.names.keys_bucket(), city)
    if settings.poll.keys == "secretsmanager":
        from citypipe.adapters.apikeys import SecretsManagerApiKeys
        from citypipe.adapters.clients import secretsmanager_client

        return SecretsManagerApiKeys(
            secretsmanager_client(settings.service("secrets")), settings.keys.secret_prefix, city
        )
    from citypipe.adapters.apikeys import FileApiKeys

    return FileApiKeys(settings.poll.directory / city)


def tokens_from(settings: Settings, deps: Deps) -> WebhookTokens:
    """The digests of the hubs' tokens, in the stack's keys bucket by default."""
    city = deps.city.slug
    if settings.webhook.tokens == "object":
        from citypipe.adapters.tokens import ObjectWebhookTokens

        return ObjectWebhookTokens(deps.store, deps.names.keys_bucket(), city)
    if settings.webhook.tokens == "secretsmanager":
        from citypipe.adapters.clients import secretsmanager_client
        from citypipe.adapters.tokens import SecretsManagerWebhookTokens

        return SecretsManagerWebhookTokens(
            secretsmanager_client(settings.service("secrets")), settings.keys.secret_prefix, city
        )
    return file_tokens(settings, city)


def file_tokens(settings: Settings, city: str) -> WebhookTokens:
    """A laptop's token digests, in a local directory."""
    from citypipe.adapters.tokens import FileWebhookTokens

    return FileWebhookTokens(settings.webhook.directory / city)


@cache
def cold_start() -> FunctionApp:
    settings = Settings()
    deps = deps_from(settings)
    keys = key_store_from(settings, deps)
    tokens = tokens_from(settings, deps)
    poller = poller_from(settings, deps, keys)
    return build(deps, keys, tokens, poller, settings.webhook.buffered)
