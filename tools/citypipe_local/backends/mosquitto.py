"""A Mosquitto broker citypipe starts itself on loopback: for ``replay --via mqtt`` and the
tests. Debian's ``mosquitto`` package (installed by ``.ci/mosquitto``).

Persistence is on, in a file under ``directory``, saved every second and on a clean stop:
Mosquitto 2.0 keeps its state in memory between saves, so a broker killed (SIGKILL) loses
or resends as new what it received since the last save — a city's broker wants the same
short ``autosave_interval``, and restarts with SIGTERM. Unlimited queues: Mosquitto's
default (1,000 messages per client) would drop messages for a bridge that is away or slow.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from citypipe_local.backends import die_with_parent, free_port, wait_until

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str:
    """Debian's broker, or a clear error saying how to get it."""
    for candidate in (os.environ.get("CITYPIPE_MOSQUITTO", ""), *CANDIDATES):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    raise FileNotFoundError(
        "mosquitto not found: install Debian's package (apt-get install mosquitto; "
        ".ci/mosquitto does it as root) or set CITYPIPE_MOSQUITTO"
    )


@dataclass
class Mosquitto:
    """One broker process; ``kill`` and ``start`` again keep its persistence file."""

    directory: Path
    port: int = 0
    extra: list[str] = field(default_factory=list)  # more configuration lines (TLS, auth)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "mosquitto.log"

    def config(self) -> Path:
        # options Mosquitto wants before any other (per_listener_settings) come first
        first = [line for line in self.extra if line.startswith("per_listener_settings")]
        lines = [
            *first,
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.directory}/",
            "autosave_interval 1",
            "autosave_on_changes false",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "persistent_client_expiration 1d",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            *(line for line in self.extra if line not in first),
        ]
        if (
            os.geteuid() == 0
        ):  # as root, Mosquitto drops to user mosquitto (which cannot write here)
            lines.append(f"user {getpass.getuser()}")
        path = self.directory / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Mosquitto:
        if self.process is not None and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (a prctl, no lock taken)
        )
        process = self.process
        wait_until(lambda: process.poll() is None and self._listening(), 20, "mosquitto")
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
        except OSError:
            return False
        return True

    @property
    def database(self) -> Path:
        return self.directory / "mosquitto.db"  # persistence_file's default name

    def _saved_ns(self) -> int:
        try:
            return self.database.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def saved(self, timeout_s: float = 30) -> None:
        """Returns once the broker has saved, from start to end, after this call began: what
        it held then (sessions, subscriptions, messages in flight) survives a SIGKILL.
        Mosquitto autosaves on a whole-second clock, so a fixed pause is not enough: this
        waits for a save that ended after the call, then for the next one (which began
        after it)."""
        began = time.time_ns()
        wait_until(lambda: self._saved_ns() > began, timeout_s, "mosquitto's autosave")
        first = self._saved_ns()
        wait_until(lambda: self._saved_ns() > first, timeout_s, "mosquitto's next autosave")

    def kill(self) -> None:
        """SIGKILL: no save on the way out (what came since the last autosave is gone)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its state, then exits."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
