"""Webhook authentication, per source as the city file says (``webhook.auth``): a header
token, HTTP Basic, Meraki's body secret and validator; one refusal for every failure,
whether or not the source exists, after the same work (docs/decisions/0082)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from auth_support import VALIDATOR, auth_city, basic, scanning_post, with_city, written
from pydantic import ValidationError
from repo import load_event, webhook_token
from unit_support import http_api_request

from citypipe.domain.city import Webhook, WebhookAuth
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_BODY_BYTES
from citypipe.domain.model import Function
from citypipe.entrypoints.http import webhook
from citypipe.ports import TOKEN_HEADER
from citypipe.service.kernel import Deps
from citypipe.service.optout_http import OptOutRate
from citypipe.service.webhook import WebhookRequest, WebhookResponse, answer
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens
from citypipe_local.runner import app_for, load_handler

TELRAAM = json.dumps(load_event("hubs/telraam/traffic-report-hourly.json"))
AIRROHR = json.dumps(load_event("hubs/sensor-community/push-sds011-bme280.json"))
MERAKI = "scanning-v2-devicesseen.json"


@pytest.fixture
def deps(memory_deps: Deps) -> Deps:
    return with_city(memory_deps, auth_city(memory_deps.city))


def send(
    deps: Deps,
    tokens: InMemoryWebhookTokens,
    source: str,
    fmt: str,
    body: str = "",
    method: str = "POST",
    **headers: str,
) -> WebhookResponse:
    sent = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    request = WebhookRequest(method, source, fmt, sent, body)
    return answer(deps, tokens, InMemoryKeyStore(), request)


def meraki_body(secret: str) -> str:
    return json.dumps(scanning_post(MERAKI, secret))


# --- each mode takes its source's token in the form its hubs can send ---------------------------


def test_a_header_source_takes_its_token_in_the_header_or_as_a_bearer_token(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    token = webhook_token("traffic-counters")
    by_header = send(
        deps, memory_tokens, "traffic-counters", "telraam", TELRAAM, **{TOKEN_HEADER: token}
    )
    by_bearer = send(
        deps, memory_tokens, "traffic-counters", "telraam", TELRAAM, authorization=f"Bearer {token}"
    )

    assert by_header.status == 202 and by_header.body["accepted"] > 0
    assert (by_bearer.status, by_bearer.body.get("resent")) == (202, True)  # the same content


@pytest.mark.parametrize("user", ["air-quality", "", "esp8266-3141592"])
def test_a_basic_source_takes_its_token_as_the_password_whatever_the_user_name(
    deps: Deps, memory_tokens: InMemoryWebhookTokens, user: str
) -> None:
    # airRohr's "Send data to own API" with the token as its password, any user name
    response = send(
        deps,
        memory_tokens,
        "air-quality",
        "sensor-community",
        AIRROHR,
        authorization=basic(user, webhook_token("air-quality")),
        x_sensor="esp8266-3141592",
    )

    assert (response.status, response.body["accepted"]) == (202, 5)


def test_a_meraki_source_takes_its_token_as_the_scanning_api_secret(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    response = send(
        deps, memory_tokens, "wifi-counters", "meraki", meraki_body(webhook_token("wifi-counters"))
    )

    assert response.status == 202 and response.body["accepted"] > 0


def test_the_meraki_secret_is_removed_before_anything_is_written(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    token = webhook_token("wifi-counters")
    accepted = send(deps, memory_tokens, "wifi-counters", "meraki", meraki_body(token))
    # a post the edge refuses is quarantined by its shape: not even the secret's name is kept
    unknown_ap = scanning_post(MERAKI, token)
    unknown_ap["data"]["apMac"] = "e0:55:3d:f1:0a:99"
    refused = send(deps, memory_tokens, "wifi-counters", "meraki", json.dumps(unknown_ap))

    assert accepted.status == 202 and refused.status == 400
    assert token.encode() not in written(deps)
    assert b"secret" not in written(deps)


def test_meraki_s_get_is_answered_the_validator_as_text(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    response = send(deps, memory_tokens, "wifi-counters", "meraki", method="GET")

    assert (response.status, response.text) == (200, VALIDATOR)
    assert written(deps) == b""


def test_api_gateway_answers_meraki_s_get_as_text(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    # the HTTP API's GET route (serverless.yml) hands Meraki's GET to ingest
    event = http_api_request("", "wifi-counters", "GET", token=None, fmt="meraki")

    response = webhook(deps, memory_tokens, InMemoryKeyStore(), OptOutRate(), event)

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/plain")
    assert response["body"] == VALIDATOR


def test_scaleway_s_public_function_answers_meraki_s_get_as_text(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    event = load_event("scaleway_webhook_senml.json")
    event.update(httpMethod="GET", path="/ingest/wifi-counters/meraki", body="")
    del event["headers"]["X-Citypipe-Token"]
    handle = load_handler(Function.INGEST, platform="scaleway", entry="webhook")
    app = app_for(Function.INGEST, deps, InMemoryKeyStore(), memory_tokens)

    response = handle(event, load_event("scaleway_context.json"), app=app)

    assert (response["statusCode"], response["body"]) == (200, VALIDATOR)


@pytest.mark.parametrize(
    ("source", "fmt"),
    [("traffic-counters", "meraki"), ("no-such-source", "meraki"), ("wifi-counters", "canonical")],
    ids=["a-header-source", "an-unknown-source", "another-format"],
)
def test_a_get_elsewhere_is_a_405_whether_or_not_the_source_exists(
    deps: Deps, memory_tokens: InMemoryWebhookTokens, source: str, fmt: str
) -> None:
    response = send(deps, memory_tokens, source, fmt, method="GET")

    assert (response.status, response.text) == (405, None)


# --- one refusal, whatever failed ---------------------------------------------------------------


def refusals(deps: Deps, tokens: InMemoryWebhookTokens) -> dict[str, WebhookResponse]:
    """Every way of not holding a source's credential, for each mode, and an unknown source."""
    aq, wifi, traffic = (
        webhook_token(s) for s in ("air-quality", "wifi-counters", "traffic-counters")
    )
    unknown = ("no-such-source", "senml", "[]")
    telraam = ("traffic-counters", "telraam", TELRAAM)
    airrohr = ("air-quality", "sensor-community", AIRROHR)
    auth = "authorization"
    cases: dict[str, tuple[tuple[str, str, str], dict[str, str]]] = {
        "unknown source": (unknown, {TOKEN_HEADER: traffic}),
        "unknown source, basic": (unknown, {auth: basic("a", aq)}),
        "unknown source, no credential": (unknown, {}),
        "header: none": (telraam, {}),
        "header: wrong": (telraam, {TOKEN_HEADER: "cpt-forged"}),
        "header: another source's": (telraam, {TOKEN_HEADER: aq}),
        "header: blank": (telraam, {TOKEN_HEADER: "  "}),
        "header: sent as basic": (telraam, {auth: basic("x", traffic)}),
        "header: too long": (telraam, {TOKEN_HEADER: traffic * 20}),
        "basic: none": (airrohr, {}),
        "basic: wrong password": (airrohr, {auth: basic("air-quality", "x")}),
        "basic: no password": (airrohr, {auth: basic(aq, "")}),
        "basic: not base64": (airrohr, {auth: "Basic ???"}),
        "basic: sent as a header": (airrohr, {TOKEN_HEADER: aq}),
        "meraki: wrong secret": (("wifi-counters", "meraki", meraki_body("s3cr3t")), {}),
        "meraki: no secret": (("wifi-counters", "meraki", json.dumps({"data": {}})), {}),
        "meraki: as a header": (("wifi-counters", "meraki", meraki_body("")), {TOKEN_HEADER: wifi}),
        "meraki: not json": (("wifi-counters", "meraki", "{not json"), {}),
        "meraki: two posts": (("wifi-counters", "meraki", f"{meraki_body(wifi)}\n" * 2), {}),
    }
    return {
        name: send(deps, tokens, source, fmt, body, **headers)
        for name, ((source, fmt, body), headers) in cases.items()
    }


