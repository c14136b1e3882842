"""The embedded moto server on a simulated clock: ``python -m
citypipe_local.backends.moto_clock OFFSET_FILE [moto.server's arguments]``.

moto reads the time through ``moto.core.utils.utcnow`` (objects' ``LastModified``, queue
timers: every module calls it, or imports it before its first request), so replacing that
one function before the server loads a service puts the whole backend on the replay's
clock (``citypipe_local.clock``). Laptop tooling only, as is moto.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from moto.core import utils

from citypipe_local.clock import Offset


def main() -> None:
    offset = Offset(Path(sys.argv[1]))
    real = utils.utcnow

    def utcnow() -> datetime:
        return real() + timedelta(seconds=offset.seconds())

    utils.utcnow = utcnow  # before moto.server loads any service's models
    from moto.server import main as serve

    serve(sys.argv[2:])


if __name__ == "__main__":
    main()
