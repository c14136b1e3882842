"""KeyStore adapters: objects in a private keys bucket (every cloud; the default), Secrets
Manager (an option on AWS), a local directory (a laptop only: not shared between
containers)."""

from __future__ import annotations

import os
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from citypipe.adapters.boto import NOT_FOUND, classified, error_code
from citypipe.domain.errors import KeyDestroyedError, NotFoundError
from citypipe.domain.naming import StackNames
from citypipe.ports import KeyStore, ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

SECRET_BYTES = 32
HORIZON = "destroyed-before"  # how far secrets were destroyed: those days stay refused
# Days before the first destruction searched for secrets: longer than any key retention
# (at most 31 days) plus the days a stack may run before its first hourly job.
LOOKBACK_DAYS = 62
# A secret already destroyed: not found, or (briefly, while Secrets Manager finishes a forced
# deletion) refused as "marked for deletion".
GONE = NOT_FOUND | {"InvalidRequestException"}


class ObjectKeyStore(KeyStore):
    """One object a day, ``secrets/<city>/<day>.key``, in a private, unversioned keys bucket.

    The one key store that works on every S3-API cloud: a conditional put makes concurrent
    containers agree on a day's bytes (the first writer wins; the others read what it
    wrote), and in an unversioned bucket a delete is destruction — no restorable copy, as
    Scaleway's Secret Manager would keep for 7 days. The horizon (``horizon/<city>``,
    outside the lifecycle rule that expires old secrets as a safety net) is written before
    any secret is deleted, so no container creates a destroyed day again. A warm container
    keeps a secret at most ``CACHE_S`` after it was read.
    """

    CACHE_S = 300.0

    def __init__(self, store: ObjectStore, bucket: str, city: str) -> None:
        self.store = store
        self.bucket = bucket
        names = StackNames(city)
        self.prefix = names.key_object_prefix()
        self.horizon_key = names.key_horizon_object()
        self.names = names

    def _key(self, day: date) -> str:
        return f"{self.prefix}{day.isoformat()}.key"

    def _secret(self, day: date) -> bytes:
        key = self._key(day)
        try:
            secret = self.store.get(self.bucket, key).body
        except NotFoundError:
            secret = self._create(day, key)
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"{self.bucket}/{key} is not a {SECRET_BYTES}-byte secret")
        return secret

    def _create(self, day: date, key: str) -> bytes:
        """The day's first secret, unless the day was destroyed — checked again after the
        write, so a secret created while the hourly job destroyed its day does not survive."""
        if self._refused(day):
            raise KeyDestroyedError(day.isoformat())
        created = self.store.put_if_absent(self.bucket, key, secrets.token_bytes(SECRET_BYTES))
        if created.created and self._refused(day):
            self.store.delete(self.bucket, key)
            raise KeyDestroyedError(day.isoformat())
        return self.store.get(self.bucket, key).body

    def _lasting_secret(self, name: str) -> bytes:
        key = self.names.lasting_secret_object(name)
        try:
            return _checked(self.store.get(self.bucket, key).body, key)
        except NotFoundError:
            self.store.put_if_absent(self.bucket, key, secrets.token_bytes(SECRET_BYTES))
            return _checked(self.store.get(self.bucket, key).body, key)

    def _refused(self, day: date) -> bool:
        horizon = self._destroyed_before()  # the backend's, never a remembered one
        return horizon is not None and day < horizon

    def _destroy(self, day: date, previous_horizon: date | None) -> int:
        """Delete every secret of a day before ``day``: a listing of the city's prefix
        (a bucket listing is grantable per prefix, unlike Secrets Manager's)."""
        destroyed = 0
        for info in self.store.list(self.bucket, self.prefix):
            stem = info.key.removeprefix(self.prefix).removesuffix(".key")
            try:
                secret_day = date.fromisoformat(stem)
            except ValueError:
                continue
            if secret_day < day:
                self.store.delete(self.bucket, info.key)
                destroyed += 1
        return destroyed

    def _destroyed_before(self) -> date | None:
        try:
            return date.fromisoformat(self.store.get(self.bucket, self.horizon_key).body.decode())
        except NotFoundError:
            return None

    def _set_destroyed_before(self, day: date) -> None:
        self.store.put(self.bucket, self.horizon_key, day.isoformat().encode())


def _checked(secret: bytes, where: str) -> bytes:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"{where} is not a {SECRET_BYTES}-byte secret")
    return secret


