"""ingest on Scaleway Functions: ``handle``, a private function its queue triggers (claim
checks of drops), and ``webhook``, the public function hubs POST to (per-source tokens).

One queue message per POST; ``app`` is the test seam, as in ``handler.py``.
"""

from typing import Any

from citypipe.bootstrap.ingest import cold_start
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.scaleway import http_trigger, queue_trigger


def handle(event: dict[str, Any], context: Any, app: FunctionApp | None = None) -> dict[str, Any]:
    return queue_trigger(app or cold_start(), event, context)


def webhook(event: dict[str, Any], context: Any, app: FunctionApp | None = None) -> dict[str, Any]:
    return http_trigger(app or cold_start(), event, context)
