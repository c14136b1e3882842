"""The city file: the example loads, and every refusal names the key that is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE
from unit_support import city_data

from citypipe.domain.city import Action, City, ConfigError, load_city, parse_city
from citypipe.domain.model import Zone

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    """A change to the city dict: set the value at a dotted path."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return change


def _drop(path: str) -> Change:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _open_ring(data: dict[str, Any]) -> None:
    data["zones"]["features"][0]["geometry"]["coordinates"][0].pop()


def test_the_example_city_loads(city: City) -> None:
    # Given the example city file (loaded by the session fixture)
    # Then its stack, zones and sources are what the file declares
    assert city.slug == "velden"
    assert city.region == "eu-central-1"
    assert len(city.zones.features) == 9
    assert set(city.sources) == {
        "air-quality", "operator-counters", "traffic-counters", "wifi-counters",
    }  # fmt: skip
    assert set(city.csv) == {"loop-export"}
    assert city.disclosure.k == 20


def test_the_example_city_keeps_raw_data_one_day_and_publishes_forever(city: City) -> None:
    assert city.retention_days[Zone.RAW] == 1
    assert city.retention_days[Zone.OPEN] is None


def test_the_wifi_counters_pseudonymize_the_mac_and_drop_the_signal(city: City) -> None:
    policy = city.sources["wifi-counters"].policy
    assert policy.subject_field == "device_mac"
    assert policy.personal == {
        "device_mac": Action.PSEUDONYMIZE,
        "rssi": Action.DROP,
        "ip_address": Action.DROP,
        "ssid": Action.DROP,
        "os": Action.DROP,
        "manufacturer": Action.DROP,
        "location": Action.GENERALIZE,
    }
    assert city.personal_quantities == frozenset({"people.presence"})


def test_unset_retention_takes_the_defaults() -> None:
    # Given a city file without retention_days
    data = city_data()
    del data["retention_days"]
    # When it is parsed
    city = parse_city(data)
    # Then every zone has its default lifetime
    assert city.retention_days == {
        Zone.RAW: 1,
        Zone.QUARANTINE: 7,
        Zone.CLEAN: 90,
        Zone.AGGREGATES: 730,
        Zone.OPEN: None,
        Zone.AUDIT: 1825,
    }


@pytest.mark.parametrize(
    ("hub", "ident", "sensor"),
    [
        ("lorawan", "70b3d5e75e010007", "aq-007"),
        ("lorawan", "70:B3:D5:E7:5E:01:00:07", "aq-007"),
        ("senml", "2001:db8:7e1d::65", "aq-101"),
        ("senml", "urn:dev:mac:0024befffe80000d", "tc-013"),
        ("sensor-community", "esp8266-11116579", "aq-141"),
        ("canonical", "wifi-22", "wifi-22"),
        ("canonical", "aq-007", None),
        ("senml", "aq-EVIL-9999", None),
        ("lorawan", "2001:db8:7e1d::65", None),
    ],
    ids=[
        "deveui", "deveui-any-spelling", "senml-ipv6", "senml-urn", "chip-id-from-header",
        "canonical", "a-name-is-not-an-id", "what-a-glob-let-in", "right-id-wrong-hub",
    ],
)  # fmt: skip
def test_a_device_is_resolved_by_its_hub_and_the_id_the_hub_gives_it(
    city: City, hub: str, ident: str, sensor: str | None
) -> None:
    found = city.device(hub, ident)
    assert (found.sensor if found else None) == sensor


def test_the_example_city_registers_340_devices_each_in_a_zone(city: City) -> None:
    zones = set(city.zone_index.ids)
    assert len(city.devices) == 340
    assert all(device.zone in zones for device in city.devices.values())


