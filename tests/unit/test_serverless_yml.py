"""serverless.yml agrees with the code: handlers exist, names and retention match the
stack that `citypipe stack up` provisions, and SQS events report partial batch failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "serverless.yml").read_text())


def test_runtime_is_python_3_12(template: dict[str, Any]) -> None:
    assert template["provider"]["runtime"] == "python3.12"


@pytest.mark.parametrize("function", list(Function), ids=str)
def test_each_function_points_at_its_handler(template: dict[str, Any], function: Function) -> None:
    handler = template["functions"][function.value]["handler"]

    module, name = handler.rsplit(".", 1)

    assert (ROOT / f"{module}.py").is_file()
    assert name == "handler"


@pytest.mark.parametrize("function", list(Function), ids=str)
def test_sqs_events_report_partial_batch_failures(
    template: dict[str, Any], function: Function
) -> None:
    events = template["functions"][function.value]["events"]

    sqs = [e["sqs"] for e in events if "sqs" in e]

    assert sqs
    assert all(e["functionResponseType"] == "ReportBatchItemFailures" for e in sqs)


def test_queue_and_bucket_names_follow_the_stack_names(
    template: dict[str, Any], city: City
) -> None:
    resources = template["resources"]["Resources"].values()
    names = StackNames("CITY")

    queues = {r["Properties"]["QueueName"] for r in resources if r["Type"] == "AWS::SQS::Queue"}
    buckets = {r["Properties"]["BucketName"] for r in resources if r["Type"] == "AWS::S3::Bucket"}

    def templated(name: str) -> str:
        return name.replace("CITY", "${self:custom.prefix}")

    assert queues == {templated(names.queue(f)) for f in Function} | {
        templated(names.dlq(f)) for f in Function
    }
    assert buckets == {templated(names.bucket(z)) for z in Zone}


def test_bucket_retention_matches_the_city_defaults(template: dict[str, Any], city: City) -> None:
    resources = template["resources"]["Resources"].values()
    expiry = {
        r["Properties"]["BucketName"].rsplit("-", 1)[1]: r["Properties"]
        .get("LifecycleConfiguration", {"Rules": [{}]})["Rules"][0]
        .get("ExpirationInDays")
        for r in resources
        if r["Type"] == "AWS::S3::Bucket"
    }

    assert expiry == {zone.value: days for zone, days in city.retention_days.items()}


def test_the_role_may_do_what_the_secrets_manager_key_store_does(
    template: dict[str, Any],
) -> None:
    source = (ROOT / "layers/citypipe/python/citypipe/adapters/keys.py").read_text()
    used = {
        "secretsmanager:" + "".join(w.capitalize() for w in call.split("_"))
        for call in (
            "get_secret_value",
            "create_secret",
            "put_secret_value",
            "delete_secret",
            "list_secrets",
        )
        if f"{call}(" in source or f'"{call}"' in source
    }
    statements = template["provider"]["iam"]["role"]["statements"]

    granted = {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }

    assert used <= granted, used - granted
