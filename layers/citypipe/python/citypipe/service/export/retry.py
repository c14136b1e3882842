"""Publication's writes tried again at once when they fail transiently."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from citypipe.domain.errors import TransientError
from citypipe.service.kernel import log

WRITE_TRIES = 3
T = TypeVar("T")


def retried(publish: Callable[[], T]) -> T:
    """Publish, trying again at once when a write failed transiently (up to WRITE_TRIES):
    the writes are idempotent (conditional puts, put_or_replace), and giving the message
    back would read every partial of the day again. A lasting failure is raised."""
    for _ in range(WRITE_TRIES - 1):
        try:
            return publish()
        except TransientError:
            log.warning("publication retried", extra={"function": "export"})
    return publish()
