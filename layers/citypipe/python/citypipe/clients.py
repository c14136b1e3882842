"""boto3 clients for a backend: the one place that knows endpoints and credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from citypipe.settings import BackendSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Clients:
    s3: S3Client
    sqs: SQSClient
    secretsmanager: SecretsManagerClient


def make_clients(backend: BackendSettings) -> Clients:
    custom = backend.endpoint_url is not None
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 5},
        max_pool_connections=32,
        s3={"addressing_style": "path"} if custom else {},
        # Non-AWS S3 (Scaleway, moto, LocalStack) rejects the newer default checksums.
        request_checksum_calculation="when_required" if custom else "when_supported",
        response_checksum_validation="when_required" if custom else "when_supported",
    )
    session = boto3.session.Session(
        aws_access_key_id=backend.access_key_id,
        aws_secret_access_key=backend.secret_access_key,
        region_name=backend.region,
    )
    common: dict[str, Any] = {"endpoint_url": backend.endpoint_url, "config": config}
    return Clients(
        s3=session.client("s3", **common),
        sqs=session.client("sqs", **common),
        secretsmanager=session.client("secretsmanager", **common),
    )
