"""ingest's composition root: S3, SQS, the city file, the key store (the edge makes the
pseudonyms before the first write) and the webhook tokens' digests. No pyarrow, no
DataSketches."""

from __future__ import annotations

from functools import cache, partial

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.http import webhook
from citypipe.entrypoints.iot import iot_rule
from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe.settings import Settings


def build(deps: Deps, keys: KeyStore, tokens: WebhookTokens) -> FunctionApp:
    return FunctionApp(
        consumer=stage_consumer(Function.INGEST, deps, partial(ingest_drop, keys=keys)),
        http=lambda event: webhook(deps, tokens, keys, event),
        iot=lambda event: iot_rule(deps, keys, event),
    )


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
    return build(deps, key_store_from(settings, deps), tokens_from(settings, deps))