def _linked(path: Path, content: bytes) -> None:
    """Create ``path`` holding ``content`` unless it exists (``link`` is atomic: concurrent
    workers agree on the first writer's bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".tmp{os.getpid()}-{secrets.token_hex(4)}")
    tmp.write_bytes(content)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class FileKeyStore(KeyStore):
    """One file per day, created with ``link`` so concurrent workers agree on the bytes.
    Shared only by the processes of one machine: never a cloud deployment's store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.key"

    def _secret(self, day: date) -> bytes:
        path = self._path(day)
        if not path.exists():
            _linked(path, secrets.token_bytes(SECRET_BYTES))
        return path.read_bytes()

    def _lasting_secret(self, name: str) -> bytes:
        path = self.directory / f"{name}.secret"  # not *.key: never destroyed with the days
        if not path.exists():
            _linked(path, secrets.token_bytes(SECRET_BYTES))
        return _checked(path.read_bytes(), str(path))

    def _destroy(self, day: date, previous_horizon: date | None) -> int:
        destroyed = 0
        for path in self.directory.glob("*.key"):
            if date.fromisoformat(path.stem) < day:
                path.unlink()
                destroyed += 1
        return destroyed

    def _destroyed_before(self) -> date | None:
        path = self.directory / HORIZON
        return date.fromisoformat(path.read_text().strip()) if path.exists() else None

    def _set_destroyed_before(self, day: date) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{HORIZON}.{os.getpid()}-{secrets.token_hex(4)}"
        tmp.write_text(day.isoformat())
        tmp.replace(self.directory / HORIZON)


class SecretsManagerKeyStore(KeyStore):
    """One secret a day, ``<prefix>/<day>`` (``prefix`` from ``naming.key_secrets_prefix``),
    created idempotently; the horizon is the secret ``<prefix>/destroyed-before``."""

    CACHE_S = 300.0  # a warm container forgets a secret within 5 minutes of its destruction

    def __init__(self, client: SecretsManagerClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _name(self, day: date) -> str:
        return f"{self.prefix}/{day.isoformat()}"

    @classified
    def _secret(self, day: date) -> bytes:
        name = self._name(day)
        try:
            secret = self.client.get_secret_value(SecretId=name)["SecretBinary"]
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            horizon = self._destroyed_before()  # the backend's, never a remembered one
            if horizon is not None and day < horizon:
                raise KeyDestroyedError(day.isoformat()) from None
            try:
                self.client.create_secret(Name=name, SecretBinary=secrets.token_bytes(SECRET_BYTES))
            except ClientError as create_exc:
                if error_code(create_exc) != "ResourceExistsException":
                    raise
            secret = self.client.get_secret_value(SecretId=name)["SecretBinary"]
        return secret

    @classified
    def _lasting_secret(self, name: str) -> bytes:
        name = f"{self.prefix}/{name}"
        try:
            return self.client.get_secret_value(SecretId=name)["SecretBinary"]
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
        try:
            self.client.create_secret(Name=name, SecretBinary=secrets.token_bytes(SECRET_BYTES))
        except ClientError as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
        return self.client.get_secret_value(SecretId=name)["SecretBinary"]

    @classified
    def _destroyed_before(self) -> date | None:
        try:
            value = self.client.get_secret_value(SecretId=f"{self.prefix}/{HORIZON}")
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            return None
        return date.fromisoformat(value["SecretString"])

    @classified
    def _set_destroyed_before(self, day: date) -> None:
        name = f"{self.prefix}/{HORIZON}"
        try:
            self.client.put_secret_value(SecretId=name, SecretString=day.isoformat())
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            self.client.create_secret(Name=name, SecretString=day.isoformat())

    @classified
    def _destroy(self, day: date, previous_horizon: date | None) -> int:
        """Delete the daily secrets by name, from a week before the previous horizon (or
        LOOKBACK_DAYS when there was none) up to ``day``: no ListSecrets, which IAM grants
        only on every secret of the account. The week again covers a run that stopped
        half-way; a day without a secret costs one DescribeSecret."""
        start = (previous_horizon or day - timedelta(days=LOOKBACK_DAYS)) - timedelta(days=7)
        destroyed = 0
        for offset in range((day - start).days):
            secret_day = start + timedelta(days=offset)
            name = self._name(secret_day)
            try:  # a forced delete of a missing secret succeeds: look first, to count
                if "DeletedDate" in self.client.describe_secret(SecretId=name):
                    continue
                self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            except ClientError as exc:
                if error_code(exc) not in GONE:
                    raise
            else:
                destroyed += 1
        return destroyed
