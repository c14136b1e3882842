"""S3 and SQS adapters over an injected boto3 client: AWS, Scaleway, moto, LocalStack."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from citypipe.domain import NotFoundError, TransientError
from citypipe.ports import (
    AlreadyExistsError,
    ObjectInfo,
    ObjectStore,
    Queue,
    ReceivedMessage,
    StoredObject,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

P = ParamSpec("P")
R = TypeVar("R")

_NOT_FOUND = {
    "NoSuchKey",
    "NoSuchBucket",
    "404",
    "NotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}
_TAKEN = {"PreconditionFailed", "412"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def classified(fn: Callable[P, R]) -> Callable[P, R]:
    """Map botocore errors to citypipe's: missing -> NotFoundError, the rest of the
    service and network failures -> TransientError (retry). Anything else propagates."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in _NOT_FOUND:
                raise NotFoundError(code) from exc
            if code in _TAKEN:
                raise AlreadyExistsError(code) from exc
            raise TransientError(f"{code}: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(str(exc)) from exc

    return wrapper


class S3ObjectStore(ObjectStore):
    def __init__(self, client: S3Client) -> None:
        self.client = client

    @classified
    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if if_absent:
            extra["IfNoneMatch"] = "*"
        response = self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return response["ETag"].strip('"')

    @classified
    def get(self, bucket: str, key: str) -> StoredObject:
        response = self.client.get_object(Bucket=bucket, Key=key)
        return StoredObject(key, response["ETag"].strip('"'), response["Body"].read())

    @classified
    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return ObjectInfo(
            key, response["ETag"].strip('"'), response["ContentLength"], response["LastModified"]
        )

    @classified
    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    @classified
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = [
            ObjectInfo(item["Key"], item["ETag"].strip('"'), item["Size"], item["LastModified"])
            for page in pages
            for item in page.get("Contents", [])
        ]
        return iter(sorted(found, key=lambda o: o.key))


class SqsQueue(Queue):
    def __init__(self, client: SQSClient) -> None:
        self.client = client
        self._urls: dict[str, str] = {}

    @classified
    def url(self, queue: str) -> str:
        if queue not in self._urls:
            self._urls[queue] = self.client.get_queue_url(QueueName=queue)["QueueUrl"]
        return self._urls[queue]

    @classified
    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        response = self.client.send_message_batch(QueueUrl=self.url(queue), Entries=entries)  # type: ignore[arg-type]
        failed = response.get("Failed", [])
        if failed:
            raise TransientError(f"{len(failed)} of {len(bodies)} messages not sent to {queue}")

    @classified
    def receive(self, queue: str, max_messages: int = 10, wait_s: int = 0) -> list[ReceivedMessage]:
        response = self.client.receive_message(
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
        )
        return [
            ReceivedMessage(
                m["MessageId"],
                m["ReceiptHandle"],
                m["Body"],
                {str(k): v for k, v in m.get("Attributes", {}).items()},
            )
            for m in response.get("Messages", [])
        ]

    @classified
    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            response = self.client.delete_message_batch(QueueUrl=self.url(queue), Entries=entries)  # type: ignore[arg-type]
            if response.get("Failed"):
                raise TransientError(f"could not delete {len(response['Failed'])} messages")

    @classified
    def depth(self, queue: str) -> tuple[int, int]:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url(queue),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    @classified
    def arn(self, queue: str) -> str:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url(queue), AttributeNames=["QueueArn"]
        )["Attributes"]
        return attributes["QueueArn"]
