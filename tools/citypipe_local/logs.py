"""The run's structured logs to a file (the library logs to the console, as on Lambda)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from citypipe.entrypoints.logs import logger


def send_to(path: Path) -> list[logging.Handler]:
    """Write the JSON lines to ``path`` (appending) instead of the console; returns the
    handlers it replaced. Keeps the library's formatter, which holds the appended keys."""
    target = logging.getLogger(logger.name)
    sink = logging.FileHandler(path, encoding="utf-8")
    sink.setFormatter(logger.registered_formatter)
    previous, target.handlers = target.handlers[:], [sink]
    return previous


@contextlib.contextmanager
def written_to(path: Path) -> Iterator[None]:
    previous = send_to(path)
    try:
        yield
    finally:
        target = logging.getLogger(logger.name)
        for handler in target.handlers:
            handler.close()
        target.handlers = previous
