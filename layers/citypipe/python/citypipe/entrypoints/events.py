"""What platforms deliver: which kind of event it is, and claim checks (Message) from
queue bodies."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from citypipe.domain.errors import TerminalError
from citypipe.domain.model import Message

# The names a queue message's shape keeps where it is no claim check (``core.shape``): a claim
# check's, and an S3 event notification's.
CLAIM_CHECK_NAMES = frozenset(Message.model_fields) | {
    "Records", "eventVersion", "eventSource", "awsRegion", "eventTime", "eventName",
    "userIdentity", "principalId", "requestParameters", "sourceIPAddress", "responseElements",
    "x-amz-request-id", "x-amz-id-2", "s3", "s3SchemaVersion", "configurationId", "name",
    "ownerIdentity", "arn", "object", "eTag", "size", "sequencer", "versionId", "Event",
    "Service", "Time", "Bucket", "RequestId", "HostId",
}  # fmt: skip


def _from_s3_record(record: dict[str, Any], city: str) -> Message:
    s3 = record["s3"]
    key = unquote_plus(s3["object"]["key"])
    ext = key.rsplit("/", 1)[-1].split(".", 1)[-1] if "." in key else ""
    stage = key.split("/", 1)[0]
    fmt = key.split("/")[2] if stage == "inbox" and key.count("/") >= 3 else ext
    return Message(
        city=city,
        stage=stage,
        bucket=s3["bucket"]["name"],
        key=key,
        etag=str(s3["object"].get("eTag", "")).strip('"'),
        format=fmt,
        trace_id=str(record.get("responseElements", {}).get("x-amz-request-id", "")),
    )


def parse_messages(body: str, city: str) -> list[Message]:
    """A queue body: our claim check, or an S3 event notification (where a cloud has them).

    Raises TerminalError('invalid_message') for anything else: retrying cannot help.
    """
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise TerminalError("invalid_message", f"not JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        try:
            return [
                _from_s3_record(r, city)
                for r in document["Records"]
                if str(r.get("eventName", "")).startswith("ObjectCreated")
            ]
        except KeyError as exc:  # the name looked up: an S3 notification's, never the body's
            raise TerminalError("invalid_message", f"S3 notification without {exc}") from None
        except (TypeError, ValidationError):
            raise TerminalError("invalid_message", "S3 notification of the wrong shape") from None
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return []
    try:
        message = Message.model_validate(document)
    except ValidationError as exc:
        raise TerminalError("invalid_message", str(exc.errors()[0]["msg"])) from None
    if message.city != city:
        raise TerminalError("wrong_city", f"a message for another city reached {city!r}")
    return [message]


def is_http(event: dict[str, Any]) -> bool:
    """An API Gateway (REST 1.0, HTTP API 2.0) or Scaleway HTTP event."""
    return "requestContext" in event or "httpMethod" in event or "rawPath" in event


def is_schedule(event: dict[str, Any]) -> bool:
    """An EventBridge scheduled event."""
    return event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"


def fired_at(event: dict[str, Any], now: datetime) -> datetime:
    """When a schedule fired: its event's time, ``now`` where it does not say (a CRON POST)."""
    return datetime.fromisoformat(str(event.get("time") or now.isoformat()).replace("Z", "+00:00"))


IOT_TOPIC = "citypipe_topic"  # what the city's IoT rule adds: SELECT *, topic() AS citypipe_topic


def is_iot_rule(event: dict[str, Any]) -> bool:
    """An AWS IoT Core rule's Lambda action, its SQL adding the MQTT topic as
    ``citypipe_topic`` (a device's JSON names its device only by the topic it was sent on)."""
    return isinstance(event.get(IOT_TOPIC), str)


# What the CRON triggers of a Scaleway deployment POST (their fixed JSON inputs): export's
# hourly job, ingest's poller tick, ingest's queue drained (``entrypoints.drain``).
CRON_BODY: dict[str, str] = {"citypipe": "hourly"}
POLL_CRON_BODY: dict[str, str] = {"citypipe": "poll"}
DRAIN_CRON_BODY: dict[str, str] = {"citypipe": "drain"}


def is_cron_body(body: str, *bodies: dict[str, str]) -> bool:
    """Whether a POST is one of these CRON inputs (none given: the hourly job's or the
    poller's)."""
    try:
        return json.loads(body) in (bodies or (CRON_BODY, POLL_CRON_BODY))
    except ValueError:
        return False
