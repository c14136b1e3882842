"""A replay through a transport stops at the first signal, and leaves nothing running
(decision 91): ``citypipe replay --via http`` and ``--via mqtt`` in a process of their own,
signalled while they send; the command ends, and no process it started — the moto server,
the fork server, the workers, Mosquitto — is left (each is found by its session), not even
when the replay is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from citypipe.domain.city import City
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # a stack started for each

ROOT = Path(__file__).resolve().parents[2]


def in_session(session: int) -> list[int]:
    """The processes of a session (``/proc/<pid>/stat``'s sixth field), alive or not reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def started_sending(out: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the replay's log shows its hubs sending and its functions running: its backend,
    fork server and workers (and broker) up beside it."""
    deadline = time.monotonic() + timeout_s
    log = out / "logs.jsonl"
    while time.monotonic() < deadline:
        assert process.poll() is None, "the replay ended before it was signalled"
        if (
            log.exists()
            and b'"processed"' in log.read_bytes()
            and len(in_session(process.pid)) >= 4
        ):
            return
        time.sleep(0.5)
    raise TimeoutError("the replay did not start sending")


@pytest.mark.parametrize(
    ("via", "signum"),
    [("http", signal.SIGTERM), ("mqtt", signal.SIGINT), ("http", signal.SIGKILL)],
)
def test_a_transport_replay_stops_at_the_first_signal_and_leaves_nothing(
    tmp_path: Path, city: City, via: str, signum: signal.Signals
) -> None:
    simulate(city, tmp_path / "input", hours=3.0, seed=5, scale=0.1)
    out = tmp_path / "out"
    command = Path(sys.executable).with_name("citypipe")
    process = subprocess.Popen(
        [str(command), "replay", "--input", str(tmp_path / "input"), "--out", str(out),
         "--via", via],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its session: every process it starts
    )  # fmt: skip
    try:
        started_sending(out, process, 300)
        process.send_signal(signum)
        _, said = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    # stopped (SIGKILL: killed, its children told by the kernel)
    assert process.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), said
    deadline = time.monotonic() + 30  # children end on their parent's SIGTERM: give them time
    while in_session(process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert in_session(process.pid) == []
    assert not (out / "report.json").exists()  # stopped, not finished
