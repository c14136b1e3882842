"""The complete table of the city file's red lines (issue 25): every bound a city file may
not cross is refused just past it, naming its key, and accepted at it; every default a file
that says nothing gets. Mutation testing found each of these loosened (ε ≤ 1000, a default
k of 2, raw the only zone never kept forever...) with no test noticing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError
from unit_support import city_data

from citypipe.domain.city import (
    PEOPLE_RESOLUTION_MINUTES,
    RED_LINE_DELTA,
    RED_LINE_EPSILON,
    City,
    ConfigError,
    Disclosure,
    NoiseSettings,
    PrivacyPolicy,
    parse_city,
)

NOISE = "disclosure.noise"


def changed(**values: Any) -> dict[str, Any]:
    """The example city with each dotted key (``__`` for a dot) set to its value (a block it
    leaves out is added)."""
    data = city_data()
    for path, value in values.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def noise(**settings: Any) -> dict[str, Any]:
    """The example city with its noise settings replaced by these (defaults for the rest)."""
    data = city_data()
    data["disclosure"]["noise"] = settings
    return data


def refused_at(data: dict[str, Any]) -> str:
    """The key a refused city file's first problem names (its message on one line)."""
    with pytest.raises(ConfigError) as refused:
        parse_city(data, "velden.yaml")
    assert "\n" not in str(refused.value)
    return refused.value.problems[0].key


# --- noise: the red line of the guarantee --------------------------------------------------

GAUSSIAN = {"mechanism": "gaussian", "epsilon": 1.0, "budget": 1.0}

NOISE_REFUSED = {
    "epsilon-zero": ({"epsilon": 0.0}, f"{NOISE}.epsilon"),
    "epsilon-negative": ({"epsilon": -1.0}, f"{NOISE}.epsilon"),
    "epsilon-past-red-line": ({"epsilon": 3.01, "budget": 3.0}, f"{NOISE}.epsilon"),
    "epsilon-a-thousand": ({"epsilon": 1000.0, "budget": 3.0}, f"{NOISE}.epsilon"),
    "budget-zero": ({"epsilon": 1.0, "budget": 0.0}, f"{NOISE}.budget"),
    "budget-past-red-line": ({"epsilon": 1.0, "budget": 3.01}, f"{NOISE}.budget"),
    "budget-a-hundred-thousand": ({"budget": 100_000.0}, f"{NOISE}.budget"),
    "budget-below-one-release": ({"epsilon": 2.0, "budget": 1.99}, NOISE),
    "delta-zero": ({**GAUSSIAN, "delta": 0.0}, f"{NOISE}.delta"),
    "delta-past-red-line": ({**GAUSSIAN, "delta": 1.01e-5}, f"{NOISE}.delta"),
    "delta-one": ({**GAUSSIAN, "delta": 1.0}, f"{NOISE}.delta"),
    "deltas-of-the-day-past-red-line": ({**GAUSSIAN, "budget": 3.0, "delta": 4e-6}, NOISE),
    "gaussian-without-delta": (GAUSSIAN, NOISE),
    "laplace-with-delta": ({"delta": 1e-6}, NOISE),
    "no-cell-a-day": ({"contributions_per_day": 0}, f"{NOISE}.contributions_per_day"),
    "past-a-days-windows": ({"contributions_per_day": 97}, f"{NOISE}.contributions_per_day"),
    "cap-as-text": ({"contributions_per_day": "10"}, f"{NOISE}.contributions_per_day"),
    "cap-as-decimal": ({"contributions_per_day": 10.0}, f"{NOISE}.contributions_per_day"),
    "unknown-mechanism": ({"mechanism": "none"}, f"{NOISE}.mechanism"),
}


@pytest.mark.parametrize(
    ("settings", "key"), NOISE_REFUSED.values(), ids=list(NOISE_REFUSED)
)  # fmt: skip
def test_noise_past_its_bounds_is_refused_at_its_key(settings: dict[str, Any], key: str) -> None:
    assert refused_at(noise(**settings)) == key


NOISE_ACCEPTED = {
    "epsilon-at-red-line": {"epsilon": 3.0, "budget": 3.0},
    "a-tiny-epsilon": {"epsilon": 0.01, "budget": 0.01},
    "budget-one-release": {"epsilon": 2.0, "budget": 2.0},
    "delta-at-red-line": {**GAUSSIAN, "delta": 1e-5},
    "deltas-of-the-day-at-red-line": {**GAUSSIAN, "budget": 2.0, "delta": 5e-6},
    "one-cell-a-day": {"contributions_per_day": 1},
    "every-window-of-a-day": {"contributions_per_day": 96},
}


