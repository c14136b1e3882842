"""Faults on demand: what a cloud does to functions, played in the local runner's workers.

``citypipe replay … --faults duplicate=1.0,crash=0.05,throttle=0.05,lost=0.02,poison=4``:

- ``duplicate``: the share of messages delivered twice (at once, and again later, after
  the input may have been consumed) — at-least-once delivery, played hard;
- ``crash``: the share of invocations whose worker process is killed (SIGKILL) mid-batch,
  after a random number of its requests took effect (or at its very end): the batch is
  never acknowledged (a Scaleway drain's earlier batches were), a fresh worker
  cold-starts, the messages come back after their visibility timeout;
- ``throttle``: the share of storage and queue requests the backend refuses as throttled
  (S3 ``503 SlowDown``, SQS ``RequestThrottled``); the SDK retries them as it would;
- ``lost``: the share of requests that take effect but whose answer never arrives (the
  write happened, the function hears a timeout);
- ``poison``: messages no function can use, sent into the function queues: bodies that
  are no claim check (quarantined with a reason), claim checks of another city
  (quarantined), and claim checks whose consumer fails every time (dead-lettered after
  ``maxReceiveCount`` deliveries).

The faults live in the workers' botocore session (its event hooks), never in the library:
the functions run their production code against a backend that misbehaves.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError

from citypipe.adapters import clients
from citypipe.domain.model import Function, Message, Zone
from citypipe.service.kernel import Deps

POISON_MARK = "citypipe-poison"  # in the key of a claim check whose consumer always fails


@dataclass(frozen=True)
class Faults:
    duplicate: float = 0.0
    crash: float = 0.0
    throttle: float = 0.0
    lost: float = 0.0
    poison: int = 0
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``duplicate=1.0,crash=0.05,throttle=0.05,poison=4`` (any subset, any order)."""
        values: dict[str, Any] = {}
        known = {f.name: f.type for f in fields(cls)}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name not in known or not value:
                raise ValueError(f"fault {item!r}: one of {', '.join(known)} as name=value")
            number = int(value) if name in ("poison", "seed") else float(value)
            if number < 0 or (name not in ("poison", "seed") and number > 1):
                raise ValueError(f"fault {name}: a share from 0 to 1 (poison: a count)")
            values[name] = number
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "seed")

    def __str__(self) -> str:
        return ",".join(
            f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)
        )


class PoisonError(RuntimeError):
    """What a poison message does to its consumer, every time: an error no retry fixes."""


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


THROTTLED = {
    "s3": (
        503,
        {"Content-Type": "application/xml"},
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message></Error>",
    ),
    "sqs": (
        400,
        {"Content-Type": "application/x-amz-json-1.0"},
        json.dumps(
            {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Request is throttled"}
        ).encode(),
    ),
}


class FaultInjector:
    """The faults of one worker process, on its botocore session's events."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(f"{faults.seed}/{os.getpid()}")
        self._lock = threading.Lock()
        self._crash_after: int | None = None  # responses until this invocation's worker dies
        self._installed = False
        self.injected: Counter[str] = Counter()  # by this worker, since it started

    def install(self) -> None:
        if not self._installed:
            session = clients.session()
            handler: Any = self._before_send  # it may answer in the backend's stead
            session.register("before-send", handler)
            session.register("response-received", self._response_received)
            self._installed = True

    def _count(self, kind: str) -> None:
        """A fault injected, counted (requests run in many threads at once: claims, the
        metadata's files)."""
        with self._lock:
            self.injected[kind] += 1

    def _chance(self, share: float) -> bool:
        with self._lock:
            return share > 0 and self.rng.random() < share

    def _before_send(self, **event: Any) -> AWSResponse | None:
        request = event["request"]
        if POISON_MARK in request.url:
            self._count("poison")
            raise PoisonError("a poison message: its object can never be read")
        service = str(event.get("event_name", "")).split(".")[1] if "event_name" in event else ""
        if service in THROTTLED and self._chance(self.faults.throttle):
            self._count("throttle")
            status, fields_, body = THROTTLED[service]
            headers = HTTPHeaders()
            for name, value in fields_.items():
                headers[name] = value
            return AWSResponse(request.url, status, headers, _Body(body))
        return None

    def _response_received(self, **event: Any) -> None:
        with self._lock:
            if self._crash_after is not None:
                self._crash_after -= 1
                if self._crash_after <= 0:
                    self.crash()
        if event.get("exception") is None and self._chance(self.faults.lost):
            self._count("lost")
            raise ReadTimeoutError(endpoint_url="(the answer was lost)")

    def begin(self) -> None:
        """An invocation starts: will its worker be killed, and after how many requests?"""
        crash = self._chance(self.faults.crash)
        with self._lock:
            self._crash_after = self.rng.randint(1, 8) if crash else None

    def end(self) -> None:
        """The invocation's work is done: a doomed worker dies before it can answer."""
        with self._lock:
            doomed = self._crash_after is not None
            self._crash_after = None
        if doomed:
            self.crash()

    def crash(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def poison_messages(deps: Deps, count: int) -> int:
    """Send ``count`` poison messages into the pipeline's queues, of every kind in turn.
    Returns how many were sent."""
    city = deps.city.slug
    queues = [Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE]
    for n in range(count):
        function = queues[n % len(queues)]
        kind = n % 3
        if kind == 0:
            body = f"{POISON_MARK} #{n}: not a claim check"
        elif kind == 1:
            body = Message(
                city=f"not-{city}", stage="raw", bucket="x", key=f"x/{n}"
            ).model_dump_json()
        else:
            zone = Zone.CLEAN if function is Function.AGGREGATE else Zone.RAW
            body = Message(
                city=city,
                stage=zone.value,
                bucket=deps.names.bucket(zone),
                key=f"{zone.value}/{city}/date=2026-01-01/{POISON_MARK}/{n}.bin",
                etag=POISON_MARK,
            ).model_dump_json()
        deps.queue.send(deps.names.queue(function), [body])
    return count
