"""api function: the open-data API (OGC API - Features) behind API Gateway's HTTP API.

``app`` is the test seam: tests pass one built by ``citypipe.bootstrap.api.build``; Lambda
passes none and the app is built once per container from the environment.
"""

from typing import Any

from citypipe.bootstrap.api import cold_start
from citypipe.entrypoints.api import ApiApp
from citypipe.entrypoints.logs import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any, app: ApiApp | None = None) -> dict[str, Any]:
    return (app or cold_start()).handle(event, context)
