"""The MQTT client (paho-mqtt): a persistent session, QoS 1, manual acknowledgements.

- The session outlives the connection: MQTT 5 ``clean_start=False`` with a session expiry,
  3.1.1 ``clean_session=False``, and a stable client id. A broker keeps what the bridge
  has not acknowledged, and what is published while it is away, and delivers it again.
- Messages are acknowledged (PUBACK) only when the bridge says so (``manual_ack``), on the
  connection they came on: a delivery of a dropped connection is delivered again instead.
- MQTT 5's receive maximum bounds what the broker sends unacknowledged; the queue to the
  bridge is bounded too, and a full queue stops this client reading the socket. A slow
  backend makes the broker hold messages; nothing is dropped here.
- Reconnects with exponential backoff, forever; refused credentials or a refused
  subscription stop the bridge (``on_fatal``): no retry fixes them.
- Retained values are not replayed on subscribing (MQTT 5 retain handling 2; 3.1.1 marks
  them retained and the bridge skips them).

Nothing of a message — topic, payload, properties — is logged.
"""

from __future__ import annotations

import contextlib
import queue
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from citypipe.service.bridge import Connected, Delivery, FromBroker
from citypipe.service.kernel import log
from citypipe_bridge.settings import MqttSettings

RECEIVED_AT = "citypipe-received-at"  # a replay's recorded arrival (``arrival="property"``)
FATAL_CONNACK = {"Bad user name or password", "Not authorized", "Client identifier not valid"}


class MqttClient:
    """One broker connection at a time, one session for good."""

    def __init__(
        self,
        settings: MqttSettings,
        filters: Sequence[str],
        inbound: queue.Queue[FromBroker],
        on_fatal: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.filters = list(filters)
        self.inbound = inbound
        self.on_fatal = on_fatal
        self.epoch = 0
        self.subscribed = threading.Event()  # the broker confirmed every subscription
        self._lock = threading.Lock()
        v5 = settings.protocol == "5"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            self.client.username_pw_set(settings.username, password)
        if settings.tls:
            self.client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers)."""
        properties = None
        if self.settings.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            properties.ReceiveMaximum = self.settings.receive_max
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,  # MQTT 5; 3.1.1 says so with clean_session=False
            properties=properties,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays with the broker) and stop the network thread."""
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mid: int, qos: int, epoch: int) -> None:
        """PUBACK a delivery, if it came on the current connection (a delivery of an earlier
        one is delivered again under the same id: acknowledging it here could acknowledge
        another message that reuses the id)."""
        with self._lock:
            if qos > 0 and epoch == self.epoch:
                self.client.ack(mid, qos)

    # --- callbacks (the network thread) ---------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("bridge: the broker refused the connection", extra={"reason": str(reason)})
            if str(reason) in FATAL_CONNACK:
                self.on_fatal(f"the broker refused the connection: {reason}")
            return
        with self._lock:
            self.epoch += 1
            epoch = self.epoch
        self.inbound.put(Connected(epoch, bool(flags.session_present)))
        if self.settings.protocol == "5":
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            client.subscribe([(f, options) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("bridge: the broker refused a subscription", extra={"reasons": refused})
            self.on_fatal(f"the broker refused {len(refused)} of the subscriptions: {refused[0]}")
            return
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if not self._stopping:
            log.warning("bridge: connection lost; reconnecting", extra={"reason": str(reason)})

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        headers: dict[str, str] = {}
        properties = getattr(message, "properties", None)
        for name, value in getattr(properties, "UserProperty", None) or ():
            headers[str(name).lower()] = str(value)
        received_at = time.time()
        if self.settings.arrival == "property":
            with contextlib.suppress(KeyError, ValueError):
                received_at = float(headers[RECEIVED_AT])
        delivery = Delivery(
            mid=message.mid,
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            dup=bool(message.dup),
            retain=bool(message.retain),
            received_at=received_at,
            epoch=self.epoch,
            headers=headers,
        )
        self.inbound.put(delivery)  # blocks when full: this client stops reading the socket
