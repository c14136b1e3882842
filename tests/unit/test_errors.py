"""Backend errors classified narrowly: only what a retry can fix is transient.

A backend that refuses (access denied, a bad request, a missing bucket) is a deployment
problem: the invocation fails loudly, for the function's error alarm, instead of its
messages being retried quietly into the DLQ."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from unit_support import (
    claim_check,
    invoke_handler,
    lines,
    sqs_event,
    wifi_observation,
    with_store,
)

from citypipe.adapters.boto import classified, translate
from citypipe.domain.errors import (
    AlreadyExistsError,
    BackendRefusedError,
    NotFoundError,
    TransientError,
)
from citypipe.domain.model import Function, Zone
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore, InMemoryObjectStore


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NotFoundError),
        ("404", 404, NotFoundError),
        ("PreconditionFailed", 412, AlreadyExistsError),
        ("SlowDown", 503, TransientError),
        ("ThrottlingException", 400, TransientError),
        ("AWS.SimpleQueueService.RequestThrottled", 403, TransientError),
        ("InternalError", 500, TransientError),
        ("RequestTimeout", 400, TransientError),
        ("SomethingNew", 502, TransientError),
        ("AccessDenied", 403, BackendRefusedError),
        ("InvalidAccessKeyId", 403, BackendRefusedError),
        ("SignatureDoesNotMatch", 403, BackendRefusedError),
        ("NoSuchBucket", 404, BackendRefusedError),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, BackendRefusedError),
        ("InvalidParameterValue", 400, BackendRefusedError),
        ("KMS.DisabledException", 400, BackendRefusedError),
    ],
)
def test_a_backend_answer_maps_to_one_error_class(
    code: str, status: int, expected: type[Exception]
) -> None:
    assert type(translate(client_error(code, status))) is expected


def test_missing_credentials_are_refused_and_a_lost_connection_is_transient() -> None:
    @classified
    def fails(exc: Exception) -> None:
        raise exc

    with pytest.raises(BackendRefusedError):
        fails(NoCredentialsError())
    with pytest.raises(TransientError):
        fails(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))


class RefusingRawStore(InMemoryObjectStore):
    """Writing raw objects is denied, as with a role that lacks s3:PutObject on raw/."""

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        if key.startswith("raw/"):
            raise BackendRefusedError("AccessDenied", f"{bucket}/{key}")
        return super()._put(bucket, key, body, content_type, if_absent)


def test_a_refusing_backend_fails_the_invocation_loudly_after_the_other_records(
    memory_deps: Deps,
) -> None:
    # Given a batch of a poison record and a drop whose raw object cannot be written
    deps = with_store(memory_deps, RefusingRawStore)
    dropped = drop_lines(deps, "canonical", lines(wifi_observation()))
    event = sqs_event("{not a claim check", claim_check(dropped))
    # When ingest receives it
    with pytest.raises(BackendRefusedError) as refused:
        invoke_handler(Function.INGEST, event, deps, InMemoryKeyStore())
    # Then the invocation fails with the backend's code (Lambda counts an error; the batch
    # comes back), the poison record was still quarantined, and nothing was half-recorded
    assert refused.value.code == "AccessDenied"
    quarantine = deps.names.bucket(Zone.QUARANTINE)
    [poison] = deps.store.list(quarantine)
    assert poison.key.startswith("quarantine/velden/ingest/messages/")
    assert list(deps.store.list(deps.names.bucket(Zone.AUDIT))) == []
    assert deps.store.exists(dropped.bucket, dropped.key)
