"""Provisioning a city stack on a local S3/SQS backend: zone buckets and function queues.

``up`` is idempotent (running it twice changes nothing) and ``down`` removes everything
(on Scaleway, all but the locked audit bucket). On AWS the same resources come from
serverless.yml; this is for embedded/LocalStack and for Scaleway, which has no
CloudFormation: there ``up`` follows Scaleway's documented rules (docs/decisions/0087) —
the open bucket's policy in Scaleway's format keeps the functions' and the operator's
principals, queues are sized from each function's timeout, bucket names carry the
deployment's prefix and a name someone else holds is refused, the audit bucket is locked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from botocore.exceptions import ClientError

from citypipe.adapters.boto import error_code
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.adapters.keys import HORIZON
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import BUCKET_NAME_MAX, StackNames
from citypipe.settings import BackendSettings, Settings, StackSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
SCALEWAY_TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "scaleway" / "serverless.yml"


class StackError(Exception):
    """A stack that cannot be provisioned as asked: the message says why and what to do."""


@dataclass(frozen=True)
class Clients:
    """The two clients provisioning uses."""

    s3: S3Client
    sqs: SQSClient


def make_clients(backend: BackendSettings) -> Clients:
    """Both clients on one backend (moto, LocalStack, AWS)."""
    return Clients(s3_client(backend), sqs_client(backend))


def clients_for(settings: Settings) -> Clients:
    """Each client at its own service's endpoint (Scaleway: Object Storage and Queues)."""
    return Clients(s3_client(settings.service("storage")), sqs_client(settings.service("queues")))


DLQ_RETENTION_S = 14 * 24 * 3600
IOT_FAILURES_RETENTION_S = 24 * 3600  # IoT rules' raw events: a day, as the raw zone
QUEUE_RETENTION_S = 4 * 24 * 3600
# An emulator stack's queues, unless the settings say otherwise (laptop replays).
LOCAL_VISIBILITY_S = 60
LOCAL_MAX_RECEIVES = 3
# A cloud's queues, from each function's timeout: a visibility of six timeouts (AWS's advice
# for SQS event sources; Scaleway's trigger delivers a message up to four times within one
# receive), and enough receives that a message is dead-lettered only after its retries have
# spanned four hours (a provider incident does not dead-letter a day's work).
VISIBILITY_PER_TIMEOUT = 6
RETRY_WINDOW_S = 4 * 3600
MIN_RECEIVES = 3
# Scaleway's IAM principals a bucket policy names (its documented format).
SCW_PRINCIPAL = re.compile(r"^(application_id|user_id):[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
SCW_POLICY_VERSION = "2023-04-17"
PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]*-$")


Provider = Literal["aws", "scaleway"]


def _lifecycle(rules: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ID": "-".join(["citypipe-retention", *prefix.strip("/").split("/")]).rstrip("-"),
                "Status": "Enabled",
                "Filter": {"Prefix": prefix},
                "Expiration": {"Days": days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
            for prefix, days in rules
        ]
    }


@dataclass(frozen=True)
class Bucket:
    """What one bucket of the stack is: its retention, and what of it the public may read."""

    name: str
    tag: str
    expire: list[tuple[str, int]]  # (key prefix, days) lifecycle rules; none: kept
    public_prefix: str | None = None  # anonymous read of these keys (the open zone's)
    lock_days: int | None = None  # Object Lock's default retention (the audit zone's)


def public_read_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Anonymous GetObject on the published prefix only: never a listing, never a write."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadOfPublishedData",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            }
        ],
    }


