"""aggregate function: SQS claim checks in, partial batch failures out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from citypipe import bootstrap
from citypipe.domain import Function
from citypipe.logs import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return bootstrap.app(Function.AGGREGATE).sqs(event, context)
