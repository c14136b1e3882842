"""Scratch space in the machine's temporary folder (Lambda's and Scaleway's /tmp, a
laptop's), locked while used.

Each user gets its own directory, ``citypipe-export-*``, holding a lock (``fcntl``) for as
long as it lives, removed after. The directories of users that died first are removed
before a new one is made: Lambda keeps /tmp for the next invocation of a container whose
invocation timed out or ran out of memory (only a Python exception cleans up), and a
day's spill left behind each time would fill it. A directory is abandoned when nobody
holds its lock (a lock dies with its process); several users on one machine (a laptop's
workers) never remove each other's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from citypipe.ports import Scratch

PREFIX = "citypipe-export-"
LOCK = ".lock"
UNLOCKED_GRACE_S = 3600  # a directory without its lock yet is being made

log = logging.getLogger("citypipe")


class TempScratch(Scratch):
    """Directories under ``root`` (the temporary folder by default); ``compressed``:
    spills into them are to be compressed."""

    def __init__(self, root: Path | None = None, compressed: bool = False) -> None:
        self.root = root
        self.compressed = compressed

    @contextlib.contextmanager
    def directory(self) -> Iterator[Path]:
        root = self.root or Path(tempfile.gettempdir())
        for found in root.glob(f"{PREFIX}*"):
            _remove_if_abandoned(found)
        with tempfile.TemporaryDirectory(prefix=PREFIX, dir=root) as name:
            directory = Path(name)
            with (directory / LOCK).open("wb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield directory


def _remove_if_abandoned(directory: Path) -> None:
    lock_path = directory / LOCK
    try:
        lock = lock_path.open("rb")
    except FileNotFoundError:  # made a moment ago, or by a process that died at once
        with contextlib.suppress(OSError):
            if time.time() - directory.stat().st_mtime > UNLOCKED_GRACE_S:
                shutil.rmtree(directory, ignore_errors=True)
        return
    except OSError:
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its user is alive
            return
        log.warning("stale scratch directory removed", extra={"function": "export"})
        shutil.rmtree(directory, ignore_errors=True)
