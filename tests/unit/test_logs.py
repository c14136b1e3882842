"""The functions' structured logs (decision 109): one JSON object a line on stdout, with
Powertools' keys, so what reads them in CloudWatch or Cockpit reads them as before."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from citypipe.entrypoints.logs import Logger


@dataclass
class Context:
    aws_request_id: str
    function_name: str = "citypipe-velden-ingest"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-3:123456789012:function:ingest"


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[str]:
    """A logger of the test's own, so the library's is left as it was."""
    name = f"citypipe-test-{request.node.name}"
    yield name
    logging.getLogger(name).handlers = []


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_record_is_one_json_line_with_its_keys_and_extras(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Logger(service)
    before = datetime.now(UTC)
    logging.getLogger(service).info("batch written", extra={"input_id": "a1", "readings": 3})
    [line] = lines(capsys)
    assert {k: line[k] for k in ("level", "message", "service", "input_id", "readings")} == {
        "level": "INFO",
        "message": "batch written",
        "service": service,
        "input_id": "a1",
        "readings": 3,
    }
    assert str(line["location"]).startswith("test_a_record_is_one_json_line")
    stamp = datetime.fromisoformat(str(line["timestamp"]))
    assert stamp.utcoffset() is not None and abs((stamp - before).total_seconds()) < 60
    assert not {"msg", "args", "levelno", "pathname", "exc_info", "thread"} & line.keys()


def test_an_invocation_stamps_its_context_and_only_the_first_is_cold(
    service: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = Logger(service)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793")

    @logger.inject_lambda_context
    def handler(event: dict[str, str], context: Context) -> str:
        logging.getLogger(service).info("handled", extra={"event": event["n"]})
        return event["n"]

    assert [handler({"n": "1"}, Context("r1")), handler({"n": "2"}, Context("r2"))] == ["1", "2"]
    first, second = lines(capsys)
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert (first["function_request_id"], second["function_request_id"]) == ("r1", "r2")
    assert first["function_name"] == "citypipe-velden-ingest"
    assert first["function_memory_size"] == 256
    assert str(first["function_arn"]).endswith(":function:ingest")
    assert first["xray_trace_id"] == "Root=1-5759e988-bd862e3fe1be46a994272793"


def test_a_failure_carries_its_traceback_and_name(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Logger(service)
    try:
        raise KeyError("zone")
    except KeyError:
        logging.getLogger(service).exception("stage failed")
    [line] = lines(capsys)
    assert (line["level"], line["exception_name"]) == ("ERROR", "KeyError")
    assert "Traceback" in str(line["exception"]) and "KeyError: 'zone'" in str(line["exception"])


def test_an_extra_json_cannot_hold_is_written_as_text_not_lost(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Logger(service)
    logging.getLogger(service).warning("odd", extra={"when": datetime(2026, 12, 7), "zone": "é"})
    [line] = lines(capsys)
    assert (line["when"], line["zone"]) == ("2026-12-07 00:00:00", "é")


def test_an_extra_cannot_overwrite_what_every_line_says(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Logger(service).append_keys(function_name="ingest")
    extra = {"level": "FAKE", "timestamp": "t", "service": "spoof", "function_name": "x", "n": 1}
    logging.getLogger(service).info("said", extra=extra)
    [line] = lines(capsys)
    assert (line["level"], line["service"], line["function_name"], line["n"]) == (
        "INFO",
        service,
        "ingest",
        1,
    )
    assert line["timestamp"] != "t"


def test_appended_keys_are_on_every_later_line(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = Logger(service)
    logger.append_keys(platform="scaleway", function_name="ingest")
    logging.getLogger(service).info("one")
    logging.getLogger(service + ".child").info("two")
    assert [(line["platform"], line["message"]) for line in lines(capsys)] == [
        ("scaleway", "one"),
        ("scaleway", "two"),
    ]


@pytest.mark.parametrize(
    ("environ", "level"),
    [
        ({}, logging.INFO),
        ({"CITYPIPE_LOG_LEVEL": "warning"}, logging.WARNING),
        ({"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, logging.DEBUG),
        ({"CITYPIPE_LOG_LEVEL": "ERROR", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, logging.ERROR),
        ({"AWS_LAMBDA_LOG_LEVEL": "TRACE"}, logging.DEBUG),
    ],
)
def test_the_level_comes_from_the_settings_then_lambda_then_info(
    service: str, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], level: int
) -> None:
    for name in ("CITYPIPE_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    Logger(service)
    assert logging.getLogger(service).level == level


@pytest.mark.parametrize("level", ["LOUD", "NOTSET"])
def test_an_unknown_level_is_said_and_info_is_kept(
    service: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setenv("CITYPIPE_LOG_LEVEL", level)
    Logger(service)
    assert logging.getLogger(service).level == logging.INFO
    [said] = lines(capsys)
    assert (said["level"], said["message"]) == ("WARNING", "unknown log level; INFO")


def test_a_handler_already_on_the_root_does_not_write_the_line_twice(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the root logger's handler, as Lambda's runtime installs one before the import
    seen: list[logging.LogRecord] = []
    runtime = logging.Handler()
    runtime.emit = seen.append  # type: ignore[method-assign]
    logging.root.addHandler(runtime)
    try:
        Logger(service)
        logging.getLogger(service).warning("once")
        logging.getLogger("elsewhere").warning("not ours")
    finally:
        logging.root.removeHandler(runtime)
    # Then only the JSON line is written; other loggers' records still reach the root
    assert [line["message"] for line in lines(capsys)] == ["once"]
    assert [record.getMessage() for record in seen] == ["not ours"]
