"""The key store of the functions that hold daily secrets: ingest (the edge makes the
pseudonyms) and export (the hourly job destroys old secrets)."""

from __future__ import annotations

from citypipe.adapters.keys import FileKeyStore, ObjectKeyStore, SecretsManagerKeyStore
from citypipe.ports import KeyStore
from citypipe.service.kernel import Deps
from citypipe.settings import Settings


class KeyStoreRefusedError(ValueError):
    """A key store that containers would not share: each would make its own secrets, so
    one device would get several pseudonyms a day and be counted several times."""


def key_store_from(settings: Settings, deps: Deps) -> KeyStore:
    """The configured key store, on the stack's own object storage by default."""
    city = deps.city.slug
    if settings.keys.store == "object":
        return ObjectKeyStore(deps.store, deps.names.keys_bucket(), city)
    if settings.keys.store == "secretsmanager":
        from citypipe.adapters.clients import secretsmanager_client

        return SecretsManagerKeyStore(
            secretsmanager_client(settings.service("secrets")),
            deps.names.secret_keys_prefix(settings.keys.secret_prefix),
        )
    if settings.stack.deployment != "local":
        raise KeyStoreRefusedError(
            "CITYPIPE_KEYS__STORE=file keeps secrets on one machine's disk, which the "
            "containers of a cloud deployment do not share: use 'object' (the stack's keys "
            "bucket) or 'secretsmanager'"
        )
    return FileKeyStore(settings.keys.directory / city)
