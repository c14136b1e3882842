"""Hubs' webhooks, whatever the platform: bound, decode, authenticate, then the edge.

An entry point (API Gateway REST 1.0 or HTTP API 2.0 on AWS, Scaleway's HTTP trigger, the
local ``citypipe serve``) maps its event to a ``WebhookRequest`` and returns what
``answer`` answers. Every check that can refuse a request runs before anything is
written, in this order, and none of them depends on whether the source exists:

0. Meraki's handshake: a GET on ``/ingest/{source}/meraki`` of a source whose webhook
   authenticates ``meraki`` answers the source's validator, as text (200);
1. the format is one a hub may push: 404; the method is POST: 405;
2. the body (``core.decode``): its size as sent, once base64-decoded, once gunzipped, and
   its payloads (at most ``MAX_BODY_LINES``): 413; ``Content-Encoding`` other than
   gzip/identity: 415; base64 or gzip that does not decode: 400;
3. the source's token, presented the way the source's ``webhook.auth`` says
   (``core.credentials``: a header, HTTP Basic, a Scanning API post's ``secret``) and
   compared in constant time by the token store. An unknown source, no credential and a
   wrong one are one refusal — the same status (401), body and headers — after the same
   work: one read of the token store and its comparisons (for an unknown source, a
   stand-in's, the result ignored). A store that cannot answer: 503.

Then the payloads, without the request's credentials (``core.credentials``), go through
the edge's one entrance (``service.edge``), written before the answer (202, or 400 with
reasons): each line is judged on its own (one that is not UTF-8 is quarantined as
``invalid_encoding``), and readings of another source's devices are quarantined
(``wrong_source``). The same content received before (a hub's resend or retry) is
answered 202 with ``"resent": true``: nothing written, every reading a duplicate. The
answer lists at most ``MAX_REJECTIONS_SHOWN`` rejections and counts every rejected reading
by reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from citypipe.core.credentials import presented, without_credentials, without_secret
from citypipe.core.decode import Undecodable, headers_context, http_body, webhook_payloads
from citypipe.core.formats import FORMATS, csv_drop, meraki
from citypipe.core.ingest import Payload
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_REJECTIONS_SHOWN, MAX_TOKEN_CHARS
from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.buffer import Batcher
from citypipe.service.edge import Admitted, Inbound, Route, admit
from citypipe.service.kernel import Deps, log

# The HTTP status of a body that cannot be decoded, by ``Undecodable.reason`` (else 400).
UNDECODABLE_STATUS = {"too_large": 413, "too_many_lines": 413, "unsupported_encoding": 415}
# A body too large is said so whatever its framing made it too large.
UNDECODABLE_ERROR = {"too_large": "body_too_large"}
# Every refused credential, whatever the source and whether it exists (docs/hubs.md).
CHALLENGE = 'Bearer realm="citypipe", Basic realm="citypipe"'
UNAUTHORIZED_DETAIL = "no credential of this source, in the form its webhook takes (docs/hubs.md)"


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook request as every platform can give it."""

    method: str
    source: str  # POST /ingest/{source}/{format}
    format: str
    headers: Mapping[str, str]  # names in lower case
    body: str  # as the platform hands it over
    base64_encoded: bool = False
    request_id: str = ""
    received_at: float | None = None  # when the platform received it (epoch s); else now


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # a plain-text answer instead of the JSON body (a validator)


def webhook_formats() -> list[str]:
    """The formats a hub may push (a CSV file is a drop, not a push)."""
    return sorted(n for n in FORMATS if n != csv_drop.FORMAT.name)


def answer(
    deps: Deps,
    tokens: WebhookTokens,
    keys: KeyStore | None,
    request: WebhookRequest,
    batcher: Batcher | None = None,
) -> WebhookResponse:
    """Answer one webhook request; nothing is written unless every check passed.
    ``batcher``: what the edge made of it is handed to ingest's queue, to be written with
    other requests' (``service.buffer``); answered once the queue took it. Raises when it
    could not be made durable (``TransientError``: the function fails, its errors alarm
    counts it, and the hub sends the request again; ``citypipe serve`` answers 503)."""
    refused = _validation(deps, request) or _routed(request)
    if refused is not None:
        return refused
    try:
        data = http_body(
            request.body, request.base64_encoded, request.headers.get("content-encoding", "")
        )
        at = deps.clock.now().timestamp() if request.received_at is None else request.received_at
        context = headers_context(at, without_credentials(request.headers))
        payloads = webhook_payloads(data, context)
    except Undecodable as exc:
        status = UNDECODABLE_STATUS.get(exc.reason, 400)
        return _refused(status, UNDECODABLE_ERROR.get(exc.reason, exc.reason), exc.detail)
    refused = _authenticated(deps, tokens, request, payloads)
    if refused is not None:
        return refused
    if request.format == meraki.FORMAT.name:
        payloads = [without_secret(p) for p in payloads]
    inbound = Inbound(
        payloads,
        Route.WEBHOOK,
        FORMATS[request.format],
        only_source=request.source,
        trace_id=request.request_id,
    )
    buffer = None if batcher is None else partial(batcher.hand_over, request=request.request_id)
    return _answered(admit(deps, keys, inbound, buffer))


def _refused(status: int, error: str, detail: str, **headers: str) -> WebhookResponse:
    return WebhookResponse(status, {"error": error, "detail": detail}, headers)


def _validation(deps: Deps, request: WebhookRequest) -> WebhookResponse | None:
    """Meraki's handshake: its GET on a Scanning API source's URL is answered the validator
    the city file gives (no secret: the network's owner checks the receiver with it)."""
    source = deps.city.sources.get(request.source)
    if (
        request.method.upper() != "GET"
        or request.format != meraki.FORMAT.name
        or source is None
        or source.webhook.validator is None
    ):
        return None
    return WebhookResponse(200, {}, text=source.webhook.validator)


def _authenticated(
    deps: Deps, tokens: WebhookTokens, request: WebhookRequest, payloads: list[Payload]
) -> WebhookResponse | None:
    """None when the request holds a token of its source, in the form the source's webhook
    takes; else the one refusal (or 503 when the token store cannot answer)."""
    source = deps.city.sources.get(request.source)
    offered = presented(request.headers, payloads, request.format == meraki.FORMAT.name)
    credential = offered.by(None if source is None else source.webhook.auth) or ""
    # the same work whatever was asked: an unknown source is checked against a stand-in
    checked = request.source if source is not None else min(deps.city.sources)
    try:
        matched = tokens.verify(checked, credential[: MAX_TOKEN_CHARS + 1])
    except TransientError as exc:
        log.warning("webhook tokens unavailable", extra={"error": type(exc).__name__})
        return _refused(
            503, "try_again", "credentials could not be checked", **{"retry-after": "5"}
        )
    if source is None or not credential or len(credential) > MAX_TOKEN_CHARS or not matched:
        known = request.source if source is not None else "(not a source)"
        log.warning("webhook credentials refused", extra={"source": known})
        return _refused(401, "unauthorized", UNAUTHORIZED_DETAIL, **{"www-authenticate": CHALLENGE})
    return None


def _routed(request: WebhookRequest) -> WebhookResponse | None:
    """None for a POST of a format a hub may push; else the refusal."""
    if request.format not in webhook_formats():
        return _refused(404, "unknown_format", f"formats: {webhook_formats()}")
    if request.method.upper() != "POST":
        return _refused(405, "method_not_allowed", "POST a payload", allow="POST")
    return None


def _answered(admitted: Admitted) -> WebhookResponse:
    """What the sender is told of its batch: counts, reasons, the first rejections."""
    result, counts = admitted.normalized, admitted.counts
    rejected = [r for row in result.quarantine for r in _rejected(row)]
    body: dict[str, Any] = {
        "accepted": counts.accepted,
        "duplicates": counts.duplicates,
        "quarantined": sum(result.reasons.values()),
        "reasons": dict(sorted(result.reasons.items())),
        "rejected": rejected[:MAX_REJECTIONS_SHOWN],
        "rejected_total": len(rejected),
    }
    if admitted.buffered:
        body["buffered"] = True
    if admitted.duplicate:  # this very content was received before: nothing written again
        body.update(accepted=0, duplicates=result.accepted + result.duplicates, resent=True)
        return WebhookResponse(202, body)
    if counts.accepted == 0 and counts.duplicates == 0 and not result.opted_out:
        return WebhookResponse(400, {"error": "no_usable_reading", **body})
    return WebhookResponse(202, body)


def _rejected(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What a sender is told of one quarantined payload: per reason, the readings rejected,
    the first detail and its JSON path."""
    first: dict[str, dict[str, str]] = {}
    for detail in row["details"]:
        first.setdefault(detail["reason"], detail)
    return [
        {
            "line": row["line"],
            "reason": reason,
            "count": count,
            "detail": first.get(reason, {}).get("detail", ""),
            "path": first.get(reason, {}).get("path", ""),
        }
        for reason, count in row["rejected"].items()
    ]
