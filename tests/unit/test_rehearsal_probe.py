"""What the rehearsal asks the public entry points (citypipe_local.public, decision 119): the
events as the platforms hand them over, the packs it posts, and how it digests answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE

from citypipe.domain.city import City, Webhook, WebhookAuth
from citypipe.entrypoints.events import IOT_TOPIC
from citypipe.ports import TOKEN_HEADER
from citypipe_local.public import (
    OPTED_OUT,
    POSTED,
    REFUSED_TOKEN,
    UPLINKS,
    digest,
    http_event,
    packs,
    uplinks,
    webhook_answers,
)
from citypipe_local.rehearse import aws_wiring, midnight, same_day, scaleway_wiring
from citypipe_local.replay import Probed, ReplayOptions, replay
from citypipe_local.runner import Platform

DATED = datetime(2026, 12, 7, tzinfo=UTC)


def test_an_answer_is_kept_as_its_status_type_digest_and_counts() -> None:
    body = json.dumps({"accepted": 3, "buffered": True, "reasons": {}})
    kept = digest(
        {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": body}
    )
    assert kept["status"] == 202
    assert kept["content_type"] == "application/json"
    assert (kept["accepted"], kept["buffered"], kept["returned"]) == (3, True, None)
    assert kept != digest({"statusCode": 202, "headers": {}, "body": body + " "})
    # a body that is no JSON object counts nothing
    page = digest({"statusCode": 200, "body": "<html></html>"})
    assert (page["accepted"], page["buffered"], page["returned"]) == (None, None, None)


def _capture(body: str, at: int = 1780272000) -> str:
    return json.dumps({"at": at, "body": body, "topic": "velden/gateway/air-quality/senml"})


def test_the_packs_posted_are_the_captures_senml_packs_of_registered_devices_redated(
    city: City, tmp_path: Path
) -> None:
    # Given captured SenML: a registered device's pack, a spoiled body, an unknown device's,
    # one whose base record gives no time
    ident = next(i for hub, i in city.devices if hub == "senml")
    good = [{"bn": f"{ident}/", "bt": 1780272000, "bu": "ug/m3"}, {"n": "no2", "v": 16.8}]
    unknown = [{"bn": "2001:db8:ffff::1/", "bt": 1780272000}, {"n": "no2", "v": 1.0}]
    untimed = [{"bn": f"{ident}/"}, {"n": "no2", "v": 2.0}]
    lines = [_capture(json.dumps(p)) for p in (good, unknown, untimed)]
    lines.insert(1, _capture('[{"bn": "truncated'))
    lines += [_capture(json.dumps(good))] * (POSTED + 3)
    (tmp_path / "senml.jsonl").write_text("\n".join(lines) + "\n")
    # When the packs to post are taken
    posted = packs(tmp_path, city, DATED)
    # Then only the registered device's, at most POSTED, each dated a second after the last
    assert len(posted) == POSTED
    source = city.device("senml", ident)
    assert source is not None
    assert {s for s, _ in posted} == {source.source}
    times = [json.loads(pack)[0]["bt"] for _, pack in posted]
    assert times == [int(DATED.timestamp()) + n for n in range(POSTED)]
    assert json.loads(posted[0][1])[1] == good[1]  # the readings as captured
    # And captures without SenML post nothing
    assert packs(tmp_path / "none", city, DATED) == []


def test_the_iot_rule_events_are_the_captures_decoded_uplinks_of_registered_devices_redated(
    city: City, tmp_path: Path
) -> None:
    # Given captured IoT Core messages: a registered device's decoded uplink, an unknown
    # device's, a rule's plain JSON (no time of its own), a spoiled body, one whose time is
    # inside a JSON string, resends
    ident = next(i for hub, i in city.devices if hub == "lorawan")
    lns = {"WirelessMetadata": {"LoRaWAN": {"DevEui": ident, "Timestamp": "2026-06-01T00:00:25Z"}}}
    good = {"transformed_message": {"DevEui": ident, "payload": {"no2": 7.8}}, "lns_message": lns}
    unknown = {**good, "transformed_message": {"DevEui": "ffffffffffffffff", "payload": {}}}
    nested = {**good, "lns_message": json.dumps(lns)}  # its time inside a JSON string
    lines = [_capture(json.dumps(d)) for d in (good, unknown, {"vehicles": 1}, nested)]
    lines.insert(1, _capture('{"transformed_message": '))
    lines += [_capture(json.dumps(good))] * 3  # a hub's resends: taken once
    others = [
        {**good, "transformed_message": {**good["transformed_message"], "n": n}}
        for n in range(UPLINKS + 3)
    ]
    lines += [_capture(json.dumps(d)) for d in others]
    (tmp_path / "aws-iot.jsonl").write_text("\n".join(lines) + "\n")
    # When the uplinks to hand to ingest are taken
    ruled = uplinks(tmp_path, city, DATED)
    # Then only the registered device's, at most UPLINKS, each with its topic as the rule
    # adds it, dated after the packs and a second after the one before
    assert len(ruled) == UPLINKS
    assert {e[IOT_TOPIC] for e in ruled} == {"velden/gateway/air-quality/senml"}
    stamps = [e["lns_message"]["WirelessMetadata"]["LoRaWAN"]["Timestamp"] for e in ruled]
    at = [DATED + timedelta(seconds=POSTED + n) for n in range(UPLINKS)]
    assert stamps == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in at]
    assert ruled[0]["transformed_message"] == good["transformed_message"]
    assert ruled[1]["transformed_message"] == others[0]["transformed_message"]
    # And captures without IoT Core messages hand over nothing
    assert uplinks(tmp_path / "none", city, DATED) == []


@pytest.mark.parametrize("platform", ["aws", "scaleway"])
def test_the_webhook_is_asked_refusals_meraki_s_validator_and_an_opt_out(
    city: City, platform: Platform
) -> None:
    # Given a city one of whose sources gives Meraki's validator
    name = sorted(city.sources)[0]
    webhook = Webhook(auth=WebhookAuth.MERAKI, validator="rehearsal-validator")
    source = city.sources[name].model_copy(update={"webhook": webhook})
    given = city.model_copy(update={"sources": {**city.sources, name: source}})
    asked: list[dict[str, Any]] = []

    def ask(entry: str, event: dict[str, Any]) -> dict[str, Any]:
        assert entry == "webhook"
        asked.append(event)
        return {"statusCode": 401, "headers": {}, "body": "{}"}

    # When the webhook's questions are asked
    answers = webhook_answers(ask, given, platform)
    # Then each source is sent a token none has, the validator's source a GET, and the
    # route a resident's opt-out of a documentation address
    assert set(answers["refused"]) == {f"/ingest/{n}/canonical" for n in city.sources}
    assert set(answers["validator"]) == {f"/ingest/{name}/meraki"}
    assert set(answers["optout"]) == {"/optout"}
    sent = [(_method(e), _path(e), e.get("routeKey")) for e in asked]
    route = "/ingest/{source}/{format}" if platform == "aws" else None
    expected = [
        ("POST", f"/ingest/{n}/canonical", route and f"POST {route}") for n in sorted(city.sources)
    ]
    expected.insert(
        1 + sorted(city.sources).index(name),
        ("GET", f"/ingest/{name}/meraki", route and f"GET {route}"),
    )
    expected.append(("POST", "/optout", "POST /optout" if platform == "aws" else None))
    assert sent == expected
    headers = [{k.lower(): v for k, v in e["headers"].items()} for e in asked]
    assert sum(h.get(TOKEN_HEADER) == REFUSED_TOKEN for h in headers) == len(city.sources)
    assert json.loads(asked[-1]["body"]) == {"address": OPTED_OUT}


def _method(event: dict[str, Any]) -> str:
    method = event.get("httpMethod") or event["requestContext"]["http"]["method"]
    return str(method)


def _path(event: dict[str, Any]) -> str:
    return str(event.get("rawPath") or event["path"])


def test_the_events_have_each_platform_s_shape() -> None:
    parameters = {"source": "air-quality", "format": "senml"}
    route = "POST /ingest/{source}/{format}"
    aws = http_event(
        "aws", "POST", "/ingest/air-quality/senml", route=route, parameters=parameters,
        body="[]", request_id="rehearsal-1",
    )  # fmt: skip
    # API Gateway's HTTP API (payload 2.0): the template's route, its path parameters
    assert (aws["version"], aws["routeKey"], aws["pathParameters"]) == ("2.0", route, parameters)
    assert aws["requestContext"]["requestId"] == "rehearsal-1"
    # Scaleway's: the 1.0 shape, no path parameters, Envoy's request id
    scaleway = http_event(
        "scaleway", "GET", "/features/collections", query="limit=3", request_id="rehearsal-2"
    )
    assert (scaleway["httpMethod"], scaleway["path"]) == ("GET", "/features/collections")
    assert scaleway["pathParameters"] is None
    assert scaleway["queryStringParameters"] == {"limit": "3"}
    assert scaleway["headers"]["X-Request-Id"] == "rehearsal-2"


def test_the_public_entry_points_are_asked_on_the_real_clock_only(tmp_path: Path) -> None:
    # a replay on a simulated clock runs the functions on it: the entry points would not be
    options = ReplayOptions(job_every=timedelta(hours=1), probe=lambda session: Probed())
    with pytest.raises(ValueError, match="public entry points are asked on the real clock"):
        replay(CITY_FILE, tmp_path, tmp_path / "out", options)


def test_a_rehearsal_refuses_artefacts_wired_otherwise_than_it_runs_them() -> None:
    # Given a template's functions, layers and HTTP API routes as the stack declares them
    def function(layers: list[Any]) -> dict[str, Any]:
        return {"Type": "AWS::Lambda::Function", "Properties": {"Layers": layers}}

    def route(key: str, integration: str) -> dict[str, Any]:
        target = {"Fn::Join": ["/", ["integrations", {"Ref": integration}]]}
        return {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {"RouteKey": key, "Target": target},
        }

    def integration(function: str) -> dict[str, Any]:
        uri = {"Fn::GetAtt": [function, "Arn"]}
        return {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {"IntegrationUri": uri}}

    layer = [{"Ref": "LibraryLambdaLayer"}]
    resources = {
        "IngestLambdaFunction": function(layer),
        "ApiLambdaFunction": function(layer),
        "HttpApiIntegrationIngest": integration("IngestLambdaFunction"),
        "HttpApiIntegrationApi": integration("ApiLambdaFunction"),
        "Webhook": route("POST /ingest/{source}/{format}", "HttpApiIntegrationIngest"),
        "OptOut": route("POST /optout", "HttpApiIntegrationIngest"),
        "Features": route("GET /features/{proxy+}", "HttpApiIntegrationApi"),
    }
    assert aws_wiring(resources) == []
    # Then a function without the library's layer, or with another layer only, is refused
    assert aws_wiring(resources | {"ApiLambdaFunction": function([])}) == [
        "ApiLambdaFunction has not the library's layer"
    ]
    other = function([{"Ref": "SomeOtherLambdaLayer"}])
    assert aws_wiring(resources | {"IngestLambdaFunction": other}) != []
    # and so is a route that reaches another function than its entry point's
    wrong = resources | {"OptOut": route("POST /optout", "HttpApiIntegrationApi")}
    assert aws_wiring(wrong) == ["POST /optout reaches ApiLambdaFunction, not IngestLambdaFunction"]
    # On Scaleway the webhook and the API are public, every other function private
    functions = {n: {"privacy": "private"} for n in ("ingest", "anonymize", "aggregate", "export")}
    functions |= {n: {"privacy": "public"} for n in ("ingest-webhook", "api")}
    drained = {"privacy": "private", "events": [{"schedule": {"input": {"citypipe": "drain"}}}]}
    functions["ingest"] = drained
    assert scaleway_wiring(functions) == []
    assert scaleway_wiring(functions | {"export": {"privacy": "public"}}) != []
    assert scaleway_wiring(functions | {"api": {"privacy": "private"}}) != []
    # and ingest's queue is drained by its CRON, as the local runner plays it (decision 121)
    triggered = {**drained, "events": [*drained["events"], {"sqs": {"queue": "ingest"}}]}
    assert scaleway_wiring(functions | {"ingest": triggered}) != []
    assert scaleway_wiring(functions | {"ingest": {"privacy": "private"}}) != []


def test_a_rehearsal_ends_on_the_day_it_began() -> None:
    dated = midnight(datetime(2026, 12, 7, 23, 59, 30, tzinfo=UTC))
    assert dated == DATED
    same_day(dated, datetime(2026, 12, 7, 23, 59, 59, tzinfo=UTC))
    with pytest.raises(RuntimeError, match="ended on the next: run it again"):
        same_day(dated, datetime(2026, 12, 8, 0, 0, 5, tzinfo=UTC))
