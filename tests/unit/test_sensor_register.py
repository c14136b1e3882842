"""The sensor register (``core.publish.sensors``) and the residents' pages
(``core.publish.residents``): every sensor in public space, by name, never by its hub's
id; a printable notice each, its register entry written out; the opt-out page's count;
and what the city file adds for them (``notice``, ``optout_url``) with its warnings."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit_support import DAY, RELEASE_KEYS, at, city_data, devices, exporting, no2, put_partial

from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.register import SENSORS
from citypipe.core.publish.residents import notice_html, optout_html, residents_files
from citypipe.core.publish.sensors import (
    SENSOR_COLUMNS,
    SENSOR_FORMATS,
    sensor_rows,
    write_sensor_register,
)
from citypipe.core.publish.statements import BASES
from citypipe.domain.city import City, LegalBasis, parse_city
from citypipe.domain.city_checks import city_warnings
from citypipe.domain.model import Message, Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.problems import ConfigError, Problem
from citypipe.service.export.day import export_day
from citypipe.service.export.requests import export_request
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out

NAMES = StackNames("velden")


def sensor_documents(city: City) -> dict[str, bytes]:
    """The sensor register's documents by extension, as export writes them."""
    sinks = {ext: io.BytesIO() for ext in SENSOR_FORMATS}
    write_sensor_register(city, sinks)
    return {ext: sink.getvalue() for ext, sink in sinks.items()}


def changed(**sources: dict[str, Any]) -> City:
    """The example city with each source's ``notice`` replaced."""
    data = city_data()
    for name, notice in sources.items():
        data["sources"][name]["notice"] = notice
    return parse_city(data, "velden.yaml")


def test_the_json_register_written_a_row_at_a_time_is_the_whole_documents_json() -> None:
    # free text with what Python's line splitting breaks at inside a JSON string
    odd = "Count\u2028people\x85here\u2029 and \u00e9"
    data = city_data()
    data["sources"]["wifi-counters"]["purpose"] = odd
    city = parse_city(data, "velden.yaml")
    whole = {"city": city.name, "sensors": sensor_rows(city)}
    assert odd in {row["purpose"] for row in whole["sensors"]}
    assert sensor_documents(city)["json"] == json_bytes(whole)


def by_sensor(city: City) -> dict[str, dict[str, str]]:
    return {row["sensor"]: row for row in sensor_rows(city)}


def test_every_registered_sensor_is_in_the_register_once(city: City) -> None:
    rows = sensor_rows(city)
    assert [r["sensor"] for r in rows] == sorted(city.registry.devices)
    assert all(list(r) == list(SENSOR_COLUMNS) for r in rows)


def test_a_source_not_in_public_space_is_not_in_the_register(city: City) -> None:
    private = changed(**{"traffic-counters": {"public_space": False}})
    sources = {r["source"] for r in sensor_rows(private)}
    assert "traffic-counters" not in sources and "wifi-counters" in sources


def test_no_hub_id_is_published_only_the_sensors_name(city: City) -> None:
    # Given every id a hub gives a device that is not its name (DevEUIs, access points'
    # MACs, IPv6 addresses, topics; long enough not to be found in a coordinate by chance)
    ids = {
        device.id.lower()
        for name, device in city.registry.devices.items()
        if device.id != name and len(device.id) >= 8
    }
    assert len(ids) > 100
    published = b"".join(sensor_documents(city).values()).lower()
    pages = b"".join(body for body, _ in dict(residents_files(city, 0)).values()).lower()
    assert not [i for i in ids if i.encode() in published or i.encode() in pages]


