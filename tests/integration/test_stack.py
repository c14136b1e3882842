"""Provisioning a city stack on real backends: ``up`` builds it, again changes nothing,
``down`` removes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.settings import StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint
from citypipe_local.stack import Clients, make_clients

BACKENDS = [
    "embedded",
    pytest.param(
        "localstack", marks=[pytest.mark.localstack, pytest.mark.xdist_group("localstack")]
    ),
]
SETTINGS = StackSettings(visibility_timeout_s=45, max_receive_count=4)


@pytest.fixture(params=BACKENDS)
def clients(request: pytest.FixtureRequest) -> Clients:
    endpoint: Endpoint = request.getfixturevalue(request.param)
    return make_clients(endpoint.settings)


@pytest.fixture
def names(city: City, clients: Clients) -> Iterator[StackNames]:
    """A stack of its own per test; whatever a test leaves is removed."""
    names = StackNames(city.slug, prefix=f"st{uuid.uuid4().hex[:10]}-")
    yield names
    stack.down(names, clients)


@pytest.fixture
def built(city: City, names: StackNames, clients: Clients) -> dict[str, Any]:
    return stack.up(city, names, clients, SETTINGS)


def test_up_creates_a_bucket_per_zone_with_its_retention(
    built: dict[str, Any], names: StackNames
) -> None:
    expected = {
        names.bucket(Zone.RAW): [1],
        names.bucket(Zone.QUARANTINE): [7],
        names.bucket(Zone.CLEAN): [90],
        names.bucket(Zone.AGGREGATES): [730],
        names.bucket(Zone.OPEN): [],  # kept
        names.bucket(Zone.AUDIT): [1825],
        # secrets: the key retention (2 days) + a day of slack; the hours' opt-out requests
        names.keys_bucket(): [3, 1],
    }

    assert {b: s["expiration_days"] for b, s in built["buckets"].items()} == expected


def test_up_blocks_public_access_except_on_the_open_zone(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    def block(zone: Zone) -> dict[str, Any]:
        response = clients.s3.get_public_access_block(Bucket=names.bucket(zone))
        return dict(response["PublicAccessBlockConfiguration"])

    assert block(Zone.RAW) == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert block(Zone.OPEN)["BlockPublicPolicy"] is False


def anonymous_get(clients: Clients, bucket: str, key: str) -> int:
    """The HTTP status of a GET without credentials, as a browser sends it."""
    url = f"{clients.s3.meta.endpoint_url}/{bucket}/{key}"
    try:
        with urllib.request.urlopen(url) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_anyone_may_read_the_open_zone(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    page = StackNames("velden").portal_key()
    clients.s3.put_object(Bucket=names.bucket(Zone.OPEN), Key=page, Body=b"<p>x</p>")
    assert anonymous_get(clients, names.bucket(Zone.OPEN), page) == 200


@pytest.mark.parametrize("clients", ["embedded"], indirect=True)  # LocalStack: no IAM by default
def test_nothing_outside_the_published_prefix_may_be_read_without_credentials(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    clients.s3.put_object(Bucket=names.bucket(Zone.OPEN), Key="draft.html", Body=b"<p>x</p>")
    assert anonymous_get(clients, names.bucket(Zone.OPEN), "draft.html") == 403


@pytest.mark.parametrize("clients", ["embedded"], indirect=True)  # LocalStack: no IAM by default
def test_no_other_zone_may_be_read_without_credentials(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    clients.s3.put_object(Bucket=names.bucket(Zone.AUDIT), Key="index.html", Body=b"<p>x</p>")
    assert anonymous_get(clients, names.bucket(Zone.AUDIT), "index.html") == 403


def test_up_creates_a_queue_per_function_redriving_to_its_dlq(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    queues = built["queues"]

    assert set(queues) == {
        *(n for f in Function for n in (names.queue(f), names.dlq(f))),
        names.iot_failures(),
    }
    assert queues[names.iot_failures()]["MessageRetentionPeriod"] == "86400"
    for function in Function:
        url = clients.sqs.get_queue_url(QueueName=names.dlq(function))["QueueUrl"]
        dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes = queues[names.queue(function)]
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": 4,
        }
        assert attributes["VisibilityTimeout"] == "45"
        assert "RedrivePolicy" not in queues[names.dlq(function)]


def test_up_twice_changes_nothing(
    city: City, built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    clients.s3.put_object(Bucket=names.bucket(Zone.RAW), Key="raw/x.jsonl.gz", Body=b"x")
    url = clients.sqs.get_queue_url(QueueName=names.queue(Function.INGEST))["QueueUrl"]
    clients.sqs.send_message(QueueUrl=url, MessageBody="waiting")

    again = stack.up(city, names, clients, SETTINGS)

    assert again == built
    assert stack.describe(names, clients) == built
    assert clients.s3.get_object(Bucket=names.bucket(Zone.RAW), Key="raw/x.jsonl.gz")
    received = clients.sqs.receive_message(QueueUrl=url).get("Messages", [])
    assert [m["Body"] for m in received] == ["waiting"]


def test_up_with_new_settings_updates_the_queues_in_place(
    city: City, built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    changed = StackSettings(visibility_timeout_s=5, max_receive_count=2)

    after = stack.up(city, names, clients, changed)

    attributes = after["queues"][names.queue(Function.ANONYMIZE)]
    assert attributes["VisibilityTimeout"] == "5"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 2
    assert after["buckets"] == built["buckets"]


def test_down_removes_everything_even_with_objects_in_the_buckets(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    clients.s3.put_object(Bucket=names.bucket(Zone.CLEAN), Key="clean/x.parquet", Body=b"x")

    stack.down(names, clients)

    assert stack.describe(names, clients) == {"buckets": {}, "queues": {}}
    existing = {b["Name"] for b in clients.s3.list_buckets().get("Buckets", [])}
    assert not {*(names.bucket(z) for z in Zone), names.keys_bucket()} & existing
    listed = clients.sqs.list_queues(QueueNamePrefix=names.prefix).get("QueueUrls", [])
    assert listed == []


# --- the public can read what is published, and nothing else ------------------------------


def test_the_open_zone_lets_anyone_read_the_published_prefix_only(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    policy = json.loads(clients.s3.get_bucket_policy(Bucket=names.bucket(Zone.OPEN))["Policy"])

    [statement] = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Allow",
        "*",
        "s3:GetObject",
    )
    assert statement["Resource"] == f"arn:aws:s3:::{names.bucket(Zone.OPEN)}/open/velden/*"


def test_the_keys_bucket_is_private_unversioned_and_expires_only_secrets_and_slots(
    built: dict[str, Any], names: StackNames, clients: Clients
) -> None:
    bucket = names.keys_bucket()

    block = clients.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    versioning = clients.s3.get_bucket_versioning(Bucket=bucket)
    rule, slots = clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]

    assert all(block.values())
    assert versioning.get("Status") is None  # never enabled: a delete destroys a secret
    assert rule["Filter"] == {"Prefix": "secrets/"}  # the destruction horizon never expires
    # the hours' opt-out requests (service.optout.hour_slot), a day
    assert (slots["Filter"], slots["Expiration"]) == (
        {"Prefix": names.optout_rate_prefix()},
        {"Days": 1},
    )
