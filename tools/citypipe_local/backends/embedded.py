"""The embedded backend: a moto server citypipe starts as a child process on loopback.

A child process, not a thread, so the backend does not share the functions' GIL.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from citypipe.settings import BackendSettings
from citypipe_local.backends import (
    Endpoint,
    die_with_parent,
    free_port,
    reachable,
    stop,
    wait_until,
)


@contextlib.contextmanager
def embedded(region: str = "eu-central-1", clock: Path | None = None) -> Iterator[Endpoint]:
    """``clock``: the offset file of a simulated clock the backend keeps time by."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    on_clock = [] if clock is None else ["--clock", str(clock)]
    server = [sys.executable, "-m", "citypipe_local.backends.moto_server", *on_clock]
    with tempfile.TemporaryFile() as said:  # what the server says if it cannot start
        process = subprocess.Popen(
            [*server, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=said,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (a prctl, no lock taken)
        )
        try:
            wait_until(lambda: _up(process, said, url), 30, "moto")
            yield Endpoint(
                "embedded",
                BackendSettings(
                    endpoint_url=url,
                    region=region,
                    access_key_id="citypipe",
                    secret_access_key="local",  # noqa: S106 (local emulator)
                ),
                process.pid,
            )
        finally:
            stop(process)


def _up(process: subprocess.Popen[bytes], said: IO[bytes], url: str) -> bool:
    """Whether the server answers; a server that stopped is said, with its last word."""
    if process.poll() is not None:
        said.seek(0)
        last = said.read().decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"the embedded backend stopped: {' '.join(last) or 'no word'}")
    return reachable(f"{url}/moto-api/")
