"""api on Scaleway Functions: the public function of the open-data API (OGC API - Features,
``GET <its URL>/features/...``). ``app`` is the test seam, as in ``handler.py``."""

from typing import Any

from citypipe.bootstrap.api import cold_start
from citypipe.entrypoints.api import ApiApp


def handle(event: dict[str, Any], context: Any, app: ApiApp | None = None) -> dict[str, Any]:
    return (app or cold_start()).handle(event, context)
