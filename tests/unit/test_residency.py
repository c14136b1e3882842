"""Data residency is a guard: a city's data stays in its city file's EU/EEA region. The city
file refuses other regions; packaging refuses them (test_template); a function refuses to
start anywhere but there; clients go where the platform runs them unless configured."""

from __future__ import annotations

from typing import Literal

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


# --- a custom endpoint: where it keeps data is in its host name ---------------------------

SCALEWAY_CITY = CITY_FILE.parent / "velden-scaleway.yaml"  # fr-par
SCALEWAY_STORAGE = "https://s3.fr-par.scw.cloud"
SCALEWAY_QUEUES = "https://sqs.mnq.fr-par.scaleway.com"


def scaleway(
    storage: str, queues: str, deployment: Literal["cloud", "local"] = "cloud"
) -> Settings:
    return Settings(
        stack=StackSettings(city_file=SCALEWAY_CITY, deployment=deployment),
        backend=BackendSettings(region="fr-par"),
        storage=BackendSettings(endpoint_url=storage),
        queues=BackendSettings(endpoint_url=queues),
    )


def test_a_scaleway_city_starts_at_its_regions_endpoints() -> None:
    assert city_from(scaleway(SCALEWAY_STORAGE, SCALEWAY_QUEUES)).region == "fr-par"


@pytest.mark.parametrize(
    ("storage", "queues", "refused"),
    [
        ("https://s3.us-east-1.amazonaws.com", SCALEWAY_QUEUES, "'us-east-1'"),
        (SCALEWAY_STORAGE, "https://sqs.mnq.nl-ams.scaleway.com", "'nl-ams'"),
        ("https://s3.pl-waw.scw.cloud", SCALEWAY_QUEUES, "'pl-waw'"),
    ],
)
def test_a_function_refuses_to_start_at_an_endpoint_of_another_region(
    storage: str, queues: str, refused: str
) -> None:
    # Given the Scaleway city (fr-par), one of its services pointed at another region
    with pytest.raises(ResidencyError) as error:
        city_from(scaleway(storage, queues))
    # Then the function does not start, naming the endpoint's region and the city's
    assert f"region {refused} is not the city's" in str(error.value)
    assert "'fr-par'" in str(error.value)


def test_an_endpoint_that_names_no_region_is_refused_in_a_cloud_only() -> None:
    elsewhere = "https://objects.example.net"

    with pytest.raises(ResidencyError, match="names no region"):
        city_from(scaleway(elsewhere, SCALEWAY_QUEUES))
    assert city_from(scaleway(elsewhere, SCALEWAY_QUEUES, deployment="local")).slug == "velden"
