"""ingest's composition root: S3, SQS, the city file and the webhook tokens' digests.
No pyarrow, no key store."""

from __future__ import annotations

from functools import cache

from citypipe.bootstrap import deps_from, stage_consumer
from citypipe.domain.model import Function
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.http import webhook
from citypipe.ports import WebhookTokens
from citypipe.service.ingest import ingest_drop
from citypipe.service.stage import Deps
from citypipe.settings import Settings


def build(deps: Deps, tokens: WebhookTokens) -> FunctionApp:
    return FunctionApp(
        consumer=stage_consumer(Function.INGEST, deps, ingest_drop),
        http=lambda event: webhook(deps, tokens, event),
    )


def tokens_from(settings: Settings, deps: Deps) -> WebhookTokens:
    """The digests of the hubs' tokens, in the stack's keys bucket by default."""
    city = deps.city.city
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
    return build(deps, tokens_from(settings, deps))
