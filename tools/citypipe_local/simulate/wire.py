"""What goes on the wire: a capture file per format, and the MQTT topic a hub publishes a
device's message on.

Each message is one line of ``<format>.jsonl``: ``{"at": arrival (epoch s), "body": the
exact body, "topic"?: MQTT topic, "headers"?: HTTP headers}`` (``body_base64`` for a body
that is not text), written in the order the hubs send.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from citypipe.domain.city import City
from citypipe_local.simulate.world import Sensor


def dumps(document: Any) -> str:
    """A body as compact JSON (hubs send no spaces)."""
    return orjson.dumps(document).decode()


@dataclass
class Capture:
    """Messages of one format, written to its capture file in the order they are sent."""

    path: Path
    payloads: int = 0
    handle: IO[bytes] | None = None

    def write(
        self,
        at: float,
        body: str | bytes,
        *,
        topic: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        envelope: dict[str, Any] = {"at": at}
        if isinstance(body, bytes):
            envelope["body_base64"] = base64.b64encode(body).decode()
        else:
            envelope["body"] = body
        if topic is not None:
            envelope["topic"] = topic
        if headers:
            envelope["headers"] = headers
        if self.handle is None:
            self.handle = self.path.open("wb")
        self.handle.write(orjson.dumps(envelope, option=orjson.OPT_APPEND_NEWLINE))
        self.payloads += 1


class Wire:
    """The capture files of a run, in ``folder``, and the city's MQTT routes."""

    def __init__(self, city: City, folder: Path) -> None:
        self._city = city
        self._folder = folder
        self._captures: dict[str, Capture] = {}

    def capture(self, fmt: str) -> Capture:
        capture = self._captures.get(fmt)
        if capture is None:
            capture = self._captures[fmt] = Capture(self._folder / f"{fmt}.jsonl")
        return capture

    def topic(self, dev: Sensor, fmt: str) -> str | None:
        """The MQTT topic the device's hub publishes the message on: the city file's filter
        for its source and format, each wildcard level the device as that hub names it
        (TTS: its device id; ChirpStack: its DevEUI). None: the city declares none."""
        route = next(
            (r for r in self._city.mqtt_routes if (r.source, r.format) == (dev.source, fmt)),
            None,
        )
        if route is None:
            return None
        names = {"tts-v3": f"vld-aq-{dev.eui[-6:]}", "chirpstack-v4": dev.eui}
        name = names.get(fmt, dev.eui if fmt == "chirpstack-v3" else dev.name)
        return "/".join(name if level in ("+", "#") else level for level in route.topic.split("/"))

    def close(self) -> tuple[dict[str, Path], dict[str, int]]:
        """Close every capture: the files and the messages in each, by format."""
        files: dict[str, Path] = {}
        payloads: dict[str, int] = {}
        for fmt, capture in sorted(self._captures.items()):
            if capture.handle is not None:
                capture.handle.close()
            files[fmt] = capture.path
            payloads[fmt] = capture.payloads
        return files, payloads
