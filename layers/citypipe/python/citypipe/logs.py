"""Structured JSON logs (Powertools). Log ids of objects and counts, never readings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from aws_lambda_powertools import Logger

logger = Logger(service="citypipe")


def send_to(path: Path) -> list[logging.Handler]:
    """Write the JSON lines to ``path`` (appending) instead of the console; returns the
    handlers it replaced. Keeps Powertools' formatter, which holds the appended keys."""
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
