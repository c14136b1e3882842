"""Policies that cannot disable protection (issue 17, item 5): a city file may choose how
much it keeps and publishes, never to switch off what protects the people it counts.

- A source that counts people is personal whatever its identifier rules say, and must
  pseudonymize the field that identifies the device it counts.
- Every zone but the open one has an upper bound on its retention, and none is kept
  forever; the audit zone outlives the data it accounts for.
- A personal source is kept at 5 minutes at the finest (5 when the file says nothing).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE
from unit_support import city_data, clean, reading, release_of

from citypipe.core.aggregate import cells, partial_of
from citypipe.core.disclosure import Status, disclose, treatment
from citypipe.domain.city import Action, City, ConfigError, load_city, parse_city
from citypipe.domain.model import QUANTITIES, Zone

PSEUDONYMIZE_FIX = (
    "pseudonymize the field that identifies the device counted, e.g. device_mac: pseudonymize"
)


def refused(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        parse_city(data, "velden.yaml")
    assert "\n" not in str(error.value)
    return error.value


def wifi_policy(**policy: Any) -> dict[str, Any]:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"].update(policy)
    return data


def wifi_rules(**rules: str) -> dict[str, Any]:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"]["personal"].update(rules)
    return data


# --- a people counter is personal, and pseudonymizes the device it counts --------------------


def test_only_the_people_family_counts_people() -> None:
    counting = {name for name, quantity in QUANTITIES.items() if quantity.counts_people}
    assert counting == {name for name in QUANTITIES if name.startswith("people.")}
    assert counting  # people.presence, at least


@pytest.mark.parametrize("action", ["drop", "refuse"])
def test_a_people_counter_may_not_give_up_the_pseudonym_of_the_device_it_counts(
    action: str,
) -> None:
    # Given the Wi-Fi counters dropping (or refusing) the phone's address instead of
    # pseudonymizing it: before, a cell of one detection was published exactly, labelled
    # "No personal data"
    error = refused(wifi_rules(device_mac=action))
    # Then the city file is refused at that rule, with the fix
    [problem] = error.problems
    assert problem.key == "sources.wifi-counters.policy.personal.device_mac"
    assert "counts people (people.presence in profile wifi-canonical)" in problem.message
    assert problem.fix == PSEUDONYMIZE_FIX


def test_a_source_whose_profile_counts_people_needs_a_pseudonymized_subject() -> None:
    # Given the air-quality source (no privacy policy) with a people counter among its
    # devices, reporting through citypipe's canonical hub
    data = city_data()
    data["registry"]["profiles"]["aq-people"] = {
        "source": "air-quality",
        "kind": "a people counter filed under air quality",
        "hubs": ["canonical"],
        "max_devices_per_window": 100,
        "fields": {"people": {"quantity": "people.presence"}},
    }
    data["registry"]["devices"]["aq-people-1"] = {
        "profile": "aq-people", "hub": "canonical", "id": "aq-people-1", "zone": "centrum",
    }  # fmt: skip
    # When it is parsed, then it is refused at the policy it lacks
    [problem] = refused(data).problems
    assert problem.key == "sources.air-quality.policy.personal"
    assert "profile aq-people" in problem.message
    assert problem.fix == PSEUDONYMIZE_FIX


def test_a_meraki_source_counts_people_whatever_quantity_its_profile_names() -> None:
    # Given the Meraki profile's detections filed as pedestrians, and the address dropped
    data = wifi_rules(device_mac="drop")
    data["registry"]["profiles"]["wifi-meraki"]["fields"]["presence"] = {
        "quantity": "traffic.pedestrians"
    }
    data["registry"]["profiles"]["wifi-canonical"]["fields"]["people.presence"] = {
        "quantity": "traffic.pedestrians"
    }
    # Then a detection of a phone is still a person counted: refused
    [problem] = refused(data).problems
    assert problem.key == "sources.wifi-counters.policy.personal.device_mac"
    assert "meraki" in problem.message
    assert problem.fix == PSEUDONYMIZE_FIX


def test_the_refusal_is_one_line_at_the_rule_in_the_city_file(tmp_path: Path) -> None:
    # Given the example city's files with the Wi-Fi counters dropping the phone's address
    for name in ("velden.yaml", "velden-devices.yaml"):
        shutil.copy(CITY_FILE.parent / name, tmp_path / name)
    path = tmp_path / "velden.yaml"
    text = path.read_text()
    assert text.count("device_mac: pseudonymize") == 1
    path.write_text(text.replace("device_mac: pseudonymize", "device_mac: drop"))
    line = next(
        n for n, row in enumerate(path.read_text().splitlines(), 1) if "device_mac: drop" in row
    )
    # When it is loaded
    with pytest.raises(ConfigError) as error:
        load_city(path)
    # Then one line names the file, the line, the key and the fix
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: sources.wifi-counters.policy.personal.device_mac: ")
    assert message.endswith(f"; fix: {PSEUDONYMIZE_FIX}")


def test_a_people_count_is_personal_whatever_its_sources_policy_says(city: City) -> None:
    # Given a city whose Wi-Fi policy drops the address (validation bypassed: what the
    # disclosure must withstand even so), and one device seen in a window
    policy = city.sources["wifi-counters"].policy
    rules = {**policy.personal, "device_mac": Action.DROP}
    source = city.sources["wifi-counters"].model_copy(
        update={"policy": policy.model_copy(update={"personal": rules})}
    )
    lax = city.model_copy(update={"sources": {**city.sources, "wifi-counters": source}})
    one = {**reading(), "pseudonym": None}
    # Then people counts stay personal: the cell of one detection shows no exact figure,
    # and it is suppressed (it counts nobody: a reading without a pseudonym is no device)
    assert "people.presence" in lax.personal_quantities
    assert treatment(lax, ["people.presence"]).personal
    [cell] = disclose(lax, cells(partial_of(clean(one))), release_of(lax, one))
    assert cell.status is Status.SUPPRESSED
    assert cell.count is None


def test_a_city_without_people_counters_still_holds_people_counts_personal() -> None:
    data = city_data()
    registry = data["registry"]
    for name in ("wifi-meraki", "wifi-canonical"):
        del registry["profiles"][name]
    registry["devices"] = {
        k: v for k, v in registry["devices"].items() if not k.startswith("wifi-")
    }
    assert "people.presence" in parse_city(data).personal_quantities


# --- retention: bounded, and the audit outlives what it accounts for --------------------------


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("quarantine", 31),
        ("clean", 366),
        ("aggregates", 3651),
        ("audit", 3651),
        ("quarantine", None),
        ("clean", None),
        ("aggregates", None),
        ("audit", None),
    ],
    ids=str,
)
def test_retention_beyond_a_zones_bound_or_forever_is_refused(zone: str, days: int | None) -> None:
    data = city_data()
    data["retention_days"][zone] = days
    problem = refused(data).problems[0]
    assert problem.key == f"retention_days.{zone}"
    assert problem.fix is not None


@pytest.mark.parametrize(
    "retention",
    [
        {"quarantine": 30, "clean": 365, "aggregates": 3650, "audit": 3650},
        {"open": None},
        {"open": 36500},
        {"quarantine": 1, "clean": 1, "aggregates": 1, "audit": 1},
    ],
    ids=["every-bound", "open-kept", "open-a-century", "a-day-each"],
)
def test_retention_within_the_bounds_is_accepted(retention: dict[str, int | None]) -> None:
    data = city_data()
    data["retention_days"].update(retention)
    city = parse_city(data)
    assert {z.value: city.retention_days[z] for z in map(Zone, retention)} == retention


def test_audit_records_are_kept_as_long_as_the_data_they_account_for() -> None:
    # Given lineage (the idempotency marker) and the ε ledger kept less than the partials
    data = city_data()
    data["retention_days"].update(aggregates=730, audit=700)
    # Then the city is refused at the audit retention, saying how long at least
    [problem] = refused(data).problems
    assert problem.key == "retention_days.audit"
    assert "aggregates" in problem.message
    assert problem.fix == "set retention_days.audit to at least 730"


# --- people data no finer than 5 minutes ------------------------------------------------------


@pytest.mark.parametrize("minutes", [1, 3])
def test_a_people_counter_finer_than_5_minutes_is_refused(minutes: int) -> None:
    [problem] = refused(wifi_policy(time_resolution_minutes=minutes)).problems
    assert problem.key == "sources.wifi-counters.policy.time_resolution_minutes"
    assert problem.fix is not None and "5" in problem.fix


@pytest.mark.parametrize("minutes", [5, 15])
def test_a_people_counter_at_5_or_15_minutes_is_accepted(minutes: int) -> None:
    city = parse_city(wifi_policy(time_resolution_minutes=minutes))
    assert city.sources["wifi-counters"].policy.time_resolution_minutes == minutes


def test_a_people_counter_without_a_resolution_is_kept_at_5_minutes() -> None:
    data = city_data()
    del data["sources"]["wifi-counters"]["policy"]["time_resolution_minutes"]
    city = parse_city(data)
    assert city.sources["wifi-counters"].policy.time_resolution_minutes == 5
    # and any other source at the minute, as before
    assert city.sources["air-quality"].policy.time_resolution_minutes == 1


def test_a_source_about_no_one_may_keep_the_minute() -> None:
    data = city_data()
    data["sources"]["air-quality"]["policy"] = {"time_resolution_minutes": 1}
    assert parse_city(data).sources["air-quality"].policy.time_resolution_minutes == 1


def test_a_resolved_city_reads_back_the_same(city: City) -> None:
    # the 5 a people counter was given is written out, so a dump parses to the same city
    data = city_data()
    del data["sources"]["wifi-counters"]["policy"]["time_resolution_minutes"]
    again = parse_city(parse_city(data).model_dump(mode="json"))
    assert again.sources == city.sources
