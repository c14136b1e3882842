"""Scaleway Functions: one HTTP-shaped POST per queue message, the CRON job, the context a
plain dict (no Lambda context).

A queue trigger POSTs one message's body and retries a status >= 300 up to three times;
after that the message stays in the queue, whose redrive policy dead-letters it. So:

- a message done, or quarantined with a reason (poison), answers 200: acknowledged;
- a transient failure answers 500: try again;
- a backend that refuses (access denied, a missing bucket) answers 500 too, logged as an
  error: there is no batch to fail loudly, and the message must not be acknowledged.

Queue- and CRON-triggered functions are deployed private (only their triggers may call
them); hubs' webhooks go to a separate public function, ``http_trigger``, with the same
per-source authentication as on AWS (``service.webhook``): Scaleway's HTTP event has API
Gateway's 1.0 shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from citypipe.domain.errors import BackendRefusedError
from citypipe.entrypoints.apps import FunctionApp
from citypipe.entrypoints.events import DRAIN_CRON_BODY, is_cron_body
from citypipe.entrypoints.logs import logger
from citypipe.service.kernel import log


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
    }


def request_body(event: dict[str, Any]) -> str:
    """The POSTed body as text; bytes that are not UTF-8 become U+FFFD (and the message is
    then quarantined as invalid, never retried)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return str(body)
    return str(body)


def _context(context: Any) -> None:
    if isinstance(context, dict):
        logger.append_keys(
            function_name=context.get("functionName", ""),
            function_version=context.get("functionVersion", ""),
            platform="scaleway",
        )


def queue_trigger(app: FunctionApp, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A private function triggered by its queue (and, for export, by the hourly CRON)."""
    _context(context)
    body = request_body(event)
    function = app.consumer.function.value
    if app.drain is not None and is_cron_body(body, DRAIN_CRON_BODY):
        return respond(200, app.drain())
    if app.schedule is not None and is_cron_body(body):
        return respond(200, app.schedule({}))
    message_id = hashlib.sha256(body.encode()).hexdigest()[:24]  # the trigger sends no id
    try:
        app.consumer.message(body, message_id)
    except BackendRefusedError as exc:
        log.error("backend refused", extra={"function": function, "codes": [exc.code]})
        return respond(500, {"error": "backend_refused", "detail": exc.code})
    except Exception as exc:  # transient or unforeseen: the trigger retries, then redrive
        log.warning("message failed", extra={"function": function, "error": type(exc).__name__})
        return respond(500, {"error": "retry", "detail": type(exc).__name__})
    return respond(200, {"result": "done"})


def http_trigger(app: FunctionApp, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The public webhook function: ``POST <function URL>/ingest/{source}/{format}``."""
    _context(context)
    if app.http is None:
        return respond(404, {"error": "no_webhook", "detail": "this function takes no webhook"})
    return app.http(event)
