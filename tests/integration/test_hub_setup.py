"""docs/hubs.md, "Pointing each hub at citypipe", taken at its word: each hub's documented
settings are read from the page and a request is sent as that hub sends it — its URL, its
headers, its credentials, a payload of its own (``events/hubs/``) — to ``citypipe serve``
on the embedded moto server. And every refusal looks alike on the wire."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import yaml
from auth_support import VALIDATOR, auth_city, basic, scanning_post, with_city, written
from repo import ROOT, load_event

from citypipe.domain.city import Webhook, WebhookAuth
from citypipe.entrypoints.events import IOT_TOPIC
from citypipe.service.kernel import Deps
from citypipe_local.backends import Endpoint
from citypipe_local.fakes import FixedClock, InMemoryKeyStore, InMemoryWebhookTokens
from citypipe_local.serve import ServerOptions, WebhookServer

HUBS_MD = (ROOT / "docs" / "hubs.md").read_text()
BLOCK = re.compile(r"```(\w+) hub=([\w-]+)\n(.*?)```", re.S)
DOCUMENTED = {hub: text for _, hub, text in BLOCK.findall(HUBS_MD)}
HEADER_ONLY: dict[str, Webhook] = {}  # every source as a header source


@pytest.fixture
def stack(embedded: Endpoint, fresh_stack: Callable[[Endpoint], tuple[Any, Deps]]) -> Deps:
    return fresh_stack(embedded)[1]


DOCUMENTED_DAY = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Hub:
    """``citypipe serve`` for a city whose sources authenticate as ``webhooks`` say, and a
    hub's HTTP client."""

    def __init__(self, deps: Deps, webhooks: dict[str, Webhook], dated: bool = True) -> None:
        # the hubs' documented payloads are of 1 June 2026: the server's clock is that day's
        # (the edge refuses readings of days whose keys are gone, too_old); a push that
        # carries no time is dated at its arrival, on the real clock (``dated`` False)
        city = with_city(deps, auth_city(deps.city, webhooks))
        self.deps = dataclasses.replace(city, clock=FixedClock(DOCUMENTED_DAY)) if dated else city
        self.tokens = InMemoryWebhookTokens()
        for source in self.deps.city.sources:
            self.tokens.mint(source)
        options = ServerOptions(port=0, timeout_s=5)
        self.server = WebhookServer(self.deps, self.tokens, InMemoryKeyStore(), options)

    def fill(self, text: str, source: str) -> str:
        """A documented setting with this server's values in place of its placeholders."""
        host = str(self.server.server_address[0])
        return (
            text.replace("<endpoint>", self.server.url)
            .replace("<host of the endpoint>", host)
            .replace("<source>", source)
            .replace("<token>", self.tokens.minted[source])
        )

    def send(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to ``url`` (its host is this server): status, headers, body."""
        host, port = self.server.server_address[:2]
        connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        answer = (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
        connection.close()
        return answer


@contextmanager
def serving(deps: Deps, webhooks: dict[str, Webhook], dated: bool = True) -> Iterator[Hub]:
    hub = Hub(deps, webhooks, dated)
    hub.server.start()
    try:
        yield hub
    finally:
        hub.server.shutdown()
        hub.server.server_close()


def posted(hub: Hub, url: str, payload: Any, headers: dict[str, str]) -> tuple[int, Any]:
    status, _, body = hub.send(
        "POST", url, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}
    )
    return status, json.loads(body)


def expand(template: str, **values: str) -> str:
    """RFC 6570 as The Things Stack's templates use it: ``{+var}`` and ``{/var}``."""
    template = re.sub(r"\{\+(\w+)\}", lambda m: values[m.group(1)], template)
    return re.sub(r"\{/(\w+)\}", lambda m: "/" + quote(values[m.group(1)], safe=""), template)


# --- each hub as documented -------------------------------------------------------------------


def test_the_things_stack_posts_an_uplink_as_the_documented_webhook_template(
    stack: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    template = yaml.safe_load(DOCUMENTED["tts-v3"])
    with serving(stack, HEADER_ONLY) as hub:
        token = hub.tokens.minted["air-quality"]
        fields = {"endpoint": hub.server.url, "source": "air-quality", "token": token}
        url = expand(template["base-url"], **fields) + template["paths"]["uplink-message"]
        headers = {name: value.format(**fields) for name, value in template["headers"].items()}
        status, answer = posted(hub, url, load_event("hubs/tts-v3/webhook-uplink.json"), headers)

    assert template["format"] == "json" and template["create-downlink-api-key"] is False
    assert (status, answer["accepted"]) == (202, 3)
    assert token not in caplog.text


def test_the_things_stack_s_basic_authentication_header_reaches_a_basic_source(
    stack: Deps,
) -> None:
    basic_air = {"air-quality": Webhook(auth=WebhookAuth.BASIC)}
    with serving(stack, basic_air) as hub:
        url = f"{hub.server.url}/ingest/air-quality/tts-v3"
        credentials = {"Authorization": basic("tts", hub.tokens.minted["air-quality"])}
        status, answer = posted(
            hub, url, load_event("hubs/tts-v3/webhook-uplink.json"), credentials
        )

    assert (status, answer["accepted"]) == (202, 3)


def test_chirpstack_posts_its_events_to_the_documented_url_with_its_headers(
    stack: Deps,
) -> None:
    settings = yaml.safe_load(DOCUMENTED["chirpstack-v4"])
    with serving(stack, HEADER_ONLY) as hub:
        url = hub.fill(settings["event endpoint URL"], "air-quality")
        headers = {k: hub.fill(v, "air-quality") for k, v in settings["headers"].items()}
        up = posted(
            hub,
            f"{url}?event=up",
            load_event("hubs/chirpstack-v4/up-numbers-as-strings.json"),
            headers,
        )
        join = posted(hub, f"{url}?event=join", load_event("hubs/chirpstack-v4/join.json"), headers)

    assert settings["payload encoding"] == "JSON"
    assert (up[0], up[1]["accepted"]) == (202, 3)
    assert (join[0], join[1]["reasons"]) == (400, {"not_an_uplink": 1})


def test_meraki_validates_the_documented_post_url_then_posts_with_its_secret(
    stack: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = yaml.safe_load(DOCUMENTED["meraki"])
    meraki = {"wifi-counters": Webhook(auth=WebhookAuth.MERAKI, validator=VALIDATOR)}
    with serving(stack, meraki) as hub:
        url = hub.fill(settings["post URL"], "wifi-counters")
        secret = hub.fill(settings["secret"], "wifi-counters")
        # the dashboard's Validate: a GET on the post URL, the validator back as text
        validated = hub.send("GET", url)
        v3 = posted(hub, url, scanning_post("scanning-v3-wifi.json", secret), {})
        v2 = posted(hub, url, scanning_post("scanning-v2-devicesseen.json", secret), {})
        forged = posted(hub, url, scanning_post("scanning-v2-devicesseen.json", "forged"), {})
        zones = written(hub.deps)

    status, headers, body = validated
    assert (status, body.decode()) == (200, VALIDATOR)
    assert headers["content-type"].startswith("text/plain")
    assert (v3[0], v2[0], forged[0]) == (202, 202, 401)
    assert v3[1]["accepted"] > 0 and v2[1]["accepted"] > 0
    assert secret.encode() not in zones and b"secret" not in zones
    assert secret not in caplog.text


def test_an_airrohr_sensor_pushes_with_the_documented_user_and_password(
    stack: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = yaml.safe_load(DOCUMENTED["sensor-community"])
    with serving(stack, {"air-quality": Webhook(auth=WebhookAuth.BASIC)}, dated=False) as hub:
        user, password = (hub.fill(settings[k], "air-quality") for k in ("user", "password"))
        host = hub.fill(settings["server"], "air-quality")
        url = f"http://{host}:{hub.server.server_address[1]}" + hub.fill(
            settings["path"], "air-quality"
        )
        # what the firmware's sendData sends to its own API (airrohr-firmware.ino)
        firmware = {
            "Authorization": basic(user, password),
            "X-Sensor": "esp8266-3141592",
            "X-MAC-ID": "esp8266-5ccf7f0a1b2c",
            "User-Agent": "NRZ-2020-133/3141592/5ccf7f0a1b2c",
        }
        status, answer = posted(
            hub, url, load_event("hubs/sensor-community/push-sds011-bme280.json"), firmware
        )

    assert (status, answer["accepted"]) == (202, 5)
    assert len(password) <= 64  # the firmware's password field (pwd_custom[65])
    assert password not in caplog.text and firmware["Authorization"] not in caplog.text


def test_an_ngsi_ld_broker_notifies_the_documented_endpoint_with_its_receiver_info(
    stack: Deps,
) -> None:
    subscription = json.loads(DOCUMENTED["ngsi-ld"])
    endpoint = subscription["notification"]["endpoint"]
    with serving(stack, HEADER_ONLY) as hub:
        url = hub.fill(endpoint["uri"], "air-quality")
        headers = {i["key"]: hub.fill(i["value"], "air-quality") for i in endpoint["receiverInfo"]}
        status, answer = posted(
            hub, url, load_event("hubs/ngsi-ld/notification-normalized.json"), headers
        )

    assert (status, subscription["type"]) == (202, "Subscription")
    assert answer["accepted"] > 0


def test_the_documented_iot_rule_adds_the_topic_ingest_reads() -> None:
    sql = DOCUMENTED["aws-iot"]
    assert re.search(rf"topic\(\) AS {IOT_TOPIC}\b", sql)
    assert "failure destination: see docs/deploy.md" in HUBS_MD


def test_the_documented_city_file_webhooks_load() -> None:
    section = HUBS_MD.split("## Webhook authentication", 1)[1]
    sources = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])["sources"]

    webhooks = {n: Webhook.model_validate(s.get("webhook", {})) for n, s in sources.items()}

    assert {n: w.auth for n, w in webhooks.items()} == {
        "air-quality": WebhookAuth.BASIC,
        "wifi-counters": WebhookAuth.MERAKI,
        "traffic-counters": WebhookAuth.HEADER,
    }


# --- one refusal on the wire --------------------------------------------------------------------


def test_every_refusal_is_the_same_on_the_wire_whether_or_not_the_source_exists(
    stack: Deps,
) -> None:
    meraki = {"wifi-counters": Webhook(auth=WebhookAuth.MERAKI, validator=VALIDATOR)}
    body = json.dumps(load_event("senml_pack.json")).encode()
    with serving(stack, {"air-quality": Webhook(auth=WebhookAuth.BASIC), **meraki}) as hub:
        aq = hub.tokens.minted["air-quality"]
        sent = [
            ("/ingest/no-such-source/senml", {}),
            ("/ingest/no-such-source/senml", {"X-Citypipe-Token": aq}),
            ("/ingest/traffic-counters/senml", {}),
            ("/ingest/traffic-counters/senml", {"X-Citypipe-Token": aq}),
            ("/ingest/air-quality/senml", {"X-Citypipe-Token": aq}),  # a basic source
            ("/ingest/air-quality/senml", {"Authorization": basic("x", "forged")}),
            (
                "/ingest/wifi-counters/meraki",
                {"X-Citypipe-Token": hub.tokens.minted["wifi-counters"]},
            ),
        ]
        answers = [hub.send("POST", path, body, headers) for path, headers in sent]

    seen = {
        (status, json.dumps({k: v for k, v in headers.items() if k != "date"}), answer)
        for status, headers, answer in answers
    }
    [(status, _, answer)] = seen
    assert (status, json.loads(answer)["error"]) == (401, "unauthorized")
    assert base64.b64encode(b"x:forged").decode() not in answer.decode()