@pytest.mark.parametrize("settings", NOISE_ACCEPTED.values(), ids=list(NOISE_ACCEPTED))
def test_noise_at_its_bounds_is_accepted(settings: dict[str, Any]) -> None:
    city = parse_city(noise(**settings))
    assert city.disclosure.noise.model_dump(exclude_unset=True) == settings


def test_the_red_lines_are_epsilon_3_and_delta_1e5_per_person_day() -> None:
    assert (RED_LINE_EPSILON, RED_LINE_DELTA) == (3.0, 1e-5)


@pytest.mark.parametrize(
    ("epsilon", "budget", "releases"),
    [
        (1.0, 1.0, 1),
        (1.0, 2.0, 2),
        (1.0, 2.5, 2),
        (2.0, 3.0, 1),
        # the division's rounding error never costs a release: 2.1 / 0.7 = 3.0000000000000004,
        # 0.03 / 2e-9 = 14999999.999999998
        (0.1, 3.0, 30),
        (0.7, 2.1, 3),
        (2e-9, 0.03, 15_000_000),
    ],
)
def test_the_budget_pays_for_whole_releases_of_epsilon(
    epsilon: float, budget: float, releases: int
) -> None:
    assert NoiseSettings(epsilon=epsilon, budget=budget).releases == releases


# --- the other ceilings ----------------------------------------------------------------------

CEILINGS_REFUSED = {
    "k-of-one": ({"disclosure__k": 1}, "disclosure.k"),
    "keys-kept-no-day": ({"key_retention_days": 0}, "key_retention_days"),
    "keys-kept-past-a-month": ({"key_retention_days": 32}, "key_retention_days"),
    "keys-kept-ten-years": ({"key_retention_days": 3650}, "key_retention_days"),
    **{
        f"{zone}-kept-no-day": ({f"retention_days__{zone}": 0}, f"retention_days.{zone}")
        for zone in ("quarantine", "clean", "aggregates", "audit", "open")
    },
}


@pytest.mark.parametrize(
    ("values", "key"), CEILINGS_REFUSED.values(), ids=list(CEILINGS_REFUSED)
)  # fmt: skip
def test_a_ceiling_crossed_is_refused_at_its_key(values: dict[str, Any], key: str) -> None:
    assert refused_at(changed(**values)) == key


@pytest.mark.parametrize(
    "values",
    [{"disclosure__k": 2}, {"key_retention_days": 1}, {"key_retention_days": 31}],
    ids=["k-of-two", "keys-kept-a-day", "keys-kept-a-month"],
)
def test_a_ceiling_reached_is_accepted(values: dict[str, Any]) -> None:
    city = parse_city(changed(**values))
    for path, value in values.items():
        node: Any = city
        for part in path.split("__"):
            node = getattr(node, part)
        assert node == value


@pytest.mark.parametrize("zone", ["quarantine", "clean", "aggregates", "audit"])
def test_no_zone_but_open_is_kept_forever(zone: str) -> None:
    data = changed(**{f"retention_days__{zone}": None})
    with pytest.raises(ConfigError, match=f"retention_days.{zone}: only the open zone may be kept"):
        parse_city(data, "velden.yaml")


# --- what a city file that says nothing gets ---------------------------------------------------


def test_a_city_file_without_disclosure_gets_k_10_and_laplace_at_epsilon_1_for_2_a_day() -> None:
    data = city_data()
    del data["disclosure"]
    data["retention_days"] = {}
    assert "key_retention_days" not in data
    city = parse_city(data)
    assert city.disclosure == Disclosure()
    assert city.disclosure.k == 10
    assert city.disclosure.noise.model_dump() == {
        "mechanism": "laplace",
        "epsilon": 1.0,
        "delta": None,
        "budget": 2.0,
        "contributions_per_day": 10,
    }
    assert city.key_retention_days == 2
    assert {zone.value: days for zone, days in city.retention_days.items()} == {
        "raw": 1, "quarantine": 7, "clean": 90, "aggregates": 730, "open": None, "audit": 1825,
    }  # fmt: skip


# --- a source's policy: its resolution and its one data subject ------------------------------


