"""The preflight's judgement of an account (``citypipe_local.preflight.assess``): what it
refuses and what it tells the deployer to do. The calls behind it run against a moto server
in tests/integration/test_preflight_account.py."""

from __future__ import annotations

import dataclasses

import pytest
from repo import ROOT

from citypipe_local.preflight import (
    Account,
    assess,
    simulated_principal,
    stack_concurrency,
)

READY = Account(
    account_id="123456789012",
    principal="arn:aws:iam::123456789012:role/deployer",
    unreserved=1000,
    denied=(),
    stack_status=None,
    taken=(),
)


def refused(account: Account) -> dict[str, str]:
    return {f.what: f.detail for f in assess(account, stack_concurrency()) if not f.ok}


def test_an_account_with_the_quota_the_permissions_and_free_names_is_ready() -> None:
    assert refused(READY) == {}


def test_a_new_account_whose_quota_cannot_hold_the_stack_is_refused() -> None:
    # Given a new account: 10 concurrent executions, all unreserved
    new = dataclasses.replace(READY, unreserved=10)
    # Then the preflight refuses it, naming the figure to ask AWS for
    detail = refused(new)["concurrency quota"]
    assert f"ask for at least {stack_concurrency()}" in detail
    assert "Service Quotas" in detail


def test_the_stack_needs_more_than_a_new_account_has_and_the_runbook_says_how_much() -> None:
    needed = stack_concurrency()
    deploy = (ROOT / "docs" / "deploy.md").read_text()

    assert needed > 10
    assert f"must hold the whole stack at once: {needed} executions" in " ".join(deploy.split())
    assert f"what the stack may run at once ({needed})" in " ".join(deploy.split())


def test_a_quota_that_cannot_be_read_is_a_refusal_not_a_pass() -> None:
    unknown = dataclasses.replace(
        READY, unreserved=None, unread=("lambda:GetAccountSettings: could not be read (403)",)
    )
    assert refused(unknown) == {
        "concurrency quota": "lambda:GetAccountSettings: could not be read (403)"
    }


@pytest.mark.parametrize(
    ("denied", "expected"),
    [
        (("kms:CreateKey", "iam:PassRole"), "may not call: kms:CreateKey, iam:PassRole"),
        (None, "not read (docs/deploy.md lists them)"),
    ],
    ids=["denied", "unread"],
)
def test_a_deployer_without_the_permissions_is_refused(
    denied: tuple[str, ...] | None, expected: str
) -> None:
    assert refused(dataclasses.replace(READY, denied=denied))["deployer's permissions"].endswith(
        expected
    )


def test_names_left_behind_with_no_stack_are_refused_with_the_recovery() -> None:
    left = dataclasses.replace(READY, taken=("bucket x-velden-audit", "queue x-velden-ingest-dlq"))
    detail = refused(left)["names"]
    assert "bucket x-velden-audit, queue x-velden-ingest-dlq" in detail
    assert "'Recovery'" in detail


def test_a_stack_that_failed_to_create_must_be_deleted_first() -> None:
    failed = dataclasses.replace(READY, stack_status="ROLLBACK_COMPLETE", taken=("bucket b",))
    assert refused(failed)["names"].startswith("the stack is ROLLBACK_COMPLETE: delete it")


def test_an_existing_healthy_stack_is_an_update_whose_names_are_its_own() -> None:
    update = dataclasses.replace(READY, stack_status="UPDATE_COMPLETE", taken=("bucket b",))
    assert refused(update) == {}


@pytest.mark.parametrize(
    ("caller", "simulated"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/deployer/session-1",
            "arn:aws:iam::123456789012:role/deployer",
        ),
        ("arn:aws:iam::123456789012:user/ops", "arn:aws:iam::123456789012:user/ops"),
    ],
)
def test_an_assumed_roles_session_is_simulated_as_its_role(caller: str, simulated: str) -> None:
    assert simulated_principal(caller) == simulated
