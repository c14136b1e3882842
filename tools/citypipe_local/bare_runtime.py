"""A function's runtime for the rehearsal (``citypipe_local.rehearse``): what Lambda's or
Scaleway's runtime does around a handler, and nothing more.

Run by path in a bare interpreter (``python -I -S``: no site-packages, no environment
path, not even this file's folder): the folders given on the command line are the whole
import path in front of the standard library — the unpacked function zip, the unpacked
layer, the runtime's SDK — so a handler that needs anything the artefacts do not hold
fails here as it would in the cloud. The handler is named as the deployment names it
(``functions/ingest/handler.handler``: a module path, then a callable), imported at the
first request (the cold start).

One request per line on stdin (JSON: ``event``, ``context``), one answer per line on the
file descriptor given (JSON: ``ok`` with ``value`` or ``error``); the handler's own output
(its logs) goes to stderr. Standard library only: this file is not in any artefact.
"""

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes of Lambda's ``context`` the handlers and the library's logs read."""

    def __init__(self, fields: dict[str, Any], timeout_s: float) -> None:
        self.__dict__.update(fields)
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


def main() -> None:
    answers_fd, handler_name, platform, *path = sys.argv[1:]
    sys.path[:0] = path
    answers = os.fdopen(int(answers_fd), "w", encoding="utf-8")
    module_name, _, attribute = handler_name.rpartition(".")
    handler: Any = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if handler is None:  # the cold start: the handler's module and its imports
                handler = getattr(importlib.import_module(module_name.replace("/", ".")), attribute)
            context = request["context"]
            if platform == "aws":
                context = LambdaContext(context, float(request["timeout_s"]))
            answer: dict[str, Any] = {"ok": True, "value": handler(request["event"], context)}
        except Exception as exc:  # the caller's to handle, as an invocation error is
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
