"""``docs/first-city.md`` followed literally, as a newcomer with a clone and nothing beside
it would: its files written where it says, its commands run as it shows them (the one
change: a free port instead of 8080), until their own sensor's reading is in their own
city's portal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo import ROOT

from citypipe_local.backends import free_port

pytestmark = pytest.mark.slow

GUIDE = ROOT / "docs" / "first-city.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)


def blocks(kind: str) -> Iterator[tuple[str, str]]:
    """The guide's code blocks of a kind: (the rest of the info string, the code)."""
    for found in BLOCK.finditer(GUIDE.read_text()):
        if found.group(1) == kind:
            yield found.group(2).strip(), found.group(3)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding what a clone holds that the guide uses (the example city) and
    ``.venv/bin/citypipe`` (this interpreter's citypipe), then the guide's files."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "infra" / "cities", folder / "infra" / "cities")
    command = folder / ".venv" / "bin" / "citypipe"
    command.parent.mkdir(parents=True)
    command.write_text(
        f"#!/bin/sh\nPYTHONPATH={os.pathsep.join(sys.path)} exec {sys.executable} -c "
        '"import sys; from citypipe_local.cli import main; sys.exit(main())" "$@"\n'
    )
    command.chmod(0o755)
    for info, text in blocks("yaml"):
        name = info.removeprefix("file=")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def shell(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env={**os.environ, **env}, capture_output=True,
        text=True, check=False, timeout=300,
    )  # fmt: skip


def test_the_guide_reaches_my_sensors_reading_in_my_portal(clone: Path) -> None:
    check, serve, post = (code for _, code in blocks("sh"))
    port = str(free_port())
    # 3. the file is checked: it loads
    checked = shell(check, clone)
    assert checked.returncode == 0, checked.stderr
    assert "harbour (Harbour)" in checked.stderr and checked.stderr.rstrip().endswith("loads")
    [warning] = [line for line in checked.stderr.splitlines() if line.startswith("warning:")]
    assert "sources.traffic-counters.poll.0.api" in warning and "the poll asks nothing" in warning
    # 4. the webhook is served; it prints a token per source. It is started with SIGINT
    # ignored, as a test runner's worker or a background job starts it: Ctrl-C must still
    # end it (the server handles the signal itself)
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = subprocess.Popen(
            ["bash", "-c", "exec " + serve.strip().replace("8080", port)],
            cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert server.stdout is not None
    tokens = {}
    for line in server.stdout:
        name, _, value = line.strip().partition(" ")
        tokens[name] = value
        if len(tokens) > 3:  # the url, then one line per source
            break
    try:
        # 5. the uplink is posted with the air-quality token: two readings accepted
        posted = shell(post.replace("8080", port), clone, TOKEN=tokens["air-quality"])
        assert posted.returncode == 0, posted.stderr
        answer = json.loads(posted.stdout)
        assert (answer["accepted"], answer["quarantined"]) == (2, 0), answer
    finally:
        # 6. Ctrl-C: the day is exported
        server.send_signal(signal.SIGINT)
        _, said = server.communicate(timeout=300)
    assert server.returncode == 0, said
    portal = clone / "out" / "serve" / "open" / "harbour"
    assert "Air quality" in (portal / "index.html").read_text()
    [day] = (portal / "air-quality").glob("date=*/*.csv")
    rows = [line.split(",") for line in day.read_text().splitlines()]
    published = {(r[2], r[3], r[6]) for r in rows[1:] if r[-2] == "published"}
    assert published == {("quay", "air.pm10", "18.4"), ("quay", "air.no2", "21.0")}
