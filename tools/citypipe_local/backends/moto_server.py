"""The embedded backend's moto server: ``python -m citypipe_local.backends.moto_server
[--clock OFFSET_FILE] [moto.server's arguments]``. Laptop tooling only, as is moto.

Two changes to ``moto.server``, none to what it answers:

- **no directory walk per request**: moto looks up every request's host among its own
  package folders (``list_of_moto_modules``: a ``listdir`` and ~150 ``stat`` calls); the
  folders don't change while it runs, so the list is read once. With the line per request
  werkzeug logs (to nowhere: the launcher discards it), a fifth of the server's CPU.
  (werkzeug's development server closes every connection after its response, so each
  request still opens a TCP connection and a server thread: not changed here.)
- **a simulated clock**, with ``--clock``: moto reads the time through
  ``moto.core.utils.utcnow`` (objects' ``LastModified``, queue timers: every module calls
  it, or imports it before its first request), so replacing that one function before the
  server loads a service puts the whole backend on the replay's clock
  (``citypipe_local.clock``).

And one setting: moto serves a region AWS does not have (Scaleway's fr-par, nl-ams,
pl-waw: a Scaleway city's stack is kept in its own region here too).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from moto import backends
from moto.core import utils

from citypipe_local.clock import Offset


def on_clock(offset_file: Path) -> None:
    offset = Offset(offset_file)
    real = utils.utcnow

    def utcnow() -> datetime:
        return real() + timedelta(seconds=offset.seconds())

    utils.utcnow = utcnow  # before moto.server loads any service's models


def main(argv: list[str]) -> None:
    os.environ["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
    if argv[:1] == ["--clock"]:
        on_clock(Path(argv[1]))
        argv = argv[2:]
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = functools.wraps(backends.list_of_moto_modules)(
        list_of_moto_modules
    )
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import main as serve

    MotoRequestHandler.log_request = lambda self, code="-", size="-": None  # type: ignore[method-assign]
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
