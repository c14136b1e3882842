"""boto3 clients for a backend: the one place that knows endpoints and credentials.

One function per service, so a function's composition root creates only the clients it
uses (ingest never creates a Secrets Manager client). Clients are thread-safe and meant
to be created once per container, at cold start. They are botocore's own clients (what
boto3 hands out too): boto3's resource layer is unused, and importing it costs a cold
start ~100 ms (s3transfer, its managers). A process creates its clients from one botocore
session, so the service models and endpoint rules are read once per process, not once per
client (a local runner's worker plays four functions; their cold starts share them).

No botocore feature newer than the oldest the library supports (pyproject's floor; on AWS,
whatever the Lambda runtime carries, since the layer leaves the SDK out) is required: the
checksum settings came with botocore 1.36 and are set only where the SDK knows them
(``checksum_settings``); an older one computes no checksum unless an operation requires it,
which is what the settings ask of it anyway on non-AWS endpoints, and the object store
sends Content-MD5 itself where the SDK sends no checksum (``S3ObjectStore``).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from citypipe.settings import BackendSettings

if TYPE_CHECKING:
    from botocore.session import Session
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


_creating = threading.Lock()  # a botocore session is not thread-safe; its clients are


@cache
def session() -> Session:
    """This process's botocore session (made on first use, never at import: botocore's
    session and config modules bring urllib3, http.client and email, ~100 ms of a cold
    import that a composition root pays only when it makes its first client)."""
    from botocore.session import get_session

    return get_session()


def checksum_settings(custom: bool) -> dict[str, Any]:
    """The checksum settings of a client, on a botocore that has them (>= 1.36; older ones
    raise TypeError on them, and compute checksums only when an operation requires it).
    Non-AWS S3 (Scaleway, moto, LocalStack) rejects the newer default checksums."""
    from botocore.config import Config

    if "request_checksum_calculation" not in Config.OPTION_DEFAULTS:
        return {}
    when = "when_required" if custom else "when_supported"
    return {"request_checksum_calculation": when, "response_checksum_validation": when}


def _client(service: str, backend: BackendSettings) -> Any:
    from botocore.config import Config

    custom = backend.endpoint_url is not None
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 5},
        max_pool_connections=32,
        s3={"addressing_style": "path"} if custom else {},
        **checksum_settings(custom),
    )
    with _creating:
        return session().create_client(
            service,
            region_name=backend.region,  # None: the platform's (AWS_REGION on Lambda)
            endpoint_url=backend.endpoint_url,
            aws_access_key_id=backend.access_key_id,
            aws_secret_access_key=backend.secret_access_key,
            config=config,
        )


def s3_client(backend: BackendSettings) -> S3Client:
    client: S3Client = _client("s3", backend)
    return client


def sqs_client(backend: BackendSettings) -> SQSClient:
    client: SQSClient = _client("sqs", backend)
    return client


def secretsmanager_client(backend: BackendSettings) -> SecretsManagerClient:
    client: SecretsManagerClient = _client("secretsmanager", backend)
    return client
