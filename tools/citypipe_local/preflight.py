"""Whether an AWS account can take a city's stack, read before anything is created:
``citypipe preflight --city infra/cities/<city>.yaml`` with the deployer's credentials.

Three things make a first deploy fail half-way, each read here with the real API call:

- **the concurrency quota** (``lambda:GetAccountSettings``): every function draws on the
  account's unreserved executions, up to its queue's ``maximumConcurrency`` plus one
  invocation per schedule (``stack_concurrency``, read from serverless.yml). A new account
  has 10; the stack needs more. The stack reserves none: a reservation must leave 100
  unreserved, which a new account cannot (docs/decisions/0088).
- **the deployer's permissions** (``iam:SimulatePrincipalPolicy`` on ``DEPLOY_ACTIONS``, the
  calls CloudFormation makes for the stack with the deployer's credentials).
- **names already taken**: buckets, queues and the KMS key alias are account-wide or global,
  and a failed create leaves the retained buckets and dead-letter queues behind. With no
  stack, any of them existing stops the deploy; with a stack that failed to create, it
  must be deleted first (docs/deploy.md, "Recovery").

``assess`` is the pure judgement; ``gather`` makes the calls. What cannot be read (an API
the credentials may not call) is a failure saying so, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from citypipe.adapters.boto import error_code
from citypipe.adapters.clients import session
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames, deployment_prefix
from citypipe_local.package import ROOT, stack_name

SERVERLESS = ROOT / "serverless.yml"
# What CloudFormation (osls deploy) does with the deployer's credentials for this stack,
# creating it, and deleting it when a create rolls back or the stack is removed.
DEPLOY_ACTIONS = (
    "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResource",
    "cloudformation:ValidateTemplate", "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet", "cloudformation:DescribeChangeSet",
    "cloudformation:DeleteChangeSet", "cloudformation:GetTemplate",
    "s3:CreateBucket", "s3:PutBucketPolicy", "s3:PutEncryptionConfiguration",
    "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls", "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketLogging", "s3:PutBucketTagging", "s3:PutObject", "s3:GetObject",
    "sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:TagQueue",
    "lambda:CreateFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
    "lambda:GetFunction", "lambda:PublishLayerVersion", "lambda:GetLayerVersion",
    "lambda:CreateEventSourceMapping", "lambda:AddPermission",
    "lambda:PutFunctionEventInvokeConfig", "lambda:TagResource",
    "iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole", "iam:PassRole", "iam:TagRole",
    "kms:CreateKey", "kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:CreateAlias",
    "kms:DescribeKey", "kms:TagResource",
    "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource",
    "events:PutRule", "events:PutTargets",
    "apigateway:POST", "apigateway:PATCH", "apigateway:GET",
    "sns:CreateTopic", "sns:GetTopicAttributes", "sns:TagResource",
    "cloudwatch:PutMetricAlarm",
    # osls's deployment bucket, and what a rollback or a teardown deletes with them
    "s3:ListBucket", "s3:DeleteObject", "cloudformation:DeleteStack",
    "lambda:DeleteFunction", "lambda:DeleteLayerVersion", "lambda:DeleteEventSourceMapping",
    "lambda:RemovePermission", "lambda:DeleteFunctionEventInvokeConfig",
    "iam:DeleteRole", "iam:DeleteRolePolicy", "sqs:DeleteQueue", "kms:DeleteAlias",
    "logs:DeleteLogGroup", "events:DeleteRule", "events:RemoveTargets", "apigateway:DELETE",
    "sns:DeleteTopic", "cloudwatch:DeleteAlarms",
)  # fmt: skip
# A stack in one of these states can be neither updated nor created again: delete it first.
FAILED_STATES = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}
)
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def stack_concurrency(serverless: Path = SERVERLESS) -> int:
    """The executions the stack may run at once: each queue's ``maximumConcurrency``, plus
    one per schedule (an hourly run, asynchronous)."""
    functions = yaml.safe_load(serverless.read_text())["functions"]
    events = [e for f in functions.values() for e in f.get("events", [])]
    polled = sum(int(e["sqs"]["maximumConcurrency"]) for e in events if "sqs" in e)
    return polled + sum(1 for e in events if "schedule" in e)


@dataclass(frozen=True)
class Account:
    """What was read of an account. ``None``: could not be read (``unread`` says why)."""

    account_id: str
    principal: str
    unreserved: int | None  # UnreservedConcurrentExecutions
    denied: tuple[str, ...] | None  # the deploy actions the deployer may not call
    stack_status: str | None  # None: no such stack
    taken: tuple[str, ...]  # the stack's resource names that exist already
    unread: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    detail: str


def assess(account: Account, needed: int) -> list[Finding]:
    """Whether the account takes the stack: one finding per check, each saying what to do."""
    return [_quota(account, needed), _permissions(account), _names(account)]


def _unread(account: Account, what: str) -> str:
    return next((u for u in account.unread if u.startswith(what)), f"{what}: not read")


def _quota(account: Account, needed: int) -> Finding:
    if account.unreserved is None:
        return Finding(False, "concurrency quota", _unread(account, "lambda:GetAccountSettings"))
    if account.unreserved < needed:
        return Finding(
            False,
            "concurrency quota",
            f"the account leaves {account.unreserved} concurrent executions unreserved; the "
            f"stack runs up to {needed} at once: ask for at least {needed} (Service Quotas → "
            "AWS Lambda → Concurrent executions; a new account's is 10)",
        )
    return Finding(True, "concurrency quota", f"{account.unreserved} unreserved ≥ {needed}")


def _permissions(account: Account) -> Finding:
    if account.denied is None:
        detail = _unread(account, "iam:SimulatePrincipalPolicy")
        return Finding(False, "deployer's permissions", f"{detail} (docs/deploy.md lists them)")
    if account.denied:
        return Finding(
            False,
            "deployer's permissions",
            f"{account.principal} may not call: {', '.join(account.denied)}",
        )
    return Finding(True, "deployer's permissions", f"{account.principal} may deploy the stack")


def _names(account: Account) -> Finding:
    if account.stack_status in FAILED_STATES:
        return Finding(
            False,
            "names",
            f"the stack is {account.stack_status}: delete it, then follow docs/deploy.md "
            "'Recovery' for what it left behind",
        )
    if account.stack_status is not None:
        return Finding(True, "names", f"an update of the stack ({account.stack_status})")
    if account.taken:
        return Finding(
            False,
            "names",
            f"already taken, with no stack: {', '.join(account.taken)} (left by a failed "
            "create or a teardown: docs/deploy.md 'Recovery')",
        )
    return Finding(True, "names", "every bucket, queue and key alias name is free")


# --- the calls ------------------------------------------------------------------------------


def resource_names(
    city: City, account_id: str, generation: int = 1
) -> tuple[list[str], list[str], str]:
    """The stack's buckets, queues and KMS alias, as serverless.yml names them."""
    names = StackNames(city.slug, deployment_prefix(account_id, city.region, generation))
    buckets = [
        *(names.bucket(z) for z in Zone), names.keys_bucket(), names.access_log_bucket()
    ]  # fmt: skip
    queues = [n for f in Function for n in (names.queue(f), names.dlq(f))]
    queues.append(f"{names.queue(Function.EXPORT)}-failures")
    return buckets, queues, f"alias/citypipe-{city.slug}-keys"


