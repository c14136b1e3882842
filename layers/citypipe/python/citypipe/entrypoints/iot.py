"""AWS IoT Core rules that invoke ingest directly (a Lambda action): the rule's output is one
payload — a device's JSON, or a LoRaWAN uplink with its decoder's ``transformed_message`` —
with the MQTT topic the rule adds (``SELECT *, topic() AS citypipe_topic FROM ...``)."""

from __future__ import annotations

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
