"""``POST /optout`` on ``citypipe serve``: a resident's opt-out through the very server that
takes the hubs' webhooks, on the embedded backend — behind its bounds, never repeating or
logging the address, and dropped by the edge behind that server."""

from __future__ import annotations

import http.client
import json
import logging
import time

import pytest

from citypipe.domain.limits import MAX_OPTOUT_BYTES
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryWebhookTokens
from citypipe_local.serve import WebhookServer

ADDRESS = "5C:F7:E6:01:02:03"
SPELLINGS = ("5c:f7:e6:01:02:03", "5cf7e6010203")


def send(server: WebhookServer, path: str, body: bytes, **headers: str) -> tuple[int, str, bytes]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.getheader("content-type") or "", response.read()
    connection.close()
    return answer


def test_a_residents_opt_out_is_answered_and_the_edge_behind_the_server_drops_the_device(
    deps: Deps,
    server: WebhookServer,
    tokens: InMemoryWebhookTokens,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    status, media, body = send(
        server, "/optout", json.dumps({"address": ADDRESS}).encode(),
        **{"content-type": "application/json"},
    )  # fmt: skip
    assert (status, json.loads(body)["status"]) == (202, "recorded")
    status, media, body = send(
        server, "/optout", b"address=5c-f7-e6-01-02-03",
        **{"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert (status, media) == (202, "text/plain; charset=utf-8")  # the portal's form
    # a hub's detection of the device, through the same server: dropped, counted
    seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    observation = {
        "sensor": "wifi-22", "quantity": "people.presence", "unit": "{device}", "value": 1,
        "observed_at": seen, "personal": {"device_mac": ADDRESS},
    }  # fmt: skip
    status, _, body = send(
        server, "/ingest/wifi-counters/canonical", json.dumps(observation).encode(),
        **{"x-citypipe-token": tokens.minted["wifi-counters"]},
    )  # fmt: skip
    assert (status, json.loads(body)["reasons"]) == (202, {"opted_out": 1})
    # the keys bucket holds one digest; no answer and no log line holds the address
    kept = list(deps.store.list(deps.names.keys_bucket(), deps.names.optout_prefix()))
    assert len(kept) == 1
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records).lower()
    assert not any(s in logged or s in kept[0].key for s in SPELLINGS)


@pytest.mark.parametrize(
    ("body", "media", "status"),
    [
        (json.dumps({"address": "x" * MAX_OPTOUT_BYTES}).encode(), "application/json", 413),
        (b'{"address": "not an address"}', "application/json", 400),
        (b"address=5c:f7:e6:01:02:03", "text/plain", 415),
    ],
    ids=["too-large", "not-an-address", "not-json-or-form"],
)
def test_a_bad_opt_out_is_refused_clearly_and_writes_nothing(
    deps: Deps, server: WebhookServer, body: bytes, media: str, status: int
) -> None:
    answered, _, text = send(server, "/optout", body, **{"content-type": media})
    assert answered == status and "error" in json.loads(text)
    assert list(deps.store.list(deps.names.keys_bucket(), deps.names.optout_prefix())) == []
