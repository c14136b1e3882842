"""The bridge's composition root and command: ``citypipe-bridge`` (settings from the
environment), or ``citypipe bridge mqtt`` on a laptop.

``run`` builds the stack's ports (or takes them: the test seam), reads the journal, connects,
and bridges until ``stop`` is set; SIGTERM and SIGINT set it in ``main``. It returns the
process's books (``BridgeCounts``), logged on the way out.
"""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType

from pydantic import ValidationError

from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.books import BridgeCounts
from citypipe.domain.city import ConfigError
from citypipe.entrypoints.logs import logger
from citypipe.ports import KeyStore
from citypipe.service.bridge import Bridge, Delivery, FromBroker
from citypipe.service.journal import EdgeJournal
from citypipe.service.kernel import Deps, log
from citypipe_bridge.mqtt import MqttClient
from citypipe_bridge.settings import BridgeSettings


class BridgeFailed(RuntimeError):
    """What no retry fixes: refused credentials, a refused subscription, no topics; or a
    backend the bridge gave up writing to (``GaveUp``): its supervisor restarts it."""


@dataclass
class Running:
    """A bridge being built or run: what a caller (a test, a replay) may watch."""

    bridge: Bridge | None = None
    client: MqttClient | None = None
    failure: list[str] = field(default_factory=list)
    on_taken: Callable[[Delivery], None] | None = None  # each delivery batched, in order
    inbound: queue.Queue[FromBroker] | None = None  # what the client delivered, not yet taken


def run(
    settings: BridgeSettings,
    stop: threading.Event,
    deps: Deps | None = None,
    keys: KeyStore | None = None,
    running: Running | None = None,
) -> BridgeCounts:
    """Bridge the city's declared topics into its stack until ``stop`` is set."""
    deps = deps or deps_from(settings)
    keys = keys or key_store_from(settings, deps)
    routes = deps.city.mqtt_routes
    if not routes:
        raise BridgeFailed(f"{deps.city.slug}: no source declares mqtt topics in the city file")
    mqtt = settings.mqtt
    running = running or Running()

    def fatal(reason: str) -> None:
        running.failure.append(reason)
        stop.set()

    # bounded: a broker that sends beyond the receive maximum (Mosquitto 2.0 does, once the
    # first acknowledgements are in) finds the client no longer reading its socket
    inbound: queue.Queue[FromBroker] = queue.Queue(maxsize=mqtt.receive_max)
    journal = EdgeJournal(deps, keys, mqtt.client_id, timedelta(seconds=mqtt.journal_retention_s))
    client = MqttClient(mqtt, sorted({r.topic for r in routes}), inbound, fatal)
    bridge = Bridge(deps, keys, journal, client.ack, mqtt.limits, on_taken=running.on_taken)
    running.bridge, running.client, running.inbound = bridge, client, inbound
    log.info(
        "bridge starting",
        extra={
            "city": deps.city.slug,
            "client_id": mqtt.client_id,
            "protocol": mqtt.protocol,
            "tls": mqtt.tls,
            "topics": len(routes),
            "receive_maximum": mqtt.receive_max,
        },
    )
    client.start()
    try:
        books = bridge.run(inbound, stop)
    finally:
        client.stop()
    if bridge.failure is not None:  # the backend stayed away, or refused: for a restart
        running.failure.append(bridge.failure)
    if running.failure:
        raise BridgeFailed(running.failure[0])
    return books


def main(argv: list[str] | None = None) -> int:
    """``citypipe-bridge``: run until SIGTERM or SIGINT. Exit 0 after a clean stop, 2 on
    bad settings, 1 when the broker refuses the bridge."""
    parser = argparse.ArgumentParser(
        prog="citypipe-bridge",
        description="Bridge a city's MQTT broker into its citypipe stack. Settings come from "
        "the environment: CITYPIPE_MQTT__BROKER, CITYPIPE_MQTT__CLIENT_ID, "
        "CITYPIPE_MQTT__USERNAME/PASSWORD, CITYPIPE_MQTT__CA_FILE/CERT_FILE/KEY_FILE, "
        "CITYPIPE_STACK__CITY_FILE, CITYPIPE_BACKEND__... (see README).",
    )
    parser.parse_args(argv)
    try:
        settings = BridgeSettings()
    except (ValidationError, ConfigError) as exc:
        print(f"citypipe-bridge: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    logger.setLevel(settings.log_level)  # JSON lines on stdout, as the functions log
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        run(settings, stop)
    except ConfigError as exc:
        print(f"citypipe-bridge: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except BridgeFailed as exc:
        print(f"citypipe-bridge: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