@pytest.mark.parametrize(
    ("change", "bad_key"),
    [
        (_set("region", "us-east-1"), "region"),
        (_set("region", "eu-central"), "region"),
        (_set("retention_days.raw", 2), "retention_days.raw"),
        (_set("retention_days.raw", None), "retention_days.raw"),
        (_set("retention_days.raw", 0), "retention_days.raw"),
        (_set("retention_days.clean", -1), "retention_days.clean"),
        (_set("retention_days.forever", 3), "retention_days.forever"),
        (
            _set("sources.wifi-counters.policy.personal.rssi", "pseudonymize"),
            "sources.wifi-counters.policy.personal.rssi",
        ),
        (
            _set("sources.wifi-counters.policy.personal.device_mac", "hash"),
            "sources.wifi-counters.policy.personal.device_mac",
        ),
        (
            _set("sources.wifi-counters.policy.time_resolution_minutes", 0),
            "sources.wifi-counters.policy.time_resolution_minutes",
        ),
        (
            _set("sources.wifi-counters.policy.time_resolution_minutes", 7),
            "sources.wifi-counters.policy.time_resolution_minutes",
        ),
        (
            _set("registry.profiles.aq-lorawan.fields.co2", {"quantity": "air.co2"}),
            "registry.profiles.aq-lorawan.fields.co2",
        ),
        (
            _set("registry.profiles.aq-lorawan.fields.no2.range", [-5, 10]),
            "registry.profiles.aq-lorawan.fields.no2",
        ),
        (
            _set("registry.profiles.aq-lorawan.source", "cameras"),
            "registry.profiles.aq-lorawan.source",
        ),
        (_set("registry.devices.aq-001.hub", "xml"), "registry.devices.aq-001.hub"),
        (_set("registry.devices.aq-001.at", [4.9, 52.37]), "registry.devices.aq-001.at"),
        (_set("registry.devices.aq-002.id", "70b3d5e75e010001"), "registry.devices.aq-002.id"),
        (_set("registry.devices.aq-001.zone", "centrum"), "registry.devices.aq-001"),
        (_set("registry.devices.aq-001.profile", "nope"), "registry.devices.aq-001.profile"),
        (_set("sources.air-quality.format", "senml"), "sources.air-quality.format"),
        (_set("sources.air-quality.purpouse", "typo"), "sources.air-quality.purpouse"),
        (_set("sources", {}), "sources"),
        (_set("slug", "Velden!"), "slug"),
        (_drop("publisher"), "publisher"),
        (_set("disclosure.k", 1), "disclosure.k"),
        (_open_ring, "zones.features.0.geometry.coordinates"),
        (_set("zones.features.0.id", "West Noord"), "zones.features.0.id"),
        (
            _set("partners.velden-mobility.sources", ["bike-share"]),
            "partners.velden-mobility.sources.0",
        ),
        (
            _set("partners.velden-mobility.purposes", ["research"]),
            "partners.velden-mobility.purposes",
        ),
        (
            _set("partners.velden-mobility.purposes", ["marketing"]),
            "partners.velden-mobility.purposes.0",
        ),
        (_set("partners.velden-mobility.purposes", []), "partners.velden-mobility.purposes"),
        (_set("dataset_purposes.traffic-flow", ["health"]), "partners.velden-mobility.purposes"),
        (_set("dataset_purposes.trafic-flow", ["mobility"]), "dataset_purposes.trafic-flow"),
        (
            _set(
                "partners.velden-mobility.licence",
                "https://creativecommons.org/licenses/by-nc/4.0/",
            ),
            "partners.velden-mobility.licence",
        ),
        (
            _set("partners.velden-mobility.retention_days", 89),
            "partners.velden-mobility.retention_days",
        ),
        (_set("partners.velden-mobility.contact", "nobody"), "partners.velden-mobility.contact"),
        (_set("partners.Velden Mobility", {}), "partners.Velden Mobility"),
    ],
    ids=[
        "region-outside-eu",
        "region-unknown",
        "raw-kept-two-days",
        "raw-kept-forever",
        "raw-kept-zero-days",
        "negative-retention",
        "retention-of-unknown-zone",
        "two-pseudonymized-fields",
        "unknown-privacy-action",
        "zero-minute-time-resolution",
        "time-resolution-not-dividing-15-min",
        "unknown-quantity",
        "range-wider-than-plausible",
        "profile-of-unknown-source",
        "unknown-hub",
        "device-outside-every-zone",
        "two-devices-one-id",
        "device-with-position-and-zone",
        "unknown-profile",
        "source-with-a-format-left-over",
        "misspelled-key",
        "no-sources",
        "slug-with-capitals",
        "missing-publisher",
        "k-below-two",
        "zone-ring-not-closed",
        "zone-id-with-spaces",
        "partner-of-an-unknown-source",
        "partner-source-feeding-an-unpermitted-purpose",
        "partner-purpose-outside-the-dga-objectives",
        "partner-permitting-no-purpose",
        "dataset-published-for-what-its-partner-refuses",
        "purpose-of-a-misspelt-dataset",
        "partner-licence-other-than-the-citys",
        "partner-retention-shorter-than-the-citys",
        "partner-without-an-email-contact",
        "partner-name-with-capitals",
    ],
)
def test_a_bad_city_file_is_refused_naming_the_bad_key(change: Change, bad_key: str) -> None:
    # Given the example city with one key made wrong
    data = city_data()
    change(data)
    # When it is parsed
    with pytest.raises(ConfigError) as refused:
        parse_city(data, "velden.yaml")
    # Then the error names the file and the key, on one line
    message = str(refused.value)
    assert refused.value.problems[0].key == bad_key
    assert message.startswith(f"velden.yaml: {bad_key}: ")
    assert "\n" not in message


