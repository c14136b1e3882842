"""The Queue port on the SQS API over an injected boto3 client: AWS, Scaleway Queues, moto,
LocalStack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from citypipe.adapters.boto import classified
from citypipe.domain.errors import TransientError
from citypipe.ports import Queue, ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
