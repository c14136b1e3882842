"""ApiKeys adapters: objects in the stack's keys bucket (every cloud; the default),
Secrets Manager (an option on AWS), a local directory (a laptop). The poller reads them;
the operator's ``citypipe api-key`` writes them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from citypipe.adapters.boto import NOT_FOUND, classified, error_code
from citypipe.domain.errors import NotFoundError
from citypipe.domain.naming import StackNames
from citypipe.ports import ApiKeys, ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class ObjectApiKeys(ApiKeys):
    """One object a key, ``StackNames.api_key_object(name)``, in the private keys bucket."""

    def __init__(self, store: ObjectStore, bucket: str, city: str) -> None:
        self.store = store
        self.bucket = bucket
        self.names = StackNames(city)

    def get(self, name: str) -> str | None:
        try:
            return (
                self.store.get(self.bucket, self.names.api_key_object(name)).body.decode().strip()
            )
        except NotFoundError:
            return None

    def put(self, name: str, key: str) -> None:
        self.store.put(self.bucket, self.names.api_key_object(name), key.encode(), "text/plain")


class SecretsManagerApiKeys(ApiKeys):
    """One secret a key, ``StackNames.api_key_secret(prefix, name)``."""

    def __init__(self, client: SecretsManagerClient, prefix: str, city: str) -> None:
        self.client = client
        self.prefix = prefix
        self.names = StackNames(city)

    @classified
    def get(self, name: str) -> str | None:
        try:
            secret = self.client.get_secret_value(
                SecretId=self.names.api_key_secret(self.prefix, name)
            )
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            return None
        return secret["SecretString"].strip()

    @classified
    def put(self, name: str, key: str) -> None:
        secret = self.names.api_key_secret(self.prefix, name)
        try:
            self.client.put_secret_value(SecretId=secret, SecretString=key)
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            self.client.create_secret(
                Name=secret, SecretString=key, Description=f"citypipe: the {name} API key"
            )


class FileApiKeys(ApiKeys):
    """One file a key, ``<directory>/<name>``, readable by its owner only (a laptop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str) -> str | None:
        path = self.directory / name
        return path.read_text().strip() if path.exists() else None

    def put(self, name: str, key: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{name}.{os.getpid()}-{secrets.token_hex(4)}"
        tmp.write_text(key)
        tmp.chmod(0o600)
        tmp.replace(self.directory / name)
