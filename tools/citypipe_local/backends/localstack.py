"""The LocalStack backend: the endpoint in LOCALSTACK_ENDPOINT if it answers, else the
open-source runtime started on the host without Docker.

localstack-core 2026.3.0 imports ``warnings.deprecated`` (Python 3.13), so it gets its own
venv (``.venv-localstack``) on a Python >= 3.13 found on PATH or among pyenv's versions.
The pins are the ones found by trial (see docs/decisions/0009-backends.md).

Several processes may ask for it at once (pytest-xdist workers, two CLIs): a lock file per
port lets one of them start LocalStack while the others wait, and a second one, held shared
by every process using it, makes the one that started it wait for the others before it
stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from citypipe.settings import BackendSettings
from citypipe_local.backends import Endpoint, die_with_parent, reachable, stop, wait_until
from citypipe_local.pythons import find_python

VERSION = "2026.3.0"
REQUIREMENTS = [
    f"localstack-core[runtime]=={VERSION}",
    "cbor2<5.7",
    "cryptography<45",
    "pyopenssl<25",
    "service_identity",
]
SERVICES = "s3,sqs,secretsmanager"
LISTEN = "127.0.0.1:4566"
DEFAULT_ENDPOINT = f"http://{LISTEN}"
MIN_PYTHON = (3, 13)
PASSED_ENV = frozenset(
    {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}
)


def _health(url: str) -> bool:
    return reachable(f"{url}/_localstack/health")


def ensure_runtime(venv: Path) -> Path:
    """Create ``venv`` with the pinned LocalStack once; return its python."""
    python = venv / "bin" / "python"
    marker = venv / f".citypipe-localstack-{VERSION}"
    if marker.exists():
        return python
    newer = find_python(
        MIN_PYTHON, (3, 19), "LocalStack (or start it yourself and set LOCALSTACK_ENDPOINT)"
    )
    subprocess.run([newer, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *REQUIREMENTS,
        ],
        check=True,
    )
    marker.touch()
    return python


def _settings(url: str) -> BackendSettings:
    return BackendSettings(
        endpoint_url=url,
        region="eu-central-1",
        access_key_id="test",
        secret_access_key="test",  # noqa: S106 (local emulator)
    )


def _lock(role: str) -> Path:
    return Path(tempfile.gettempdir()) / f"citypipe-localstack-{LISTEN.replace(':', '-')}.{role}"


@contextlib.contextmanager
def localstack(
    configured: str | None = None, venv: Path = Path(".venv-localstack")
) -> Iterator[Endpoint]:
    """``configured``: an endpoint the user runs already (LOCALSTACK_ENDPOINT)."""
    if configured and _health(configured):
        yield Endpoint("localstack", _settings(configured))
        return
    endpoint = Endpoint("localstack", _settings(DEFAULT_ENDPOINT))
    with _lock("start").open("a") as start, _lock("users").open("a") as users:
        fcntl.flock(start, fcntl.LOCK_EX)  # one process at a time finds or starts it
        try:
            fcntl.flock(users, fcntl.LOCK_SH)  # a user: whoever started it waits for us
            if _health(DEFAULT_ENDPOINT):
                fcntl.flock(start, fcntl.LOCK_UN)
                yield endpoint
                return
            with _started(venv) as pid:
                fcntl.flock(start, fcntl.LOCK_UN)
                try:
                    yield replace(endpoint, pid=pid)
                finally:
                    fcntl.flock(users, fcntl.LOCK_UN)
                    fcntl.flock(users, fcntl.LOCK_EX)  # until no other process uses it
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)
            fcntl.flock(start, fcntl.LOCK_UN)


@contextlib.contextmanager
def _started(venv: Path) -> Iterator[int]:
    python = ensure_runtime(venv)
    state = tempfile.mkdtemp(prefix="citypipe-localstack-")
    env = {
        **{k: v for k, v in os.environ.items() if k in PASSED_ENV},  # not the AWS credentials
        "GATEWAY_LISTEN": LISTEN,
        "SERVICES": SERVICES,
        "DNS_ADDRESS": "0",
        "LOCALSTACK_VOLUME_DIR": state,
        "FILESYSTEM_ROOT": state,
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
    }
    log = Path(state) / "localstack.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=env,
            stdout=sink,
            stderr=sink,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (a prctl, no lock taken)
        )
    try:
        wait_until(
            lambda: process.poll() is None and _health(DEFAULT_ENDPOINT), 120, f"LocalStack ({log})"
        )
        yield process.pid
    finally:
        stop(process)
        shutil.rmtree(state, ignore_errors=True)
