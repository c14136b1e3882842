"""The edge over the project's own payloads of every hub format (events/hubs/): no
identifier they carry (EUIs, gateway names and positions, device names with serials, IPv6
base names, client MACs, host names, SSIDs and user ids that name people, the Meraki
secret, chip ids) reaches any zone or log line, in any spelling, whether the payload is
read or refused; a payload refused is quarantined once, as its shape (decision 79: names
the format or the registry knows, types and lengths, never a value; cut short, its bytes'
length and classes). (make conformance makes the same checks over third-party payloads.)"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from edge_support import (
    ingest_dropped,
    leaks,
    push_to_webhook,
    quarantine_rows,
    spellings,
    stored_text,
)
from hub_support import (
    DECODED,
    EXPECTED,
    HUBS,
    IDENTIFIERS,
    format_of,
    hub_city,
    source_of,
)

from citypipe.service.kernel import Deps
from citypipe_local.drops import drop

CSV = "csv/loop-export.csv"
PUSHED = sorted(n for n in EXPECTED if n != CSV)  # a CSV is dropped in the inbox, not pushed


def leak_cases() -> list[Any]:
    return [
        pytest.param(name, cut, id=f"{'truncated' if cut else 'as-sent'}-{name}")
        for name in PUSHED
        for cut in (False, True)
    ]


@pytest.fixture
def hub_deps(memory_deps: Deps) -> Deps:
    """A city stack in memory whose city registers the payloads' devices."""
    return dataclasses.replace(memory_deps, city=hub_city(memory_deps.city))


def push(deps: Deps, name: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """A payload pushed to the webhook of its devices' source, as its hub sends it."""
    push_to_webhook(deps, source_of(deps.city, name), format_of(name), body, headers)


def test_every_identifier_listed_is_in_a_payload_and_every_payload_carries_some() -> None:
    bodies = {n: (HUBS / n).read_text("utf-8").lower() for n in EXPECTED}
    assert [i for i in IDENTIFIERS if not any(i.lower() in b for b in bodies.values())] == []
    assert [n for n, b in bodies.items() if not any(i.lower() in b for i in IDENTIFIERS)] == [
        "aws-iot/rule-device-json.json",  # its device is the MQTT topic
        "sensor-community/push-no-esp8266id.json",  # its chip id, the X-Sensor header
    ]


@pytest.mark.parametrize(("name", "cut"), leak_cases())
def test_no_identifier_of_a_hub_payload_is_stored_or_logged(
    hub_deps: Deps, caplog: pytest.LogCaptureFixture, name: str, cut: bool
) -> None:
    # Given a payload as its hub sends it (or cut short, so it cannot be parsed)
    body = (HUBS / name).read_bytes()
    if cut:
        body = body[: len(body) * 2 // 3]
    # When it is pushed to the webhook
    with caplog.at_level(logging.DEBUG):
        push(hub_deps, name, body)
    # Then no zone and no log line holds any of its identifiers, in any spelling
    stored = stored_text(hub_deps) + caplog.text.lower()
    decoded = [i for i in DECODED.get(name, ()) if any(s in stored for s in spellings(i))]
    assert leaks(IDENTIFIERS, body, stored) + decoded == []


@pytest.mark.parametrize("name", PUSHED)
def test_a_refused_hub_payload_is_quarantined_once(hub_deps: Deps, name: str) -> None:
    push(hub_deps, name, (HUBS / name).read_bytes())
    assert len(quarantine_rows(hub_deps)) == EXPECTED[name].quarantine_rows


def test_the_device_an_iot_rule_names_by_topic_is_not_stored(
    hub_deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    name = "aws-iot/rule-device-json.json"
    topic = "velden/weather/ws-hoogstraat/data"
    with caplog.at_level(logging.DEBUG):
        push(hub_deps, name, (HUBS / name).read_bytes(), {"x-citypipe-topic": topic})
    stored = stored_text(hub_deps) + caplog.text.lower()
    assert "iot-weather-01" in stored  # read, so the test saw the write
    assert "ws-hoogstraat" not in stored


def test_the_chip_id_and_mac_in_the_headers_of_a_push_are_not_stored(
    hub_deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    name = "sensor-community/push-no-esp8266id.json"
    headers = {"X-Sensor": "esp8266-2718281", "X-MAC-ID": "esp8266-a4cf12e07b3d"}
    with caplog.at_level(logging.DEBUG):
        push(hub_deps, name, (HUBS / name).read_bytes(), headers)
    stored = stored_text(hub_deps) + caplog.text.lower()
    assert "airrohr-302" in stored  # read, so the test saw the write
    assert [i for i in ("2718281", "a4cf12e07b3d") if i in stored] == []


@pytest.mark.parametrize(
    "cut",
    [pytest.param(False, id="as-dropped"), pytest.param(True, id="truncated")],
)
def test_no_station_of_a_csv_drop_is_stored_or_logged(
    hub_deps: Deps, caplog: pytest.LogCaptureFixture, cut: bool
) -> None:
    body = (HUBS / CSV).read_bytes()
    if cut:
        body = body[: len(body) * 2 // 3]
    message = drop(hub_deps, "csv", "loop-export/loops-2026-06-01T09.csv", body, 5)
    with caplog.at_level(logging.DEBUG):
        ingest_dropped(hub_deps, message)
    # Then, the drop itself gone from the inbox, nothing holds a station's id
    hub_deps.store.delete(message.bucket, message.key)
    stored = stored_text(hub_deps) + caplog.text.lower()
    assert "loop-901" in stored  # read, so the test saw the write
    assert [i for i in ("VLD-TC-901", "VLD-TC-902") if i.lower() in stored] == []
