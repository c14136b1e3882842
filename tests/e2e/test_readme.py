"""The README's claims about the demo, against the demo: ``make demo``'s command run as the
Makefile runs it, its summary compared line by line with the one the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from repo import CITY_FILE, ROOT

from citypipe.domain.city import load_city

pytestmark = pytest.mark.slow

README = ROOT / "README.md"


def shown_summary() -> list[str]:
    """The lines of the README's block of the demo's summary."""
    text = README.read_text()
    block = re.search(r"```\n( books balance.*?)```", text, re.S)
    assert block is not None, "the README shows the demo's summary"
    return block.group(1).splitlines()


def squeezed(line: str) -> str:
    return " ".join(line.split())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """``citypipe demo --out out/demo``, as ``make demo`` runs it, in an empty folder."""
    cwd = tmp_path_factory.mktemp("readme")
    makefile = (ROOT / "Makefile").read_text()
    command = re.search(r"^demo: .*\n\t\$\(BIN\)/citypipe (demo[^\n]*)", makefile, re.M)
    assert command is not None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from citypipe_local.cli import main; sys.exit(main())",
         *command.group(1).split()],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def test_the_demo_prints_every_summary_line_the_readme_shows(
    demo: subprocess.CompletedProcess[str],
) -> None:
    assert demo.returncode == 0, demo.stderr
    printed = [squeezed(line) for line in demo.stderr.splitlines()]
    for line in shown_summary():
        if "…" in line:
            head = squeezed(line.split("…")[0])
            if head:
                assert any(p.startswith(head) for p in printed), line
            continue
        assert squeezed(line) in printed, line


def test_the_example_city_has_the_devices_the_readme_says() -> None:
    said = re.search(r"`infra/cities/velden.yaml`: (\d+) devices", README.read_text())
    assert said is not None
    assert int(said.group(1)) == len(load_city(CITY_FILE).registry.devices)
