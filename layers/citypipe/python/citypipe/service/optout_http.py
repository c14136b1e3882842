"""A resident's opt-out request, whatever the platform: ``POST /optout`` on the server
that takes the hubs' webhooks (``citypipe serve``), behind the same bounds.

The body names one address, as JSON (``{"address": "aa:bb:cc:dd:ee:ff"}``) or as the
portal's form sends it (``address=...``, ``application/x-www-form-urlencoded``). Every
check runs before anything is written, none of them says whether the address was opted out
before, and no answer, log line or error repeats the address:

1. the method is POST: 405; the body within ``MAX_OPTOUT_BYTES`` (as sent and decoded):
   413; ``Content-Type`` JSON or a form: 415; the body holds one ``address``: 400;
2. the address is an EUI-48 (a Wi-Fi or Bluetooth device address): 400
   ``invalid_address``;
3. at most ``OPTOUTS_PER_HOUR`` requests an hour reach the set, for the whole city
   (``OptOutRate``, a container's count by its clock, then ``optout.hour_slot``, the
   city's in the store): 429 with Retry-After; a set of ``MAX_OPT_OUTS``: 507; a store
   that cannot answer: 503.

Then 202, the same for an address opted out now or before: a JSON body, or a sentence of
text for the form. The opt-out reaches every edge within ``OPTOUT_RELOAD_S``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from urllib.parse import parse_qs

import orjson

from citypipe.core.decode import Undecodable, http_body
from citypipe.core.pseudonyms import opt_out_address
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_OPTOUT_BYTES, OPTOUT_RELOAD_S, OPTOUTS_PER_HOUR
from citypipe.ports import KeyStore
from citypipe.service.kernel import Deps, log
from citypipe.service.metrics import optout_metrics
from citypipe.service.optout import hour_slot, opt_out
from citypipe.service.webhook import WebhookRequest, WebhookResponse

OPTOUT_PATH = "/optout"
FORM = "application/x-www-form-urlencoded"
RECORDED = (
    f"Recorded. Within {OPTOUT_RELOAD_S // 60} minutes no sensor of the city counts this "
    "device: its detections are dropped before anything of them is written. The address "
    "is kept only as a keyed hash, never in clear."
)


class OptOutRate:
    """At most ``per_hour`` opt-out requests an hour (by the clock's hour) reach the store
    from one server or one warm container: what a crowd of requests can make it list and
    write. The city's bound is the store's (``optout.hour_slot``)."""

    def __init__(self, per_hour: int = OPTOUTS_PER_HOUR) -> None:
        self.per_hour = per_hour
        self._hour: datetime | None = None
        self._taken = 0
        self._lock = threading.Lock()

    def take(self, now: datetime) -> bool:
        hour = now.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            if hour != self._hour:
                self._hour, self._taken = hour, 0
            if self._taken >= self.per_hour:
                return False
            self._taken += 1
            return True


def _refused(status: int, error: str, detail: str, **headers: str) -> WebhookResponse:
    return WebhookResponse(status, {"error": error, "detail": detail}, headers)


def _address(request: WebhookRequest) -> str | WebhookResponse:
    """The address the body names, or the refusal of a body that names none."""
    try:
        data = http_body(
            request.body[: MAX_OPTOUT_BYTES * 2 + 8],
            request.base64_encoded,
            request.headers.get("content-encoding", ""),
        )
    except Undecodable as exc:
        return _refused(400, exc.reason, exc.detail)
    if len(request.body) > MAX_OPTOUT_BYTES * 2 or len(data) > MAX_OPTOUT_BYTES:
        return _refused(413, "body_too_large", f"at most {MAX_OPTOUT_BYTES} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media == FORM:
            found: object = parse_qs(data.decode(), max_num_fields=4).get("address", [None])[0]
        elif media == "application/json":
            document = orjson.loads(data)
            found = document.get("address") if isinstance(document, dict) else None
        else:
            return _refused(415, "unsupported_media_type", f"application/json or {FORM}")
    except (ValueError, orjson.JSONDecodeError):
        return _refused(400, "invalid_body", 'send {"address": "..."} or the portal\'s form')
    if not isinstance(found, str):
        return _refused(400, "missing_address", "the body names no address")
    address = opt_out_address(found[:64])
    if address is None:
        detail = "a Wi-Fi or Bluetooth address: six pairs of hex digits"
        return _refused(400, "invalid_address", detail)
    return address


def answer_optout(
    deps: Deps, keys: KeyStore, rate: OptOutRate, request: WebhookRequest
) -> WebhookResponse:
    """Answer one opt-out request; nothing is written unless every check passed."""
    if request.method.upper() != "POST":
        return _refused(405, "method_not_allowed", "POST an address", allow="POST")
    address = _address(request)
    if isinstance(address, WebhookResponse):
        return address
    now = deps.clock.now()
    response = _recorded(deps, keys, rate, request, address, now)
    # per city, recorded or refused for the hour (an EMF document: the stack alarms on the
    # refused); never the address
    metrics = optout_metrics(deps.city.slug, response.status, now)
    log.info("opt-out answered", extra={"status": response.status, **metrics})
    return response


def _recorded(
    deps: Deps,
    keys: KeyStore,
    rate: OptOutRate,
    request: WebhookRequest,
    address: str,
    now: datetime,
) -> WebhookResponse:
    """A valid address's opt-out, within the hour's bounds: its answer."""
    next_hour = 3600 - (now.minute * 60 + now.second)  # seconds until the hour's slots are new
    too_many = _refused(
        429, "too_many_requests", "try again next hour", **{"retry-after": str(next_hour)}
    )
    if not rate.take(now):  # this container's count first: a flood costs the store nothing
        return too_many
    try:
        if not hour_slot(deps, now, rate.per_hour):  # the city's, whoever took the others
            return too_many
        recorded = opt_out(deps, keys, address)
    except TransientError as exc:
        log.warning("opt-outs unavailable", extra={"error": type(exc).__name__})
        return _refused(
            503, "try_again", "the opt-outs could not be written", **{"retry-after": "5"}
        )
    if not recorded:
        log.warning("opt-outs: the set is full")
        return _refused(507, "opt_outs_full", "the city's opt-outs are full: write to the city")
    body = {"status": "recorded", "detail": RECORDED}
    form = request.headers.get("content-type", "").lower().startswith(FORM)
    return WebhookResponse(202, body, text=RECORDED if form else None)