def test_owner_contact_and_basis_come_from_the_sources_notice_else_the_publisher(
    city: City,
) -> None:
    rows = by_sensor(changed(**{"air-quality": {}}))
    air = next(r for r in rows.values() if r["source"] == "air-quality")
    assert (air["owner"], air["contact"]) == (city.publisher.name, city.publisher.email)
    rows = by_sensor(city)
    wifi = next(r for r in rows.values() if r["source"] == "wifi-counters")
    assert wifi["owner"] == "City of Velden, Economic Affairs"
    assert wifi["legal_basis"].startswith(BASES[LegalBasis.PUBLIC_TASK])
    assert air["legal_basis"] == "" and air["personal_data"] == "no"  # no personal data
    assert (wifi["opt_out"], air["opt_out"]) == ("yes", "no")


def test_a_sensor_is_placed_at_its_registered_position_else_its_zones_centre(
    city: City,
) -> None:
    rows = by_sensor(city)
    for sensor, device in city.registry.devices.items():
        row = rows[sensor]
        if device.at is not None:
            assert (float(row["longitude"]), float(row["latitude"])) == pytest.approx(device.at)
            assert row["position"] == "registered position"
        else:
            assert row["position"].startswith("centre of its zone")


def test_the_csv_and_the_json_hold_the_same_rows(city: City) -> None:
    documents = sensor_documents(city)
    as_json = json.loads(documents["json"])["sensors"]
    as_csv = list(csv.DictReader(io.StringIO(documents["csv"].decode())))
    assert as_json == as_csv == sensor_rows(city)


def test_a_notice_writes_its_register_entry_out_and_says_what_article_13_asks(
    city: City,
) -> None:
    row = next(r for r in sensor_rows(city) if r["source"] == "wifi-counters")
    page = notice_html(city, row)
    entry = f"https://data.velden.example/open/velden/register/sensors.html#{row['sensor']}"
    assert row["register_url"] == entry
    assert f">{entry}</a>" in page  # printed, the address is readable: no QR code
    for said in (
        city.publisher.name, row["purpose"], "Legal basis", "Autoriteit Persoonsgegevens",
        "open/velden/optout.html", "open/velden/rights.html", city.publisher.dpo_email or "",
    ):  # fmt: skip
        assert said in page
    assert 'href="../../assets/residents.css"' in page
    assert (
        "@media print"
        in dict(residents_files(city, 0))[NAMES.asset_key("residents.css")][0].decode()
    )


def test_a_notice_of_a_sensor_without_personal_data_says_so_and_lists_no_rights(
    city: City,
) -> None:
    row = next(r for r in sensor_rows(city) if r["source"] == "air-quality")
    page = notice_html(city, row)
    assert "none: it processes no personal data" in page
    assert "Your rights" not in page and "Legal basis" not in page


def test_the_opt_out_page_posts_to_the_city_files_url_and_counts_never_names(
    city: City,
) -> None:
    page = optout_html(city, 3)
    assert '<form method="post" action="https://ingest.velden.example/optout">' in page
    assert "3 devices are opted out." in page
    assert re.search(r'<label for="address">', page) and 'id="address" name="address"' in page
    without = optout_html(city.model_copy(update={"optout_url": None}), 0)
    assert "<form" not in without and city.publisher.dpo_email in without  # type: ignore[operator]


def test_export_publishes_the_residents_pages_a_notice_per_sensor_and_the_count(
    memory_deps: Deps, memory_keys: Any
) -> None:
    # Given two opt-outs and a published day
    for address in ("aabbccddee01", "aabbccddee02"):
        opt_out(memory_deps, memory_keys, address)
    put_partial(memory_deps, "a", no2(), *devices(10))
    export_day(memory_deps, exporting(RELEASE_KEYS), DAY)
    bucket = memory_deps.names.bucket(Zone.OPEN)
    keys = {i.key for i in memory_deps.store.list(bucket)}
    notices = {k for k in keys if k.startswith("open/velden/register/notices/")}
    assert len(notices) == len(memory_deps.city.registry.devices)
    assert {NAMES.sensor_page_key(), NAMES.optout_page_key(), NAMES.rights_page_key()} <= keys
    page = memory_deps.store.get(bucket, NAMES.optout_page_key()).body.decode()
    assert "2 devices are opted out." in page
    portal = memory_deps.store.get(bucket, NAMES.portal_key()).body.decode()
    assert all(f'href="{k.removeprefix("open/velden/")}"' in portal for k in (
        NAMES.sensor_page_key(), NAMES.optout_page_key(), NAMES.rights_page_key()))  # fmt: skip


