"""The command line as a newcomer meets it: one-line errors with the fix and exit 2, checked
inputs, choices that are choices, help for every option, commands in the order of a first
run. Driven through ``cli.main`` (what the ``citypipe`` command runs) and, where the process
matters, a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from citypipe_local.cli import FIRST_RUN, app, main
from citypipe_local.cliout import EXAMPLE_CITY

ROOT = Path(__file__).resolve().parents[2]

COMMAND = "import sys; from citypipe_local.cli import main; sys.exit(main())"


def ran(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """The exit code and the lines written to stderr."""
    code = main(list(argv))
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["replay", "--input", "/nonexistent"], "--input /nonexistent: no such folder"),
        (["replay", "--input", "{empty}"], "no captures (<format>.jsonl) or CSV drops"),
        (["replay"], "Missing option '--input'"),
        (["replay", "--input", "{empty}", "--backend", "foo"], "'foo' is not one of"),
        (["stack", "up", "--cloud", "gcp"], "'gcp' is not one of 'aws', 'scaleway'"),
        (["replay", "--input", "{empty}", "--city", "/nowhere.yaml"], "--city /nowhere.yaml"),
        (["simulate", "--out", "{empty}", "--scale", "2.5"], "a whole multiple"),
        (["replay", "--input", "{captures}", "--city", "{broken}"], "slug: Field required"),
        (["push", "--input", "{captures}"], "no region for the city's stack: set AWS_REGION"),
        (["request-export"], "no region for the city's stack"),
        (["serve", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["quarantine", "--out", "{empty}"], "no run's output there (no report.json)"),
        (["bridge", "mqtt", "--broker", "notaurl"], "--broker notaurl: mqtt://host"),
        (["check-city", "/nowhere.yaml"], "citypipe: /nowhere.yaml: no such file"),
    ],
    ids=[
        "missing-input",
        "empty-input",
        "no-input",
        "backend",
        "cloud",
        "no-city",
        "scale",
        "city-file",
        "push-settings",
        "export-settings",
        "tls",
        "not-a-run",
        "broker",
        "check-no-file",
    ],
)
def test_an_expected_failure_is_one_line_with_the_fix_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    says: str,
) -> None:
    # Given no cloud settings in the environment, an empty folder, a broken city file
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "CITYPIPE_BACKEND__REGION"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "senml.jsonl").write_text('{"at": 1, "body": "[]"}\n')
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE_CITY.read_text().replace("slug: velden", "city: velden"))
    (tmp_path / "velden-devices.yaml").write_text(
        (EXAMPLE_CITY.parent / "velden-devices.yaml").read_text()
    )
    folders = {"{empty}": str(tmp_path / "empty"), "{captures}": str(tmp_path / "captures"),
               "{broken}": str(broken)}  # fmt: skip
    # When the command runs
    code, lines = ran(capsys, *(folders.get(a, a) for a in argv))
    # Then it says what is wrong in one line, and exits 2
    assert code == 2
    assert len(lines) == 1, lines
    assert says in lines[0]
    assert "Traceback" not in lines[0]


def test_debug_shows_the_traceback_instead(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception, match="no such folder"):
        main(["--debug", "replay", "--input", "/nonexistent"])


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = ran(capsys)
    assert code == 0
    assert any("demo" in line for line in lines)


def test_the_commands_are_listed_in_the_order_of_a_first_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    listed = [
        line.split()[0]
        for line in capsys.readouterr().out.split("Commands:")[1].splitlines()
        if line.startswith("  ")
    ]
    assert listed == list(FIRST_RUN)


def _options(command: object, path: str = "citypipe") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for param in getattr(command, "params", []):
        found.append((path, param))
    for name, sub in getattr(command, "commands", {}).items():
        found += _options(sub, f"{path} {name}")
    return found


def test_every_option_and_argument_has_help_text() -> None:
    missing = [
        f"{path} {param.name}"  # type: ignore[attr-defined]
        for path, param in _options(get_command(app))
        if not getattr(param, "help", None) and param.name != "help"  # type: ignore[attr-defined]
    ]
    assert missing == []


def test_the_example_city_is_found_wherever_the_command_runs(tmp_path: Path) -> None:
    # Given a folder outside the repository as the current directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # When a command that takes the default city runs there
    done = subprocess.run(
        [sys.executable, "-c", COMMAND,
         "simulate", "--out", str(tmp_path / "captures"), "--hours", "0.25", "--scale", "0.02"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    # Then it found the example city of this checkout
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "captures").glob("*.jsonl"))


def test_check_city_lists_every_problem_of_a_file_a_line_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a city file with two mistakes (the old key, and one misspelt)
    broken = tmp_path / "city.yaml"
    text = EXAMPLE_CITY.read_text().replace("slug: velden", "city: velden")
    broken.write_text(text.replace("licence:", "lisence:"))
    (tmp_path / "velden-devices.yaml").write_text(
        (EXAMPLE_CITY.parent / "velden-devices.yaml").read_text()
    )
    # When it is checked
    code, lines = ran(capsys, "check-city", str(broken))
    # Then every problem is a line naming the file and the line, and the check fails
    assert code == 2
    assert all(line.startswith(f"error: {broken}") for line in lines)
    assert any(":3: city: Extra inputs" in line for line in lines)
    assert any("lisence: Extra inputs" in line for line in lines)


def test_check_city_warns_of_what_a_file_probably_does_not_mean(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    city = tmp_path / "city.yaml"
    city.write_text(f"extends: {EXAMPLE_CITY}\ndisclosure: {{k: 1000}}\n")
    code, lines = ran(capsys, "check-city", str(city))
    assert code == 0
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert warning.startswith(f"warning: {city}:2: disclosure.k: k is 1000")
    assert lines[-1].endswith("loads")


def test_check_city_says_a_good_city_file_loads(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = ran(capsys, "check-city", str(EXAMPLE_CITY))
    assert code == 0
    assert lines[-1].endswith("loads")
    assert any("velden" in line for line in lines)


def test_stack_up_on_a_backend_it_started_says_the_stack_ends_with_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = ran(capsys, "stack", "up", "--backend", "embedded")
    said = " ".join(lines)
    assert code == 0
    assert "stack up on embedded" in said
    assert "ends with it: so does the stack" in said


def test_a_stack_outside_the_citys_region_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given credentials and a region that is not the city's (eu-central-1)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "senml.jsonl").write_text('{"at": 1, "body": "[]"}\n')
    # When payloads are pushed to it
    code, lines = ran(capsys, "push", "--input", str(tmp_path))
    # Then the residency guard refuses before anything is sent, in one line
    assert code == 2
    assert lines == [
        "citypipe: function start-up: region 'us-east-1' is not the city's: velden is kept in "
        "'eu-central-1' (its city file's region)"
    ]


def test_a_port_in_use_is_refused_before_a_stack_is_started(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = ran(capsys, "serve", "--port", str(port))
    assert code == 2
    assert lines == [
        f"citypipe: --port {port}: 127.0.0.1:{port} is taken (Address already in use); pass "
        "another --port, or --port 0 for any free one"
    ]


def test_debug_may_stand_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception, match="no such folder"):
        main(["replay", "--input", "/nonexistent", "--debug"])
