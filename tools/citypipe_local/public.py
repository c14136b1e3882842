"""The public entry points asked as their platforms ask them, on a live stack whose day is
published: the open-data API (``GET /features/…``) and the hubs' webhook, each through the
HTTP event its platform delivers (API Gateway's HTTP API on AWS, Scaleway's 1.0 shape).

What they answer is digested (status, media type, the body's SHA-256) so that two runs —
the source tree's and the deployment artefacts' (``citypipe_local.rehearse``) — can be
compared answer by answer. The webhook is asked what a hub asks: a request with a token no
source has (refused), Meraki's validator where a source gives one, and the run's first
SenML packs dated on a day whose key lives (a platform dates a request by its arrival: the
captured day is too old), each with its source's token, buffered, written by ingest's
batcher and published; they count in the run's books (``Probed.sent``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from citypipe.bootstrap.ingest import tokens_from
from citypipe.domain.city import City
from citypipe.domain.naming import StackNames
from citypipe.ports import TOKEN_HEADER
from citypipe_local.replay import PIPELINE, Probed, Session
from citypipe_local.runner import LambdaContext, Platform

HOST = "rehearsal.citypipe.invalid"  # the API's links name it (RFC 6761: never resolves)
API_ROOT = "/features"
# a token no source has: the webhook refuses it (401), whatever the source
REFUSED_TOKEN = "cpt-rehearsal-not-a-token"  # noqa: S105 (refused by design)
ITEMS = "limit=3"  # a page of each collection: the API reads the day's Parquet
# what an answer's body counts, as a digest keeps it: the API's page, the webhook's readings
COUNTED = {"returned": "numberReturned", "accepted": "accepted"}
POSTED = 12  # the captured SenML packs posted to the webhook, dated on a day whose key lives

Ask = Callable[[str, dict[str, Any], Any], dict[str, Any]]  # (entry point, event, context)


def http_event(
    platform: Platform,
    method: str,
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: str = "",
    request_id: str = "",
) -> dict[str, Any]:
    """The HTTP event a platform delivers for one request (``request_id``: the platform's
    id of it, which names the request in ingest's buffer)."""
    sent = {"host": HOST, **(headers or {})}
    if platform == "aws":
        return {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": sent,
            "requestContext": {
                "domainName": HOST,
                "requestId": request_id,
                "http": {"method": method, "path": path},
            },
            "body": body,
            "isBase64Encoded": False,
        }
    return {
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "queryStringParameters": dict(parse_qsl(query)),
        "multiValueQueryStringParameters": None,
        "requestContext": {"httpMethod": method, "requestId": request_id},
        "body": body,
        "isBase64Encoded": False,
    }


def context_of(platform: Platform, names: StackNames, name: str, region: str) -> Any:
    """What the platform passes a function of the stack beside the event."""
    function = f"{names.prefix}{names.slug}-{name}"
    if platform == "aws":
        arn = f"arn:aws:lambda:{region}:000000000000:function:{function}"
        return LambdaContext(function, arn, timeout_s=30)
    return {"memoryLimitInMb": 1024, "functionName": function}


def digest(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer as two runs compare it: its status, media type and body's SHA-256; the
    features a page of items returned (``numberReturned``) and the readings the webhook
    accepted (``accepted``), None where the answer says none."""
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


def api_answers(ask: Ask, platform: Platform, context: Any) -> dict[str, dict[str, Any]]:
    """The API's landing page, conformance, OpenAPI document and collections, and each
    collection's description and first page of items, by request."""

    def get(path: str, query: str = "") -> dict[str, Any]:
        return ask("api", http_event(platform, "GET", path, query), context)

    listed = get(f"{API_ROOT}/collections")
    collections = [c["id"] for c in json.loads(listed["body"]).get("collections", [])]
    asked = [f"{API_ROOT}/", f"{API_ROOT}/conformance", f"{API_ROOT}/api"]
    asked += [f"{API_ROOT}/collections/{c}" for c in collections]
    answers = {f"{API_ROOT}/collections": digest(listed)}
    answers |= {path: digest(get(path)) for path in asked}
    for c in collections:
        path = f"{API_ROOT}/collections/{c}/items"
        answers[f"{path}?{ITEMS}"] = digest(get(path, ITEMS))
    return answers


def webhook_answers(
    ask: Ask, city: City, platform: Platform, context: Any
) -> dict[str, dict[str, Any]]:
    """What the webhook answers each source's request with a token no source has, and
    Meraki's validator (``GET``) where a source gives one: nothing written."""
    answers = {}
    for name, source in sorted(city.sources.items()):
        path = f"/ingest/{name}/canonical"
        event = http_event(platform, "POST", path, headers={TOKEN_HEADER: REFUSED_TOKEN})
        answers[f"POST {path}"] = digest(ask("webhook", event, context))
        if source.webhook.validator is not None:
            path = f"/ingest/{name}/meraki"
            event = http_event(platform, "GET", path)
            answers[f"GET {path}"] = digest(ask("webhook", event, context))
    return answers


def observations(input_dir: Path, city: City, dated: datetime) -> list[tuple[str, str]]:
    """(source, body) of the run's first ``POSTED`` SenML packs of registered devices whose
    base record dates them, each dated ``dated`` and a second more than the one before:
    what a hub posts to the webhook, a request each. (A platform dates a request by its
    arrival: the run's captured day is too old to be accepted.)"""
    path = input_dir / "senml.jsonl"
    if not path.is_file():
        return []
    posted: list[tuple[str, str]] = []
    with path.open("rb") as captures:
        for line in captures:
            pack = _document(json.loads(line).get("body"))
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


def _document(body: Any) -> list[Any]:
    """A captured body's JSON array ([] for a body that holds none: a spoiled capture)."""
    try:
        document = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return []
    return document if isinstance(document, list) else []


def posted_answers(
    ask: Ask, session: Session, posted: list[tuple[str, str]], context: Any
) -> dict[str, dict[str, Any]]:
    """``posted`` (source, SenML pack) posted to the webhook with their sources' tokens;
    then ingest's queue drained (the batcher writes them, anonymize and aggregate follow)
    and their day exported: the webhook's answers."""
    deps, platform = session.deps, session.options.platform
    tokens = tokens_from(session.settings, deps)
    minted = {source: tokens.mint(source) for source in sorted({s for s, _ in posted})}
    answers = {}
    for number, (source, body) in enumerate(posted, start=1):
        headers = {TOKEN_HEADER: minted[source], "content-type": "application/json"}
        path = f"/ingest/{source}/senml"
        # the same ids in both runs: the batches, their objects and the order the day's
        # partials are summed in are the same (floating point sums in another order differ)
        ident = f"rehearsal-{number}"
        event = http_event(platform, "POST", path, headers=headers, body=body, request_id=ident)
        answers[f"POST {path} #{number}"] = digest(ask("webhook", event, context))
    session.runner.wake(*PIPELINE)
    session.runner.drain(PIPELINE)
    session.export_all()
    return answers


def public_answers(session: Session, input_dir: Path, dated: datetime) -> Probed:
    """The webhook's and the API's answers on the session's stack, through its invoker (the
    source tree's functions, or the artefacts'): ``ReplayOptions.probe``. ``dated``: when
    the packs posted say they were measured (a day whose key lives: the run's today)."""
    deps, platform = session.deps, session.options.platform
    region = session.settings.backend.region or ""

    def ask(name: str, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return session.invoker.invoke_public(name, platform, event, context)

    ingest = context_of(platform, deps.names, "ingest", region)
    packs = observations(input_dir, deps.city, dated)
    posted = posted_answers(ask, session, packs, ingest)  # before the API: it serves their day
    answers = {
        "api": api_answers(ask, platform, context_of(platform, deps.names, "api", region)),
        "webhook": webhook_answers(ask, deps.city, platform, ingest) | posted,
    }
    return Probed(len(packs), answers)
