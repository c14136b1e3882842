"""The simulated clock of a replay that plays days in minutes.

The clock is the real one moved forward by an offset kept in a small file that every
process of the run reads — the functions' workers (their ``Clock``) and the embedded
backend (its objects' ``LastModified``, its queues' timers) — so when the replay moves
the clock a day ahead, an object written yesterday is a day old for the hourly job's
sweeps, exactly as in a city's cloud.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from citypipe.ports import Clock

REREAD_S = 0.05  # how long a process trusts the offset it read


class Offset:
    """The offset file: seconds the simulated clock is ahead of the real one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seconds = 0.0
        self._read_at = -1.0

    def seconds(self) -> float:
        now = time.monotonic()
        if now - self._read_at > REREAD_S:
            try:
                self._seconds = float(self.path.read_text() or 0)
            except (OSError, ValueError):
                self._seconds = 0.0
            self._read_at = now
        return self._seconds

    def set_now(self, at: datetime) -> None:
        """Move the simulated clock so that it reads ``at`` now (forward or back)."""
        seconds = (at - datetime.now(UTC)).total_seconds()
        partial = self.path.with_suffix(".partial")
        partial.write_text(repr(seconds))
        os.replace(partial, self.path)  # readers see the old offset or the new, whole
        self._read_at = -1.0


class SimulatedClock(Clock):
    """A ``Clock`` on the offset file (the functions' clock in a simulated-time replay)."""

    def __init__(self, path: Path) -> None:
        self.offset = Offset(path)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset.seconds())
