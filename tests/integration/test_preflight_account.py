"""``citypipe preflight`` against a moto server, with real calls: the names a failed create
left behind are found before anything is created. moto answers neither
``lambda:GetAccountSettings`` nor ``iam:SimulatePrincipalPolicy``: the preflight says it
could not read them and refuses (what it does with the answers: tests/unit/test_preflight.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from repo import CITY_FILE

from citypipe.adapters import clients
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames, deployment_prefix
from citypipe_local.backends import Endpoint
from citypipe_local.backends.embedded import embedded
from citypipe_local.cli import main

MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def account(city: City, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """A fresh moto server as the deployer's account, the default credentials aimed at it."""
    with embedded(city.region) as endpoint:
        assert endpoint.settings.endpoint_url is not None
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.settings.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "preflight")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "preflight")
        clients.session.cache_clear()  # credentials are read once per session
        yield endpoint
    clients.session.cache_clear()


def test_names_left_by_a_failed_create_are_refused_before_anything_is_created(
    account: Endpoint, city: City, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given what a failed create leaves behind: the retained audit bucket and a DLQ
    names = StackNames(city.slug, deployment_prefix(MOTO_ACCOUNT, city.region))
    s3_client(account.settings).create_bucket(
        Bucket=names.bucket(Zone.AUDIT),
        CreateBucketConfiguration={"LocationConstraint": city.region},  # type: ignore[typeddict-item]
    )
    sqs_client(account.settings).create_queue(QueueName=names.dlq(Function.INGEST))
    # When the preflight runs with the deployer's credentials
    code = main(["preflight", "--city", str(CITY_FILE)])
    out = " ".join(capsys.readouterr().err.split())
    # Then it refuses, naming both and the way out, and says what it could not read
    assert code == 1
    assert f"bucket {names.bucket(Zone.AUDIT)}, queue {names.dlq(Function.INGEST)}" in out
    assert "docs/deploy.md 'Recovery'" in out
    assert "refused concurrency quota: lambda:GetAccountSettings: could not be read" in out
    assert "refused deployer's permissions: iam:SimulatePrincipalPolicy: could not be" in out


def test_an_account_with_free_names_passes_that_check(
    account: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "--city", str(CITY_FILE)]) == 1  # moto reads no quota
    out = " ".join(capsys.readouterr().err.split())
    assert "ok names: every bucket, queue and key alias name is free" in out


def test_a_later_generation_deploys_beside_what_a_removed_stack_kept(
    account: Endpoint, city: City, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the audit bucket a removed stack kept, locked for years
    names = StackNames(city.slug, deployment_prefix(MOTO_ACCOUNT, city.region))
    s3_client(account.settings).create_bucket(
        Bucket=names.bucket(Zone.AUDIT),
        CreateBucketConfiguration={"LocationConstraint": city.region},  # type: ignore[typeddict-item]
    )
    # When the preflight checks the second generation of names
    main(["preflight", "--city", str(CITY_FILE), "--generation", "2"])
    # Then they are free: the old trail stays where it is
    out = " ".join(capsys.readouterr().err.split())
    assert "ok names: every bucket, queue and key alias name is free" in out
