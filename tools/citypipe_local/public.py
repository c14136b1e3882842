"""The public entry points asked as their platforms ask them, on a live stack whose day is
published: the hubs' webhook (and residents' opt-outs, on its route) and the open-data API
(``GET /features…``), each through an HTTP event of its platform's shape (API Gateway's
HTTP API, payload 2.0, through the template's route on AWS; on Scaleway the 1.0 shape a
function's URL is given). One thing differs from the platforms': the packs posted carry
request ids of the caller's, the same in every run, in ``requestContext.requestId`` —
which Scaleway leaves empty (its webhook then names a request itself, at random).

What they answer is digested (status, media type, the body's SHA-256, the counts it gives)
so that two runs — the source tree's and the deployment artefacts'
(``citypipe_local.rehearse``, decision 119) — can be compared answer by answer. The
webhook is asked what hubs and residents ask: a request with a token no source has
(refused), Meraki's validator where a source gives one, an opt-out of a documentation
address (RFC 7042), and up to ``POSTED`` SenML packs of the captures, dated on a day whose
key lives (a platform dates a request by its arrival: the captured day is too old), each
with its source's token: buffered, written by ingest's batcher, carried through the
pipeline and published. The books count them (``Probed.sent``).

On AWS, ingest is also handed up to ``UPLINKS`` of the captures' IoT Core for LoRaWAN
uplinks as the city's IoT rule invokes it (the decoded message and its topic), each dated
on the same day: written by the edge directly, with claims (decision 122).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from citypipe.bootstrap.ingest import tokens_from
from citypipe.domain.city import City
from citypipe.domain.model import Function
from citypipe.entrypoints.events import IOT_TOPIC
from citypipe.ports import TOKEN_HEADER
from citypipe.service.optout_http import OPTOUT_PATH
from citypipe_local.replay import PIPELINE, Probed, Session, decoded
from citypipe_local.runner import LambdaContext, Platform, scaleway_http_event

HOST = "rehearsal.citypipe.invalid"  # the API's links name it (RFC 6761: never resolves)
API_ROOT = "/features"
# a token no source has: the webhook refuses it (401), whatever the source
REFUSED_TOKEN = "cpt-rehearsal-not-a-token"  # noqa: S105 (refused by design)
OPTED_OUT = "00:00:5e:00:53:01"  # an address for documentation (RFC 7042): no device's
ITEMS = "limit=3"  # a page of each collection: the API reads the published Parquet
# what an answer's body counts, as a digest keeps it: the API's page, the webhook's readings
# and whether it handed them to the buffer
COUNTED = {"returned": "numberReturned", "accepted": "accepted", "buffered": "buffered"}
POSTED = 12  # at most this many SenML packs of the captures are posted to the webhook
UPLINKS = 6  # at most this many IoT Core uplinks of the captures are handed to ingest (AWS)

Ask = Callable[[str, dict[str, Any]], dict[str, Any]]  # (entry point, event) -> answer


def http_event(
    platform: Platform,
    method: str,
    path: str,
    *,
    route: str = "",
    parameters: dict[str, str] | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: str = "",
    request_id: str = "",
) -> dict[str, Any]:
    """One request as its platform hands it to a function: on AWS, through the HTTP API's
    ``route`` (the template's route key, its ``parameters`` filled); on Scaleway, as the
    function's own URL takes it."""
    sent = {"host": HOST, **(headers or {})}
    if platform == "scaleway":
        return scaleway_http_event(method, path, body, sent, request_id, dict(parse_qsl(query)))
    return {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": sent,
        "pathParameters": parameters,
        "requestContext": {
            "domainName": HOST,
            "requestId": request_id,
            "http": {"method": method, "path": path},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def digest(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer as two runs compare it: its status, media type and body's SHA-256, and the
    counts of ``COUNTED`` its body gives (None where it gives none)."""
    headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
    body = str(answer.get("body") or "")
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    said = document if isinstance(document, dict) else {}
    counts = {name: said.get(field) for name, field in COUNTED.items()}
    return {
        "status": int(answer.get("statusCode", 0)),
        "content_type": headers.get("content-type", ""),
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
        **{name: n if isinstance(n, int) else None for name, n in counts.items()},
    }


def api_answers(ask: Ask, platform: Platform) -> dict[str, dict[str, Any]]:
    """The API's landing page, conformance, OpenAPI document and collections, and each
    collection's description and first page of items, by request."""

    def get(path: str, query: str = "") -> dict[str, Any]:
        proxy = path.removeprefix(f"{API_ROOT}/")
        route = f"GET {API_ROOT}" if path == API_ROOT else f"GET {API_ROOT}/{{proxy+}}"
        parameters = None if path == API_ROOT else {"proxy": proxy}
        event = http_event(platform, "GET", path, route=route, parameters=parameters, query=query)
        return ask("api", event)

    listed = get(f"{API_ROOT}/collections")
    collections = [c["id"] for c in json.loads(listed["body"]).get("collections", [])]
    asked = [API_ROOT, f"{API_ROOT}/conformance", f"{API_ROOT}/api"]
    asked += [f"{API_ROOT}/collections/{c}" for c in collections]
    answers = {f"{API_ROOT}/collections": digest(listed)}
    answers |= {path: digest(get(path)) for path in asked}
    for c in collections:
        path = f"{API_ROOT}/collections/{c}/items"
        answers[f"{path}?{ITEMS}"] = digest(get(path, ITEMS))
    return answers


def _ingest_event(
    platform: Platform, method: str, source: str, fmt: str, **request: Any
) -> dict[str, Any]:
    """A request to ``/ingest/{source}/{format}``, through the webhook's route."""
    path = f"/ingest/{source}/{fmt}"
    parameters = {"source": source, "format": fmt}
    route = f"{method} /ingest/{{source}}/{{format}}"
    return http_event(platform, method, path, route=route, parameters=parameters, **request)


def webhook_answers(ask: Ask, city: City, platform: Platform) -> dict[str, dict[str, Any]]:
    """What the webhook answers, none of it counted in the books: each source's request
    with a token no source has (``refused``), Meraki's validator (``GET``) where a source
    gives one (``validator``), and a resident's opt-out (``optout``)."""
    refused, validator = {}, {}
    for name, source in sorted(city.sources.items()):
        wrong = {TOKEN_HEADER: REFUSED_TOKEN}
        event = _ingest_event(platform, "POST", name, "canonical", headers=wrong)
        refused[f"/ingest/{name}/canonical"] = digest(ask("webhook", event))
        if source.webhook.validator is not None:
            event = _ingest_event(platform, "GET", name, "meraki")
            validator[f"/ingest/{name}/meraki"] = digest(ask("webhook", event))
    body = json.dumps({"address": OPTED_OUT})
    optout = http_event(
        platform, "POST", OPTOUT_PATH, route=f"POST {OPTOUT_PATH}", body=body,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    taken = {OPTOUT_PATH: digest(ask("webhook", optout))}
    return {"refused": refused, "validator": validator, "optout": taken}


def packs(input_dir: Path, city: City, dated: datetime) -> list[tuple[str, str]]:
    """(source, pack) of the captures' first ``POSTED`` SenML packs of registered devices
    whose base record dates them, each dated ``dated`` and a second more than the one
    before: what a hub posts to the webhook, a request each."""
    path = input_dir / "senml.jsonl"
    if not path.is_file():
        return []
    posted: list[tuple[str, str]] = []
    with path.open("rb") as captures:
        for payload in decoded(line for line in captures if line.strip()):
            pack = _array(payload.body)
            base = pack[0] if pack and isinstance(pack[0], dict) else {}
            name = base.get("bn")
            if "bt" not in base or not isinstance(name, str) or name[-1:] not in ("/", ":"):
                continue
            device = city.device("senml", name[:-1])
            if device is not None:
                base["bt"] = int(dated.timestamp()) + len(posted)
                posted.append((device.source, json.dumps(pack)))
            if len(posted) == POSTED:
                break
    return posted


def uplinks(input_dir: Path, city: City, dated: datetime) -> list[dict[str, Any]]:
    """The captures' first ``UPLINKS`` IoT Core for LoRaWAN uplinks that a rule decoded
    (``transformed_message``), of registered devices, as the city's IoT rule hands them to
    ingest: the message and its topic (``IOT_TOPIC``). Each uplink's ``Timestamp`` is dated
    ``dated``, a second after the packs' and the uplink before it. (A rule's plain JSON has
    no time citypipe reads: its arrival would date it differently in each run.)"""
    path = input_dir / "aws-iot.jsonl"
    if not path.is_file():
        return []
    found: list[dict[str, Any]] = []
    taken: set[bytes | str] = set()  # a hub's resend, dated anew, would be new readings
    with path.open("rb") as captures:
        for payload in decoded(line for line in captures if line.strip()):
            document = _document(payload.body)
            decoded_by_rule = _object(document.get("transformed_message"))
            lns = _object(_object(document.get("lns_message")).get("WirelessMetadata"))
            lorawan = _object(lns.get("LoRaWAN"))
            device = decoded_by_rule.get("DevEui")
            if "Timestamp" not in lorawan or not isinstance(device, str):
                continue
            if city.device("lorawan", device) is None or not payload.ctx.topic:
                continue
            if payload.body in taken:
                continue
            taken.add(payload.body)
            at = dated + timedelta(seconds=POSTED + len(found))
            lorawan["Timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            found.append({**document, IOT_TOPIC: payload.ctx.topic})
            if len(found) == UPLINKS:
                break
    return found


def iot_answers(session: Session, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Ingest's answers to IoT Core's rule events (its Lambda action invokes it, on AWS):
    the counts, without the time each took (no two runs take the same)."""
    function = session.deps.names.queue(Function.INGEST)
    region = session.settings.backend.region or ""
    arn = f"arn:aws:lambda:{region}:000000000000:function:{function}"
    answers = {}
    for number, event in enumerate(events, start=1):
        context = LambdaContext(function, arn, timeout_s=30)
        answer = session.invoker.invoke(Function.INGEST, "aws", event, context)
        answers[f"iot #{number}"] = {k: v for k, v in answer.items() if k != "seconds"}
    return answers


def _document(body: bytes | str) -> dict[str, Any]:
    """The JSON object a body holds, else {}."""
    try:
        return _object(json.loads(body))
    except ValueError:
        return {}


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is an object (a field held as a JSON string is not read: its time
    could not be dated anew), else {}."""
    return value if isinstance(value, dict) else {}


def _array(body: bytes | str) -> list[Any]:
    """A body's JSON array ([] for a body that holds none: a spoiled capture)."""
    try:
        document = json.loads(body)
    except ValueError:
        return []
    return document if isinstance(document, list) else []


def posted_answers(
    ask: Ask, session: Session, posted: list[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """The webhook's answers to ``posted`` (source, SenML pack), each with a token minted
    for its source in the stack's token store, under a request id of its own: the same in
    every run, so that the batches, their objects and the order the day's partials are
    summed in are too (floating point sums in another order differ in the last bits)."""
    tokens = tokens_from(session.settings, session.deps)
    minted = {source: tokens.mint(source) for source in sorted({s for s, _ in posted})}
    answers = {}
    for number, (source, pack) in enumerate(posted, start=1):
        headers = {TOKEN_HEADER: minted[source], "content-type": "application/json"}
        request = {"headers": headers, "body": pack, "request_id": f"rehearsal-{number}"}
        event = _ingest_event(session.options.platform, "POST", source, "senml", **request)
        answers[f"/ingest/{source}/senml #{number}"] = digest(ask("webhook", event))
    return answers


def public_answers(session: Session, input_dir: Path, dated: datetime) -> Probed:
    """The webhook's and the API's answers on the session's stack, through its invoker (the
    source tree's functions, or the artefacts'): ``ReplayOptions.probe``. Between them the
    pipeline is drained and the day exported: the packs posted (``packs``, dated ``dated``:
    a day whose key lives) are written by ingest's batcher, anonymized, aggregated and
    published before the API is asked."""
    deps, platform = session.deps, session.options.platform
    region = session.settings.backend.region or ""

    def ask(name: str, event: dict[str, Any]) -> dict[str, Any]:
        function = f"{deps.names.prefix}{deps.city.slug}-{'api' if name == 'api' else 'ingest'}"
        context: Any = {"memoryLimitInMb": 1024, "functionName": function}
        if platform == "aws":
            arn = f"arn:aws:lambda:{region}:000000000000:function:{function}"
            context = LambdaContext(function, arn, timeout_s=30)
        return session.invoker.invoke_public(name, platform, event, context)

    posting = packs(input_dir, deps.city, dated)
    ruled = uplinks(input_dir, deps.city, dated) if platform == "aws" else []
    # the packs first: their tokens are minted before the webhook's first request (a warm
    # container keeps the token digests it read for a while, as a deployed one does)
    answers = {"posted": posted_answers(ask, session, posting)}
    answers |= webhook_answers(ask, deps.city, platform)
    answers["iot"] = iot_answers(session, ruled)
    session.runner.wake(*PIPELINE)
    session.runner.drain(PIPELINE)
    session.export_all()  # the packs' day
    return Probed(len(posting) + len(ruled), answers | {"api": api_answers(ask, platform)})
