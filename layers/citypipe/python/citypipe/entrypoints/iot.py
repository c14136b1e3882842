"""AWS IoT Core rules that invoke ingest directly (a Lambda action): the rule's output is one
payload — a device's JSON, or a LoRaWAN uplink with its decoder's ``transformed_message`` —
with the MQTT topic the rule adds (``SELECT *, topic() AS citypipe_topic FROM ...``)."""

from __future__ import annotations

import json
import time
from typing import Any

from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.entrypoints.events import IOT_TOPIC
from citypipe.ports import KeyStore
from citypipe.service.edge import receive
from citypipe.service.stage import Deps


def iot_rule(deps: Deps, keys: KeyStore, event: dict[str, Any]) -> dict[str, Any]:
    """Through the edge, as the webhook: the counts, never the payload, are returned."""
    document = {k: v for k, v in event.items() if k != IOT_TOPIC}
    ctx = Context(received_at=deps.clock.now().timestamp(), topic=str(event[IOT_TOPIC]))
    started = time.perf_counter()
    payload = Payload(json.dumps(document).encode(), ctx)  # any JSON the rule gives: big ints too
    result = receive(deps, keys, FORMATS["aws-iot"], [payload]).normalized
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "quarantined": dict(result.reasons),
        "seconds": round(time.perf_counter() - started, 3),
    }
