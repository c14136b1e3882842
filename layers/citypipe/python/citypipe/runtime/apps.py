"""One app per function: what a handler calls. Built by the composition root."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from citypipe.domain import Function, Message, TerminalError, Zone
from citypipe.export import days_with_partials, export_day
from citypipe.ingest import ingest_webhook
from citypipe.retention import sweep_raw
from citypipe.runtime.events import parse_messages
from citypipe.stage import Core, Deps, jsonl_gz, log, run_stage


@dataclass
class StageApp:
    """Claim checks from a queue -> one stage core, with partial batch failures."""

    function: Function
    deps: Deps
    on_message: Callable[[Message], str]

    def record(self, record: SQSRecord) -> None:
        """One SQS record. Terminal problems are quarantined (acknowledged); transient
        ones raise, so Powertools reports the item failed and SQS redelivers it."""
        try:
            messages = parse_messages(record.body, self.deps.city.city)
        except TerminalError as exc:
            self.quarantine_message(record, exc)
            return
        for message in messages:
            self.on_message(message)

    def quarantine_message(self, record: SQSRecord, exc: TerminalError) -> None:
        ident = hashlib.sha256(record.body.encode()).hexdigest()[:24]
        key = f"quarantine/{self.deps.city.city}/{self.function.value}/messages/{ident}.jsonl.gz"
        row = {
            "reason": exc.reason,
            "detail": exc.detail,
            "message_id": record.message_id,
            "body": record.body,
        }
        self.deps.store.put_if_absent(self.deps.names.bucket(Zone.QUARANTINE), key, jsonl_gz([row]))
        log.warning(
            "message quarantined", extra={"function": self.function.value, "reason": exc.reason}
        )

    def sqs(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS)  # per call: it holds batch state
        response = process_partial_response(
            event=event, record_handler=self.record, processor=processor, context=context
        )
        return dict(response)


def stage_app(function: Function, deps: Deps, core: Core) -> StageApp:
    return StageApp(function, deps, lambda m: run_stage(function, m, deps, core))


def export_app(deps: Deps) -> StageApp:
    def on_message(message: Message) -> str:
        days = [message.window] if message.window else days_with_partials(deps)
        return ",".join(export_day(deps, day, message.trace_id) for day in days)

    return StageApp(Function.EXPORT, deps, on_message)


def scheduled(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    """The hourly job (EventBridge/Scaleway CRON): publish yesterday (UTC) — a no-op once
    published unless late data arrived —, destroy the pseudonymization secrets of days past
    the key retention, and delete raw objects older than 24 hours. The housekeeping runs
    even when the export fails."""
    fired = datetime.fromisoformat(
        str(event.get("time", deps.clock.now().isoformat())).replace("Z", "+00:00")
    )
    day = (fired - timedelta(days=1)).date().isoformat()
    keep_from = fired.date() - timedelta(days=deps.city.key_retention_days - 1)
    try:
        result = export_day(deps, day)
    finally:
        destroyed = deps.keys.destroy_before(keep_from)
        swept = sweep_raw(deps, fired)
    log.info(
        "housekeeping",
        extra={"function": "export", "keys_destroyed": destroyed, "raw_swept": swept},
    )
    return {"day": day, "result": result, "keys_destroyed": destroyed, "raw_swept": swept}


def webhook(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    """API Gateway (REST or HTTP API) and Scaleway HTTP: POST /ingest/{format}."""
    request = APIGatewayProxyEvent(event)
    fmt = (request.path_parameters or {}).get("format") or request.path.rstrip("/").rsplit("/", 1)[
        -1
    ]
    if request.http_method not in ("POST", None):
        status, body = 405, {"error": "method_not_allowed", "detail": "POST a payload"}
    else:
        status, body = ingest_webhook(
            deps, fmt, request.decoded_body or "", request.request_context.request_id or ""
        )
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
