"""Hubs' webhooks on API Gateway: ``POST /ingest/{source}/{format}`` (and Meraki's
validator, ``GET``), as a REST API (payload format 1.0) or an HTTP API (2.0) delivers it;
and residents' opt-outs, ``POST /optout``. Scaleway's HTTP events have the 1.0 shape.

Only the event's shape is read here; what to answer is ``service.webhook.answer``'s (an
opt-out: ``service.optout_http.answer_optout``'s).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.kernel import Deps
from citypipe.service.optout_http import OPTOUT_PATH, OptOutRate, answer_optout
from citypipe.service.webhook import WebhookRequest, answer

if TYPE_CHECKING:
    from citypipe.service.buffer import Batcher


def _headers(event: dict[str, Any]) -> dict[str, str]:
    """Header names in lower case (2.0 sends them so; 1.0 keeps the sender's case)."""
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def _route(event: dict[str, Any]) -> tuple[str, str]:
    """(method, path) of an API Gateway event of either payload format."""
    if event.get("version") == "2.0":
        http = event.get("requestContext", {}).get("http", {})
        return str(http.get("method", "")), str(event.get("rawPath", ""))
    return str(event.get("httpMethod", "")), str(event.get("path", ""))


def request_of(event: dict[str, Any]) -> WebhookRequest:
    """A webhook request from an API Gateway event of either payload format."""
    method, path = _route(event)
    parameters = event.get("pathParameters") or {}
    source, fmt = parameters.get("source"), parameters.get("format")
    if not (source and fmt):  # a platform without path parameters: .../ingest/<s>/<f>
        parts = path.rstrip("/").split("/")
        source, fmt = (
            (parts[-2], parts[-1]) if len(parts) >= 3 and parts[-3] == "ingest" else ("", "")
        )
    return WebhookRequest(
        method=method,
        source=str(source),
        format=str(fmt),
        headers=_headers(event),
        body=str(event.get("body") or ""),
        base64_encoded=bool(event.get("isBase64Encoded")),
        request_id=str(event.get("requestContext", {}).get("requestId", "")),
    )


def webhook(
    deps: Deps,
    tokens: WebhookTokens,
    keys: KeyStore,
    rate: OptOutRate,
    event: dict[str, Any],
    batcher: Batcher | None = None,
) -> dict[str, Any]:
    """An API Gateway event in, its proxy response out (the same shape for 1.0 and 2.0)."""
    request = request_of(event)
    if not request.source and _route(event)[1].rstrip("/").endswith(OPTOUT_PATH):
        response = answer_optout(deps, keys, rate, request)  # a resident's opt-out
    else:
        response = answer(deps, tokens, keys, request, batcher)
    if response.text is not None:  # Meraki's validator, the answer to the portal's form
        content_type, body = "text/plain; charset=utf-8", response.text
    else:
        content_type, body = "application/json", json.dumps(response.body)
    return {
        "statusCode": response.status,
        "headers": {"content-type": content_type, **response.headers},
        "body": body,
    }
