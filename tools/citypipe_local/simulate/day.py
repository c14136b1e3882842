"""The simulated day every hub module sends through: the city laid out, the measured
values, the crowd, the faults, the capture files and the truth, with the one way to send a message.

A hub module is a function of the day, a sensor and a time: it draws the values, asks for
its fault (``spoil``), shapes its body, ``send``s it and writes the truth of what ingest
will make of it (``truth.accept``, ``truth.reject``).
"""

from __future__ import annotations

import random
from pathlib import Path

from citypipe.domain.city import City
from citypipe_local.simulate.crowd import Crowd
from citypipe_local.simulate.faults import (
    DUPLICATE,
    INVALID_ENCODING,
    INVALID_JSON,
    Spoiler,
    misencoded,
    resent,
)
from citypipe_local.simulate.truth import Truth
from citypipe_local.simulate.values import Values
from citypipe_local.simulate.wire import Wire
from citypipe_local.simulate.world import Sensor, World


class Day:
    def __init__(
        self, city: City, out: Path, *, seed: int, scale: float, bad_rate: float, first: int
    ) -> None:
        self.world = World.lay_out(city, seed, scale)
        self.values = Values(random.Random(f"{seed}/values"), self.world.sites)
        self.crowd = Crowd(self.world, random.Random(f"{seed}/people"))
        self.spoiler = Spoiler(random.Random(f"{seed}/spoil"), bad_rate)
        self.wire = Wire(city, out)
        self.truth = Truth()
        self.truth.identifiers |= self.world.identifiers()
        self.first = first  # the first second simulated
        self.drops: dict[int, list[str]] = {}  # hour -> rows of the loop controller's export

    def spoil(self, kinds: tuple[str, ...]) -> str | None:
        """The fault of the next message of a hub that can fail in ``kinds`` (None: none)."""
        return self.spoiler.next(kinds)

    def send(
        self,
        fmt: str,
        dev: Sensor,
        at: float,
        body: str,
        spoil: str | None,
        readings: int,
        *,
        topic: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a body as the hub would; spoil it the generic ways (truncated, a non-UTF-8
        byte, a resend of ``readings``) where ``spoil`` says so."""
        capture = self.wire.capture(fmt)
        topic = topic or self.wire.topic(dev, fmt)
        if spoil == INVALID_JSON:
            self.truth.reject(INVALID_JSON)
            capture.write(at, self.spoiler.cut(body), topic=topic, headers=headers)
            return
        if spoil == INVALID_ENCODING:
            self.truth.reject(INVALID_ENCODING)
            capture.write(at, misencoded(body), topic=topic, headers=headers)
            return
        capture.write(at, body, topic=topic, headers=headers)
        if spoil == DUPLICATE:  # the hub resends it, re-serialized
            self.truth.duplicates += readings
            capture.write(at, resent(body), topic=topic, headers=headers)
