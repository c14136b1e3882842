"""Scaleway as its documentation says it behaves, in front of any S3/SQS backend (the
embedded moto server in the tests): what the emulators do not model and a first deployment
would otherwise find out.

Object Storage (docs: "Bucket policies overview", "Creating and applying a bucket policy"):

- a bucket policy's format: ``Version`` ``2023-04-17`` (``2012-10-17`` is deprecated),
  ``Principal`` ``"*"`` or ``{"SCW": "application_id:<id>" | "user_id:<id>" | [...]}``,
  ``Resource`` ``<bucket>`` or ``<bucket>/<key pattern>`` (no ARN); a policy off that format
  is refused (``MalformedPolicy``), or, ``lenient``, kept and its problems recorded (what
  the deprecated version still gets);
- once a bucket has a policy, only the principals it allows may act on the bucket, each
  only as far as it allows ("you will lose access to your bucket if you are not the owner
  of the Organization, and if you are not explicitly allowed by the bucket policy"); the
  Organization owner the policy does not name may still put and delete the policy, and
  nothing else; without a policy IAM alone decides (here: every
  known key is allowed, anonymous callers are not: buckets are private);
- no ``PutPublicAccessBlock`` (501), and a bucket name is global: one another customer holds
  is ``BucketAlreadyExists``.

Queues and Functions ("How to add a trigger to a function"): a queue trigger POSTs one
message at a time and, if the function answers a status >= 300, "sending the message will
be retried up to three times" — so one receive may hold a message for four function
timeouts, all inside one visibility timeout. ``trigger_problem`` refuses a queue whose
visibility timeout is shorter (the message would come back while still being retried).

Callers are told apart as the service tells them apart: by the access key in the request's
signature (none: anonymous). The backend behind the model keeps its own rules for unsigned
requests (moto refuses them by AWS's), so the public is played by a key the model takes as
anonymous (``public_keys``). ``installed`` registers the model on this process's botocore
session: clients made afterwards go through it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse

from citypipe.adapters.clients import session

POLICY_VERSION = "2023-04-17"
DEPRECATED_VERSION = "2012-10-17"
PRINCIPAL = re.compile(r"^(application_id|user_id):[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
TRIGGER_RETRIES = 3  # "retried up to three times" after a status >= 300
ANONYMOUS = "*"
OWNER = "organization-owner"

# What a call does, in a bucket policy's terms (the calls citypipe makes; any other is
# refused to everyone but the owner, so a new call is noticed here first).
_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "HeadBucket": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketTagging": "s3:PutBucketTagging",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}
_OBJECT_CALLS = {
    "GetObject", "HeadObject", "PutObject", "CopyObject", "CreateMultipartUpload",
    "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload", "DeleteObject",
}  # fmt: skip


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_problems(principal: Any) -> list[str]:
    if principal == ANONYMOUS:
        return []
    if not isinstance(principal, dict) or set(principal) != {"SCW"}:
        return [f'Principal {principal!r}: "*" or {{"SCW": ...}} only']
    return [
        f"Principal {p!r}: application_id:<id> or user_id:<id>"
        for p in _listed(principal["SCW"])
        if not isinstance(p, str) or not PRINCIPAL.match(p)
    ]


def _resource_problems(bucket: str, resource: Any) -> list[str]:
    return [
        f"Resource {r!r}: {bucket!r} or {bucket + '/<key prefix>*'!r}, never an ARN"
        for r in _listed(resource)
        if not isinstance(r, str) or not (r == bucket or r.startswith(f"{bucket}/"))
    ]


def policy_problems(bucket: str, policy: Any) -> list[str]:
    """What keeps ``policy`` from being a bucket policy in Scaleway's documented format."""
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list):
        return ["a policy is an object with a list of statements"]
    problems = []
    version = policy.get("Version")
    if version == DEPRECATED_VERSION:
        problems.append(f"Version {version}: deprecated, use {POLICY_VERSION}")
    elif version != POLICY_VERSION:
        problems.append(f"Version {version!r}: {POLICY_VERSION} only")
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow":
            problems.append(f"Effect {statement.get('Effect')!r}: only Allow grants anything")
        problems += _principal_problems(statement.get("Principal"))
        problems += _resource_problems(bucket, statement.get("Resource"))
        problems += [
            f"Action {a!r}: s3:<action>"
            for a in _listed(statement.get("Action"))
            if not isinstance(a, str) or not a.startswith("s3:")
        ]
    return problems


def allows(policy: dict[str, Any], principal: str, action: str, resource: str) -> bool:
    """Whether a statement of ``policy`` allows ``principal`` (``*``: anonymous) ``action``
    on ``resource`` (``<bucket>`` or ``<bucket>/<key>``); nothing else is allowed."""
    for statement in policy.get("Statement", []):
        who = statement.get("Principal")
        listed = who == ANONYMOUS or (isinstance(who, dict) and principal in _listed(who["SCW"]))
        if (
            statement.get("Effect") == "Allow"
            and listed
            and any(_matches(action, a) for a in _listed(statement.get("Action")))
            and any(_matches(resource, r) for r in _listed(statement.get("Resource")))
        ):
            return True
    return False


