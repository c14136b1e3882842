"""aggregate function: SQS claim checks of clean objects in, partial batch failures out.

``app`` is the test seam: tests pass one built from fakes by ``citypipe.bootstrap.aggregate.build``;
Lambda passes none and the app is built once per container from the environment.
"""

from typing import Any

from citypipe.bootstrap.aggregate import cold_start
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.logs import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any, app: FunctionApp | None = None) -> dict[str, Any]:
    return (app or cold_start()).handle(event, context)
