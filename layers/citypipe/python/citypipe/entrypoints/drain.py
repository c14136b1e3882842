"""A queue drained on a schedule, as Lambda's SQS event source gathers a batch: Scaleway's
queue triggers deliver one message per POST, so there ingest's queue — the webhook's
buffered requests (``service.buffer``) and the claim checks of drops — is drained by a
CRON every minute instead, in batches of what came (decision 90)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from citypipe.domain.errors import TransientError
from citypipe.entrypoints.sqs import ClaimCheckConsumer
from citypipe.ports import ReceivedMessage
from citypipe.service.kernel import log

DRAIN_MESSAGES = 1000  # a batch: at most this many messages ...
DRAIN_BYTES = 6 * 1024 * 1024  # ... or bytes (as Lambda's event source: its 6 MB event)
DRAIN_BUDGET_S = 240.0  # batches begun within this much of the run (ingest's timeout: 300 s)


def sqs_event(messages: Sequence[ReceivedMessage], queue_arn: str, region: str) -> dict[str, Any]:
    """The SQS event Lambda's event source would deliver of these messages."""
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.attributes.get("SentTimestamp", "0"),
                    "SenderId": m.attributes.get("SenderId", "citypipe-local"),
                    "ApproximateFirstReceiveTimestamp": m.attributes.get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def gathered(consumer: ClaimCheckConsumer, queue: str) -> list[ReceivedMessage]:
    """One batch of the queue: what comes, ten a receive, up to the batch's count and bytes."""
    messages: list[ReceivedMessage] = []
    size = 0
    while len(messages) < DRAIN_MESSAGES and size < DRAIN_BYTES:
        more = consumer.deps.queue.receive(queue, 10)
        if not more:
            break
        messages += more
        size += sum(len(m.body) for m in more)
    return messages


def drained(consumer: ClaimCheckConsumer) -> dict[str, Any]:
    """The function's queue drained in batches, each through the consumer as an SQS event;
    what failed stays (visible again after its visibility timeout). Returns the counts."""
    deps = consumer.deps
    queue = deps.names.queue(consumer.function)
    started, batches, done, failed = time.monotonic(), 0, 0, 0
    while time.monotonic() - started < DRAIN_BUDGET_S:
        messages = gathered(consumer, queue)
        if not messages:
            break
        event = sqs_event(messages, deps.queue.arn(queue), "")
        answer = consumer.sqs(event)
        failures = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        acknowledged = [m.receipt_handle for m in messages if m.message_id not in failures]
        if acknowledged:
            try:
                deps.queue.delete(queue, acknowledged)
            except TransientError:
                # a batch slower than the visibility timeout: its receipts are stale and its
                # messages visible again. Carry on: they come back as duplicates, which the
                # batch's exactly-once effects (its manifest, its lineage) make nothing.
                log.warning("messages not deleted", extra={"function": consumer.function.value})
        batches, done, failed = batches + 1, done + len(acknowledged), failed + len(failures)
    return {"batches": batches, "done": done, "failed": failed}
