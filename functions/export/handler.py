"""export function: hourly on schedule (EventBridge/CRON) or on demand (an SQS request)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from citypipe import bootstrap
from citypipe.domain import Function
from citypipe.logs import logger
from citypipe.runtime.apps import scheduled


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:  # the hourly job: publish yesterday, keys, raw retention
        return scheduled(bootstrap.deps(), event)
    return bootstrap.app(Function.EXPORT).sqs(event, context)
