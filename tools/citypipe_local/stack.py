"""Provisioning a city stack on a local S3/SQS backend: zone buckets and function queues.

``up`` is idempotent (running it twice changes nothing) and ``down`` removes everything.
On AWS the same resources come from serverless.yml; this is for embedded/LocalStack and
for S3/SQS providers without CloudFormation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from citypipe.adapters.boto import error_code
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.adapters.keys import HORIZON
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.settings import BackendSettings, Settings, StackSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclass(frozen=True)
class Clients:
    """The two clients provisioning uses."""

    s3: S3Client
    sqs: SQSClient


def make_clients(backend: BackendSettings) -> Clients:
    """Both clients on one backend (moto, LocalStack, AWS)."""
    return Clients(s3_client(backend), sqs_client(backend))


def clients_for(settings: Settings) -> Clients:
    """Each client at its own service's endpoint (Scaleway: Object Storage and Queues)."""
    return Clients(s3_client(settings.service("storage")), sqs_client(settings.service("queues")))


DLQ_RETENTION_S = 14 * 24 * 3600
IOT_FAILURES_RETENTION_S = 24 * 3600  # IoT rules' raw events: a day, as the raw zone
QUEUE_RETENTION_S = 4 * 24 * 3600


Provider = Literal["aws", "scaleway"]


def _lifecycle(rules: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ID": f"citypipe-retention{'-' + prefix.strip('/') if prefix else ''}",
                "Status": "Enabled",
                "Filter": {"Prefix": prefix},
                "Expiration": {"Days": days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
            for prefix, days in rules
        ]
    }


@dataclass(frozen=True)
class Bucket:
    """What one bucket of the stack is: its retention, and what of it the public may read."""

    name: str
    tag: str
    expire: list[tuple[str, int]]  # (key prefix, days) lifecycle rules; none: kept
    public_prefix: str | None = None  # anonymous read of these keys (the open zone's)


def public_read_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Anonymous GetObject on the published prefix only: never a listing, never a write."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadOfPublishedData",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            }
        ],
    }


def _bucket(clients: Clients, bucket: Bucket, region: str, provider: Provider) -> None:
    s3 = clients.s3
    try:
        configuration: Any = {"LocationConstraint": region}  # Scaleway's regions too
        s3.create_bucket(Bucket=bucket.name, CreateBucketConfiguration=configuration)
    except ClientError as exc:
        if error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    s3.put_bucket_encryption(
        Bucket=bucket.name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    if provider == "aws":  # Scaleway has no PutPublicAccessBlock: buckets are private anyway
        public = bucket.public_prefix is not None
        s3.put_public_access_block(
            Bucket=bucket.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": not public,
                "RestrictPublicBuckets": not public,
            },
        )
    if bucket.public_prefix is not None:
        policy = public_read_policy(bucket.name, bucket.public_prefix)
        s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(policy, sort_keys=True))
    if bucket.expire:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name,
            LifecycleConfiguration=_lifecycle(bucket.expire),  # type: ignore[arg-type]
        )
    else:
        s3.delete_bucket_lifecycle(Bucket=bucket.name)
    s3.put_bucket_tagging(
        Bucket=bucket.name, Tagging={"TagSet": [{"Key": "citypipe:zone", "Value": bucket.tag}]}
    )


def buckets(city: City, names: StackNames) -> list[Bucket]:
    """The zone buckets and the keys bucket, as the city file says."""
    zones = [
        Bucket(
            names.bucket(zone),
            zone.value,
            [("", days)] if (days := city.retention_days.get(zone)) is not None else [],
            f"{Zone.OPEN.value}/{city.slug}/" if zone is Zone.OPEN else None,
        )
        for zone in Zone
    ]
    # Secrets are destroyed by the hourly job; the lifecycle rule is a safety net a day later.
    # The destruction horizon lives outside ``secrets/`` and never expires.
    keys = Bucket(names.keys_bucket(), "keys", [("secrets/", city.key_retention_days + 1)])
    return [*zones, keys]


def _queue(clients: Clients, name: str, attributes: dict[str, str]) -> str:
    sqs = clients.sqs
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    except ClientError as exc:
        if error_code(exc) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    return url


def up(
    city: City,
    names: StackNames,
    clients: Clients,
    settings: StackSettings,
    provider: Provider = "aws",
) -> dict[str, Any]:
    """Create or update the city's buckets and queues. ``provider`` "scaleway" makes only
    the calls Scaleway supports (no PutPublicAccessBlock)."""
    for bucket in buckets(city, names):
        _bucket(clients, bucket, city.region, provider)
    for function in Function:
        dlq_url = _queue(
            clients, names.dlq(function), {"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        )
        dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
        _queue(
            clients,
            names.queue(function),
            {
                "VisibilityTimeout": str(settings.visibility_timeout_s),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_S),
                "RedrivePolicy": json.dumps(redrive, sort_keys=True),
            },
        )
    if provider == "aws":  # where IoT rules invoke ingest
        retention = {"MessageRetentionPeriod": str(IOT_FAILURES_RETENTION_S)}
        _queue(clients, names.iot_failures(), retention)
    return describe(names, clients)


def describe(names: StackNames, clients: Clients) -> dict[str, Any]:
    """What exists of the stack, comparable between runs (used to show ``up`` is idempotent)."""
    state: dict[str, Any] = {"buckets": {}, "queues": {}}
    for name in _bucket_names(names):
        try:
            rules = clients.s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                continue
            rules = []
        state["buckets"][name] = {
            "expiration_days": [r.get("Expiration", {}).get("Days") for r in rules]
        }
    for name, url in _queues(names, clients):
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["VisibilityTimeout", "RedrivePolicy", "MessageRetentionPeriod"],
        )["Attributes"]
        state["queues"][name] = dict(sorted(attributes.items()))
    return state


def _bucket_names(names: StackNames) -> list[str]:
    return [*(names.bucket(zone) for zone in Zone), names.keys_bucket()]


def down(names: StackNames, clients: Clients) -> None:
    """Remove the stack: its buckets with every object (the keys bucket too: deleting it
    destroys every secret), and its queues."""
    for name in _bucket_names(names):
        try:
            pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=name)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    clients.s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]
            clients.s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
    for _, url in _queues(names, clients):
        clients.sqs.delete_queue(QueueUrl=url)


def _queues(names: StackNames, clients: Clients) -> Iterator[tuple[str, str]]:
    """(name, url) of the stack's queues, DLQs and IoT failures queue that exist."""
    for name in [*(n for f in Function for n in (names.queue(f), names.dlq(f))),
                 names.iot_failures()]:  # fmt: skip
        try:
            yield name, clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            if error_code(exc) not in NO_QUEUE:
                raise


def reset_file_keys(directory: Path) -> None:
    """A laptop's file key store made new for a new stack: its daily secrets and its horizon
    gone (a replay's earlier run destroyed them up to tomorrow), its release secret kept (so
    two runs publish the same noise)."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.suffix == ".key" or path.name == HORIZON:
            path.unlink()
