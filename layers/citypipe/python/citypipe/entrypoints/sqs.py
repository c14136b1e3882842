"""Claim checks from a queue, one record at a time, with partial batch failures; on
ingest's queue, the webhook's buffered requests too, written as one batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from citypipe.core.codecs import jsonl_gz
from citypipe.core.shape import text_shape
from citypipe.domain.errors import BackendRefusedError, TerminalError
from citypipe.domain.model import Function, Message, Zone, is_piece
from citypipe.entrypoints.events import CLAIM_CHECK_NAMES, parse_messages
from citypipe.service.kernel import Deps, log

Batch = Callable[[list[tuple[str, str]]], list[tuple[str, str, TerminalError]]]


class ItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    """Lambda's answer to an SQS batch with ``ReportBatchItemFailures``: the messages to
    deliver again (none: the whole batch is deleted)."""

    batchItemFailures: list[ItemFailure]


@dataclass
class ClaimCheckConsumer:
    """An SQS batch of claim checks -> one service call per message.

    - a record that is no claim check (poison) is quarantined with a reason and
      acknowledged: retrying cannot help;
    - a transient failure fails only its own record (``batchItemFailures``): SQS
      redelivers it, and the redrive policy dead-letters it after ``maxReceiveCount``;
    - a backend that refuses (access denied, a missing bucket) fails the whole invocation
      loudly, after the other records were processed: a deployment problem for the
      function's error alarm, not a poison message for the DLQ.
    """

    function: Function
    deps: Deps
    on_message: Callable[[Message], str]
    # ingest: the webhook's buffered requests (body, message id) written as one batch,
    # returning those that hold none (``service.buffer.Batcher.take``)
    batcher: Batch | None = None
    _refused: list[BackendRefusedError] = field(default_factory=list)

    def message(self, body: str, message_id: str) -> None:
        """One queue message, whatever platform delivered it. Returns when it is done or
        quarantined (acknowledge it); raises when it should come again."""
        if self.batcher is not None and is_piece(body):
            self.pieces([(body, message_id)])
            return
        try:
            messages = parse_messages(body, self.deps.city.slug)
        except TerminalError as exc:
            self.quarantine_message(body, message_id, exc)
            return
        for message in messages:
            self.on_message(message)

    def pieces(self, messages: list[tuple[str, str]]) -> None:
        """Buffered requests (body, message id) written as one batch: a body that is none
        quarantined; raises when they should all come again."""
        assert self.batcher is not None
        for body, message_id, exc in self.batcher(messages):
            self.quarantine_message(body, message_id, exc)

    def record(self, record: dict[str, Any]) -> None:
        try:
            self.message(record["body"], record["messageId"])
        except BackendRefusedError as exc:
            self._refused.append(exc)
            raise

    def quarantine_message(self, body: str, message_id: str, exc: TerminalError) -> None:
        row = {
            "reason": exc.reason,
            "detail": exc.detail,
            "message_id": message_id,
            # anything may have been sent to a queue (a hub's payload, misrouted): its shape
            "body": text_shape(body, CLAIM_CHECK_NAMES),
        }
        self.deps.store.put_if_absent(
            self.deps.names.bucket(Zone.QUARANTINE),
            self.deps.names.quarantined_message_key(self.function, body),
            jsonl_gz([row]),
            "application/x-ndjson",
        )
        log.warning(
            "message quarantined", extra={"function": self.function.value, "reason": exc.reason}
        )

    def sqs(self, event: dict[str, Any]) -> PartialBatchResponse:
        """Every record of the batch in turn; each that raised is reported for redelivery.
        (Powertools' batch processor did this; importing it cost every cold start ~50 ms.)"""
        self._refused.clear()
        records = event["Records"]
        buffered = [r for r in records if self.batcher is not None and is_piece(r["body"])]
        failures = self._batched(buffered)
        for record in records:
            if self.batcher is not None and is_piece(record["body"]):
                continue
            try:
                self.record(record)
            except Exception:  # its own record's failure only: delivered again
                failures.append({"itemIdentifier": record["messageId"]})
        if self._refused:
            log.error(
                "backend refused",
                extra={"function": self.function.value, "codes": [e.code for e in self._refused]},
            )
            raise self._refused[0]
        return {"batchItemFailures": failures}

    def _batched(self, records: list[dict[str, Any]]) -> list[ItemFailure]:
        """The buffered requests of an SQS batch written as one: all of them failed (to come
        again) when it could not be."""
        if not records:
            return []
        try:
            self.pieces([(r["body"], r["messageId"]) for r in records])
        except BackendRefusedError as exc:
            self._refused.append(exc)
        except Exception as exc:  # transient or unforeseen: every request comes again
            failure = {"error": type(exc).__name__, "detail": str(exc)[:200]}
            log.warning("buffered batch failed", extra=failure)
        else:
            return []
        return [{"itemIdentifier": r["messageId"]} for r in records]