@pytest.mark.parametrize("minutes", [*range(-1, 31), 45, 60, 1440, 1441])
def test_a_time_resolution_is_accepted_if_and_only_if_it_divides_15_minutes(minutes: int) -> None:
    # (the key a refusal names: test_config's bad city files)
    if minutes >= 1 and 15 % minutes == 0:
        policy = PrivacyPolicy(time_resolution_minutes=minutes)
        assert policy.time_resolution_minutes == minutes
    else:
        with pytest.raises(ValidationError, match="time_resolution_minutes"):
            PrivacyPolicy(time_resolution_minutes=minutes)


def test_people_are_kept_at_5_minutes_at_the_finest() -> None:
    assert PEOPLE_RESOLUTION_MINUTES == 5


def test_two_pseudonymized_fields_of_one_source_are_refused_even_both_subjects() -> None:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"]["personal"]["licence_plate"] = "pseudonymize"
    with pytest.raises(ConfigError, match="at most one personal field may be pseudonymized"):
        parse_city(data, "velden.yaml")
    assert refused_at(data) == "sources.wifi-counters.policy.personal"


def test_a_policy_that_says_nothing_keeps_the_minute_and_the_zone() -> None:
    assert PrivacyPolicy().model_dump() == {
        "personal": {},
        "time_resolution_minutes": 1,
        "location": "zone",
    }
    # a source about no one keeps the minute; one about people is kept at 5 minutes
    data = city_data()
    assert "policy" not in data["sources"]["air-quality"]
    del data["sources"]["wifi-counters"]["policy"]["time_resolution_minutes"]
    sources = parse_city(data).sources
    assert sources["air-quality"].policy.time_resolution_minutes == 1
    assert sources["wifi-counters"].policy.time_resolution_minutes == 5


# --- what a city processing personal data must state, each at its key --------------------------

STATEMENTS_REFUSED = {
    "no-dpia-reference": ({"processing__dpia__reference": ""}, "processing.dpia.reference"),
    "no-authority-name": (
        {"processing__supervisory_authority__name": ""},
        "processing.supervisory_authority.name",
    ),
    "no-authority-url": (
        {"processing__supervisory_authority__url": ""},
        "processing.supervisory_authority.url",
    ),
    "legal-basis-in-9-letters": (
        {"processing__legal_basis_detail": "municipal"},
        "processing.legal_basis_detail",
    ),
    "no-processing": ({"processing": None}, "processing"),
    "no-dpo": ({"publisher__dpo_email": None}, "publisher.dpo_email"),
}


@pytest.mark.parametrize(
    ("values", "key"), STATEMENTS_REFUSED.values(), ids=list(STATEMENTS_REFUSED)
)  # fmt: skip
def test_a_statement_missing_is_refused_at_its_key(values: dict[str, Any], key: str) -> None:
    assert refused_at(changed(**values)) == key


def test_the_shortest_statements_are_accepted() -> None:
    data = changed(
        processing__dpia__reference="D",
        processing__supervisory_authority__name="A",
        processing__supervisory_authority__url="u",
        processing__legal_basis_detail="a task: 10",
    )
    processing = parse_city(data).processing
    assert processing is not None
    assert (processing.dpia.reference, processing.legal_basis_detail) == ("D", "a task: 10")


# --- what protects the people counted, each refusal at its key ---------------------------------


def test_a_people_profile_without_a_ceiling_is_refused_at_that_key() -> None:
    data = city_data()
    del data["registry"]["profiles"]["wifi-meraki"]["max_devices_per_window"]
    assert refused_at(data) == "registry.profiles.wifi-meraki.max_devices_per_window"


def test_a_field_without_a_rule_is_refused_at_the_sources_rules() -> None:
    data = city_data()
    del data["sources"]["wifi-counters"]["policy"]["personal"]["ssid"]
    assert refused_at(data) == "sources.wifi-counters.policy.personal"


def test_a_counter_that_drops_two_subjects_is_refused_at_the_first() -> None:
    data = city_data()
    personal = data["sources"]["wifi-counters"]["policy"]["personal"]
    personal.update(device_mac="drop", licence_plate="drop")
    assert refused_at(data) == "sources.wifi-counters.policy.personal.device_mac"


