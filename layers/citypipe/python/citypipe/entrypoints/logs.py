"""Structured JSON logs: one line a record on stdout, with the invocation's keys (decision
109). Log ids of objects and counts, never readings.

The keys are Powertools' (``level``, ``location``, ``message``, ``timestamp``, ``service``,
``cold_start``, ``function_*``, ``xray_trace_id``, ``exception``, ``exception_name``), so
CloudWatch Logs Insights queries written for Powertools still read these lines; the
library's modules log through the standard ``logging.getLogger("citypipe")``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

SERVICE = "citypipe"
# What a LogRecord carries of itself: anything else on it came from ``extra=``.
_RECORD_FIELDS = frozenset(
    [*vars(logging.LogRecord("", 0, "", 0, "", None, None)), "message", "asctime", "taskName"]
)
Handler = TypeVar("Handler", bound=Callable[..., Any])


def _timestamp(created: float) -> str:
    """RFC 3339 in UTC to the millisecond: ``2026-12-07T08:04:44.181Z``."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def _ours(name: str, service: str) -> bool:
    return name == service or name.startswith(service + ".")


def _captures(handler: logging.Handler) -> bool:
    """pytest's ``caplog`` handler, which must keep seeing the library's records."""
    return type(handler).__module__ == "_pytest.logging"


def _level(environ: Mapping[str, str]) -> str | None:
    """The configured level's name, or None for one logging does not know. Lambda's TRACE
    is DEBUG, its finest here; NOTSET is refused (the logger would take the root's level,
    WARNING, and drop the INFO lines)."""
    asked = environ.get("CITYPIPE_LOG_LEVEL") or environ.get("AWS_LAMBDA_LOG_LEVEL") or "INFO"
    name = "DEBUG" if asked.upper() == "TRACE" else asked.upper()
    return name if name in logging.getLevelNamesMapping() and name != "NOTSET" else None


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: the fixed keys, the appended keys, then its extras
    (those that would overwrite either are left out)."""

    def __init__(self, service: str = SERVICE) -> None:
        super().__init__()
        self.keys: dict[str, Any] = {"service": service}

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": _timestamp(record.created),
            **self.keys,
        }
        line |= {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and k not in line}
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
            line["exception_name"] = record.exc_info[0].__name__
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class Logger:
    """The ``citypipe`` logger's set-up: JSON lines on stdout, at the level of
    ``CITYPIPE_LOG_LEVEL`` (the settings' ``log_level``) or ``AWS_LAMBDA_LOG_LEVEL``
    (Lambda's logging controls), INFO otherwise; and the keys each line carries."""

    def __init__(self, service: str = SERVICE) -> None:
        self.name = service
        self.registered_formatter = JsonFormatter(service)
        self._cold = True
        target = logging.getLogger(self.name)
        sink = logging.StreamHandler(sys.stdout)
        sink.setFormatter(self.registered_formatter)
        target.handlers = [sink]
        level = _level(os.environ)
        target.setLevel(level or "INFO")
        for handler in logging.root.handlers:  # Lambda's runtime logs the root: not twice
            if not _captures(handler):
                handler.addFilter(lambda record: not _ours(record.name, service))
        if level is None:  # said, not a function that cannot start
            target.warning("unknown log level; INFO")

    def setLevel(self, level: str | int) -> None:
        logging.getLogger(self.name).setLevel(level.upper() if isinstance(level, str) else level)

    def append_keys(self, **keys: Any) -> None:
        self.registered_formatter.keys.update(keys)

    def inject_lambda_context(self, handler: Handler) -> Handler:
        """Each invocation's lines carry its context: whether it is the container's first,
        the function, its memory, its ARN, the request id and the X-Ray trace."""

        @functools.wraps(handler)
        def invoked(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            self.append_keys(
                cold_start=self._cold,
                function_name=getattr(context, "function_name", ""),
                function_memory_size=getattr(context, "memory_limit_in_mb", ""),
                function_arn=getattr(context, "invoked_function_arn", ""),
                function_request_id=getattr(context, "aws_request_id", ""),
                xray_trace_id=os.environ.get("_X_AMZN_TRACE_ID", ""),
            )
            self._cold = False
            return handler(event, context, *args, **kwargs)

        return invoked  # type: ignore[return-value]


logger = Logger()
