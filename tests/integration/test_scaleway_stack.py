"""A Scaleway stack, provisioned and run against the model of Scaleway's documented rules
(citypipe_local.scaleway_model) in front of the embedded backend: bucket policies in
Scaleway's format that lock out every principal they do not name but the Organization
owner, no PutPublicAccessBlock, global bucket names, Object Lock, and queue triggers that
deliver a message up to four times per receive.

Callers are told apart by their access keys, as Scaleway tells them apart: the operator
runs `stack up`, `push` and `request-export`; the functions run with their IAM
application's key; the public reads unsigned.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from repo import CITY_FILE

from citypipe.adapters.boto import error_code
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.adapters.keys import ObjectKeyStore
from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.settings import BackendSettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint
from citypipe_local.cli import main
from citypipe_local.report import build_report
from citypipe_local.runner import LocalRunner, in_process_handlers
from citypipe_local.scaleway_model import ScalewayObjectStorage, trigger_problem
from citypipe_local.simulate import simulate
from citypipe_local.stack import Clients, StackError

OWNER_KEY, OPERATOR_KEY, FUNCTIONS_KEY, STRANGER_KEY = "SCWOWNER", "SCWOPS", "SCWFN", "SCWX"
API_KEY = "SCWAPI"  # the open-data API's own application: reads the open bucket, nothing else
PUBLIC_KEY = "SCWPUBLIC"  # plays an unsigned caller (moto refuses unsigned calls its own way)
OPERATOR = "user_id:66666666-7777-8888-9999-000000000000"
FUNCTIONS = "application_id:11111111-2222-3333-4444-555555555555"
STRANGER = "application_id:99999999-9999-9999-9999-999999999999"
API = "application_id:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
PRINCIPALS = {
    OPERATOR_KEY: OPERATOR, FUNCTIONS_KEY: FUNCTIONS, STRANGER_KEY: STRANGER, API_KEY: API
}  # fmt: skip
HELD_ELSEWHERE = "scw-taken-velden-clean"


def model(lenient: bool = False) -> ScalewayObjectStorage:
    return ScalewayObjectStorage(
        owner_keys=frozenset({OWNER_KEY}),
        principals=PRINCIPALS,
        foreign_buckets=frozenset({HELD_ELSEWHERE}),
        public_keys=frozenset({PUBLIC_KEY}),
        lenient=lenient,
    )


@pytest.fixture
def scaleway() -> Iterator[ScalewayObjectStorage]:
    with model().installed() as installed:
        yield installed


def backend(embedded: Endpoint, key: str) -> BackendSettings:
    return embedded.settings.model_copy(
        update={"access_key_id": key, "secret_access_key": f"{key}-secret"}
    )


def clients_as(embedded: Endpoint, key: str) -> Clients:
    return Clients(s3_client(backend(embedded, key)), sqs_client(backend(embedded, key)))


def refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**params)
    return error_code(error.value)


@pytest.fixture
def names() -> StackNames:
    return StackNames("velden", f"scw{uuid.uuid4().hex[:8]}-")


def settings_for(names: StackNames) -> StackSettings:
    return StackSettings(name_prefix=names.prefix, principals=[FUNCTIONS, OPERATOR], readers=[API])


# --- the policy `stack up` used to set ------------------------------------------------------


def test_the_old_policy_would_have_locked_export_and_the_operator_out(
    embedded: Endpoint, names: StackNames
) -> None:
    with model(lenient=True).installed() as scaleway:  # Scaleway took it, deprecated as it is
        operator, functions = (
            clients_as(embedded, OPERATOR_KEY),
            clients_as(embedded, FUNCTIONS_KEY),
        )
        owner = clients_as(embedded, OWNER_KEY)
        bucket = names.bucket(Zone.OPEN)
        operator.s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        # When the open bucket gets the policy `stack up` used to set
        old = stack.public_read_policy(bucket, "open/velden/")
        operator.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(old))
        # Then export's key can no longer publish, nor the operator go on with `stack up`
        key = "open/velden/catalog.jsonld"
        assert (
            refused(functions.s3.put_object, Bucket=bucket, Key=key, Body=b"{}") == "AccessDenied"
        )
        lifecycle = operator.s3.delete_bucket_lifecycle
        assert refused(lifecycle, Bucket=bucket) == "AccessDenied"
        # And the Organization owner, which the policy does not name either, may mend the
        # policy and do nothing else
        assert refused(owner.s3.put_object, Bucket=bucket, Key=key, Body=b"{}") == "AccessDenied"
        assert any("deprecated" in p for p in scaleway.problems)
        assert any("ARN" in p for p in scaleway.problems)
        owner.s3.delete_bucket_policy(Bucket=bucket)


def test_the_old_policy_is_refused_as_malformed(
    scaleway: ScalewayObjectStorage, embedded: Endpoint, names: StackNames
) -> None:
    operator = clients_as(embedded, OPERATOR_KEY)
    bucket = names.bucket(Zone.OPEN)
    operator.s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    old = json.dumps(stack.public_read_policy(bucket, "open/velden/"))

    assert refused(operator.s3.put_bucket_policy, Bucket=bucket, Policy=old) == "MalformedPolicy"


# --- `stack up --cloud scaleway` as it is -----------------------------------------------------


@pytest.fixture
def built(
    scaleway: ScalewayObjectStorage, embedded: Endpoint, city: City, names: StackNames
) -> dict[str, Any]:
    operator = clients_as(embedded, OPERATOR_KEY)
    return stack.up(city, names, operator, settings_for(names), provider="scaleway")


def test_stack_up_passes_and_makes_only_calls_scaleway_takes(
    built: dict[str, Any], scaleway: ScalewayObjectStorage, city: City, names: StackNames,
    embedded: Endpoint,
) -> None:  # fmt: skip
    assert set(built["buckets"]) == {*(names.bucket(z) for z in Zone), names.keys_bucket()}
    assert len(built["queues"]) == 2 * len(Function)
    assert scaleway.refused == []  # no PutPublicAccessBlock, no call locked out
    assert scaleway.problems == []
    # and again changes nothing
    operator = clients_as(embedded, OPERATOR_KEY)
    assert stack.up(city, names, operator, settings_for(names), provider="scaleway") == built


def test_the_functions_publish_and_the_public_reads_the_published_prefix_only(
    built: dict[str, Any], names: StackNames, embedded: Endpoint
) -> None:
    functions, stranger = clients_as(embedded, FUNCTIONS_KEY), clients_as(embedded, STRANGER_KEY)
    public = clients_as(embedded, PUBLIC_KEY).s3
    bucket = names.bucket(Zone.OPEN)
    published, unpublished = "open/velden/catalog.jsonld", "published/velden/metadata/x.json"
    # The functions' application writes the open zone (and every other, by IAM)
    functions.s3.put_object(Bucket=bucket, Key=published, Body=b"{}")
    functions.s3.put_object(Bucket=bucket, Key=unpublished, Body=b"{}")
    functions.s3.put_object(Bucket=names.bucket(Zone.RAW), Key="k", Body=b"x")
    # The public reads what is published, nothing else, and lists nothing
    assert public.get_object(Bucket=bucket, Key=published)["Body"].read() == b"{}"
    assert refused(public.get_object, Bucket=bucket, Key=unpublished) == "AccessDenied"
    assert refused(public.list_objects_v2, Bucket=bucket) == "AccessDenied"
    assert refused(public.get_object, Bucket=names.bucket(Zone.RAW), Key="k") == "AccessDenied"
    # A principal the policy does not name is locked out of the open bucket
    assert refused(stranger.s3.get_object, Bucket=bucket, Key=unpublished) == "AccessDenied"


def test_no_other_principal_of_the_project_enters_any_bucket(
    built: dict[str, Any], names: StackNames, embedded: Endpoint
) -> None:
    # Given an IAM application of the same project the stack's policies do not name
    stranger = clients_as(embedded, STRANGER_KEY).s3
    functions = clients_as(embedded, FUNCTIONS_KEY).s3
    keys = names.keys_bucket()
    functions.put_object(Bucket=keys, Key="secrets/velden/2026-06-01.key", Body=b"secret")
    # Then it reads no secret, lists no zone and writes nowhere, as on AWS only the roles
    # that need the keys bucket enter it
    assert refused(stranger.get_object, Bucket=keys, Key="secrets/velden/2026-06-01.key") == (
        "AccessDenied"
    )
    for bucket in [*(names.bucket(z) for z in Zone), keys]:
        assert refused(stranger.list_objects_v2, Bucket=bucket) == "AccessDenied"
        assert refused(stranger.put_object, Bucket=bucket, Key="x", Body=b"x") == "AccessDenied"
    # While the functions and the operator still do
    assert functions.get_object(Bucket=keys, Key="secrets/velden/2026-06-01.key")["Body"].read()
    assert clients_as(embedded, OPERATOR_KEY).s3.list_objects_v2(Bucket=keys)["KeyCount"] == 1


def test_the_open_data_api_reads_the_open_bucket_and_nothing_else(
    built: dict[str, Any], names: StackNames, embedded: Endpoint
) -> None:
    api, functions = clients_as(embedded, API_KEY).s3, clients_as(embedded, FUNCTIONS_KEY).s3
    bucket, published = names.bucket(Zone.OPEN), "open/velden/catalog.jsonld"
    functions.put_object(Bucket=bucket, Key=published, Body=b"{}")
    # The API's application lists the open bucket and reads what is published
    assert [o["Key"] for o in api.list_objects_v2(Bucket=bucket, Prefix="open/")["Contents"]] == [
        published
    ]
    assert api.get_object(Bucket=bucket, Key=published)["Body"].read() == b"{}"
    # But writes nothing, and enters no other bucket
    assert refused(api.put_object, Bucket=bucket, Key=published, Body=b"x") == "AccessDenied"
    for other in [*(names.bucket(z) for z in Zone if z is not Zone.OPEN), names.keys_bucket()]:
        assert refused(api.list_objects_v2, Bucket=other) == "AccessDenied"


def test_the_audit_bucket_is_locked_for_the_audit_retention(
    built: dict[str, Any], names: StackNames, embedded: Endpoint, city: City
) -> None:
    operator = clients_as(embedded, OPERATOR_KEY)
    lock = operator.s3.get_object_lock_configuration(Bucket=names.bucket(Zone.AUDIT))
    retention = lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]

    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", city.retention_days[Zone.AUDIT])


def test_every_queue_outlasts_every_delivery_its_trigger_makes_of_a_message(
    built: dict[str, Any], names: StackNames
) -> None:
    for function, timeout in stack.scaleway_timeouts().items():
        queue = built["queues"][names.queue(function)]
        redrive = json.loads(queue["RedrivePolicy"])
        assert trigger_problem(queue, int(queue["VisibilityTimeout"]), timeout) is None
        assert int(queue["VisibilityTimeout"]) * redrive["maxReceiveCount"] >= 4 * 3600


def test_stack_down_keeps_the_locked_audit_bucket(
    built: dict[str, Any], names: StackNames, embedded: Endpoint, city: City
) -> None:
    operator = clients_as(embedded, OPERATOR_KEY)

    assert stack.down(names, operator, provider="scaleway") == [names.bucket(Zone.AUDIT)]
    assert set(stack.describe(names, operator)["buckets"]) == {names.bucket(Zone.AUDIT)}
    # and a redeploy with the same prefix takes it up again
    again = stack.up(city, names, operator, settings_for(names), provider="scaleway")
    assert set(again["buckets"]) == set(built["buckets"])


# --- what `stack up` refuses ------------------------------------------------------------------


def test_a_bucket_name_someone_else_holds_is_refused(
    scaleway: ScalewayObjectStorage, embedded: Endpoint, city: City
) -> None:
    names = StackNames("velden", "scw-taken-")  # its clean bucket is another customer's
    operator = clients_as(embedded, OPERATOR_KEY)

    with pytest.raises(StackError, match=f"bucket {HELD_ELSEWHERE}: the name is held by someone"):
        stack.up(city, names, operator, settings_for(names), provider="scaleway")


@pytest.mark.parametrize(
    ("prefix", "principals", "says"),
    [
        ("", [FUNCTIONS, OPERATOR], "name prefix ''"),
        ("acme-", [], "set CITYPIPE_STACK__PRINCIPALS"),
        ("acme-", ["arn:aws:iam::1:root"], "is not application_id:<id> or user_id:<id>"),
    ],
)
def test_stack_up_refuses_what_would_lock_the_stack_out_or_share_its_names(
    scaleway: ScalewayObjectStorage, embedded: Endpoint, city: City,
    prefix: str, principals: list[str], says: str,
) -> None:  # fmt: skip
    names = StackNames("velden", prefix)
    settings = StackSettings(name_prefix=prefix, principals=principals)

    with pytest.raises(StackError, match=says):
        stack.up(city, names, clients_as(embedded, OPERATOR_KEY), settings, provider="scaleway")
    assert scaleway.refused == []


# --- from zero to the first published file, as docs/deploy.md says ----------------------------


@pytest.fixture
def scaleway_env(
    scaleway: ScalewayObjectStorage, embedded: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The operator's settings: services apart, each with its own keys."""
    url = str(embedded.settings.endpoint_url)
    env = {
        "CITYPIPE_STACK__CITY_FILE": str(CITY_FILE),
        "CITYPIPE_STACK__NAME_PREFIX": f"scw{uuid.uuid4().hex[:8]}-",
        "CITYPIPE_STACK__PRINCIPALS": json.dumps([FUNCTIONS, OPERATOR]),
        "CITYPIPE_BACKEND__REGION": "eu-central-1",
        "CITYPIPE_STORAGE__ENDPOINT_URL": url,
        "CITYPIPE_STORAGE__ACCESS_KEY_ID": OPERATOR_KEY,
        "CITYPIPE_STORAGE__SECRET_ACCESS_KEY": "operator-secret",
        "CITYPIPE_QUEUES__ENDPOINT_URL": url,
        "CITYPIPE_QUEUES__ACCESS_KEY_ID": "queues-key",
        "CITYPIPE_QUEUES__SECRET_ACCESS_KEY": "queues-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_from_zero_to_the_first_published_file(
    scaleway_env: dict[str, str], scaleway: ScalewayObjectStorage, city: City, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    on = ["--city", str(CITY_FILE)]
    # Given an hour of a small city's payloads, and a stack the operator provisioned
    summary = simulate(city, tmp_path / "input", hours=1, scale=0.03)
    assert main(["stack", "up", *on, "--backend", "env", "--cloud", "scaleway"]) == 0
    # When the operator pushes the payloads, the functions (their application's key) run
    # through their Scaleway entry points (ingest drained on its CRON, the others one message
    # per POST), and an export is requested
    assert main(["push", *on, "--input", str(tmp_path / "input")]) == 0
    monkeypatch.setenv("CITYPIPE_STORAGE__ACCESS_KEY_ID", FUNCTIONS_KEY)
    settings = Settings()
    deps = deps_from(settings)
    keys = key_store_from(settings, deps)
    runner = LocalRunner(
        deps.names,
        deps.queue,
        handlers=in_process_handlers(deps, keys, platform="scaleway"),
        platform="scaleway",
    )
    runner.drain([Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE], timeout_s=300)
    assert main(["request-export", *on]) == 0
    runner.drain([Function.EXPORT], timeout_s=300)
    # Then the day is published, its secret sits in the keys bucket, and the books balance
    opened = [i.key for i in deps.store.list(deps.names.bucket(Zone.OPEN))]
    assert any(key.endswith(".csv") for key in opened)
    assert isinstance(keys, ObjectKeyStore)
    assert [i.key for i in deps.store.list(deps.names.keys_bucket(), "secrets/velden/")]
    report = build_report(deps, sum(summary.payloads.values()))  # hub messages and CSV rows
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert scaleway.refused == []  # nothing was locked out, nothing unsupported asked
