"""The embedded backend: a moto server citypipe starts as a child process on loopback.

A child process, not a thread, so the backend does not share the functions' GIL.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
    process = subprocess.Popen(
        [*server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 (a prctl, no lock taken)
    )
    try:
        wait_until(lambda: process.poll() is None and reachable(f"{url}/moto-api/"), 30, "moto")
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
