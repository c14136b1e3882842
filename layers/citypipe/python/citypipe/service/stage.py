"""What every function does around its core: exactly-once effects on at-least-once delivery.

A stage takes one claim check, reads the object it names, lets the core compute outputs,
writes them with conditional puts under keys derived from the input's identity, sends one
message per output, records lineage (with the run ledger's counts) in the audit zone and
only then deletes the input if the stage consumes it. A repeated delivery finds its
lineage record and does nothing; one that arrives after the input was consumed does too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citypipe.core.codecs import jsonl_gz
from citypipe.domain.books import COUNTS, Lineage, ObjectRef, Written
from citypipe.domain.errors import NotFoundError, TerminalError
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import input_id
from citypipe.service.kernel import Core, Deps, Outcome, log
from citypipe.service.metrics import embedded_metrics

# Stages that own their input: ingest deletes the inbox drop, anonymize the raw object.
CONSUMES_INPUT = frozenset({Function.INGEST, Function.ANONYMIZE})


def _is_done(deps: Deps, key: str) -> bool:
    return deps.store.exists(deps.names.bucket(Zone.AUDIT), key)


def _duplicate(function: Function, message: Message, deps: Deps, ident: str) -> str:
    """A delivery whose input was processed already. If the stage consumes its input, the
    input is deleted again: a late concurrent duplicate upstream may have re-created it
    after it was consumed, and it must not linger (raw objects hold identifiers)."""
    if function in CONSUMES_INPUT:
        deps.store.delete(message.bucket, message.key)
    log.info("duplicate delivery", extra={"function": function.value, "input_id": ident})
    return "duplicate"


def run_stage(function: Function, message: Message, deps: Deps, core: Core) -> str:
    """Process one claim check exactly once in effect. Returns 'done' or 'duplicate'.

    TerminalError from the core or from reading the input is turned into a quarantine
    record (the message is acknowledged); anything else propagates to be retried.
    """
    ident = input_id(message.bucket, message.key, message.etag)
    done_key = deps.names.lineage_key(function, ident)
    if _is_done(deps, done_key):
        return _duplicate(function, message, deps, ident)
    try:
        if not message.etag:
            raise TerminalError("invalid_message", "a claim check names the object's etag")
        try:
            obj = deps.store.get(message.bucket, message.key)
        except NotFoundError:
            if _is_done(deps, done_key):  # consumed by a concurrent duplicate
                return _duplicate(function, message, deps, ident)
            raise TerminalError("input_missing", f"{message.bucket}/{message.key}") from None
        if obj.etag != message.etag:
            raise TerminalError("etag_mismatch", f"{message.key} changed since it was announced")
        outcome = core(obj, message, deps, ident)
        outcome.consume_input = function in CONSUMES_INPUT
    except TerminalError as exc:
        # What the message announced is quarantined whole (a drop's payloads count as one
        # reading each: a lower bound, they were never read).
        outcome = Outcome(
            outputs=[],
            counts=COUNTS[function].whole_input_quarantined(message.records, exc.reason),
            quarantine=[
                {"reason": exc.reason, "detail": exc.detail, "message": message.model_dump()}
            ],
        )
    finish(function, message, deps, ident, outcome)
    return "done"


def finish(function: Function, message: Message, deps: Deps, ident: str, outcome: Outcome) -> bool:
    """Write outputs, tell the next stage, record lineage, then consume the input. Returns
    whether this call recorded the lineage (False: a concurrent delivery of the same input
    did, first)."""
    put = put_outputs(function, message, deps, ident, outcome)
    return record(function, message, deps, ident, outcome, put)


@dataclass(frozen=True)
class Put:
    """What ``put_outputs`` put: the outputs (for lineage) and the notices they are announced by,
    per function (``record`` sends them)."""

    outputs: list[Written]
    notices: dict[Function, list[dict[str, Any]]]


def put_outputs(
    function: Function, message: Message, deps: Deps, ident: str, outcome: Outcome
) -> Put:
    """An outcome's objects put (conditional puts, quarantine included); nothing announced."""
    city = deps.city.slug
    written: list[Written] = []
    notices: dict[Function, list[dict[str, Any]]] = {}
    for out in outcome.outputs:
        bucket = deps.names.bucket(out.zone)
        write = deps.store.put_or_replace if out.replace else deps.store.put_if_absent
        result = write(bucket, out.key, out.body, out.content_type)
        written.append(Written(bucket=bucket, key=out.key, etag=result.etag, records=out.records))
        if out.notify is not None:
            notice = Message(
                city=city,
                stage=out.zone.value,
                bucket=bucket,
                key=out.key,
                etag=result.etag,
                records=out.records,
                format=out.format,
                trace_id=message.trace_id,
            )
            notices.setdefault(out.notify, []).append(notice.model_dump(exclude_none=True))
    put_quarantine(function, deps, ident, outcome.quarantine)
    return Put(written, notices)


def put_quarantine(function: Function, deps: Deps, ident: str, rows: list[dict[str, Any]]) -> None:
    """An input's quarantine rows (none: nothing), put once under its identity."""
    if rows:
        deps.store.put_if_absent(
            deps.names.bucket(Zone.QUARANTINE),
            deps.names.quarantine_key(function, ident),
            jsonl_gz(rows),
            "application/x-ndjson",
        )


def record(
    function: Function, message: Message, deps: Deps, ident: str, outcome: Outcome, put: Put
) -> bool:
    """The objects ``put`` announced to the next stages, the lineage recorded last (whether
    this call recorded it), then the input consumed."""
    notify(deps, put.notices)
    lineage = lineage_of(function, message, deps, ident, outcome, put.outputs)
    recorded = put_lineage(deps, lineage)
    if outcome.consume_input:
        deps.store.delete(message.bucket, message.key)
    log.info(
        "processed",
        extra={
            "input_key": message.key,
            "input_id": ident,
            "outputs": len(put.outputs),
            "counts": outcome.counts.model_dump(),
            **embedded_metrics(deps.city.slug, function, outcome.counts, lineage.at),
        },
    )
    return recorded


def notify(deps: Deps, notices: dict[Function, list[dict[str, Any]]]) -> None:
    """Each function's queue told of the objects written for it (claim checks)."""
    for target, payloads in notices.items():
        deps.queue.send_json(deps.names.queue(target), payloads)


def put_lineage(deps: Deps, lineage: Lineage) -> bool:
    """The lineage record put once: whether this call put it."""
    return deps.store.put_if_absent(
        deps.names.bucket(Zone.AUDIT),
        deps.names.lineage_key(lineage.function, lineage.input_id),
        lineage.model_dump_json(indent=1).encode(),
        "application/json",
    ).created


def lineage_of(
    function: Function,
    message: Message,
    deps: Deps,
    ident: str,
    outcome: Outcome,
    written: list[Written],
) -> Lineage:
    return Lineage(
        function=function,
        input=ObjectRef(bucket=message.bucket, key=message.key, etag=message.etag),
        input_id=ident,
        window=outcome.window,
        dataset=outcome.dataset,
        counts=outcome.counts,  # type: ignore[arg-type]  # one of Counts: checked by Lineage
        outputs=written,
        trace_id=message.trace_id,
        at=deps.clock.now(),
    )
