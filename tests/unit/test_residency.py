"""Data residency is a guard: a city's data stays in its city file's EU/EEA region. The city
file refuses other regions; packaging refuses them (test_template); a function refuses to
start anywhere but there; clients go where the platform runs them unless configured."""

from __future__ import annotations

import pytest
from repo import CITY_FILE
from unit_support import city_data

from citypipe.bootstrap import city_from, deps_from
from citypipe.domain.city import EU_REGIONS, ConfigError, ResidencyError, parse_city
from citypipe.settings import BackendSettings, Settings, StackSettings


def settings(**backend: str) -> Settings:
    return Settings(stack=StackSettings(city_file=CITY_FILE), backend=BackendSettings(**backend))


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "eu-central-2", "me-central-1"])
def test_a_city_outside_the_eu_eea_is_refused(region: str) -> None:
    # London and Zurich are outside the EU/EEA (adequacy decisions are not membership)
    data = city_data()
    data["region"] = region

    with pytest.raises(ConfigError, match=f"region {region!r} is outside the EU/EEA"):
        parse_city(data)


def test_every_eu_region_of_aws_and_scaleway_is_accepted() -> None:
    for region in EU_REGIONS:
        assert parse_city({**city_data(), "region": region}).region == region


def test_clients_take_the_region_lambda_runs_them_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Lambda's environment: AWS_REGION is the function's region, nothing configured
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    # When the stack's clients are built at cold start
    deps = deps_from(Settings(stack=StackSettings(city_file=CITY_FILE)))
    # Then they go to the platform's region, not one baked into the code
    assert deps.store.client.meta.region_name == "eu-central-1"  # type: ignore[attr-defined]
    assert deps.queue.client.meta.region_name == "eu-central-1"  # type: ignore[attr-defined]


def test_a_configured_region_overrides_the_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")

    assert settings(region="eu-central-1").region == "eu-central-1"
    assert settings().region == "eu-west-3"


def test_a_function_refuses_to_start_outside_its_citys_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given velden (eu-central-1) deployed by mistake to Paris
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    # When a function starts
    with pytest.raises(ResidencyError) as refused:
        city_from(settings())
    # Then it refuses, naming both regions
    assert "function start-up: region 'eu-west-3' is not the city's" in str(refused.value)
    assert "'eu-central-1'" in str(refused.value)


def test_a_function_on_aws_refuses_to_start_without_a_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    with pytest.raises(ResidencyError, match="no region configured"):
        city_from(settings())


def test_a_local_emulator_is_not_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedded moto server and LocalStack run on this machine, whatever region they say
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    assert city_from(settings(endpoint_url="http://127.0.0.1:1")).slug == "velden"
