"""The AWS stack as CloudFormation will get it: serverless.yml packaged offline by osls 4
(``citypipe_local.package.package_stack``, what `make package` runs), read back and checked
for least privilege, residency, encryption, alarms, concurrency and lifecycle from the city
file. cfn-lint runs inside packaging: any error fails it.

The packaging runs once per module on a copy of the project's deployable files and a
layer holding the library only (the layer's contents are ``test_layout``'s business).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from bytecode_support import bytecode_problems, magic_number
from repo import CITY_FILE, ROOT, load_event
from unit_support import (
    city_data,
    http_api_request,
    lambda_context,
    scheduled_event,
    wifi_observation,
)

from citypipe.adapters.keys import ObjectKeyStore
from citypipe.adapters.tokens import ObjectWebhookTokens
from citypipe.bootstrap import ingest as bootstrap_ingest
from citypipe.domain.city import City, ConfigError, ResidencyError, load_city
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import (
    StackNames,
    deployment_prefix,
)
from citypipe.domain.polling import POLL_TICK_MINUTES
from citypipe.ports import Body, Http, HttpAnswer, ObjectInfo, StoredObject
from citypipe.service.kernel import Deps
from citypipe.service.metrics import (
    NAMESPACE,
    OPTOUTS_REFUSED,
    POLL_FAILURES,
    READINGS_IN,
    READINGS_QUARANTINED,
)
from citypipe.service.poll import Poller
from citypipe_local.drops import announce, drop_lines
from citypipe_local.fakes import InMemoryApiKeys, InMemoryObjectStore
from citypipe_local.package import (
    CITY_JSON,
    FUNCTION_ENVIRONMENT,
    LAYER_MOUNT,
    PackagedStack,
    compile_bytecode,
    package_stack,
    service_copy,
    stack_params,
)
from citypipe_local.package import main as package_main
from citypipe_local.preflight import DEPLOY_ACTIONS, stack_concurrency
from citypipe_local.rehearse import of_type
from citypipe_local.replay import request_export
from citypipe_local.runner import Handler, LocalRunner, app_for, load_handler

FUNCTIONS = [f.value for f in Function]
ROLE = {f.value: f"{f.value.capitalize()}Role" for f in Function}
LAMBDA = {f.value: f"{f.value.capitalize()}LambdaFunction" for f in Function}
BUCKET = {z: f"{z.value.capitalize()}Bucket" for z in Zone}


def deployable_copy(target: Path) -> Path:
    """What `make package` packages, copied, and a layer with the library only (compiled
    as the layer is)."""
    service_copy(target, CITY_FILE)
    shutil.copytree(
        ROOT / "layers" / "citypipe" / "python" / "citypipe",
        target / "layer" / "python" / "citypipe",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    compile_bytecode(target / "layer" / "python", "3.12", LAYER_MOUNT)
    return target


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackagedStack]:
    service = deployable_copy(tmp_path_factory.mktemp("service"))
    yield package_stack(
        service / "infra" / "cities" / "velden.yaml",
        layer_dir=service / "layer",
        service_dir=service,
    )


@pytest.fixture(scope="module")
def template(packaged: PackagedStack) -> dict[str, Any]:
    return dict(json.loads(packaged.template.read_text()))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def role_statements(resources: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    [policy] = resources[logical_id]["Properties"]["Policies"]
    return list(policy["PolicyDocument"]["Statement"])


def statements(resources: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return role_statements(resources, ROLE[function])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(resources: dict[str, Any], function: str) -> set[str]:
    return {a for s in statements(resources, function) for a in as_list(s["Action"])}


def object_grants(resources: dict[str, Any], function: str) -> dict[str, set[str]]:
    """``{"<BucketLogicalId>/<key prefix>": {s3 actions}}`` of a role's object statements."""
    grants: dict[str, set[str]] = {}
    for statement in statements(resources, function):
        for resource in as_list(statement["Resource"]):
            sub = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
            if sub.startswith("${") and ".Arn}/" in sub:
                bucket, _, prefix = sub[2:].partition(".Arn}/")
                key = f"{bucket}/{prefix.removesuffix('*')}"
                grants.setdefault(key, set()).update(as_list(statement["Action"]))
    return grants


def sub_of(value: Any) -> str:
    return str(value["Fn::Sub"]) if isinstance(value, dict) else str(value)


# --- packaging -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_stack_packages_offline_and_cfn_lint_finds_no_error(packaged: PackagedStack) -> None:
    # Given the stack packaged with no AWS account (fake credentials, a local moto server)
    # Then osls wrote the template and both zips, and cfn-lint reported warnings at most
    assert packaged.template.is_file()
    assert {p.name for p in packaged.directory.glob("*.zip")} == {"citypipe.zip", "library.zip"}
    assert not [line for line in packaged.lint.splitlines() if ":E" in line]


@pytest.mark.slow
def test_the_function_zip_holds_the_handlers_and_the_city_as_json_only(
    packaged: PackagedStack, tmp_path: Path
) -> None:
    import zipfile

    with zipfile.ZipFile(packaged.directory / "citypipe.zip") as archive:
        names = sorted(archive.namelist())
        city = archive.extract(CITY_JSON, tmp_path)
    # the city file checked and merged (its registry in it): no YAML to parse at cold start
    assert names == sorted([f"functions/{f}/handler.py" for f in [*FUNCTIONS, "api"]] + [CITY_JSON])
    assert load_city(city) == packaged.city


@pytest.mark.slow
def test_the_layer_zip_keeps_the_bytecode(packaged: PackagedStack) -> None:
    # osls zips the layer's folder whole: each module's __pycache__ goes with it
    import zipfile

    with zipfile.ZipFile(packaged.directory / "library.zip") as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        assert bytecode_problems(names, archive.read, magic_number()) == []
    assert sum(n.endswith(".cpython-312.pyc") for n in names) > 100


def test_a_city_outside_the_eu_cannot_be_packaged(tmp_path: Path) -> None:
    # Given a city file whose region is in the United States
    data = city_data()
    data["region"] = "us-east-1"
    city_file = tmp_path / "elsewhere.yaml"
    city_file.write_text(yaml.safe_dump(data))
    # When it is packaged
    with pytest.raises(ConfigError) as refused:
        package_stack(city_file, layer_dir=tmp_path)
    # Then packaging stops before anything is built, saying why
    assert "us-east-1" in str(refused.value)
    assert "outside the EU/EEA" in str(refused.value)


def test_a_deploy_region_other_than_the_citys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResidencyError) as refused:
        package_stack(ROOT / "infra" / "cities" / "velden.yaml", "eu-west-3", tmp_path)
    assert "'eu-west-3' is not the city's" in str(refused.value)


@pytest.mark.parametrize(
    ("zone", "days"), [("clean", 30), ("audit", 3650), ("open", 3650)], ids=str
)
def test_retention_params_come_from_the_city_file(zone: str, days: int) -> None:
    data = city_data()
    data["retention_days"][zone] = days
    city = City.model_validate(data)

    params = stack_params(city, "infra/cities/x.yaml", ".build/layer")

    assert params[f"{zone}Days"] == str(days)


def test_a_later_generation_names_every_bucket_and_queue_anew(city: City) -> None:
    # A city deployed again beside what a removed stack kept (its locked audit bucket)
    first = stack_params(city, "infra/cities/velden.yaml", ".build/layer")
    second = stack_params(city, "infra/cities/velden.yaml", ".build/layer", generation=2)

    assert first["namePrefix"] == f"${{AWS::AccountId}}-{city.region}-"
    assert second["namePrefix"] == f"${{AWS::AccountId}}-{city.region}-g2-"
    assert {k: v for k, v in first.items() if k != "namePrefix"} == {
        k: v for k, v in second.items() if k != "namePrefix"
    }  # object keys, the stack's name and everything else stay


def test_deploy_refuses_a_package_made_for_another_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, city: City
) -> None:
    # Given a package of the first generation (its region guard and its functions' prefix)
    import citypipe_local.package as package

    first = stack_params(city, "infra/cities/velden.yaml", ".build/layer")
    env = {"Variables": {"CITYPIPE_STACK__NAME_PREFIX": {"Fn::Sub": first["namePrefix"]}}}
    template = {
        "Rules": package.region_rules(city),
        "Resources": {"IngestLambdaFunction": {"Properties": {"Environment": env}}},
    }
    (tmp_path / ".serverless").mkdir()
    (tmp_path / ".serverless" / package.TEMPLATE).write_text(json.dumps(template))
    monkeypatch.setattr(package, "ROOT", tmp_path)
    monkeypatch.delenv("AWS_REGION", raising=False)
    # When it is deployed as the second, nothing is deployed: it says why
    with pytest.raises(package.PackagingError, match="another --generation"):
        package.deploy_stack(CITY_FILE, generation=2)


def test_a_generation_below_one_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_status:
        package_main(["stack", "--city", str(CITY_FILE), "--generation", "0"])
    assert exit_status.value.code == 2


def test_an_open_zone_kept_forever_has_no_expiration(city: City) -> None:
    params = stack_params(city, "infra/cities/velden.yaml", ".build/layer")

    assert (params["openDays"], params["openRetention"]) == ("none", "forever")


# --- names and residency -------------------------------------------------------------------


@pytest.mark.slow
def test_names_are_the_stacks_names_unique_per_account_and_region(
    resources: dict[str, Any], city: City
) -> None:
    names = StackNames(city.slug, deployment_prefix("${AWS::AccountId}", city.region))
    buckets = {
        sub_of(r["Properties"]["BucketName"])
        for r in of_type(resources, "AWS::S3::Bucket").values()
        if "BucketName" in r["Properties"]
    }
    queues = {
        sub_of(r["Properties"]["QueueName"]) for r in of_type(resources, "AWS::SQS::Queue").values()
    }

    assert buckets == {
        *(names.bucket(z) for z in Zone),
        names.keys_bucket(),
        names.access_log_bucket(),
    }
    assert {names.queue(f) for f in Function} | {names.dlq(f) for f in Function} <= queues


@pytest.mark.slow
def test_every_function_runs_with_its_stacks_names_and_the_city_file(
    resources: dict[str, Any], city: City
) -> None:
    for function in FUNCTIONS:
        env = resources[LAMBDA[function]]["Properties"]["Environment"]["Variables"]
        assert env["CITYPIPE_STACK__CITY_FILE"] == CITY_JSON
        assert sub_of(env["CITYPIPE_STACK__NAME_PREFIX"]) == deployment_prefix(
            "${AWS::AccountId}", city.region
        )
        assert env["CITYPIPE_KEYS__STORE"] == "object"
        assert env["CITYPIPE_WEBHOOK__TOKENS"] == "object"


@pytest.mark.slow
def test_every_function_runs_with_pydantics_plugin_scan_off(resources: dict[str, Any]) -> None:
    # What the bench measures with (bench/run.py): every function's environment, the API's too
    functions = of_type(resources, "AWS::Lambda::Function")
    assert {LAMBDA[f] for f in FUNCTIONS} | {"ApiLambdaFunction"} <= set(functions)
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert FUNCTION_ENVIRONMENT.items() <= variables.items()


@pytest.mark.slow
def test_the_stack_refuses_any_region_but_the_citys(template: dict[str, Any], city: City) -> None:
    [assertion] = template["Rules"]["CityRegion"]["Assertions"]

    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, city.region]}


# --- least privilege -----------------------------------------------------------------------


@pytest.mark.slow
def test_each_function_has_a_role_of_its_own(resources: dict[str, Any]) -> None:
    roles = {f: resources[LAMBDA[f]]["Properties"]["Role"]["Fn::GetAtt"][0] for f in FUNCTIONS}

    assert roles == ROLE
    # and the IoT rules' error action its own (sending to the IoT failures queue only)
    assert set(of_type(resources, "AWS::IAM::Role")) == {
        *ROLE.values(),
        "ApiRole",
        "IngestIotErrorActionRole",
        "OperatorRole",
    }
    assert resources["ApiLambdaFunction"]["Properties"]["Role"]["Fn::GetAtt"][0] == "ApiRole"


@pytest.mark.slow
def test_the_api_may_list_and_read_the_published_prefix_and_nothing_else(
    resources: dict[str, Any], city: City
) -> None:
    granted = role_statements(resources, "ApiRole")
    by_sid = {s["Sid"]: s for s in granted}
    assert set(by_sid) == {"Logs", "ListPublished", "ReadPublished"}
    assert all(s["Effect"] == "Allow" for s in granted)
    assert by_sid["Logs"]["Resource"] == {"Fn::GetAtt": ["ApiLogGroup", "Arn"]}
    assert by_sid["ListPublished"]["Action"] == "s3:ListBucket"
    assert by_sid["ListPublished"]["Resource"] == {"Fn::GetAtt": ["OpenBucket", "Arn"]}
    prefix = StackNames(city.slug).open_prefix()
    condition = by_sid["ListPublished"]["Condition"]["StringLike"]["s3:prefix"]
    assert condition == f"{prefix}*"
    assert by_sid["ReadPublished"]["Action"] == "s3:GetObject"
    assert sub_of(by_sid["ReadPublished"]["Resource"]) == f"${{OpenBucket.Arn}}/{prefix}*"


@pytest.mark.slow
def test_the_export_has_the_scratch_disk_a_big_citys_day_needs(resources: dict[str, Any]) -> None:
    """/tmp holds the day's spills and files: ~2 GB at 100 times the example (docs/scale.md),
    where Lambda's default is 512 MB."""
    storage = resources["ExportLambdaFunction"]["Properties"]["EphemeralStorage"]
    assert storage == {"Size": 2048}


@pytest.mark.slow
def test_the_api_answers_get_on_its_path_only(resources: dict[str, Any]) -> None:
    routes = [r["Properties"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()]
    api = sorted(r["RouteKey"] for r in routes if "features" in r["RouteKey"])
    assert api == ["GET /features", "GET /features/{proxy+}"]
    assert resources["ApiLambdaFunction"]["Properties"]["Timeout"] < 30  # HTTP API's limit


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_role_grants_a_wildcard_action_or_resource(
    resources: dict[str, Any], function: str
) -> None:
    for statement in statements(resources, function):
        assert statement["Effect"] == "Allow"
        assert not [a for a in as_list(statement["Action"]) if "*" in a]
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            assert resource != "*"
            # a wildcard only after a named bucket and a named key prefix or secret path
            assert "*" not in text or text.rstrip('"}').endswith("/*"), text


@pytest.mark.slow
def test_only_the_hourly_job_may_destroy_keys(resources: dict[str, Any], city: City) -> None:
    secrets = f"KeysBucket/{StackNames(city.slug).key_object_prefix()}"
    destroyers = {
        f
        for f in FUNCTIONS
        for key, acts in object_grants(resources, f).items()
        if key.replace("${param:city}", city.slug) == secrets and "s3:DeleteObject" in acts
    }

    assert destroyers == {"export"}
    assert not [f for f in FUNCTIONS if "secretsmanager:DeleteSecret" in actions(resources, f)]


@pytest.mark.slow
def test_the_keys_bucket_is_private_unversioned_tls_only_and_retained(
    resources: dict[str, Any], city: City
) -> None:
    keys = resources["KeysBucket"]
    props = keys["Properties"]

    assert keys["DeletionPolicy"] == "Retain"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert "VersioningConfiguration" not in props  # a delete must destroy a secret
    rule, slots = props["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == StackNames(city.slug).key_object_prefix()  # the horizon never expires
    assert int(rule["ExpirationInDays"]) == city.key_retention_days + 1
    prefix = slots["Prefix"].replace("${param:city}", city.slug)  # the hours' opt-out requests
    assert (prefix, slots["ExpirationInDays"]) == (StackNames(city.slug).optout_rate_prefix(), 1)
    policy = resources["KeysBucketPolicy"]["Properties"]["PolicyDocument"]
    assert [s["Sid"] for s in policy["Statement"]] == ["TlsOnly", "OnlyTheSecretHolders"]


def role_arn(resources: dict[str, Any], logical_id: str) -> str:
    """A role's ARN as the key and bucket policies spell it: by its name."""
    name = sub_of(resources[logical_id]["Properties"]["RoleName"])
    return f"arn:aws:iam::${{AWS::AccountId}}:role/{name}"


def holders_of_the_keys_bucket(resources: dict[str, Any]) -> set[str]:
    """The roles whose statements reach an object of the keys bucket."""
    return {
        logical_id
        for logical_id, role in of_type(resources, "AWS::IAM::Role").items()
        for statement in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        if "${KeysBucket.Arn}/" in json.dumps(statement["Resource"])
    }


@pytest.mark.slow
def test_only_the_roles_that_hold_secrets_may_use_the_keys_buckets_kms_key(
    resources: dict[str, Any],
) -> None:
    # Given the roles whose grants reach the keys bucket's objects
    holders = holders_of_the_keys_bucket(resources)
    assert holders == {"IngestRole", "ExportRole", "OperatorRole"}
    named = {role_arn(resources, r) for r in holders}
    # Then the bucket is encrypted with the stack's own key, whose policy lets those roles,
    # and no other principal, use it; the account may administer it but not use it
    [rule] = resources["KeysBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["KeysKey", "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True
    key = resources["KeysKey"]
    assert (key["DeletionPolicy"], key["Properties"]["EnableKeyRotation"]) == ("Retain", True)
    uses = {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncrypt*", "kms:*"}
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if uses & set(as_list(statement["Action"])):
            principals = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
            assert {sub_of(p) for p in principals} == named
    for role in holders:
        [grant] = [
            s
            for s in role_statements(resources, role)
            if s["Resource"] == {"Fn::GetAtt": ["KeysKey", "Arn"]}
        ]
        assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}


@pytest.mark.slow
def test_the_keys_bucket_refuses_every_principal_but_the_secret_holders(
    resources: dict[str, Any],
) -> None:
    named = {role_arn(resources, r) for r in holders_of_the_keys_bucket(resources)}
    policy = resources["KeysBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in policy if s["Sid"] == "OnlyTheSecretHolders"]

    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= set(
        deny["Action"]
    )
    assert {sub_of(p) for p in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]} == named
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["KeysBucket", "Arn"]},
        {"Fn::Sub": "${KeysBucket.Arn}/*"},
    ]


@pytest.mark.slow
def test_the_keys_buckets_access_is_logged_to_a_private_log_bucket(
    resources: dict[str, Any], city: City
) -> None:
    logging = resources["KeysBucket"]["Properties"]["LoggingConfiguration"]
    log_bucket = resources["AccessLogBucket"]
    policy = resources["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [writer] = [s for s in policy if s["Effect"] == "Allow"]

    assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    assert log_bucket["DeletionPolicy"] == "Retain"
    [rule] = log_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert int(rule["ExpirationInDays"]) == city.retention_days[Zone.AUDIT]  # as the trail
    assert all(log_bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    assert writer["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert writer["Action"] == "s3:PutObject"
    assert sub_of(writer["Resource"]) == f"${{AccessLogBucket.Arn}}/{logging['LogFilePrefix']}*"


@pytest.mark.slow
@pytest.mark.parametrize("role", [*ROLE.values(), "OperatorRole"])
def test_a_role_that_reads_objects_may_list_their_bucket(
    resources: dict[str, Any], role: str
) -> None:
    # S3 answers a read of a missing object with 403, not 404, to a principal that may not
    # list the bucket: the key and token stores, which create what is missing, would fail
    read = {
        r["Fn::Sub"][2:].split(".Arn}/")[0]
        for s in role_statements(resources, role)
        if "s3:GetObject" in as_list(s["Action"])
        for r in as_list(s["Resource"])
        if isinstance(r, dict) and ".Arn}/" in r.get("Fn::Sub", "")
    }
    listed = {
        r["Fn::GetAtt"][0]
        for s in role_statements(resources, role)
        if "s3:ListBucket" in as_list(s["Action"]) and "Condition" not in s
        for r in as_list(s["Resource"])
    }
    assert read
    assert read <= listed


@pytest.mark.slow
def test_no_role_may_list_every_secret_of_the_account(resources: dict[str, Any]) -> None:
    assert not [f for f in FUNCTIONS if "secretsmanager:ListSecrets" in actions(resources, f)]


@pytest.mark.slow
def test_only_ingest_reads_the_webhook_tokens_and_only_their_secrets(
    resources: dict[str, Any], city: City
) -> None:
    readers = {
        f
        for f in FUNCTIONS
        for s in statements(resources, f)
        if "webhook-tokens" in json.dumps(s["Resource"])
    }
    assert readers == {"ingest"}
    [tokens] = [s for s in statements(resources, "ingest") if s["Sid"] == "WebhookTokens"]
    assert tokens["Action"] == "s3:GetObject"
    expected = f"${{KeysBucket.Arn}}/{StackNames(city.slug).webhook_tokens_object_prefix()}*"
    assert sub_of(tokens["Resource"]) == expected


def _expected_grants(city: str) -> dict[str, dict[str, set[str]]]:
    """What each function reads and writes, by key prefix, as the code names the keys."""
    inbox = StackNames(city).inbox_key("senml", b"").rsplit("/", 2)[0] + "/"
    own = {
        f.value: {
            f"QuarantineBucket/{StackNames(city).quarantine_key(f, 'x').rsplit('/', 1)[0]}/": {
                "s3:GetObject",
                "s3:PutObject",
            },
            f"AuditBucket/{StackNames(city).lineage_prefix(f)}": {"s3:GetObject", "s3:PutObject"},
        }
        for f in Function
    }
    raw, clean, partials, quarantine_prefix = (
        f"{z.value}/{city}/" for z in (Zone.RAW, Zone.CLEAN, Zone.AGGREGATES, Zone.QUARANTINE)
    )
    get, put, delete = "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
    buffer = StackNames(city).buffer_prefix()  # the batches' manifests (service.buffer)
    own["ingest"] |= {
        f"RawBucket/{inbox}": {get, put, delete},
        f"RawBucket/{raw}": {get, put},
        f"RawBucket/{buffer}": {get, put},
    }
    own["anonymize"] |= {f"RawBucket/{raw}": {get, delete}, f"CleanBucket/{clean}": {get, put}}
    own["aggregate"] |= {
        f"CleanBucket/{clean}": {get},
        f"AggregatesBucket/{partials}": {get, put},
    }
    own["export"] |= {
        f"RawBucket/{raw}": {delete},
        f"RawBucket/{inbox}": {delete},
        f"RawBucket/{buffer}": {delete},
        f"AggregatesBucket/{partials}": {get, delete},  # get: export; delete: the sweep
        f"OpenBucket/{StackNames(city).open_prefix()}": {get, put},
        f"KeysBucket/{StackNames(city).key_object_prefix()}": {get, put, delete},
        f"KeysBucket/{StackNames(city).key_horizon_object()}": {get, put},
        f"AuditBucket/{StackNames(city).key_destruction_prefix()}": {get, put, delete},
        f"CleanBucket/{clean}": {get, put, delete},  # pseudonyms scrubbed once keys die
        f"AuditBucket/{StackNames(city).epsilon_prefix()}": {get, put, delete},
        f"AuditBucket/{StackNames(city).scrub_prefix()}": {get, put, delete},
        f"KeysBucket/{StackNames(city).noise_secret_object()}": {get, put},
    }
    own["export"] |= {
        f"QuarantineBucket/{quarantine_prefix}": {delete},  # the sweep
        f"AuditBucket/{StackNames(city).metadata_marker_key('x').rsplit('/', 1)[0]}/": {
            get,
            put,
            delete,
        },
        # audit records past the audit retention (every prefix above: delete)
        f"AuditBucket/{StackNames(city).lineage_prefix()}": {delete},
    }
    own["ingest"] |= {  # the edge pseudonymizes
        f"KeysBucket/{StackNames(city).key_object_prefix()}": {get, put},
        f"KeysBucket/{StackNames(city).key_horizon_object()}": {get},
        f"KeysBucket/{StackNames(city).webhook_tokens_object_prefix()}": {get},
        # the poller: its cursors and back-offs; the polled APIs' keys
        f"KeysBucket/{StackNames(city).poll_prefix()}": {get, put, delete},
        f"KeysBucket/{StackNames(city).api_key_object('x').rsplit('/', 1)[0]}/": {get},
        # residents' opt-outs: their digests, and their key (docs/rights.md)
        f"KeysBucket/{StackNames(city).optout_prefix()}": {get, put},
        f"KeysBucket/{StackNames(city).lasting_secret_object('optout')}": {get, put},
        # the city's opt-out requests of the hour (a lifecycle rule expires them)
        f"KeysBucket/{StackNames(city).optout_rate_prefix()}": {get, put},
    }
    own["export"] |= {  # a partner's withdrawal carried out: its runs, its partials' readings
        f"AuditBucket/{StackNames(city).withdrawals_prefix().rsplit('/', 2)[0]}/": {get, put},
        f"AuditBucket/{StackNames(city).lineage_prefix(Function.AGGREGATE)}": {get},
    }
    claims = f"QuarantineBucket/{StackNames(city).claims_prefix().rsplit('/', 1)[0]}/"
    own["ingest"][claims] = {get, put}  # each reading claimed once (never in the audit zone)
    own["export"][claims] = {delete}  # the claims' sweep
    return own


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_reaches_exactly_the_prefixes_its_function_uses(
    resources: dict[str, Any], city: City, function: str
) -> None:
    # The prefixes come from citypipe.domain.naming: a key renamed in the code and not in
    # the template (or the reverse) fails here, not in a city's cloud.
    template_grants = {
        key.replace("${param:city}", city.slug): acts
        for key, acts in object_grants(resources, function).items()
    }
    assert template_grants == _expected_grants(city.slug)[function]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "target"),
    [("ingest", "AnonymizeQueue"), ("anonymize", "AggregateQueue")],
)
def test_a_function_may_send_only_to_the_next_stages_queue(
    resources: dict[str, Any], function: str, target: str
) -> None:
    # beside the next stage's: ingest's own queue, where its webhook buffers requests
    # (service.buffer), and its IoT rules' failures
    senders = [
        s
        for s in statements(resources, function)
        if "sqs:SendMessage" in as_list(s["Action"])
        and s["Sid"] not in ("RecordFailedIotEvents", "BufferRequests")
    ]

    assert [s["Resource"] for s in senders] == [{"Fn::GetAtt": [target, "Arn"]}]


# --- buckets -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("zone", list(Zone), ids=str)
def test_every_zone_is_encrypted_retained_and_tls_only(
    resources: dict[str, Any], zone: Zone
) -> None:
    bucket = resources[BUCKET[zone]]
    [policy] = [
        r
        for r in of_type(resources, "AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": BUCKET[zone]}
    ]
    [tls] = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "TlsOnly"
    ]

    encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert (tls["Effect"], tls["Action"]) == ("Deny", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.slow
@pytest.mark.parametrize("zone", [z for z in Zone if z is not Zone.OPEN], ids=str)
def test_every_zone_but_open_blocks_public_access(resources: dict[str, Any], zone: Zone) -> None:
    block = resources[BUCKET[zone]]["Properties"]["PublicAccessBlockConfiguration"]

    assert block == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )


@pytest.mark.slow
def test_anyone_may_read_the_published_prefix_and_nothing_else(
    resources: dict[str, Any], city: City
) -> None:
    policy = resources["OpenBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    public = [s for s in policy if s["Effect"] == "Allow"]

    assert [(s["Principal"], s["Action"]) for s in public] == [("*", "s3:GetObject")]
    assert public[0]["Resource"] == {
        "Fn::Sub": f"${{OpenBucket.Arn}}/{StackNames(city.slug).open_prefix()}*"
    }
    acls = resources["OpenBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert (acls["BlockPublicAcls"], acls["IgnorePublicAcls"]) == (True, True)


@pytest.mark.slow
def test_the_audit_zone_is_versioned_and_locked_in_governance_mode(
    resources: dict[str, Any], city: City
) -> None:
    audit = resources["AuditBucket"]["Properties"]
    lock = audit["ObjectLockConfiguration"]

    assert audit["VersioningConfiguration"] == {"Status": "Enabled"}
    assert audit["ObjectLockEnabled"] is True
    assert lock["Rule"]["DefaultRetention"] == {
        "Mode": "GOVERNANCE",
        "Days": str(city.retention_days[Zone.AUDIT]),
    }


@pytest.mark.slow
def test_each_zones_lifecycle_is_the_city_files_retention(
    resources: dict[str, Any], city: City
) -> None:
    expiry = {}
    for zone in Zone:
        rules = resources[BUCKET[zone]]["Properties"]["LifecycleConfiguration"]["Rules"]
        days = {r.get("ExpirationInDays") for r in rules if r["Status"] == "Enabled"} - {None}
        expiry[zone] = int(days.pop()) if days else None

    assert expiry == city.retention_days


# --- operations ----------------------------------------------------------------------------


def alarms(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_error_and_a_throttle_alarm(
    resources: dict[str, Any], metric: str
) -> None:
    watched = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in alarms(resources)
        if a.get("MetricName") == metric and a.get("Namespace") == "AWS/Lambda"
    }
    assert watched == {*LAMBDA.values(), "ApiLambdaFunction"}


@pytest.mark.slow
def test_every_dead_letter_queue_has_an_alarm(resources: dict[str, Any]) -> None:
    dlqs = {
        name
        for name, r in of_type(resources, "AWS::SQS::Queue").items()
        if "Redrive" not in json.dumps(r) and "Failures" not in name
    }
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms(resources)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert dlqs == {f"{f.value.capitalize()}Dlq" for f in Function}
    assert dlqs | {"ExportFailures", "IngestIotFailures"} == watched


@pytest.mark.slow
def test_the_quarantine_rate_alarm_reads_the_metrics_the_stages_emit(
    resources: dict[str, Any], city: City
) -> None:
    [alarm] = [a for a in alarms(resources) if "Metrics" in a]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}

    assert {m["Namespace"] for m in stats.values()} == {NAMESPACE}
    assert {m["MetricName"] for m in stats.values()} == {READINGS_IN, READINGS_QUARANTINED}
    assert all({"Name": "city", "Value": city.slug} in m["Dimensions"] for m in stats.values())


@pytest.mark.slow
def test_the_poller_ticks_on_ingests_schedule_and_a_failing_api_alarms(
    resources: dict[str, Any],
) -> None:
    # The schedule fires at the tick the poller counts in (polls run at the ticks their
    # interval divides)
    ingest = {"Fn::GetAtt": [LAMBDA["ingest"], "Arn"]}
    rules = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == ingest for t in r["Properties"]["Targets"])
    ]  # fmt: skip
    assert [r["ScheduleExpression"] for r in rules] == [f"rate({POLL_TICK_MINUTES} minutes)"]
    # and a polled API that keeps failing raises the alarm on the metric the poller logs
    alarm = resources["PollFailuresAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, POLL_FAILURES)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


@pytest.mark.slow
def test_a_refused_opt_out_alarms_on_the_metric_the_opt_out_logs(
    resources: dict[str, Any],
) -> None:
    alarm = resources["OptOutsRefusedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, OPTOUTS_REFUSED)
    assert alarm["Dimensions"] == [{"Name": "city", "Value": "velden"}]  # the line's field
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 3600, 1)
    assert (alarm["Threshold"], alarm["AlarmActions"]) == (0, [{"Ref": "AlarmTopic"}])


@pytest.mark.slow
def test_a_failed_hourly_run_lands_in_a_queue_of_its_own(resources: dict[str, Any]) -> None:
    config = on_failure(resources, "export")

    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["ExportFailures", "Arn"]}


def on_failure(resources: dict[str, Any], function: str) -> dict[str, Any]:
    """The asynchronous invocations' configuration of ``function``."""
    [config] = [
        r["Properties"]
        for r in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if r["Properties"]["FunctionName"] == {"Ref": LAMBDA[function]}
    ]
    return config


@pytest.mark.slow
def test_an_iot_rules_event_that_fails_its_tries_is_kept_in_the_iot_failures_queue(
    resources: dict[str, Any],
) -> None:
    # IoT rules invoke ingest asynchronously: without a destination, Lambda drops an event
    # after its two retries (decision 0085)
    config = on_failure(resources, "ingest")
    queue = resources["IngestIotFailures"]["Properties"]

    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["IngestIotFailures", "Arn"]
    }
    assert sub_of(queue["QueueName"]).endswith("velden-ingest-iot-failures")
    assert queue["MessageRetentionPeriod"] == 86400  # raw data: a day, as the raw zone
    assert queue["SqsManagedSseEnabled"] is True
    # Lambda sends the record with the function's own role
    [grant] = [s for s in statements(resources, "ingest") if s["Sid"] == "RecordFailedIotEvents"]
    assert (grant["Action"], grant["Resource"]) == (
        "sqs:SendMessage",
        {"Fn::GetAtt": ["IngestIotFailures", "Arn"]},
    )


