"""The key store of the functions that hold daily secrets: anonymize and the hourly job."""

from __future__ import annotations

from citypipe.adapters.keys import FileKeyStore, SecretsManagerKeyStore
from citypipe.domain.city import City
from citypipe.domain.naming import key_secrets_prefix
from citypipe.ports import KeyStore
from citypipe.settings import Settings


def key_store_from(settings: Settings, city: City) -> KeyStore:
    if settings.keys.store == "secretsmanager":
        from citypipe.adapters.clients import secretsmanager_client

        return SecretsManagerKeyStore(
            secretsmanager_client(settings.clients_backend()),
            key_secrets_prefix(settings.keys.secret_prefix, city.city),
        )
    return FileKeyStore(settings.keys.directory / city.city)
