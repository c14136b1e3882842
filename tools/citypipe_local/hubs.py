"""The simulated hubs on real transports: captured messages published on an MQTT broker, or
posted to a webhook server, as the hubs would send them.

- ``MqttHub``: a publisher with a persistent session of its own (MQTT 5, QoS 1): what it
  publishes while the broker is down is kept and sent once the broker is back. Each
  message goes on its capture's topic, with its HTTP headers as user properties and its
  recorded arrival as ``citypipe-received-at`` (read only by a bridge set to
  ``arrival=property``: a replay).
- ``post``: a message to ``POST /ingest/{source}/{format}`` with the source's token, its
  topic in ``X-Citypipe-Topic`` (as an AWS IoT rule's HTTP action sends it) and the
  recorded arrival in ``X-Citypipe-Received-At`` (read only by a server started for a
  replay).

Where a capture has no topic (a city file that declares none for its source and format)
the message cannot travel either way: ``routed`` refuses up front rather than losing it.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from citypipe.core.decode import TOPIC_HEADER
from citypipe.domain.city import City, MqttRoute
from citypipe.ports import TOKEN_HEADER
from citypipe_bridge.mqtt import RECEIVED_AT
from citypipe_local.serve import RECEIVED_AT_HEADER


@dataclass(frozen=True)
class Captured:
    """One recorded hub message: when it arrived, where, what."""

    at: float
    topic: str
    body: bytes
    headers: dict[str, str]
    route: MqttRoute


def routed(city: City, lines: Iterable[tuple[str, bytes, int]]) -> Iterator[Captured]:
    """Captured messages (format, envelope, line number) with the source and format their topic is
    declared for. A message without a topic, or on a topic declared for another format,
    cannot be replayed over a transport: ValueError."""
    for fmt, line, _ in lines:
        envelope = orjson.loads(line)
        topic = envelope.get("topic")
        route = city.route(topic) if isinstance(topic, str) else None
        if route is None or route.format != fmt:
            raise ValueError(
                f"a {fmt} message on a topic the city file declares for no {fmt} source: "
                "declare the topic (sources.<source>.mqtt) to replay it over a transport"
            )
        body = envelope.get("body")
        data = base64.b64decode(envelope["body_base64"]) if body is None else body.encode()
        headers = {str(k): str(v) for k, v in (envelope.get("headers") or {}).items()}
        yield Captured(float(envelope["at"]), topic, data, headers, route)


class MqttHub:
    """A publisher with its own persistent session (client id ``client_id``)."""

    def __init__(self, host: str, port: int, client_id: str = "citypipe-replay-hubs") -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_queued_messages_set(0)  # keep everything while the broker is away
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 2)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.published = self.acknowledged = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.connect_async(host, port, clean_start=False, properties=properties)
        self.client.loop_start()
        if not self.connected.wait(30):  # messages go out in order once connected
            self.close()
            raise TimeoutError(f"no MQTT broker answered at {host}:{port}")

    def publish(self, message: Captured) -> None:
        """Publish (QoS 1); while the broker is away the client keeps it and sends it later."""
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [*message.headers.items(), (RECEIVED_AT, repr(message.at))]
        with self._lock:
            self.published += 1
        self.client.publish(message.topic, message.body, qos=1, properties=properties)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            self.acknowledged += 1

    def unacknowledged(self) -> int:
        """Messages the broker has not acknowledged yet (PUBACK)."""
        with self._lock:
            return self.published - self.acknowledged

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def post(
    host: str, port: int, message: Captured, token: str, timeout_s: float = 60
) -> tuple[int, dict[str, Any]]:
    """One message to the webhook of its source, as its hub would post it."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        headers = {
            **message.headers,
            "Content-Type": "application/json",
            TOKEN_HEADER: token,
            TOPIC_HEADER: message.topic,
            RECEIVED_AT_HEADER: repr(message.at),
        }
        path = f"/ingest/{message.route.source}/{message.route.format}"
        connection.request("POST", path, body=message.body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()
