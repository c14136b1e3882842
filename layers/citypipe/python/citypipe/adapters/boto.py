"""botocore errors mapped to citypipe's, once, for every boto3 adapter.

- a missing object: ``NotFoundError`` (the one list of not-found codes, ``NOT_FOUND``);
- a conditional put that lost: ``AlreadyExistsError``;
- throttling, timeouts, 5xx and network failures: ``TransientError`` (retry);
- anything else the backend answers (access denied, a bad request, a missing bucket or
  queue, bad credentials): ``BackendRefusedError``. No retry fixes those: the invocation
  fails loudly rather than being retried quietly into the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from citypipe.domain.errors import (
    AlreadyExistsError,
    BackendRefusedError,
    NotFoundError,
    TransientError,
)

P = ParamSpec("P")
R = TypeVar("R")

# An object (or secret) that is not there. Buckets and queues are not in this list: a
# missing one is a deployment problem, not a missing input.
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound", "ResourceNotFoundException"})
TAKEN = frozenset({"PreconditionFailed", "412"})
THROTTLED_OR_BUSY = frozenset(
    {
        "SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
        "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "ProvisionedThroughputExceededException",
        "AWS.SimpleQueueService.RequestThrottled", "RequestTimeout", "RequestTimeoutException",
        "ServiceUnavailable", "InternalError", "InternalFailure", "OperationAborted",
        "ConditionalRequestConflict", "ServiceFailure",
    }
)  # fmt: skip
_MISCONFIGURED = (NoCredentialsError, PartialCredentialsError, NoRegionError, ParamValidationError)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_transient(exc: ClientError) -> bool:
    status = _status(exc)
    return error_code(exc) in THROTTLED_OR_BUSY or status >= 500 or status in (408, 429)


def translate(exc: ClientError) -> Exception:
    """The citypipe error for a backend's answer."""
    code = error_code(exc)
    if code in NOT_FOUND:
        return NotFoundError(code)
    if code in TAKEN:
        return AlreadyExistsError(code)
    if is_transient(exc):
        return TransientError(f"{code}: {exc}")
    return BackendRefusedError(code or str(_status(exc)), str(exc))


def classified(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise citypipe's errors instead of botocore's (see the module's docstring)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            raise translate(exc) from exc
        except _MISCONFIGURED as exc:
            raise BackendRefusedError(type(exc).__name__, str(exc)) from exc
        except BotoCoreError as exc:  # connection refused or reset, timeouts
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper
