"""What a webhook request presents as its source's token, the way each authentication mode
of the city file (``domain.city.WebhookAuth``) reads it, and the request without it.

- ``header``: ``X-Citypipe-Token: <token>`` or ``Authorization: Bearer <token>``;
- ``basic``: ``Authorization: Basic base64(<user>:<token>)``; the user name is not read
  (airRohr, and anything else that can only send a user and a password);
- ``meraki``: the ``secret`` of the one JSON document a Scanning API post is.

Nothing here compares: the token store does, in constant time
(``ports.WebhookTokens.verify``). A credential never reaches the edge: the headers that
carry one are dropped and a Scanning API post's ``secret`` is removed before the payloads
are judged, so no zone, quarantine row or log can hold it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from citypipe.core.ingest import Payload
from citypipe.domain.city import WebhookAuth
from citypipe.ports import TOKEN_HEADER

AUTHORIZATION = "authorization"
# the field of the Scanning API's shared secret, at the root of every post
MERAKI_SECRET = "secret"  # noqa: S105 (a field's name)


@dataclass(frozen=True)
class Presented:
    """The credential a request holds for each mode (``None``: none in that form)."""

    header: str | None
    basic: str | None
    meraki: str | None

    def by(self, mode: WebhookAuth | None) -> str | None:
        """The one ``mode`` reads; for no mode (an unknown source), the first there is."""
        if mode is None:
            return self.header or self.basic or self.meraki
        return {
            WebhookAuth.HEADER: self.header,
            WebhookAuth.BASIC: self.basic,
            WebhookAuth.MERAKI: self.meraki,
        }[mode]


def presented(
    headers: Mapping[str, str], payloads: Sequence[Payload], scanning_post: bool
) -> Presented:
    """Every form of credential ``headers`` (names in lower case) and, for a Scanning API
    post, its payloads hold."""
    return Presented(
        _header_token(headers),
        _basic_password(headers),
        _meraki_secret(payloads) if scanning_post else None,
    )


def without_credentials(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers the edge may see: those that carry a credential dropped."""
    return {k: v for k, v in headers.items() if k not in (AUTHORIZATION, TOKEN_HEADER)}


def without_secret(payload: Payload) -> Payload:
    """A Scanning API post without its ``secret`` (anything else as it came)."""
    document = _document(payload)
    if not isinstance(document, dict) or MERAKI_SECRET not in document:
        return payload
    kept = {k: v for k, v in document.items() if k != MERAKI_SECRET}
    return payload._replace(body=kept if payload.parsed else orjson.dumps(kept))


def _nonblank(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _header_token(headers: Mapping[str, str]) -> str | None:
    token = headers.get(TOKEN_HEADER)
    if token is None:
        scheme, _, value = headers.get(AUTHORIZATION, "").strip().partition(" ")
        token = value if scheme.lower() == "bearer" else None
    return _nonblank(token)


def _basic_password(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get(AUTHORIZATION, "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # not base64, or not UTF-8
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def _document(payload: Payload) -> Any:
    if payload.parsed:
        return payload.body
    try:
        return orjson.loads(payload.body)
    except orjson.JSONDecodeError:
        return None


def _meraki_secret(payloads: Sequence[Payload]) -> str | None:
    """The ``secret`` of the one document a Scanning API post is."""
    if len(payloads) != 1:
        return None
    document = _document(payloads[0])
    secret = document.get(MERAKI_SECRET) if isinstance(document, dict) else None
    return secret if isinstance(secret, str) and secret else None
