"""Hubs' webhooks, whatever the platform: authenticate, bound, decode, then ingest.

An entry point (API Gateway REST 1.0 or HTTP API 2.0 on AWS, Scaleway's HTTP trigger, ...)
maps its event to a ``WebhookRequest`` and returns what ``receive`` answers. Every check
that can refuse a request runs before anything is written, in this order:

1. a token for the source, in ``X-Citypipe-Token`` (or ``Authorization: Bearer``): 401;
2. the source exists: 404; the token is one of that source's: 403; the format exists: 404;
3. POST only: 405;
4. the body's size as sent, once base64-decoded, once gunzipped: 413; ``Content-Encoding``
   other than gzip/identity: 415; base64 or gzip that does not decode: 400;

Then ``service.ingest.ingest_webhook`` bounds the payloads (at most MAX_LINES lines: 413)
and processes the body inline through the edge (202, or 400 with reasons): each line is
judged on its own (one that is not UTF-8 is quarantined as ``invalid_encoding``), and
readings of another source's devices are quarantined (``wrong_source``).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from citypipe.domain.errors import TransientError
from citypipe.ports import TOKEN_HEADER, KeyStore, WebhookTokens
from citypipe.service.ingest import (
    MAX_BODY_BYTES,  # after base64 and gzip decoding
    MAX_BODY_LINES,
    ingest_webhook,
    webhook_formats,
)
from citypipe.service.stage import Deps, log

MAX_LINES = MAX_BODY_LINES  # payloads of one request (JSON Lines)
MAX_TOKEN_CHARS = 256


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


def _refused(status: int, error: str, detail: str, **headers: str) -> WebhookResponse:
    return WebhookResponse(status, {"error": error, "detail": detail}, headers)


def _token(headers: Mapping[str, str]) -> str | None:
    token = headers.get(TOKEN_HEADER)
    if token is None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if token is None or not token.strip():
        return None
    return token.strip()


def _gunzip(data: bytes) -> bytes | WebhookResponse:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        return _refused(400, "invalid_gzip", str(exc))
    if len(body) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        return _refused(413, "body_too_large", f"more than {MAX_BODY_BYTES} bytes once gunzipped")
    if not inflater.eof:
        return _refused(400, "invalid_gzip", "truncated gzip stream")
    return body


def _body_bytes(request: WebhookRequest) -> bytes | WebhookResponse:
    """The body as bytes: base64-decoded and gunzipped as the request says, bounded."""
    limit = MAX_BODY_BYTES * 4 // 3 + 4 if request.base64_encoded else MAX_BODY_BYTES
    if len(request.body) > limit:
        return _refused(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes")
    if request.base64_encoded:
        try:
            data = base64.b64decode(request.body, validate=True)
        except (binascii.Error, ValueError) as exc:
            return _refused(400, "invalid_base64", str(exc))
    else:
        try:
            data = request.body.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from a platform's decoding
            return _refused(400, "invalid_encoding", f"not UTF-8: {exc.reason}")
    if len(data) > MAX_BODY_BYTES:
        return _refused(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _gunzip(data)
    if encoding not in ("identity", ""):
        return _refused(415, "unsupported_encoding", "Content-Encoding: gzip or none")
    return data


def receive(
    deps: Deps, tokens: WebhookTokens, keys: KeyStore | None, request: WebhookRequest
) -> WebhookResponse:
    """Answer one webhook request; nothing is written unless every check passed."""
    token = _token(request.headers)
    if token is None or len(token) > MAX_TOKEN_CHARS:
        return _refused(
            401,
            "missing_token",
            f"send the source's token in {TOKEN_HEADER} or Authorization: Bearer",
            **{"www-authenticate": 'Bearer realm="citypipe"'},
        )
    if request.source not in deps.city.sources:
        return _refused(
            404, "unknown_source", "POST /ingest/{source}/{format}, a source of the city file"
        )
    try:
        allowed = tokens.verify(request.source, token)
    except TransientError as exc:
        log.warning("webhook tokens unavailable", extra={"error": str(exc)})
        return _refused(
            503, "try_again", "credentials could not be checked", **{"retry-after": "5"}
        )
    if not allowed:
        log.warning("webhook token refused", extra={"source": request.source})
        return _refused(403, "invalid_token", f"not a token of source {request.source!r}")
    if request.format not in webhook_formats():
        return _refused(404, "unknown_format", f"formats: {webhook_formats()}")
    if request.method.upper() != "POST":
        return _refused(405, "method_not_allowed", "POST a payload", allow="POST")
    data = _body_bytes(request)
    if isinstance(data, WebhookResponse):
        return data
    status, body = ingest_webhook(
        deps, keys, request.source, request.format, data, request.request_id, request.headers,
        request.received_at,
    )  # fmt: skip
    return WebhookResponse(status, body)
