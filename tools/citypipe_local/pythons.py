"""Other Pythons on this machine: PATH first, then pyenv's versions. LocalStack needs a
newer one than the project's; the rehearsal runs the functions on their runtime's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def _pyenv_roots() -> list[Path]:
    roots = {Path.home() / ".pyenv"}
    if pyenv := shutil.which("pyenv"):
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        roots.add(Path(root.stdout.strip() or "."))
    return sorted(roots)


def find_python(oldest: tuple[int, int], newest: tuple[int, int], needed_by: str) -> str:
    """A Python whose version is between ``oldest`` and ``newest`` (both included)."""
    minors = range(oldest[1], newest[1] + 1)
    candidates = [shutil.which(f"python3.{minor}") for minor in reversed(minors)]
    for root in _pyenv_roots():
        for minor in reversed(minors):
            candidates += [str(p) for p in sorted(root.glob(f"versions/3.{minor}.*/bin/python3"))]
    for python in candidates:
        if python and (version := version_of(python)) and oldest <= version <= newest:
            return python
    first = ".".join(map(str, oldest))
    wanted = first if newest == oldest else f"{first} to {'.'.join(map(str, newest))}"
    raise RuntimeError(
        f"{needed_by} needs Python {wanted}: install one (e.g. `pyenv install {first}`)"
    )