def simulated_principal(arn: str) -> str:
    """The IAM ARN to simulate for a caller: an assumed role's session is its role."""
    if ":assumed-role/" not in arn:
        return arn
    account = arn.split(":")[4]
    role = arn.split(":assumed-role/")[1].split("/", maxsplit=1)[0]
    return f"arn:aws:iam::{account}:role/{role}"


class _Reader:
    def __init__(self, region: str) -> None:
        self.region = region
        self.unread: list[str] = []

    def client(self, service: str) -> Any:
        return session().create_client(service, region_name=self.region)

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()``, or None with the reason noted when the API refuses or is absent."""
        try:
            return call()
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            self.unread.append(f"{what}: could not be read ({str(exc).splitlines()[0]})")
            return None


def gather(city: City, generation: int = 1) -> Account:
    """Read the account the default credentials name, in the city's region, for the stack
    with that generation of names."""
    reader = _Reader(city.region)
    caller = reader.client("sts").get_caller_identity()
    account_id, principal = caller["Account"], simulated_principal(caller["Arn"])
    settings = reader.read(
        "lambda:GetAccountSettings", lambda: reader.client("lambda").get_account_settings()
    )
    limits = None if settings is None else settings["AccountLimit"]
    unreserved = None if limits is None else limits["UnreservedConcurrentExecutions"]
    simulated = reader.read(
        "iam:SimulatePrincipalPolicy",
        lambda: reader.client("iam").simulate_principal_policy(
            PolicySourceArn=principal, ActionNames=list(DEPLOY_ACTIONS)
        ),
    )
    denied = None
    if simulated is not None:
        results = simulated["EvaluationResults"]
        denied = tuple(r["EvalActionName"] for r in results if r["EvalDecision"] != "allowed")
    buckets, queues, alias = resource_names(city, account_id, generation)
    return Account(
        account_id,
        principal,
        unreserved,
        denied,
        _stack_status(reader, stack_name(city)),
        tuple(_taken(reader, buckets, queues, alias)),
        tuple(reader.unread),
    )


def _stack_status(reader: _Reader, name: str) -> str | None:
    try:
        stacks = reader.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _taken(reader: _Reader, buckets: list[str], queues: list[str], alias: str) -> Iterator[str]:
    s3, sqs, kms = reader.client("s3"), reader.client("sqs"), reader.client("kms")
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
            yield f"bucket {bucket}"
        except ClientError as exc:
            if error_code(exc) in {"403", "AccessDenied"}:
                yield f"bucket {bucket} (another account's)"
            elif error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
    for queue in queues:
        try:
            sqs.get_queue_url(QueueName=queue)
            yield f"queue {queue}"
        except ClientError as exc:
            if error_code(exc) not in _NO_QUEUE:
                raise
    aliases = kms.get_paginator("list_aliases").paginate()
    if any(a["AliasName"] == alias for page in aliases for a in page["Aliases"]):
        yield f"key alias {alias}"
