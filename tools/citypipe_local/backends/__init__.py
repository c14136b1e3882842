"""Backends: where a stack's S3/SQS endpoints come from. The boto3 code never changes."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from citypipe.settings import BackendSettings


@dataclass(frozen=True)
class Endpoint:
    name: str  # embedded | localstack | aws
    settings: BackendSettings
    pid: int | None = None  # the backend's process, when citypipe started it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return bool(200 <= response.status < 500)
    except OSError:
        return False


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent() -> None:
    """In a child, before it runs its program (``preexec_fn``) or its work (a worker): on
    Linux, SIGTERM when the process that started it dies, even by SIGKILL — a replay killed
    leaves no server, broker or worker behind (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Terminate a backend we started; kill it if it does not go in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout_s:.0f} s")


@contextlib.contextmanager
def backend(
    name: str,
    localstack_endpoint: str | None = None,
    clock: Path | None = None,
    region: str = "eu-central-1",
) -> Iterator[Endpoint]:
    """Start (or find) a backend, yield its endpoint, stop what was started. ``clock``: the
    offset file of a simulated clock; ``region``: the city's (the embedded backend only)."""
    if clock is not None and name != "embedded":
        raise ValueError("a simulated clock needs the embedded backend, which keeps time by it")
    if name == "embedded":
        from citypipe_local.backends.embedded import embedded

        with embedded(region, clock) as endpoint:
            yield endpoint
    elif name == "localstack":
        from citypipe_local.backends.localstack import localstack

        with localstack(localstack_endpoint) as endpoint:
            yield endpoint
    else:
        raise ValueError(f"unknown backend {name!r}: embedded or localstack")