def test_every_failure_is_one_refusal_and_writes_nothing(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    answers = refusals(deps, memory_tokens)

    shapes = {
        (r.status, json.dumps(r.body), json.dumps(r.headers), r.text) for r in answers.values()
    }
    [(status, body, headers, _)] = shapes  # one and the same, unknown source or not
    assert status == 401
    assert json.loads(body)["error"] == "unauthorized"
    assert "basic" in json.loads(headers)["www-authenticate"].lower()
    assert written(deps) == b""


class CountingTokens(InMemoryWebhookTokens):
    """Counts the reads of the store and the comparisons made."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def _digests(self, source: str) -> list[str]:
        self.reads.append(source)
        return super()._digests(source)


def test_an_unknown_source_takes_the_same_work_as_a_known_one(
    deps: Deps, memory_tokens: InMemoryWebhookTokens
) -> None:
    tokens = CountingTokens()
    tokens.digests = dict(memory_tokens.digests)

    send(deps, tokens, "no-such-source", "senml", "[]", **{TOKEN_HEADER: "cpt-forged"})
    send(deps, tokens, "traffic-counters", "senml", "[]", **{TOKEN_HEADER: "cpt-forged"})

    # one read each, of a source that has digests: the same comparisons (a stand-in's for
    # the source that does not exist; its answer is never used)
    assert len(tokens.reads) == 2
    assert all(tokens.digests.get(source) for source in tokens.reads)


class FailingTokens(InMemoryWebhookTokens):
    def _digests(self, source: str) -> list[str]:
        raise TransientError("the token store is slow")


@pytest.mark.parametrize("source", ["traffic-counters", "no-such-source"])
def test_a_token_store_that_cannot_answer_is_a_503_for_any_source(deps: Deps, source: str) -> None:
    response = send(deps, FailingTokens(), source, "senml", "[]", **{TOKEN_HEADER: "cpt-x"})

    assert (response.status, response.headers) == (503, {"retry-after": "5"})


# --- the bounds come first, for every source -----------------------------------------------------


@pytest.mark.parametrize("source", ["traffic-counters", "no-such-source"])
@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [("x" * (MAX_BODY_BYTES + 1), "", 413), ("[]", "br", 415)],
    ids=["too-large", "unsupported-encoding"],
)
def test_a_body_out_of_bounds_is_refused_before_any_credential_is_checked(
    deps: Deps, source: str, body: str, encoding: str, status: int
) -> None:
    tokens = CountingTokens()
    response = send(deps, tokens, source, "senml", body, content_encoding=encoding)

    assert response.status == status
    assert tokens.reads == []
    assert written(deps) == b""


# --- nothing secret is told or logged -------------------------------------------------------


def test_no_credential_is_in_an_answer_or_a_log(
    deps: Deps, memory_tokens: InMemoryWebhookTokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [webhook_token(s) for s in ("air-quality", "wifi-counters", "traffic-counters")]
    answers: list[Any] = list(refusals(deps, memory_tokens).values())
    answers += [
        send(deps, memory_tokens, "wifi-counters", "meraki", meraki_body(tokens[1])),
        send(
            deps, memory_tokens, "air-quality", "sensor-community", AIRROHR,
            authorization=basic("air-quality", tokens[0]), x_sensor="esp8266-3141592",
        ),
    ]  # fmt: skip
    told = json.dumps([[a.status, a.body, a.headers, a.text] for a in answers])
    logged = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)

    secrets = [*tokens, basic("air-quality", tokens[0]).split()[1], "s3cr3t"]
    assert not [s for s in secrets if s in told or s in logged]


# --- the city file -----------------------------------------------------------------------------


def test_a_source_authenticates_by_header_unless_its_city_file_says_otherwise(
    memory_deps: Deps,
) -> None:
    assert {s.webhook.auth for s in memory_deps.city.sources.values()} == {WebhookAuth.HEADER}


@pytest.mark.parametrize(
    "webhook",
    [{"auth": "meraki"}, {"auth": "basic", "validator": VALIDATOR}, {"auth": "hmac"}],
    ids=["meraki-without-validator", "validator-without-meraki", "unknown-mode"],
)
def test_a_webhook_the_hub_cannot_use_is_refused_by_the_city_file(webhook: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Webhook.model_validate(webhook)