def scaleway_policy(
    bucket: str, prefix: str | None, principals: Sequence[str], readers: Sequence[str] = ()
) -> dict[str, Any]:
    """A bucket's policy in Scaleway's format: everything to the principals named (the
    functions' IAM application, the operator) and, on the open bucket (``prefix``),
    anonymous GetObject on the published prefix only. Once a bucket has a policy, Scaleway
    refuses every principal it does not name (an unnamed Organization owner may only mend
    the policy): every bucket gets one, so another application or user of the project —
    even with Object Storage full access — reads no zone and no secret of the keys bucket.
    ``readers`` (the open-data API's application) may list the open bucket and read its
    published prefix, nothing else."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "StackFunctionsAndOperator",
            "Effect": "Allow",
            "Principal": {"SCW": list(principals)},
            "Action": "s3:*",
            "Resource": [bucket, f"{bucket}/*"],
        }
    ]
    if prefix is not None:
        statements.insert(
            0,
            {
                "Sid": "PublicReadOfPublishedData",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{bucket}/{prefix}*",
            },
        )
        if readers:
            statements.append(
                {
                    "Sid": "OpenDataReaders",
                    "Effect": "Allow",
                    "Principal": {"SCW": list(readers)},
                    "Action": ["s3:ListBucket", "s3:GetObject"],
                    "Resource": [bucket, f"{bucket}/{prefix}*"],
                }
            )
    return {"Version": SCW_POLICY_VERSION, "Id": f"citypipe-{bucket}", "Statement": statements}


def _create(s3: S3Client, bucket: Bucket, region: str, locked: bool) -> None:
    """The bucket, made or found ours; a name someone else holds is refused (bucket names
    are global: another account's bucket would take the city's data)."""
    configuration: Any = {"LocationConstraint": region}  # Scaleway's regions too
    lock: Any = {"ObjectLockEnabledForBucket": True} if locked else {}
    try:
        s3.create_bucket(Bucket=bucket.name, CreateBucketConfiguration=configuration, **lock)
    except ClientError as exc:
        if error_code(exc) == "BucketAlreadyExists":
            raise StackError(
                f"bucket {bucket.name}: the name is held by someone else (bucket names are "
                "global); choose another CITYPIPE_STACK__NAME_PREFIX"
            ) from None
        if error_code(exc) != "BucketAlreadyOwnedByYou":
            raise


def _lock(s3: S3Client, bucket: str, days: int) -> None:
    """Object Lock's default retention, governance mode (as on AWS): every audit record is
    kept unaltered for the audit retention. Scaleway turns Object Lock on only when a
    bucket is created."""
    try:
        s3.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            raise
        raise StackError(
            f"bucket {bucket} exists without Object Lock, which can be turned on only when a "
            "bucket is created: move its objects to a bucket `stack up` creates (another "
            "CITYPIPE_STACK__NAME_PREFIX), or remove it"
        ) from None
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}},
        },
    )


def _policy(
    bucket: str, prefix: str | None, provider: Provider, settings: StackSettings
) -> dict[str, Any] | None:
    """The bucket's policy: on Scaleway every bucket's (it names who may enter); on AWS the
    open bucket's public read (IAM roles say who else may enter)."""
    if provider == "scaleway":
        return scaleway_policy(bucket, prefix, settings.principals, settings.readers)
    return public_read_policy(bucket, prefix) if prefix is not None else None


def _bucket(
    clients: Clients, bucket: Bucket, region: str, provider: Provider, settings: StackSettings
) -> None:
    s3 = clients.s3
    locked = provider == "scaleway" and bucket.lock_days is not None
    _create(s3, bucket, region, locked)
    if locked and bucket.lock_days is not None:
        _lock(s3, bucket.name, bucket.lock_days)
    s3.put_bucket_encryption(
        Bucket=bucket.name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    if provider == "aws":  # Scaleway has no PutPublicAccessBlock: buckets are private anyway
        public = bucket.public_prefix is not None
        s3.put_public_access_block(
            Bucket=bucket.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": not public,
                "RestrictPublicBuckets": not public,
            },
        )
    policy = _policy(bucket.name, bucket.public_prefix, provider, settings)
    if policy is not None:
        s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(policy, sort_keys=True))
    if bucket.expire:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name,
            LifecycleConfiguration=_lifecycle(bucket.expire),  # type: ignore[arg-type]
        )
    else:
        s3.delete_bucket_lifecycle(Bucket=bucket.name)
    s3.put_bucket_tagging(
        Bucket=bucket.name, Tagging={"TagSet": [{"Key": "citypipe:zone", "Value": bucket.tag}]}
    )