def citys_files(deps: Deps) -> set[str]:
    """The open zone's keys of what the city file makes: its registers and notices."""
    keys = {i.key for i in deps.store.list(deps.names.bucket(Zone.OPEN))}
    return {k for k in keys if k.startswith("open/velden/register/")}


def test_an_export_request_to_a_stack_without_data_publishes_the_register_and_every_notice(
    memory_deps: Deps,
) -> None:
    # Given a stack just deployed: no reading yet, no partial
    # When the operator asks export for every day (the deploy's last step, docs/deploy.md)
    export_request(
        memory_deps, exporting(), Message(city="velden", stage="export", bucket="", key="")
    )
    # Then the register and a notice per sensor are public before any hub sends
    published = citys_files(memory_deps)
    notices = {k for k in published if k.startswith("open/velden/register/notices/")}
    sensors = len(memory_deps.city.registry.devices)
    assert len(notices) == sensors
    assert NAMES.sensor_page_key() in published and NAMES.register_key(SENSORS, "json") in published
    # ... with a catalogue listing the registers, and no day of data
    keys = {i.key for i in memory_deps.store.list(memory_deps.names.bucket(Zone.OPEN))}
    assert NAMES.catalog_key() in keys and not [k for k in keys if "/date=" in k]


def test_the_hourly_job_publishes_the_register_on_a_day_without_data(memory_deps: Deps) -> None:
    # Given a stack that holds no reading (none sent yet, or none yesterday)
    fired = datetime(2024, 6, 2, 0, 30, tzinfo=UTC)
    # When the hourly job runs
    done = hourly(at(memory_deps, fired), exporting(), fired)
    # Then it publishes no day, but the city's files: a notice per sensor within the hour
    assert done.result == "empty"
    notices = {k for k in citys_files(memory_deps) if "/register/notices/" in k}
    sensors = len(memory_deps.city.registry.devices)
    assert len(notices) == sensors
    # And after a redeploy with a changed city file, the next run publishes the change
    contact = {"owner": "City of Velden, Environment Department", "contact": "aq@velden.example"}
    redeployed = dataclasses.replace(memory_deps, city=changed(**{"air-quality": contact}))
    later = fired + timedelta(hours=1)
    hourly(at(redeployed, later), exporting(), later)
    notice = memory_deps.store.get(memory_deps.names.bucket(Zone.OPEN), NAMES.notice_key("aq-001"))
    assert "aq@velden.example" in notice.body.decode()


# --- the city file's warnings ------------------------------------------------------------------


def warnings(city: City) -> list[Problem]:
    return city_warnings(city)


def test_sensors_in_public_space_on_consent_are_a_warning(city: City) -> None:
    consent = changed(**{"wifi-counters": {"legal_basis": "consent"}})
    [warning] = warnings(consent)
    assert warning.key == "sources.wifi-counters.notice.legal_basis"
    assert "passers-by are never asked" in warning.message
    assert "\n" not in str(warning)
    # not in public space: no warning
    assert (
        warnings(changed(**{"wifi-counters": {"legal_basis": "consent", "public_space": False}}))
        == []
    )


def test_devices_counted_with_no_opt_out_form_are_a_warning(city: City) -> None:
    [warning] = warnings(city.model_copy(update={"optout_url": None}))
    assert warning.key == "optout_url"
    assert warning.message.startswith("wifi-counters count devices by their address")
    assert "/optout" in (warning.fix or "")


def test_the_notice_block_refuses_a_key_it_does_not_know() -> None:
    with pytest.raises(ConfigError) as refused:
        changed(**{"wifi-counters": {"ownr": "x"}})
    assert refused.value.problems[0].key == "sources.wifi-counters.notice.ownr"
