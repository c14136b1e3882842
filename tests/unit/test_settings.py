"""Runtime settings: each service at its own endpoint with its own credentials, and a key
store that containers share, or no start at all."""

from __future__ import annotations

import pytest
from repo import CITY_FILE

from citypipe.adapters.keys import ObjectKeyStore, SecretsManagerKeyStore
from citypipe.adapters.s3 import S3ObjectStore
from citypipe.adapters.sqs import SqsQueue
from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import KeyStoreRefusedError, key_store_from
from citypipe.settings import (
    BackendSettings,
    KeySettings,
    Settings,
    SettingsError,
    StackSettings,
)

SCALEWAY = {  # the Scaleway example city (fr-par): its endpoints are in its region
    "CITYPIPE_STACK__CITY_FILE": str(CITY_FILE.parent / "velden-scaleway.yaml"),
    "CITYPIPE_BACKEND__REGION": "fr-par",
    "CITYPIPE_STORAGE__ENDPOINT_URL": "https://s3.fr-par.scw.cloud",
    "CITYPIPE_STORAGE__ACCESS_KEY_ID": "SCWOBJECTSTORAGE",
    "CITYPIPE_STORAGE__SECRET_ACCESS_KEY": "object-storage-secret",
    "CITYPIPE_QUEUES__ENDPOINT_URL": "https://sqs.mnq.fr-par.scaleway.com",
    "CITYPIPE_QUEUES__ACCESS_KEY_ID": "SCWQUEUESCREDENTIAL",
    "CITYPIPE_QUEUES__SECRET_ACCESS_KEY": "queues-secret",
}


def test_storage_and_queues_each_get_their_own_endpoint_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Scaleway's settings: Object Storage and Queues apart, one region for both
    for name, value in SCALEWAY.items():
        monkeypatch.setenv(name, value)
    # When a function's stack is built from the environment
    deps = deps_from(Settings())
    # Then S3 calls go to Object Storage as its key, SQS calls to Queues as its own
    assert isinstance(deps.store, S3ObjectStore) and isinstance(deps.queue, SqsQueue)
    s3, sqs = deps.store.client, deps.queue.client
    assert (s3.meta.endpoint_url, s3.meta.region_name) == ("https://s3.fr-par.scw.cloud", "fr-par")
    assert sqs.meta.endpoint_url == "https://sqs.mnq.fr-par.scaleway.com"
    assert s3._request_signer._credentials.access_key == "SCWOBJECTSTORAGE"
    assert sqs._request_signer._credentials.access_key == "SCWQUEUESCREDENTIAL"


def test_a_service_falls_back_field_by_field_on_the_backend_defaults() -> None:
    settings = Settings(
        backend=BackendSettings(endpoint_url="http://127.0.0.1:5000", region="eu-west-3"),
        queues=BackendSettings(endpoint_url="http://127.0.0.1:5001"),
    )

    assert settings.service("storage").endpoint_url == "http://127.0.0.1:5000"
    assert settings.service("queues").endpoint_url == "http://127.0.0.1:5001"
    assert settings.service("queues").region == "eu-west-3"


def test_the_default_key_store_is_the_stacks_keys_bucket() -> None:
    settings = Settings(
        stack=StackSettings(city_file=CITY_FILE), backend=BackendSettings(region="eu-central-1")
    )
    deps = deps_from(settings)

    keys = key_store_from(settings, deps)

    assert isinstance(keys, ObjectKeyStore)
    assert keys.bucket == "velden-keys"


def test_secrets_manager_stays_an_option_on_aws() -> None:
    settings = Settings(
        stack=StackSettings(city_file=CITY_FILE),
        backend=BackendSettings(region="eu-central-1"),
        keys=KeySettings(store="secretsmanager"),
    )

    assert isinstance(key_store_from(settings, deps_from(settings)), SecretsManagerKeyStore)


def test_a_cloud_deployment_refuses_a_key_store_its_containers_would_not_share() -> None:
    # Given a function configured with the file key store, outside a laptop
    settings = Settings(
        stack=StackSettings(city_file=CITY_FILE),
        backend=BackendSettings(region="eu-central-1"),
        keys=KeySettings(store="file"),
    )
    # When its cold start builds the key store, then it refuses, saying what to use
    with pytest.raises(KeyStoreRefusedError, match="'object'"):
        key_store_from(settings, deps_from(settings))


# --- the environment, read without pydantic-settings ------------------------------------------


def test_a_section_comes_whole_as_json_its_keys_apart_merged_over_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a deployment's section as JSON, and one key of it set apart (any case)
    monkeypatch.setenv("CITYPIPE_STACK", '{"city_file": "a.yaml", "name_prefix": "p-"}')
    monkeypatch.setenv("citypipe_stack__name_prefix", "q-")
    monkeypatch.setenv("CITYPIPE_STACK__PRINCIPALS", '["arn:aws:iam::1:role/r"]')
    monkeypatch.setenv("CITYPIPE_LOG_LEVEL", "DEBUG")
    # When the settings are read, then the key apart wins and a list is JSON
    settings = Settings()
    assert str(settings.stack.city_file) == "a.yaml"
    assert settings.stack.name_prefix == "q-"
    assert settings.stack.principals == ["arn:aws:iam::1:role/r"]
    assert settings.log_level == "DEBUG"


def test_what_the_code_passes_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYPIPE_STACK__NAME_PREFIX", "from-env-")
    monkeypatch.setenv("CITYPIPE_BACKEND__REGION", "eu-west-3")

    settings = Settings(stack=StackSettings(name_prefix="given-"))

    assert settings.stack.name_prefix == "given-"
    assert settings.backend.region == "eu-west-3"


def test_the_platform_region_is_lambdas_variable_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert Settings().platform_region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert Settings().platform_region == "eu-central-1"


def test_a_section_that_is_not_json_is_refused_by_name_never_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYPIPE_STORAGE", '{"secret_access_key": "hunter2"')

    with pytest.raises(SettingsError, match="CITYPIPE_STORAGE is not JSON") as refused:
        Settings()
    assert "hunter2" not in str(refused.value)