def buckets(city: City, names: StackNames) -> list[Bucket]:
    """The zone buckets and the keys bucket, as the city file says."""
    zones = [
        Bucket(
            names.bucket(zone),
            zone.value,
            [("", days)] if (days := city.retention_days.get(zone)) is not None else [],
            names.open_prefix() if zone is Zone.OPEN else None,
            days if zone is Zone.AUDIT else None,
        )
        for zone in Zone
    ]
    # Secrets are destroyed by the hourly job; the lifecycle rule is a safety net a day later.
    # The destruction horizon lives outside ``secrets/`` and never expires.
    # The hours' opt-out requests (``service.optout.hour_slot``) go a day later.
    expire = [("secrets/", city.key_retention_days + 1), (names.optout_rate_prefix(), 1)]
    keys = Bucket(names.keys_bucket(), "keys", expire)
    return [*zones, keys]


def _queue(clients: Clients, name: str, attributes: dict[str, str]) -> str:
    sqs = clients.sqs
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    except ClientError as exc:
        if error_code(exc) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    return url


@dataclass(frozen=True)
class QueuePlan:
    """A function's queue: how long a received message stays hidden, and how many receives
    before it is dead-lettered."""

    visibility_s: int
    max_receives: int


def queue_plan(timeout_s: int) -> QueuePlan:
    """A cloud function's queue, from the function's timeout."""
    visibility = VISIBILITY_PER_TIMEOUT * timeout_s
    return QueuePlan(visibility, max(MIN_RECEIVES, math.ceil(RETRY_WINDOW_S / visibility)))


def scaleway_timeouts(template: Path = SCALEWAY_TEMPLATE) -> dict[Function, int]:
    """Each function's timeout (s) as infra/scaleway/serverless.yml deploys it."""
    functions = yaml.safe_load(template.read_text())["functions"]
    return {f: int(str(functions[f.value]["timeout"]).removesuffix("s")) for f in Function}


def prefix_problems(names: StackNames) -> list[str]:
    """What keeps the deployment's name prefix from naming a Scaleway stack's resources."""
    if not PREFIX.match(names.prefix):
        return [
            f"name prefix {names.prefix!r}: set one (lowercase letters, digits and '-', "
            "ending in '-'): Scaleway's bucket names are global, a prefix keeps them the city's"
        ]
    longest = max((names.bucket(z) for z in Zone), key=len)
    if len(longest) > BUCKET_NAME_MAX:
        return [f"bucket {longest}: over {BUCKET_NAME_MAX} characters; shorten the prefix"]
    return []


def scaleway_problems(names: StackNames, settings: StackSettings) -> list[str]:
    """What keeps these settings from provisioning a Scaleway stack."""
    problems = prefix_problems(names)
    if not settings.principals:
        problems.append(
            "set CITYPIPE_STACK__PRINCIPALS to the functions' IAM application and yours, e.g. "
            '\'["application_id:<id>","user_id:<id>"]\': the open bucket\'s policy locks out '
            "every principal it does not name"
        )
    problems += [
        f"CITYPIPE_STACK__{name}: {p!r} is not application_id:<id> or user_id:<id>"
        for name, listed in (("PRINCIPALS", settings.principals), ("READERS", settings.readers))
        for p in listed
        if not SCW_PRINCIPAL.match(p)
    ]
    if settings.visibility_timeout_s is not None or settings.max_receive_count is not None:
        problems.append(
            "unset CITYPIPE_STACK__VISIBILITY_TIMEOUT_S and __MAX_RECEIVE_COUNT: on Scaleway "
            "they come from each function's timeout"
        )
    return problems


