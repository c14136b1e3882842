"""A city whose sources authenticate each the way one of their hubs can (docs/hubs.md,
"Webhook authentication"), and what a test reads back of a stack: every byte written."""

from __future__ import annotations

import base64
import dataclasses
import gzip
from typing import Any

from hub_support import hub_city
from repo import load_event

from citypipe.domain.city import City, Webhook, WebhookAuth
from citypipe.domain.model import Zone
from citypipe.service.kernel import Deps

# Meraki's validators are 40 hexadecimal characters; this one is made up.
VALIDATOR = "5f2c0d41e8b7a93164c0f2ab7d5e91c08a36b4f1"
# air-quality: airRohr sensors (HTTP Basic; The Things Stack, ChirpStack and NGSI-LD brokers
# can send Basic as well); wifi-counters: Meraki's Scanning API; traffic-counters: the
# default, a header
WEBHOOKS = {
    "air-quality": Webhook(auth=WebhookAuth.BASIC),
    "wifi-counters": Webhook(auth=WebhookAuth.MERAKI, validator=VALIDATOR),
}


def auth_city(city: City, webhooks: dict[str, Webhook] | None = None) -> City:
    """The example city with the hub payloads' devices and ``webhooks`` (``WEBHOOKS``)."""
    hubs = hub_city(city)
    chosen = WEBHOOKS if webhooks is None else webhooks
    sources = {
        name: source.model_copy(update={"webhook": chosen[name]}) if name in chosen else source
        for name, source in hubs.sources.items()
    }
    return hubs.model_copy(update={"sources": sources})


def with_city(deps: Deps, city: City) -> Deps:
    return dataclasses.replace(deps, city=city)


def basic(user: str, password: str) -> str:
    """An ``Authorization`` header's value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def written(deps: Deps) -> bytes:
    """Every object of every zone, gunzipped where gzip: what any secret must not be in."""
    out = b""
    for zone in Zone:
        bucket = deps.names.bucket(zone)
        for info in deps.store.list(bucket):
            body = deps.store.get(bucket, info.key).body
            out += gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return out


def scanning_post(name: str, secret: str) -> dict[str, Any]:
    """A Scanning API fixture (``events/hubs/meraki``) as a network with ``secret`` posts it."""
    document = dict(load_event(f"hubs/meraki/{name}"))
    document["secret"] = secret
    return document
