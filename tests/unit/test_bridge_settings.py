"""The bridge's settings (CITYPIPE_MQTT__…): validated once at start-up, refused with the
setting named; the command exits 2 on them before connecting anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from repo import CITY_FILE, ROOT

from citypipe_bridge.settings import BridgeSettings, MqttSettings


def test_the_defaults_bound_memory_by_twice_a_batch() -> None:
    settings = MqttSettings()

    assert (settings.host, settings.port, settings.tls) == ("127.0.0.1", 1883, False)
    assert settings.receive_max == 10_000


def test_a_tls_broker_defaults_to_port_8883() -> None:
    settings = MqttSettings(broker="mqtts://broker.velden.example")

    assert (settings.port, settings.tls) == (8883, True)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"broker": "http://broker:1883"}, "mqtt://host"),
        ({"broker": "mqtt://"}, "mqtt://host"),
        ({"client_id": "bridge/1"}, "client_id"),
        ({"cert_file": "c.pem"}, "cert_file and key_file go together"),
        ({"ca_file": "ca.pem"}, "certificates are for TLS"),
        ({"batch_messages": 500, "receive_maximum": 100}, "a batch could never fill"),
        ({"arrival": "property", "protocol": "3.1.1"}, "needs MQTT 5"),
        ({"session_expiry_s": -1}, "session_expiry_s"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_why(
    values: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        MqttSettings(**values)


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYPIPE_MQTT__BROKER", "mqtts://broker.velden.example:8884")
    monkeypatch.setenv("CITYPIPE_MQTT__CLIENT_ID", "velden-bridge-1")
    monkeypatch.setenv("CITYPIPE_MQTT__PASSWORD", "s3cret")

    settings = BridgeSettings()

    assert (settings.mqtt.port, settings.mqtt.client_id) == (8884, "velden-bridge-1")
    assert "s3cret" not in repr(settings)  # a password never reaches a log line


def test_the_command_exits_2_on_bad_settings_before_connecting(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("citypipe-bridge")
    environment = {
        **os.environ,
        "CITYPIPE_MQTT__BROKER": "ftp://broker",
        "CITYPIPE_STACK__CITY_FILE": str(CITY_FILE),
    }
    done = subprocess.run(
        [str(command)],
        env=environment,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "mqtt://host" in done.stderr
