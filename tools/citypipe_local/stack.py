"""Provisioning a city stack on a local S3/SQS backend: zone buckets and function queues.

``up`` is idempotent (running it twice changes nothing) and ``down`` removes everything.
On AWS the same resources come from serverless.yml; this is for embedded/LocalStack and
for S3/SQS providers without CloudFormation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from citypipe.adapters.boto import error_code
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.settings import BackendSettings, StackSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclass(frozen=True)
class Clients:
    """The two clients provisioning uses."""

    s3: S3Client
    sqs: SQSClient


def make_clients(backend: BackendSettings) -> Clients:
    return Clients(s3_client(backend), sqs_client(backend))


DLQ_RETENTION_S = 14 * 24 * 3600
QUEUE_RETENTION_S = 4 * 24 * 3600


def _lifecycle(days: int | None) -> dict[str, Any] | None:
    if days is None:
        return None
    return {
        "Rules": [
            {
                "ID": "citypipe-retention",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }


def public_read_policy(bucket: str) -> str:
    """Read access for everyone to the objects of a bucket: the open zone."""
    statement = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


def _bucket(clients: Clients, name: str, region: str, days: int | None, public: bool) -> None:
    s3 = clients.s3
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except ClientError as exc:
        if error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": not public,
            "RestrictPublicBuckets": not public,
        },
    )
    if public:  # anyone may read the open zone (the portal, the data); nobody may list it
        s3.put_bucket_policy(Bucket=name, Policy=public_read_policy(name))
    lifecycle = _lifecycle(days)
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=lifecycle)  # type: ignore[arg-type]
    else:
        s3.delete_bucket_lifecycle(Bucket=name)
    s3.put_bucket_tagging(
        Bucket=name, Tagging={"TagSet": [{"Key": "citypipe:zone", "Value": name.rsplit("-", 1)[1]}]}
    )


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


def up(city: City, names: StackNames, clients: Clients, settings: StackSettings) -> dict[str, Any]:
    for zone in Zone:
        days = city.retention_days.get(zone)
        _bucket(clients, names.bucket(zone), city.region, days, public=zone is Zone.OPEN)
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
    return describe(names, clients)


def describe(names: StackNames, clients: Clients) -> dict[str, Any]:
    """What exists of the stack, comparable between runs (used to show ``up`` is idempotent)."""
    state: dict[str, Any] = {"buckets": {}, "queues": {}}
    for zone in Zone:
        name = names.bucket(zone)
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


def down(names: StackNames, clients: Clients) -> None:
    for zone in Zone:
        name = names.bucket(zone)
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
    """(name, url) of the stack's queues and DLQs that exist."""
    for function in Function:
        for name in (names.queue(function), names.dlq(function)):
            try:
                yield name, clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                if error_code(exc) not in _NO_QUEUE:
                    raise
