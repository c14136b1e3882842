"""The embedded backend's moto server answers as moto does (backends/moto_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from citypipe_local.backends import Endpoint
from citypipe_local.backends.embedded import embedded

REGION = "eu-central-1"


def _queues(sqs: Any) -> dict[str, dict[str, str]]:
    """A plain queue, a FIFO queue with a policy, a dead-letter queue and a queue
    redriving to it with messages in flight: every kind of attribute, their answers."""
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"], "maxReceiveCount": 3}
    urls = {
        "plain": sqs.create_queue(QueueName="plain")["QueueUrl"],
        "fifo": sqs.create_queue(
            QueueName="ordered.fifo",
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "true",
                "Policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                "Action": "sqs:SendMessage",
                                "Resource": "*",
                            }
                        ],
                    }
                ),
                "KmsMasterKeyId": "alias/aws/sqs",
            },
        )["QueueUrl"],
        "redriving": sqs.create_queue(
            QueueName="redriving",
            Attributes={"RedrivePolicy": json.dumps(redrive), "MessageRetentionPeriod": "600"},
        )["QueueUrl"],
    }
    for n in range(25):
        sqs.send_message(QueueUrl=urls["redriving"], MessageBody=f"m{n}")
        sqs.send_message(QueueUrl=urls["fifo"], MessageBody=f"m{n}", MessageGroupId="g")
    sqs.receive_message(QueueUrl=urls["redriving"], MaxNumberOfMessages=10)
    sqs.send_message(QueueUrl=urls["fifo"], MessageBody="m0", MessageGroupId="g")  # deduped
    answers = {}
    for name, url in urls.items():
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        answers[name] = {k: v for k, v in got.items() if not k.endswith("Timestamp")}
        for asked in ("MessageRetentionPeriod", "ApproximateNumberOfMessages", "Policy"):
            one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[asked])
            answers[f"{name}-{asked}"] = one.get("Attributes", {})
    return answers


def _client(service: str, endpoint: Endpoint, config: Config | None = None) -> Any:
    backend = endpoint.settings
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=backend.endpoint_url,
        aws_access_key_id=backend.access_key_id,
        aws_secret_access_key=backend.secret_access_key,
        config=config,
    )


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, dict[str, str]]]:
    with embedded(REGION) as endpoint:
        yield _queues(_client("sqs", endpoint))


def test_queue_attributes_are_moto_s_own(served: dict[str, dict[str, str]]) -> None:
    with mock_aws():
        expected = _queues(boto3.client("sqs", region_name=REGION))
    assert served == expected
    assert served["redriving"]["ApproximateNumberOfMessagesNotVisible"] == "10"
    assert served["redriving"]["ApproximateNumberOfMessages"] == "15"
    assert served["fifo"]["ApproximateNumberOfMessages"] == "25"  # the resend deduplicated


def test_an_empty_object_is_written_though_botocore_expects_a_continue() -> None:
    """botocore sends ``Expect: 100-continue`` on every PutObject; an empty body (an
    opt-out's marker object) must not leave the request waiting for one (waitress, tried
    in decision 0108, did)."""
    with embedded(REGION) as endpoint:
        s3 = _client("s3", endpoint, Config(read_timeout=10, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="empty", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="empty", Key="marker", Body=b"", IfNoneMatch="*")
        assert s3.get_object(Bucket="empty", Key="marker")["Body"].read() == b""


def _receipts(sqs: Any) -> dict[str, Any]:
    """Receives, batch deletes (of a receipt already used, of one unknown, of an older
    receipt of a message received again) and a delayed message, with what the queue
    counts after each: what a replay's runner does to a queue."""
    url = sqs.create_queue(QueueName="taken", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(10)]
    )
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    answers: dict[str, Any] = {}
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=4)["Messages"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]  # visible again
    answers["received"] = [[m["Body"] for m in first], sorted(m["Body"] for m in again)]
    handles = [m["ReceiptHandle"] for m in first[:2]] + [again[-1]["ReceiptHandle"], "unknown"]
    for name in ("deleted", "deleted again"):
        entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles)]
        answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        answers[name] = [
            sorted(e["Id"] for e in answer.get("Successful", [])),
            sorted((e["Id"], e["Code"], e["SenderFault"]) for e in answer.get("Failed", [])),
        ]
        counted = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[*counted, "All"])
        answers[f"{name}: counts"] = {
            k: v for k, v in got["Attributes"].items() if k.startswith("Approximate")
        }
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    answers["left"] = sorted(m["Body"] for m in left)
    return answers


def test_receives_and_deletes_are_moto_s_own() -> None:
    """The queue looked through once per call (``queues_looked_at_once``) answers receives,
    batch deletes and counts as moto does."""
    with embedded(REGION) as endpoint:
        served = _receipts(_client("sqs", endpoint))
    with mock_aws():
        expected = _receipts(boto3.client("sqs", region_name=REGION))
    assert served == expected
    assert served["deleted"][1] == [("3", "ReceiptHandleIsInvalid", True)]
    assert served["deleted again"] == served["deleted"]  # deleted already: done
    assert served["deleted: counts"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert len(served["left"]) == 7


def test_sends_receives_and_deletes_at_once_lose_nothing_and_bring_nothing_back() -> None:
    """Senders and consumers at once, as the webhook's server and the runner's invocations
    use ingest's queue: every message received once and deleted, none lost (a send racing
    a delete), none back (two deletes at once), no call refused (``sqs_calls_one_at_a_time``)."""
    with embedded(REGION) as endpoint:
        sqs = _client("sqs", endpoint, Config(retries={"max_attempts": 1}, max_pool_connections=16))
        url = sqs.create_queue(QueueName="busy", Attributes={"VisibilityTimeout": "600"})[
            "QueueUrl"
        ]
        senders, batches = 6, 30
        bodies = {f"s{s}-{b}-{n}" for s in range(senders) for b in range(batches) for n in range(5)}

        def send(sender: int) -> None:
            for b in range(batches):
                entries = [{"Id": str(n), "MessageBody": f"s{sender}-{b}-{n}"} for n in range(5)]
                assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

        def consume() -> list[str]:
            seen: list[str] = []
            idle = 0
            while idle < 20:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                idle = 0 if got else idle + 1
                seen += [m["Body"] for m in got]
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)
                ]
                if entries:
                    assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")
            return seen

        with ThreadPoolExecutor(senders + 4) as pool:
            consumers = [pool.submit(consume) for _ in range(4)]
            for future in [pool.submit(send, s) for s in range(senders)]:
                future.result()
            received = [body for c in consumers for body in c.result()]
        received += consume()  # what the consumers left, had they stopped early
        assert sorted(received) == sorted(bodies)  # each once
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "0"
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_moto_without_what_is_patched_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sqs import models

    from citypipe_local.backends.moto_server import moto_as_patched

    moto_as_patched()  # the pinned moto has it all
    monkeypatch.delattr(models.Queue, "approximate_number_of_messages_delayed")
    with pytest.raises(SystemExit, match=r"Queue\.approximate_number_of_messages_delayed"):
        moto_as_patched()


def test_a_backend_that_stops_is_said_with_its_last_word(tmp_path: Any) -> None:
    import subprocess
    import sys

    from citypipe_local.backends.embedded import _up

    with (tmp_path / "said").open("w+b") as said:
        stopped = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit('no moto.sqs here')"], stderr=said
        )
        stopped.wait()
        with pytest.raises(RuntimeError, match=r"stopped: no moto\.sqs here"):
            _up(stopped, said, "http://127.0.0.1:9")