def _matches(value: str, pattern: Any) -> bool:
    return isinstance(pattern, str) and fnmatch.fnmatchcase(value, pattern)


def trigger_problem(queue: str, visibility_s: int, function_timeout_s: int) -> str | None:
    """Why a queue trigger from ``queue`` to a function with this timeout would deliver a
    message again while it is still being retried (None: it would not)."""
    needed = (1 + TRIGGER_RETRIES) * function_timeout_s
    if visibility_s < needed:
        return (
            f"{queue}: visibility {visibility_s} s < {1 + TRIGGER_RETRIES} deliveries x "
            f"{function_timeout_s} s: the message comes back while still being retried"
        )
    return None


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _error(url: str, status: int, code: str, message: str) -> AWSResponse:
    body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode()
    headers: Any = {"Content-Type": "application/xml"}
    return AWSResponse(url, status, headers, _Raw(body))


def _access_key(request: Any) -> str | None:
    """The access key a request is signed with (header or presigned URL); None: unsigned."""
    authorization = request.headers.get("Authorization")
    if authorization:
        text = authorization.decode() if isinstance(authorization, bytes) else authorization
        found = re.search(r"Credential=([^/,\s]+)/", text)
        return found.group(1) if found else None
    credential = parse_qs(urlsplit(request.url).query).get("X-Amz-Credential")
    return credential[0].split("/", 1)[0] if credential else None


# "The owner of the Organization always has the right to put and delete bucket policies,
# even if he is not allowed to perform other bucket operations by the bucket policy": an
# owner the policy does not name keeps only that (the conservative reading of the docs).
OWNER_KEEPS = frozenset({"PutBucketPolicy", "DeleteBucketPolicy"})


@dataclass
class ScalewayObjectStorage:
    """One Scaleway Organization's view of Object Storage: whose keys are whose."""

    owner_keys: frozenset[str]  # the Organization owner's access keys
    principals: dict[str, str]  # every other access key: "application_id:…" / "user_id:…"
    foreign_buckets: frozenset[str] = frozenset()  # names another customer holds
    public_keys: frozenset[str] = frozenset()  # keys that play an unsigned caller
    lenient: bool = False  # keep a policy off the format (record its problems)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # of the policies kept anyway
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (caller, call, bucket)

    def caller(self, request: Any) -> str:
        key = _access_key(request)
        if key is None or key in self.public_keys:
            return ANONYMOUS
        return OWNER if key in self.owner_keys else self.principals.get(key, f"unknown:{key}")

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        bucket, _slash, key = unquote(urlsplit(request.url).path).lstrip("/").partition("/")
        if operation == "PutPublicAccessBlock":
            return self._refuse(request, operation, bucket, 501, "NotImplemented")
        if operation == "CreateBucket" and bucket in self.foreign_buckets:
            return _error(request.url, 409, "BucketAlreadyExists", "owned by someone else")
        if not self._allowed(self.caller(request), operation, bucket, key):
            return self._refuse(request, operation, bucket, 403, "AccessDenied")
        if operation == "PutBucketPolicy":
            return self._policy(request, bucket)
        if operation == "DeleteBucketPolicy":
            self.policies.pop(bucket, None)
        return None

    def _refuse(
        self, request: Any, operation: str, bucket: str, status: int, code: str
    ) -> AWSResponse:
        self.refused.append((self.caller(request), operation, bucket))
        return _error(request.url, status, code, f"{operation} refused by the Scaleway model")

    def _policy(self, request: Any, bucket: str) -> AWSResponse | None:
        body = request.body if isinstance(request.body, bytes | str) else request.body.read()
        try:
            policy = json.loads(body)
        except ValueError:
            return _error(request.url, 400, "MalformedPolicy", "not JSON")
        problems = policy_problems(bucket, policy)
        if problems and not self.lenient:
            return _error(request.url, 400, "MalformedPolicy", "; ".join(problems))
        self.problems += problems
        self.policies[bucket] = policy
        return None

    def _allowed(self, caller: str, operation: str, bucket: str, key: str) -> bool:
        if not bucket:
            return True  # ListBuckets names no bucket
        policy = self.policies.get(bucket)
        if policy is None:
            return caller != ANONYMOUS  # IAM alone: buckets are private
        if caller == OWNER and operation in OWNER_KEEPS:
            return True  # the owner may always mend a policy, even one that omits it
        action = _ACTIONS.get(operation)
        resource = f"{bucket}/{key}" if operation in _OBJECT_CALLS else bucket
        return action is not None and allows(policy, caller, action, resource)

    @contextmanager
    def installed(self) -> Iterator[ScalewayObjectStorage]:
        """Every S3 client this process makes from now on talks to Scaleway's rules."""
        events = session()
        handler: Any = self.before_send
        events.register("before-send.s3", handler, unique_id=f"scw-{id(self)}")
        try:
            yield self
        finally:
            events.unregister("before-send.s3", unique_id=f"scw-{id(self)}")
