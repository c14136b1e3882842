"""Hubs' webhooks on API Gateway: ``POST /ingest/{source}/{format}`` (and Meraki's
validator, ``GET``), as a REST API (payload format 1.0) or an HTTP API (2.0) delivers it.
Scaleway's HTTP events have the 1.0 shape.

Only the event's shape is read here; what to answer is ``service.webhook.answer``'s.
"""

from __future__ import annotations

import json
from typing import Any

from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.kernel import Deps
from citypipe.service.webhook import WebhookRequest, answer


def _headers(event: dict[str, Any]) -> dict[str, str]:
    """Header names in lower case (2.0 sends them so; 1.0 keeps the sender's case)."""
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def request_of(event: dict[str, Any]) -> WebhookRequest:
    """A webhook request from an API Gateway event of either payload format."""
    if event.get("version") == "2.0":
        http = event.get("requestContext", {}).get("http", {})
        method, path = str(http.get("method", "")), str(event.get("rawPath", ""))
    else:
        method, path = str(event.get("httpMethod", "")), str(event.get("path", ""))
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
    event: dict[str, Any],
    buffered: bool = False,
) -> dict[str, Any]:
    """An API Gateway event in, its proxy response out (the same shape for 1.0 and 2.0)."""
    response = answer(deps, tokens, keys, request_of(event), buffered)
    if response.text is not None:  # Meraki's validator
        content_type, body = "text/plain; charset=utf-8", response.text
    else:
        content_type, body = "application/json", json.dumps(response.body)
    return {
        "statusCode": response.status,
        "headers": {"content-type": content_type, **response.headers},
        "body": body,
    }