def queue_plans(settings: StackSettings, provider: Provider) -> dict[Function, QueuePlan]:
    if provider == "scaleway":
        return {f: queue_plan(t) for f, t in scaleway_timeouts().items()}
    visibility = settings.visibility_timeout_s
    receives = settings.max_receive_count
    plan = QueuePlan(
        LOCAL_VISIBILITY_S if visibility is None else visibility,
        LOCAL_MAX_RECEIVES if receives is None else receives,
    )
    return dict.fromkeys(Function, plan)


def up(
    city: City,
    names: StackNames,
    clients: Clients,
    settings: StackSettings,
    provider: Provider = "aws",
) -> dict[str, Any]:
    """Create or update the city's buckets and queues. ``provider`` "scaleway" makes only
    the calls Scaleway supports (no PutPublicAccessBlock), as Scaleway documents them."""
    if provider == "scaleway" and (problems := scaleway_problems(names, settings)):
        raise StackError(f"stack up --cloud scaleway: {problems[0]}")
    for bucket in buckets(city, names):
        _bucket(clients, bucket, city.region, provider, settings)
    for function, plan in queue_plans(settings, provider).items():
        dlq_url = _queue(
            clients, names.dlq(function), {"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        )
        dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": plan.max_receives}
        _queue(
            clients,
            names.queue(function),
            {
                "VisibilityTimeout": str(plan.visibility_s),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_S),
                "RedrivePolicy": json.dumps(redrive, sort_keys=True),
            },
        )
    if provider == "aws":  # where IoT rules invoke ingest
        retention = {"MessageRetentionPeriod": str(IOT_FAILURES_RETENTION_S)}
        _queue(clients, names.iot_failures(), retention)
    return describe(names, clients)


def describe(names: StackNames, clients: Clients) -> dict[str, Any]:
    """What exists of the stack, comparable between runs (used to show ``up`` is idempotent)."""
    state: dict[str, Any] = {"buckets": {}, "queues": {}}
    for name in _bucket_names(names):
        try:
            rules = clients.s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                continue
            rules = []
        state["buckets"][name] = {
            "expiration_days": [r.get("Expiration", {}).get("Days") for r in rules]
        }
    for name, url in _queues(names, clients):
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["VisibilityTimeout", "RedrivePolicy", "MessageRetentionPeriod"],
        )["Attributes"]
        state["queues"][name] = dict(sorted(attributes.items()))
    return state


def _bucket_names(names: StackNames) -> list[str]:
    return [*(names.bucket(zone) for zone in Zone), names.keys_bucket()]


def down(names: StackNames, clients: Clients, provider: Provider = "aws") -> list[str]:
    """Remove the stack: its buckets with every object (the keys bucket too: deleting it
    destroys every secret), and its queues. On Scaleway the audit bucket is kept: its
    records are locked for the audit retention. Returns the buckets kept."""
    kept = [names.bucket(Zone.AUDIT)] if provider == "scaleway" else []
    for name in (n for n in _bucket_names(names) if n not in kept):
        try:
            pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=name)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    clients.s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]
            clients.s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
    for _, url in _queues(names, clients):
        clients.sqs.delete_queue(QueueUrl=url)
    return kept


def _queues(names: StackNames, clients: Clients) -> Iterator[tuple[str, str]]:
    """(name, url) of the stack's queues, DLQs and IoT failures queue that exist."""
    for name in [*(n for f in Function for n in (names.queue(f), names.dlq(f))),
                 names.iot_failures()]:  # fmt: skip
        try:
            yield name, clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            if error_code(exc) not in NO_QUEUE:
                raise


def reset_file_keys(directory: Path) -> None:
    """A laptop's file key store made new for a new stack: its daily secrets and its horizon
    gone (a replay's earlier run destroyed them up to tomorrow), its release secret kept (so
    two runs publish the same noise)."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.suffix == ".key" or path.name == HORIZON:
            path.unlink()
