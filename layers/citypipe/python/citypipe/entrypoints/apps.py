"""One app per function: which entry point a platform event goes to. Built by the
function's composition root (``citypipe.bootstrap.<function>``); called by its handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citypipe.entrypoints.events import is_http, is_iot_rule, is_schedule
from citypipe.entrypoints.sqs import ClaimCheckConsumer

EventHandler = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventError(ValueError):
    """An event this function is not wired for: a deployment mistake, failed loudly."""


@dataclass
class FunctionApp:
    consumer: ClaimCheckConsumer
    http: EventHandler | None = None  # ingest: hubs' webhooks
    iot: EventHandler | None = None  # ingest: AWS IoT Core rules' Lambda action
    schedule: EventHandler | None = None  # export: the hourly job; ingest: the poller's tick
    drain: Callable[[], dict[str, Any]] | None = None  # ingest on Scaleway: its queue drained

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if "Records" in event:
            return dict(self.consumer.sqs(event))
        if self.http is not None and is_http(event):
            return self.http(event)
        if self.iot is not None and is_iot_rule(event):
            return self.iot(event)
        if self.schedule is not None and is_schedule(event):
            return self.schedule(event)
        raise UnknownEventError(
            f"{self.consumer.function.value} takes no event with keys {sorted(event)[:8]}"
        )