def test_every_source_that_counts_people_is_checked_not_only_the_first() -> None:
    # a second people counter, after the (protected) Wi-Fi counters, that pseudonymizes no one
    data = city_data()
    data["sources"]["zz-counters"] = {"kind": "people counters", "purpose": "count passers-by"}
    data["registry"]["profiles"]["zz-counter"] = {
        "source": "zz-counters",
        "kind": "a people counter",
        "hubs": ["canonical"],
        "max_devices_per_window": 100,
        "fields": {"people": {"quantity": "people.presence"}},
    }
    data["registry"]["devices"]["zz-counter-1"] = {
        "profile": "zz-counter", "hub": "canonical", "id": "zz-counter-1", "zone": "centrum",
    }  # fmt: skip
    assert refused_at(data) == "sources.zz-counters.policy.personal"


def test_a_people_quantity_measured_without_pseudonyms_is_refused_at_that_field() -> None:
    data = city_data()
    profiles = data["registry"]["profiles"]
    profiles["wifi-canonical"]["fields"]["walkers"] = {"quantity": "traffic.pedestrians"}
    profiles["tc-csv"]["fields"]["walkers"] = {"quantity": "traffic.pedestrians"}
    with pytest.raises(ConfigError) as refused:
        parse_city(data)
    assert "registry.profiles.tc-csv.fields.walkers" in [p.key for p in refused.value.problems]


def test_people_datasets_beyond_the_budget_are_refused_at_the_budget() -> None:
    # two people datasets (the Wi-Fi counters also counting a car park), each at ε = budget
    data = city_data()
    data["registry"]["profiles"]["wifi-canonical"]["fields"]["parked"] = {
        "quantity": "parking.occupancy"
    }
    assert refused_at(data) == "disclosure.noise.budget"


def test_a_source_polling_one_api_twice_is_refused_at_the_second() -> None:
    data = city_data()
    first = data["sources"]["traffic-counters"]["poll"][0]
    data["sources"]["traffic-counters"]["poll"] = [first, {**first, "api_key": "other"}]
    assert refused_at(data) == "sources.traffic-counters.poll.1.api"


def test_two_sources_on_one_topic_are_refused_at_the_second() -> None:
    data = city_data()
    topic = data["sources"]["air-quality"]["mqtt"][0]
    data["sources"]["traffic-counters"]["mqtt"] = [topic]
    assert refused_at(data) == "sources.traffic-counters.mqtt.0.topic"


def test_a_zones_ceiling_is_the_sum_of_its_people_counters_ceilings(city: City) -> None:
    counters = Counter(
        device.zone for device in city.devices.values() if device.source == "wifi-counters"
    )
    assert len(counters) > 1 and max(counters.values()) > 1
    assert city.device_ceilings == {(z, "people.presence"): 400 * n for z, n in counters.items()}


def people_counter_under_air_quality(**profile: Any) -> dict[str, Any]:
    """The example city with a people counter filed under air quality (which pseudonymizes
    nothing), through citypipe's canonical hub."""
    data = city_data()
    data["registry"]["profiles"]["aq-people"] = {
        "source": "air-quality",
        "kind": "a people counter filed under air quality",
        "hubs": ["canonical"],
        "fields": {"people": {"quantity": "people.presence"}},
        **profile,
    }
    data["registry"]["devices"]["aq-people-1"] = {
        "profile": "aq-people", "hub": "canonical", "id": "aq-people-1", "zone": "centrum",
    }  # fmt: skip
    return data


def test_every_problem_of_a_people_counter_is_listed_its_ceiling_too() -> None:
    # a profile that also measures NO2 still counts people: its missing ceiling is listed
    fields = {"people": {"quantity": "people.presence"}, "no2": {"quantity": "air.no2"}}
    with pytest.raises(ConfigError) as refused:
        parse_city(people_counter_under_air_quality(fields=fields))
    problems = {p.key: p.message for p in refused.value.problems}
    assert "registry.profiles.aq-people.max_devices_per_window" in problems
    assert problems["sources.air-quality.policy.personal"].startswith(
        "counts people (people.presence in profile aq-people) but pseudonymizes no field"
    )


def test_a_meraki_source_is_said_to_count_people_because_of_its_hub() -> None:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"]["personal"]["device_mac"] = "drop"
    for profile in ("wifi-meraki", "wifi-canonical"):
        fields = data["registry"]["profiles"][profile]["fields"]
        for field in fields.values():
            field["quantity"] = "traffic.pedestrians"
    with pytest.raises(ConfigError) as refused:
        parse_city(data)
    [problem] = refused.value.problems
    assert problem.message.startswith(
        "counts people (its devices report through meraki: each reading is a person's device "
        "seen) but pseudonymizes no field"
    )
