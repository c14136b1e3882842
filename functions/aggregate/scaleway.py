"""aggregate on Scaleway Functions: a private function its queue triggers.

One queue message per POST; ``app`` is the test seam, as in ``handler.py``.
"""

from typing import Any

from citypipe.bootstrap.aggregate import cold_start
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.scaleway import queue_trigger


def handle(event: dict[str, Any], context: Any, app: FunctionApp | None = None) -> dict[str, Any]:
    return queue_trigger(app or cold_start(), event, context)
