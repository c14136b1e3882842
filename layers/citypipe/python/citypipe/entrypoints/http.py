"""Hubs' webhooks: API Gateway (REST, payload 1.0; HTTP API, 2.0) and Scaleway HTTP events,
``POST /ingest/{format}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from citypipe.ports import KeyStore
from citypipe.service.ingest import ingest_webhook
from citypipe.service.stage import Deps


def webhook(deps: Deps, keys: KeyStore, event: dict[str, Any]) -> dict[str, Any]:
    request = APIGatewayProxyEvent(event)
    fmt = (request.path_parameters or {}).get("format") or request.path.rstrip("/").rsplit("/", 1)[
        -1
    ]
    if request.http_method not in ("POST", None):
        status, body = 405, {"error": "method_not_allowed", "detail": "POST a payload"}
    else:
        status, body = ingest_webhook(
            deps,
            keys,
            fmt,
            request.decoded_body or "",
            request.request_context.request_id or "",
            headers=dict(request.headers or {}),
        )
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
