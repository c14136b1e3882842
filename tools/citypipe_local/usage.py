"""What a replay's work costs, measured where it runs.

Each worker process counts the round trips its botocore clients make to the backend and
the bytes they send and receive (``Meter``: hooks on the process's botocore session, so
every client it creates afterwards is counted), and the CPU seconds and peak memory of
each invocation; the runner adds them up per function (and for the edge). The backend's
own CPU comes from the kernel's accounting of its process. Together they say where a
replay's time goes: ``make bench`` prints them per stage.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from citypipe.adapters import clients


@dataclass
class Usage:
    """What some invocations cost, summed."""

    invocations: int = 0
    cpu_s: float = 0.0  # CPU of the worker processes while they ran them
    requests: int = 0  # round trips to the backend (retries included)
    bytes_sent: int = 0  # request bodies (objects written, messages sent)
    bytes_received: int = 0  # response bodies (objects read, messages received)
    operations: Counter[str] = field(default_factory=Counter)  # round trips by API call

    def add(self, other: Usage) -> None:
        self.invocations += other.invocations
        self.cpu_s += other.cpu_s
        self.requests += other.requests
        self.bytes_sent += other.bytes_sent
        self.bytes_received += other.bytes_received
        self.operations.update(other.operations)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["cpu_s"] = round(self.cpu_s, 3)
        found["operations"] = dict(self.operations.most_common())
        return found


class Meter:
    """Round trips and bytes of the botocore clients this process creates from now on."""

    def __init__(self) -> None:
        self.sent = self.received = 0
        self.operations: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            session = clients.session()
            session.register("before-send", self._before_send)
            session.register("response-received", self._response_received)
            self._installed = True

    def _before_send(self, **event: Any) -> None:
        request, name = event["request"], str(event.get("event_name", ""))
        length = request.headers.get("Content-Length", "0")
        size = int(length) if str(length).isdigit() else 0
        with self._lock:
            self.operations[name.rsplit(".", 1)[-1]] += 1
            self.sent += size

    def _response_received(self, **event: Any) -> None:
        response_dict = event.get("response_dict")
        if response_dict is None:
            return
        length = response_dict.get("headers", {}).get("content-length", "0")
        with self._lock:
            self.received += int(length) if str(length).isdigit() else 0

    def snapshot(self) -> tuple[Counter[str], int, int, float]:
        with self._lock:
            return self.operations.copy(), self.sent, self.received, time.process_time()

    def since(self, before: tuple[Counter[str], int, int, float]) -> Usage:
        operations, sent, received, cpu = self.snapshot()
        operations.subtract(before[0])
        calls = +operations  # drops the zeros
        return Usage(1, cpu - before[3], calls.total(), sent - before[1], received - before[2],
                     calls)  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used, from /proc; None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
