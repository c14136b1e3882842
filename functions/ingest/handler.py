"""ingest function: SQS claim checks in, partial batch failures out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from citypipe import bootstrap
from citypipe.domain import Function
from citypipe.logs import logger
from citypipe.runtime.apps import webhook


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:  # API Gateway / Scaleway HTTP: a hub pushing payloads
        return webhook(bootstrap.deps(), event)
    return bootstrap.app(Function.INGEST).sqs(event, context)