@pytest.mark.slow
def test_the_iot_rules_error_action_may_send_to_the_iot_failures_queue_only(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    role = resources["IngestIotErrorActionRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    [policy] = role["Policies"]

    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert sub_of(trust["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        ":rule/citypipe_velden_*"
    )
    assert [(s["Action"], s["Resource"]) for s in policy["PolicyDocument"]["Statement"]] == [
        ("sqs:SendMessage", {"Fn::GetAtt": ["IngestIotFailures", "Arn"]})
    ]
    outputs = template["Outputs"]
    assert outputs["IotFailuresQueueUrl"]["Value"] == {"Ref": "IngestIotFailures"}
    assert outputs["IotErrorActionRoleArn"]["Value"] == {
        "Fn::GetAtt": ["IngestIotErrorActionRole", "Arn"]
    }


def event_source(resources: dict[str, Any], function: str) -> dict[str, Any]:
    [mapping] = [
        r["Properties"]
        for r in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"]["FunctionName"]["Fn::GetAtt"][0] == LAMBDA[function]
    ]
    return mapping


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_queue_reports_partial_batch_failures_at_a_bounded_concurrency(
    resources: dict[str, Any], function: str
) -> None:
    mapping = event_source(resources, function)

    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] >= 2


@pytest.mark.slow
def test_no_function_reserves_concurrency_and_the_preflight_asks_for_all_of_it(
    resources: dict[str, Any],
) -> None:
    # A reservation fails in an account whose quota leaves fewer than 100 executions
    # unreserved (a new one has 10): the queues' maximum concurrency bounds the functions,
    # and the preflight demands an account quota that holds them all at once, plus one
    # invocation per schedule.
    assert not [
        f for f in FUNCTIONS if "ReservedConcurrentExecutions" in resources[LAMBDA[f]]["Properties"]
    ]
    polled = sum(
        event_source(resources, f)["ScalingConfig"]["MaximumConcurrency"] for f in FUNCTIONS
    )
    scheduled = len(of_type(resources, "AWS::Events::Rule"))

    assert stack_concurrency() == polled + scheduled


@pytest.mark.slow
def test_queues_are_encrypted_and_give_six_function_timeouts_of_visibility(
    resources: dict[str, Any],
) -> None:
    for function in FUNCTIONS:
        queue = resources[f"{function.capitalize()}Queue"]["Properties"]
        timeout = resources[LAMBDA[function]]["Properties"]["Timeout"]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["VisibilityTimeout"] >= 6 * timeout


# --- webhooks ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_webhook_route_is_per_source_with_payload_2_and_stage_throttling(
    resources: dict[str, Any],
) -> None:
    routes = of_type(resources, "AWS::ApiGatewayV2::Route").values()
    integrations = of_type(resources, "AWS::ApiGatewayV2::Integration").values()
    stage = resources["HttpApiStage"]["Properties"]["DefaultRouteSettings"]

    # POST for hubs, GET for Meraki's validator (docs/hubs.md), nothing else (and the API,
    # and residents' opt-outs)
    assert sorted(r["Properties"]["RouteKey"] for r in routes) == [
        "GET /features",
        "GET /features/{proxy+}",
        "GET /ingest/{source}/{format}",
        "POST /ingest/{source}/{format}",
        "POST /optout",
    ]
    assert {i["Properties"]["PayloadFormatVersion"] for i in integrations} == {"2.0"}
    assert stage["ThrottlingBurstLimit"] > 0
    assert stage["ThrottlingRateLimit"] > 0


@pytest.mark.slow
def test_the_webhook_is_access_logged_without_who_asked(resources: dict[str, Any]) -> None:
    settings = resources["HttpApiStage"]["Properties"]["AccessLogSettings"]
    [group] = [
        name for name, r in of_type(resources, "AWS::Logs::LogGroup").items() if "HttpApi" in name
    ]
    fields = json.loads(settings["Format"])

    assert settings["DestinationArn"] == {"Fn::GetAtt": [group, "Arn"]}
    assert resources[group]["Properties"]["RetentionInDays"] > 0
    assert {"requestId", "route", "status"} <= set(fields)
    assert not [v for v in fields.values() if "identity" in v or "header" in v.lower()]


# The IAM prefix of each CloudFormation namespace whose name is not it, lower-cased.
IAM_SERVICE = {"apigatewayv2": "apigateway"}


@pytest.mark.slow
def test_the_preflight_checks_a_permission_for_every_kind_of_resource_in_the_stack(
    resources: dict[str, Any],
) -> None:
    # A resource of a new service (an IoT rule, a secret) fails here until the preflight
    # asks the deployer for its permissions.
    services = {r["Type"].split("::")[1].lower() for r in resources.values()}
    checked = {a.split(":")[0] for a in DEPLOY_ACTIONS}

    assert {IAM_SERVICE.get(s, s) for s in services} <= checked


@pytest.mark.slow
def test_the_docs_count_the_alarm_metrics_the_template_has(resources: dict[str, Any]) -> None:
    # CloudWatch bills an alarm per metric it reads: one each, the quarantine rate's two
    metrics = sum(
        len([m for m in a["Metrics"] if "MetricStat" in m]) if "Metrics" in a else 1
        for a in alarms(resources)
    )
    deploy = (ROOT / "docs" / "deploy.md").read_text()

    assert f"{metrics} alarm metrics ${metrics * 0.10:.2f}" in deploy
    assert f"{len(alarms(resources))} alarms" in deploy


@pytest.mark.slow
def test_only_the_citys_iot_rules_may_invoke_ingest(resources: dict[str, Any]) -> None:
    permissions = of_type(resources, "AWS::Lambda::Permission").values()
    iot = [
        p["Properties"] for p in permissions if p["Properties"]["Principal"] == "iot.amazonaws.com"
    ]
    [props] = iot
    assert props["FunctionName"] == {"Fn::GetAtt": ["IngestLambdaFunction", "Arn"]}
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert sub_of(props["SourceArn"]).endswith(":rule/citypipe_velden_*")


def test_each_handler_in_serverless_yml_exists() -> None:
    functions = yaml.safe_load((ROOT / "serverless.yml").read_text())["functions"]

    for function in FUNCTIONS:
        module, name = functions[function]["handler"].rsplit(".", 1)
        assert (ROOT / f"{module}.py").is_file()
        assert name == "handler"


def test_make_package_refuses_a_non_eu_city_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a city file in Virginia
    data = city_data()
    data["region"] = "us-east-1"
    city_file = tmp_path / "elsewhere.yaml"
    city_file.write_text(yaml.safe_dump(data))
    # When `make package CITY=...` runs its driver (layer build included)
    with pytest.raises(SystemExit) as exit_status:
        package_main(["stack", "--city", str(city_file), "--build-layer"])
    # Then it fails before building anything, naming the region and the rule
    assert exit_status.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("refused: ")
    assert "region 'us-east-1' is outside the EU/EEA" in message


# --- what the code touches, against what the roles grant --------------------------------------


class AccessStore(InMemoryObjectStore):
    """Records each object-store call as the IAM action it needs, per running function."""

    def __init__(self, buckets: list[str]) -> None:
        super().__init__(buckets)
        self.function = ""  # "" while the test itself (a hub, an operator) calls
        self.accesses: set[tuple[str, str, str, str]] = set()

    def _note(self, action: str, bucket: str, key: str) -> None:
        if self.function:
            self.accesses.add((self.function, action, bucket, key))

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        self._note("s3:PutObject", bucket, key)
        return super()._put(bucket, key, body, content_type, if_absent)

    def get(self, bucket: str, key: str) -> StoredObject:
        self._note("s3:GetObject", bucket, key)
        return super().get(bucket, key)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        self._note("s3:GetObject", bucket, key)
        return super().head(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self._note("s3:DeleteObject", bucket, key)
        super().delete(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self._note("s3:ListBucket", bucket, prefix)
        return super().list(bucket, prefix)


def _run_every_path(deps: Deps, store: AccessStore) -> None:
    """A day through every function as deployed: a hub's webhook push (with a rejected
    reading), a city system's drop, the stages, an export request, then the hourly run
    that destroys the day's key and scrubs its pseudonyms, one a season later (raw,
    quarantine and clean swept), and one years later (aggregates and audit swept)."""
    keys = ObjectKeyStore(store, deps.names.keys_bucket(), deps.city.slug)
    tokens = ObjectWebhookTokens(store, deps.names.keys_bucket(), deps.city.slug)
    token = tokens.mint("air-quality")

    def as_function(function: Function, poller: Poller | None = None) -> Handler:
        app = app_for(function, deps, keys, tokens)
        if poller is not None:
            app = bootstrap_ingest.build(deps, keys, tokens, poller)
        handler = functools.partial(load_handler(function), app=app)

        def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
            store.function = function.value
            try:
                return handler(event, context)
            finally:
                store.function = ""

        return run

    handlers = {f: as_function(f) for f in Function}
    handlers[Function.INGEST] = as_function(Function.INGEST, _telraam_poller(deps, keys))
    pack = json.dumps([*load_event("senml_pack.json"), {"n": "no2", "u": "ppm", "v": 1}])
    context = lambda_context(Function.INGEST)
    answer = handlers[Function.INGEST](http_api_request(pack, token=token), context)
    assert answer["statusCode"] == 202
    optout = {  # a resident's opt-out (docs/rights.md): the set, its key, the hour's slots
        "version": "2.0", "rawPath": "/optout", "isBase64Encoded": False,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"address": "aa:bb:cc:dd:ee:01"}),
        "requestContext": {"http": {"method": "POST"}, "requestId": "optout"},
    }  # fmt: skip
    for _ in range(2):
        assert handlers[Function.INGEST](optout, context)["statusCode"] == 202
    announce(deps, drop_lines(deps, "canonical", [json.dumps(wifi_observation())]))
    runner = LocalRunner(deps.names, deps.queue, handlers=handlers, concurrency=1)
    runner.drain([Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE], timeout_s=60)
    # the poller's tick, twice an hour apart (cursors written, then moved on)
    for fired in ("2026-06-02T12:00:00Z", "2026-06-02T13:00:00Z"):
        polls = handlers[Function.INGEST](scheduled_event(fired), context)["polls"]
        assert polls["traffic-counters/telraam"]["answered"] == 10
        deps.clock.at += timedelta(hours=1)  # type: ignore[attr-defined]
    request_export(deps)
    runner.drain([Function.EXPORT], timeout_s=60)
    # 1 June's key dies, then a season later the short-lived zones are swept, and years
    # later every zone but open
    for fired in ("2026-06-03T03:00:00Z", "2027-12-01T03:00:00Z", "2040-06-01T03:00:00Z"):
        handlers[Function.EXPORT](scheduled_event(fired), lambda_context(Function.EXPORT))


class _TelraamHttp(Http):
    """Telraam's API answering every segment with one hourly row of segment 9101053."""

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout_s: float, limit: int) -> HttpAnswer:  # fmt: skip
        row = {"segment_id": 9101053, "date": "2026-06-02T10:00:00.000Z", "car": 12.0}
        return HttpAnswer(200, {}, json.dumps({"report": [row]}).encode())