def test_load_city_reads_the_file() -> None:
    assert load_city(CITY_FILE).slug == "velden"


def test_a_missing_city_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as refused:
        load_city(missing)
    assert str(refused.value) == f"{missing}: cannot be read: No such file or directory"


def test_a_city_file_that_is_not_yaml_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("city: velden\nsources: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_city(broken)
    assert str(refused.value).startswith(f"{broken}:3: not YAML: ")


# --- policy completeness and red lines ----------------------------------------------------------


def wifi_rules(**rules: str) -> dict[str, Any]:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"]["personal"].update(rules)
    return data


def test_a_source_without_a_rule_for_a_field_its_hub_carries_is_refused() -> None:
    # Given the Wi-Fi counters' policy without a rule for the client's IP address
    data = city_data()
    del data["sources"]["wifi-counters"]["policy"]["personal"]["ip_address"]
    # When it is parsed, then it fails, naming the source, the hub and the field
    with pytest.raises(ConfigError, match=r"wifi-counters.*meraki.*\['ip_address'\] have none"):
        parse_city(data)


@pytest.mark.parametrize("field", ["face", "image", "biometric"])
@pytest.mark.parametrize("action", ["pseudonymize", "drop", "generalize"])
def test_faces_images_and_biometrics_can_only_be_refused(field: str, action: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}: .* is never processed .*refuse"):
        parse_city(wifi_rules(**{field: action}))


def test_a_source_may_declare_it_refuses_images() -> None:
    city = parse_city(wifi_rules(image="refuse"))
    assert city.sources["wifi-counters"].policy.personal["image"] is Action.REFUSE


def test_a_personal_field_citypipe_does_not_know_is_refused() -> None:
    with pytest.raises(ConfigError, match="heart_rate: not a personal field citypipe knows"):
        parse_city(wifi_rules(heart_rate="drop"))


def test_only_a_location_is_generalized() -> None:
    with pytest.raises(ConfigError, match="rssi: citypipe generalizes \\['location'\\] only"):
        parse_city(wifi_rules(rssi="generalize"))


def test_only_a_data_subjects_identifier_is_pseudonymized() -> None:
    with pytest.raises(ConfigError, match="ssid: identifies no data subject"):
        parse_city(wifi_rules(ssid="pseudonymize"))


# --- one city, two clouds: a city file that extends another ----------------------------------


def test_a_city_file_extends_another_and_overrides_its_keys(tmp_path: Path) -> None:
    # Given a file that only moves the example city to Scaleway's Paris region
    (tmp_path / "paris.yaml").write_text(f"extends: {CITY_FILE}\nregion: fr-par\n")
    # When the second is loaded
    city = load_city(tmp_path / "paris.yaml")
    # Then it is the example city in fr-par
    assert (city.slug, city.region) == ("velden", "fr-par")
    assert city.sources == load_city(CITY_FILE).sources


def test_the_scaleway_example_is_velden_in_paris() -> None:
    city = load_city(CITY_FILE.parent / "velden-scaleway.yaml")

    assert (city.slug, city.region) == ("velden", "fr-par")


def test_a_city_file_that_extends_itself_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")

    with pytest.raises(ConfigError) as refused:
        load_city(tmp_path / "a.yaml")
    assert str(refused.value) == (
        f"{tmp_path / 'b.yaml'}:1: extends: extends itself (a.yaml -> b.yaml -> a.yaml); "
        "fix: extend a file once"
    )
