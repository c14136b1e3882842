"""The key store of the functions that hold daily secrets: ingest (the edge makes the
pseudonyms) and export (the hourly job destroys old secrets)."""

from __future__ import annotations

from citypipe.adapters.keys import FileKeyStore, SecretsManagerKeyStore
from citypipe.domain.city import City
from citypipe.ports import KeyStore
from citypipe.settings import Settings


def key_store_from(settings: Settings, city: City) -> KeyStore:
    if settings.keys.store == "secretsmanager":
        from citypipe.adapters.clients import secretsmanager_client

        return SecretsManagerKeyStore(
            secretsmanager_client(settings.backend), f"{settings.keys.secret_prefix}/{city.city}"
        )
    return FileKeyStore(settings.keys.directory / city.city)