def _telraam_poller(deps: Deps, keys: ObjectKeyStore) -> Poller:
    api_keys = InMemoryApiKeys()
    api_keys.put("telraam", "test-key")
    return Poller(deps, keys, _TelraamHttp(), api_keys, lambda seconds: None)


def _granted(resources: dict[str, Any], city: str, function: str, action: str, bucket: str,
             key: str) -> bool:  # fmt: skip
    """Whether ``function``'s role allows ``action`` on ``bucket`` (a logical id) at ``key``
    (for s3:ListBucket: the prefix listed)."""
    for statement in statements(resources, function):
        if action not in as_list(statement["Action"]):
            continue
        for resource in as_list(statement["Resource"]):
            if action == "s3:ListBucket":
                condition = statement.get("Condition", {}).get("StringLike", {})
                allowed = str(condition.get("s3:prefix", "*")).replace("${param:city}", city)
                if resource == {"Fn::GetAtt": [bucket, "Arn"]} and fnmatch(key, allowed):
                    return True
            elif sub_of(resource).startswith(f"${{{bucket}.Arn}}/"):
                pattern = sub_of(resource).split(".Arn}/", 1)[1].replace("${param:city}", city)
                if fnmatch(key, pattern):
                    return True
    return False


@pytest.mark.slow
def test_every_object_a_function_touches_is_granted_to_its_role(
    resources: dict[str, Any], memory_deps: Deps
) -> None:
    # Given a city stack whose every store call is recorded, with the logical id of each bucket
    names = memory_deps.names
    logical = {names.bucket(z): BUCKET[z] for z in Zone} | {names.keys_bucket(): "KeysBucket"}
    store = AccessStore(list(logical))
    deps = dataclasses.replace(memory_deps, store=store)
    # When every path of every function runs
    _run_every_path(deps, store)
    # Then the deployed roles allow each call the code made, and each function made some
    denied = sorted(
        (function, action, f"{logical[bucket]}/{key}")
        for function, action, bucket, key in store.accesses
        if not _granted(resources, deps.city.slug, function, action, logical[bucket], key)
    )
    assert denied == [], "\n".join(map(str, denied))
    assert {function for function, *_ in store.accesses} == set(FUNCTIONS)
    deleted = {
        (f, logical[b], k.split("/")[0]) for f, a, b, k in store.accesses if a == "s3:DeleteObject"
    }
    assert ("export", "QuarantineBucket", "quarantine") in deleted  # the sweep ran
    assert ("export", "KeysBucket", "secrets") in deleted  # old keys destroyed
    assert ("export", "CleanBucket", "clean") in deleted  # pseudonyms scrubbed
    assert ("export", "AggregatesBucket", "aggregates") in deleted  # past their retention
    assert ("export", "AuditBucket", "lineage") in deleted
