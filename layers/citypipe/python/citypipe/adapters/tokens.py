"""WebhookTokens adapters: objects in the stack's keys bucket (every cloud; the default),
Secrets Manager (an option on AWS), a local directory (a laptop).

All keep digests only: ``{"sha256": [newest, previous]}`` per source.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from citypipe.adapters.boto import NOT_FOUND, classified, error_code
from citypipe.domain.errors import NotFoundError
from citypipe.domain.naming import StackNames
from citypipe.ports import ObjectStore, WebhookTokens

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def _document(digests: list[str]) -> str:
    return json.dumps({"sha256": digests})


def _digests_of(document: str) -> list[str]:
    value: Any = json.loads(document).get("sha256", [])
    return [str(d) for d in value] if isinstance(value, list) else []


class ObjectWebhookTokens(WebhookTokens):
    """One object a source, ``naming.webhook_token_object(city, source)``, in the stack's
    private keys bucket: the same store on every cloud. ingest reads it (cached for a
    minute: a revoked token stops working within one); the operator's ``citypipe
    webhook-token`` writes it."""

    CACHE_S = 60.0

    def __init__(self, store: ObjectStore, bucket: str, city: str) -> None:
        self.store = store
        self.bucket = bucket
        self.names = StackNames(city)

    def _digests(self, source: str) -> list[str]:
        try:
            body = self.store.get(self.bucket, self.names.webhook_token_object(source)).body
        except NotFoundError:
            return []  # no token minted for this source: every request is refused
        return _digests_of(body.decode())

    def _set_digests(self, source: str, digests: list[str]) -> None:
        key = self.names.webhook_token_object(source)
        self.store.put(self.bucket, key, _document(digests).encode(), "application/json")


class FileWebhookTokens(WebhookTokens):
    """One file a source, ``<directory>/<source>.json``, readable by its owner only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _digests(self, source: str) -> list[str]:
        path = self.directory / f"{source}.json"
        return _digests_of(path.read_text()) if path.exists() else []

    def _set_digests(self, source: str, digests: list[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{source}.{os.getpid()}-{secrets.token_hex(4)}"
        tmp.write_text(_document(digests))
        tmp.chmod(0o600)
        tmp.replace(self.directory / f"{source}.json")


class SecretsManagerWebhookTokens(WebhookTokens):
    """One secret a source, ``StackNames.webhook_token_secret(prefix, source)``.

    ingest reads them (cached for a minute: a revoked token stops working within one);
    the operator's ``citypipe webhook-token`` writes them with the operator's credentials.
    """

    CACHE_S = 60.0

    def __init__(self, client: SecretsManagerClient, prefix: str, city: str) -> None:
        self.client = client
        self.prefix = prefix
        self.city = city

    def _name(self, source: str) -> str:
        return StackNames(self.city).webhook_token_secret(self.prefix, source)

    @classified
    def _digests(self, source: str) -> list[str]:
        try:
            document = self.client.get_secret_value(SecretId=self._name(source))["SecretString"]
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            return []  # no token minted for this source: every request is refused
        return _digests_of(document)

    @classified
    def _set_digests(self, source: str, digests: list[str]) -> None:
        name = self._name(source)
        try:
            self.client.put_secret_value(SecretId=name, SecretString=_document(digests))
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            self.client.create_secret(
                Name=name,
                SecretString=_document(digests),
                Description=f"citypipe {self.city}: SHA-256 digests of {source}'s webhook tokens",
            )
