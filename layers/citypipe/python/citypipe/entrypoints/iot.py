"""AWS IoT Core rules that invoke ingest directly (a Lambda action): the rule's output is one
payload — a device's JSON, or a LoRaWAN uplink with its decoder's ``transformed_message`` —
with the MQTT topic the rule adds (``SELECT *, topic() AS citypipe_topic FROM ...``).

A rule invokes ingest asynchronously: an invocation that fails (a backend away, a bug) is
tried twice more by Lambda, then recorded in the stack's IoT failures queue (the function's
``OnFailure`` destination), as is a rule's output it could not hand to Lambda at all (the
rule's error action): each message there is one payload dead-lettered at ingest, counted
in the books (decision 0085). ``failure_reason`` says which."""

from __future__ import annotations

import json
import time
from typing import Any

from citypipe.core.decode import iot_payload
from citypipe.core.formats import FORMATS
from citypipe.entrypoints.events import IOT_TOPIC
from citypipe.ports import KeyStore
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.kernel import Deps


def iot_rule(deps: Deps, keys: KeyStore, event: dict[str, Any]) -> dict[str, Any]:
    """Through the edge's one entrance, as the webhook: the counts, never the payload, are
    returned."""
    started = time.perf_counter()
    document = {k: v for k, v in event.items() if k != IOT_TOPIC}
    payload = iot_payload(document, str(event[IOT_TOPIC]), deps.clock.now().timestamp())
    admitted = admit(deps, keys, Inbound([payload], Route.IOT_RULE, FORMATS["aws-iot"]))
    return {
        "accepted": admitted.counts.accepted,
        "duplicates": admitted.counts.duplicates,
        "quarantined": dict(admitted.normalized.reasons),
        "seconds": round(time.perf_counter() - started, 3),
    }


# What Lambda's on-failure record says of an event (``requestContext.condition``), as AWS
# documents its invocation records; a rule's error action message has ``failures``.
RULE_ACTION_FAILED = "rule_action_failed"
UNREADABLE = "unreadable"


def failure_reason(body: str) -> str:
    """Why a message of the IoT failures queue is there: Lambda's condition for an event
    that failed (``RetriesExhausted``, ``EventAgeExceeded``), ``rule_action_failed`` for a
    rule's error action, ``unreadable`` for anything else. Never a value of the payload."""
    try:
        record = json.loads(body)
    except ValueError:
        return UNREADABLE
    if not isinstance(record, dict):
        return UNREADABLE
    context = record.get("requestContext")
    if isinstance(context, dict) and isinstance(record.get("requestPayload"), dict):
        condition = context.get("condition")
        return condition if isinstance(condition, str) and condition.isalnum() else UNREADABLE
    if isinstance(record.get("failures"), list) and "base64OriginalPayload" in record:
        return RULE_ACTION_FAILED
    return UNREADABLE
