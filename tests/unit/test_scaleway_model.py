"""The model of Scaleway's documented rules (citypipe_local.scaleway_model) judges the
stack's policies and queues: the policy `stack up` used to set is off Scaleway's format and
lets no one but the public in; today's keeps the functions and the operator; the queues'
visibility covers every delivery a trigger makes of one message."""

from __future__ import annotations

import pytest

from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.settings import StackSettings
from citypipe_local.scaleway_model import allows, policy_problems, trigger_problem
from citypipe_local.stack import (
    public_read_policy,
    queue_plan,
    scaleway_policy,
    scaleway_problems,
    scaleway_timeouts,
)

BUCKET = "acme-velden-open"
PREFIX = "open/velden/"
FUNCTIONS = "application_id:11111111-2222-3333-4444-555555555555"
OPERATOR = "user_id:66666666-7777-8888-9999-000000000000"
STRANGER = "application_id:99999999-9999-9999-9999-999999999999"


def test_the_old_policy_is_off_scaleways_format() -> None:
    problems = policy_problems(BUCKET, public_read_policy(BUCKET, PREFIX))

    assert [p.split(":")[0] for p in problems] == ["Version 2012-10-17", "Resource 'arn"]


def test_the_old_policy_locks_the_functions_out() -> None:
    old = public_read_policy(BUCKET, PREFIX)

    assert not allows(old, FUNCTIONS, "s3:PutObject", f"{BUCKET}/{PREFIX}catalog.jsonld")
    assert not allows(old, OPERATOR, "s3:PutLifecycleConfiguration", BUCKET)


def test_the_policy_keeps_the_functions_and_the_operator_and_lets_the_public_read() -> None:
    policy = scaleway_policy(BUCKET, PREFIX, [FUNCTIONS, OPERATOR])

    assert policy_problems(BUCKET, policy) == []
    for principal in (FUNCTIONS, OPERATOR):
        assert allows(policy, principal, "s3:PutObject", f"{BUCKET}/{PREFIX}catalog.jsonld")
        assert allows(policy, principal, "s3:PutLifecycleConfiguration", BUCKET)
    assert allows(policy, "*", "s3:GetObject", f"{BUCKET}/{PREFIX}index.html")


@pytest.mark.parametrize(
    ("principal", "action", "resource"),
    [
        ("*", "s3:GetObject", f"{BUCKET}/published/velden/metadata/x.json"),  # not published
        ("*", "s3:ListBucket", BUCKET),  # never a listing
        ("*", "s3:PutObject", f"{BUCKET}/{PREFIX}index.html"),  # never a write
        (STRANGER, "s3:GetObject", f"{BUCKET}/published/velden/metadata/x.json"),
    ],
)
def test_the_policy_allows_nothing_else(principal: str, action: str, resource: str) -> None:
    assert not allows(scaleway_policy(BUCKET, PREFIX, [FUNCTIONS]), principal, action, resource)


@pytest.mark.parametrize(
    "principals",
    [["arn:aws:iam::123456789012:root"], ["project_id:x"], [f"{FUNCTIONS} "]],
)
def test_a_principal_off_the_format_is_a_problem(principals: list[str]) -> None:
    assert policy_problems(BUCKET, scaleway_policy(BUCKET, PREFIX, principals))


def test_the_old_queues_would_deliver_a_message_again_while_it_is_retried() -> None:
    # 60 s visibility against a 300 s function the trigger may call four times
    assert trigger_problem("velden-ingest", 60, 300) is not None


def test_every_queue_covers_every_delivery_of_a_message_to_its_function() -> None:
    timeouts = scaleway_timeouts()

    assert timeouts == {
        Function.INGEST: 300,
        Function.ANONYMIZE: 300,
        Function.AGGREGATE: 300,
        Function.EXPORT: 900,
    }
    for function, timeout in timeouts.items():
        plan = queue_plan(timeout)
        assert trigger_problem(function.value, plan.visibility_s, timeout) is None
        assert plan.visibility_s == 6 * timeout
        # dead-lettered only after four hours of receives
        assert plan.visibility_s * plan.max_receives >= 4 * 3600


def test_queue_sizes_set_by_hand_are_refused_on_scaleway() -> None:
    names = StackNames("velden", "acme-")
    settings = StackSettings(name_prefix="acme-", principals=[FUNCTIONS], visibility_timeout_s=60)

    assert scaleway_problems(names, settings) == [
        "unset CITYPIPE_STACK__VISIBILITY_TIMEOUT_S and __MAX_RECEIVE_COUNT: on Scaleway they "
        "come from each function's timeout"
    ]
    assert (
        scaleway_problems(names, StackSettings(name_prefix="acme-", principals=[FUNCTIONS])) == []
    )
