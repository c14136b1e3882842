"""Builders and fakes for the unit tests.

Builders start from the real-shaped fixtures in ``events/`` and change only what a test
is about. Fakes are small subclasses of the in-memory adapters, injected through ``Deps``:
no patching inside libraries.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import functools
import gc
import hashlib
import json
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pytest
import yaml
from repo import CITY_FILE, load_event, webhook_token

from citypipe.adapters.scratch import TempScratch
from citypipe.core.aggregate import partial_of
from citypipe.core.anonymize import CLEAN_SCHEMA
from citypipe.core.columnar import parquet_bytes
from citypipe.core.disclosure import noise_of
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Normalized, Payload, normalize
from citypipe.core.people import (
    PeopleRelease,
    capped_counts,
    choice_key,
    contributions,
    release_id,
)
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.errors import TransientError
from citypipe.domain.model import QUANTITY_UNITS, Function, Message, Zone
from citypipe.ports import (
    TOKEN_HEADER,
    Body,
    KeyStore,
    ObjectInfo,
    StoredObject,
    WebhookTokens,
    token_digest,
)
from citypipe.service.aggregate import aggregate_clean
from citypipe.service.anonymize import anonymize_raw
from citypipe.service.buffer import Batcher
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.export import ExportPorts
from citypipe.service.kernel import Deps
from citypipe.service.stage import run_stage
from citypipe.service.webhook import WebhookRequest, answer
from citypipe_local.fakes import (
    FixedClock,
    InMemoryKeyStore,
    InMemoryObjectStore,
    InMemoryWebhookTokens,
)
from citypipe_local.runner import LambdaContext, app_for, load_handler

# The key store of tests that export: its release secret fixed, so the noise of people
# counts is the same in every run.
RELEASE_KEYS = InMemoryKeyStore(noise_secret=bytes(range(100, 132)))


def exporting(keys: KeyStore = RELEASE_KEYS) -> ExportPorts:
    """What export is given: ``keys`` (the release secret, the daily secrets) and the
    machine's scratch space."""
    return ExportPorts(keys, TempScratch())


# --- platform events --------------------------------------------------------------------


def _md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def sqs_event(*bodies: str, fixture: str = "sqs_batch_claim_check.json") -> dict[str, Any]:
    """The SQS fixture with one record per body (fresh messageId, matching md5OfBody)."""
    template = load_event(fixture)["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body
        record["md5OfBody"] = _md5(body)
        records.append(record)
    return {"Records": records}


def claim_check(message: Message) -> str:
    """A claim check as the stages send it (``Queue.send_json`` of the model)."""
    return json.dumps(message.model_dump(exclude_none=True), sort_keys=True)


def s3_notification(bucket: str, key: str, etag: str, event_name: str = "ObjectCreated:Put") -> str:
    """An S3 event notification body, as S3 puts it on a queue (the key URL-encoded)."""
    body = json.loads(load_event("s3_notification_in_sqs.json")["Records"][0]["body"])
    record = body["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    record["s3"]["object"]["eTag"] = etag
    return json.dumps(body)


def http_api_request(
    body: str | bytes,
    source: str = "air-quality",
    method: str = "POST",
    token: str | None = "",
    base64_encoded: bool = False,
    fmt: str = "senml",
    **headers: str,
) -> dict[str, Any]:
    """The HTTP API (payload 2.0) fixture, ``method`` to /ingest/{source}/{fmt}: the source's
    token unless ``token`` is given (None: no token header); ``headers`` added."""
    event = load_event("httpapi_webhook_senml.json")
    raw = body if isinstance(body, bytes) else body.encode()
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/ingest/{source}/{fmt}"
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = {"source": source, "format": fmt}
    event["headers"]["content-length"] = str(len(raw))
    event["headers"].pop("x-citypipe-token")
    if token is not None:
        event["headers"]["x-citypipe-token"] = token or webhook_token(source)
    event["headers"].update({k.replace("_", "-"): v for k, v in headers.items()})
    event["body"] = base64.b64encode(raw).decode() if base64_encoded else raw.decode()
    event["isBase64Encoded"] = base64_encoded
    return event


def apigw_request(
    body: str,
    source: str = "air-quality",
    method: str = "POST",
    base64_encoded: bool = False,
    token: str | None = "",
    fmt: str = "senml",
) -> dict[str, Any]:
    """The API Gateway REST proxy (payload 1.0) fixture, ``method`` to /ingest/{source}/{fmt}."""
    event = load_event("apigw_webhook_senml.json")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = f"/ingest/{source}/{fmt}"
    event["requestContext"]["path"] = f"/prod/ingest/{source}/{fmt}"
    event["pathParameters"] = {"source": source, "format": fmt}
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("X-Citypipe-Token")
    if token is not None:
        event["headers"]["X-Citypipe-Token"] = token or webhook_token(source)
        event["multiValueHeaders"]["X-Citypipe-Token"] = [event["headers"]["X-Citypipe-Token"]]
    event["body"] = base64.b64encode(body.encode()).decode() if base64_encoded else body
    event["isBase64Encoded"] = base64_encoded
    return event


def scheduled_event(time: str) -> dict[str, Any]:
    event = load_event("eventbridge_scheduled.json")
    event["time"] = time
    return event


def lambda_context(function: Function) -> LambdaContext:
    return LambdaContext(
        function.value, f"arn:aws:lambda:eu-central-1:123456789012:function:velden-{function}"
    )


def invoke_handler(
    function: Function,
    event: dict[str, Any],
    deps: Deps,
    keys: KeyStore,
    tokens: WebhookTokens | None = None,
) -> dict[str, Any]:
    """The real ``functions/<name>/handler.py``, loaded as Lambda loads it, on these ports."""
    handler = load_handler(function)
    return handler(event, lambda_context(function), app=app_for(function, deps, keys, tokens))


def post(
    deps: Deps,
    keys: KeyStore | None,
    source: str,
    fmt: str,
    body: str | bytes,
    headers: dict[str, str] | None = None,
    buffered: bool = False,
) -> tuple[int, dict[str, Any]]:
    """A hub's push to ``POST /ingest/{source}/{fmt}`` with the source's token, as every
    platform hands it to ``service.webhook.answer``: (status, answer). A body that is not
    UTF-8 arrives base64-encoded, as API Gateway sends it; ``buffered``: handed to ingest's
    queue (``service.buffer``)."""
    tokens = InMemoryWebhookTokens()
    tokens.digests[source] = [token_digest(webhook_token(source))]
    try:
        text, encoded = (body if isinstance(body, str) else body.decode("utf-8")), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True  # type: ignore[arg-type]
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    request = WebhookRequest(
        "POST", source, fmt, {TOKEN_HEADER: webhook_token(source), **sent}, text, encoded
    )
    response = answer(deps, tokens, keys, request, Batcher(deps) if buffered else None)
    return response.status, response.body


# --- payloads -----------------------------------------------------------------------------


def wifi_observation(**changes: Any) -> dict[str, Any]:
    """The first observation of ``events/canonical_wifi.json``, with ``changes`` applied
    (a value of ``None`` removes the field)."""
    observation = load_event("canonical_wifi.json")[0]
    observation.update(changes)
    return {k: v for k, v in observation.items() if v is not None}


def senml_reading(name: str = "no2", value: Any = 21.5, **fields: Any) -> list[dict[str, Any]]:
    """A pack of one aq-101 reading (SenML, named by its IPv6 address) at 2026-06-01T10:00Z,
    with the position it claims (ignored: the registry places it), fields overridden."""
    return [
        {"bn": "2001:db8:7e1d::65/", "bt": 1780308000, "bu": "ug/m3"},
        {"n": "lat", "u": "lat", "v": 51.4312},
        {"n": "lon", "u": "lon", "v": 5.4451},
        {"n": name, "v": value, **fields},
    ]


def lines(*payloads: Any) -> list[str]:
    """Payloads as a hub sends them: one JSON document a line."""
    return [p if isinstance(p, str) else json.dumps(p) for p in payloads]


# --- clean rows and partials ------------------------------------------------------------

T10 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
DAY = "2026-06-01"


def reading(
    minute: float = 0,
    value: float = 1.0,
    zone: str = "centrum",
    quantity: str = "people.presence",
    device: str | None = "device-1",
    day: datetime = T10,
    sensor: str = "wifi-012",
) -> dict[str, Any]:
    """One clean-zone row. Rows of a quantity other than people carry no pseudonym."""
    people = quantity == "people.presence"
    return {
        "source": "wifi-counters" if people else "air-quality",
        "sensor": sensor if people else "aq-007",
        "quantity": quantity,
        "unit": QUANTITY_UNITS[quantity],
        "value": value,
        "observed_at": day + timedelta(minutes=minute),
        "zone": zone,
        # a device's pseudonym is the same all day, at every sensor of the city
        "pseudonym": f"day:{device}" if people else None,
    }


def no2(minute: float = 0, value: float = 20.0, zone: str = "centrum") -> dict[str, Any]:
    return reading(minute, value, zone, quantity="air.no2")


def vehicles(minute: float = 0, value: float = 12.0, zone: str = "centrum") -> dict[str, Any]:
    return reading(minute, value, zone, quantity="traffic.vehicles")


def devices(
    count: int, minute: float = 0, first: int = 1, sensor: str = "wifi-012", zone: str = "centrum"
) -> list[dict[str, Any]]:
    """One presence reading from each of ``count`` distinct devices, seen by ``sensor``."""
    return [
        reading(minute, device=f"device-{i}", sensor=sensor, zone=zone)
        for i in range(first, first + count)
    ]


def clean(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=CLEAN_SCHEMA)


def release_of(
    city: Any, *rows: dict[str, Any], key: bytes = b"noise", dataset: str = "people-counts"
) -> PeopleRelease:
    """The release of these clean rows' people counts, as export makes it from the clean
    zone, under noise key ``key``."""
    noise = noise_of(city)
    quantities = sorted(city.personal_quantities)
    counts = capped_counts([contributions(clean(*rows), quantities)], noise.cap, choice_key(key))
    return PeopleRelease(
        counts, noise, key, release_id(key, dataset, DAY, noise, counts), city.disclosure.k,
        city.device_ceilings,
    )  # fmt: skip


def put_partial(deps: Deps, name: str, *rows: dict[str, Any], day: str = DAY) -> str:
    """These clean rows in the clean zone (an object per source, as anonymize writes them:
    export counts people from there) and their partial in the aggregates zone, as
    aggregate writes it."""
    for source in sorted({row["source"] for row in rows}):
        mine = clean(*(row for row in rows if row["source"] == source))
        at = f"clean/velden/date={day}/{source}/{name}.parquet"
        deps.store.put(deps.names.bucket(Zone.CLEAN), at, parquet_bytes(mine))
    key = f"aggregates/velden/date={day}/mixed/{name}.parquet"
    deps.store.put(deps.names.bucket(Zone.AGGREGATES), key, parquet_bytes(partial_of(clean(*rows))))
    return key


def open_file(deps: Deps, key: str) -> bytes:
    return deps.store.get(deps.names.bucket(Zone.OPEN), key).body


# --- the city file --------------------------------------------------------------------------


def city_data() -> dict[str, Any]:
    """The example city as a fresh dict, for tests that change one key."""
    return copy.deepcopy(_city_file())


@functools.cache
def _city_file() -> dict[str, Any]:
    """The example city file and its registry, read once (YAML is ten times slower to read
    than a dict is to copy: the tables of bad city files parse a hundred)."""
    data: dict[str, Any] = yaml.safe_load(CITY_FILE.read_text(encoding="utf-8"))
    data["registry"] = yaml.safe_load((CITY_FILE.parent / data["registry"]).read_text("utf-8"))
    return data


def add_source(data: dict[str, Any], name: str, kind: str, purpose: str, **fields: str) -> None:
    """Declare a source in city ``data`` with one SenML device measuring ``fields``
    (hub field -> controlled quantity), registered in the centrum zone."""
    data["sources"][name] = {"kind": kind, "purpose": purpose}
    data["registry"]["profiles"][name] = {
        "source": name,
        "kind": kind,
        "fields": {field: {"quantity": quantity} for field, quantity in fields.items()},
    }
    data["registry"]["devices"][f"{name}-1"] = {
        "profile": name, "hub": "senml", "id": f"{name}-1", "zone": "centrum"
    }  # fmt: skip


# --- fakes ---------------------------------------------------------------------------------


def with_store(deps: Deps, store_type: type[InMemoryObjectStore], **kwargs: Any) -> Deps:
    """The same city stack on another in-memory store (every zone bucket and the keys bucket
    created)."""
    store = store_type([*(deps.names.bucket(z) for z in Zone), deps.names.keys_bucket()], **kwargs)
    return dataclasses.replace(deps, store=store)


class RecordingStore(InMemoryObjectStore):
    """Remembers the order of writes and deletes, as (operation, bucket, key)."""

    def __init__(self, buckets: Iterable[str] = ()) -> None:
        super().__init__(list(buckets))
        self.operations: list[tuple[str, str, str]] = []

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        etag = super()._put(bucket, key, body, content_type, if_absent)
        self.operations.append(("put", bucket, key))
        return etag

    def delete(self, bucket: str, key: str) -> None:
        super().delete(bucket, key)
        self.operations.append(("delete", bucket, key))

    def index(self, operation: str, key_prefix: str) -> int:
        return next(
            i
            for i, (op, _, key) in enumerate(self.operations)
            if op == operation and key.startswith(key_prefix)
        )


class ReversedListingStore(InMemoryObjectStore):
    """Lists objects in reverse key order: what a caller must not depend on."""

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(reversed(list(super().list(bucket, prefix))))


class UnreachableStore(InMemoryObjectStore):
    """Reading the keys in ``unreachable`` times out, as a throttled backend does."""

    def __init__(self, buckets: Iterable[str] = (), unreachable: Iterable[str] = ()) -> None:
        super().__init__(list(buckets))
        self.unreachable = set(unreachable)

    def get(self, bucket: str, key: str) -> StoredObject:
        if key in self.unreachable:
            raise TransientError(f"SlowDown: {key}")
        return super().get(bucket, key)


class FailingWritesStore(InMemoryObjectStore):
    """Writes into ``failing_bucket`` fail transiently until ``heal()``."""

    def __init__(self, buckets: Iterable[str] = (), failing_bucket: str = "") -> None:
        super().__init__(list(buckets))
        self.failing_bucket = failing_bucket

    def heal(self) -> None:
        self.failing_bucket = ""

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        if bucket == self.failing_bucket:
            raise TransientError(f"ServiceUnavailable: {bucket}")
        return super()._put(bucket, key, body, content_type, if_absent)


# --- the normalization path ------------------------------------------------------------------

NOW = 1_780_400_000.0  # 2026-06-02T11:33:20Z: the receiving clock of the unit tests


def normalized(
    city: Any,
    fmt: str,
    *payloads: Any,
    keys: KeyStore | None = None,
    now: float = NOW,
    headers: dict[str, str] | None = None,
    topic: str | None = None,
) -> Normalized:
    """Payloads (documents or text) of one format through the normalization path, as the edge
    receives them at ``now``; pseudonyms under ``keys`` (a fresh in-memory store if None)."""
    ctx = Context(
        received_at=now, topic=topic, headers={k.lower(): v for k, v in (headers or {}).items()}
    )
    store = keys if keys is not None else InMemoryKeyStore()
    return normalize(
        city,
        FORMATS[fmt],
        [
            Payload(
                p
                if isinstance(p, bytes)
                else (p if isinstance(p, str) else json.dumps(p)).encode(),
                ctx,
                n,
            )
            for n, p in enumerate(payloads, start=1)
        ],
        now=now,
        key_for=day_keys(store, city.slug),
    )


def _bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return (payload if isinstance(payload, str) else json.dumps(payload)).encode()


def raw_rows(result: Normalized) -> list[dict[str, Any]]:
    """The raw records of a result, in partition order."""
    return [dict(r) for r in result.records()]


# --- a city's counters through the real pipeline, in memory ----------------------------------


def observation(sensor: str, at: datetime, mac: str) -> bytes:
    """A Wi-Fi counter's canonical observation of one device."""
    text = (
        f'{{"sensor":"{sensor}","quantity":"people.presence","unit":"{{device}}","value":1,'
        f'"observed_at":"{at:%Y-%m-%dT%H:%M:%SZ}","personal":{{"device_mac":"{mac}"}}}}'
    )
    return text.encode()


def push(deps: Deps, keys: InMemoryKeyStore, seen: list[tuple[str, datetime, str]]) -> None:
    """The counters' observations through the edge, as their bridge sends them."""
    fmt = FORMATS["canonical"]
    payloads = [
        Payload(observation(sensor, at, mac), Context(at.timestamp()), n)
        for n, (sensor, at, mac) in enumerate(seen, start=1)
    ]
    admit(deps, keys, Inbound(payloads, Route.REPLAY, fmt))


def drain(deps: Deps) -> None:
    """anonymize, then aggregate, until their queues are empty."""
    for function, core in ((Function.ANONYMIZE, anonymize_raw),
                           (Function.AGGREGATE, aggregate_clean)):  # fmt: skip
        queue = deps.names.queue(function)
        while batch := deps.queue.receive(queue, 10):
            for received in batch:
                run_stage(function, Message.model_validate_json(received.body), deps, core)
            deps.queue.delete(queue, [m.receipt_handle for m in batch])


def at(deps: Deps, moment: datetime) -> Deps:
    """The same stack, its clock at ``moment``."""
    return dataclasses.replace(deps, clock=FixedClock(moment))


def watched(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, part: Callable[[Any], object]
) -> list[weakref.ref[Any]]:
    """``module.name`` wrapped for the test: a weak reference to ``part`` of each result."""
    real = getattr(module, name)
    refs: list[weakref.ref[Any]] = []

    def wrapper(*args: Any) -> Any:
        result = real(*args)
        refs.append(weakref.ref(part(result)))
        return result

    monkeypatch.setattr(module, name, wrapper)
    return refs


@contextlib.contextmanager
def collections_seeing(refs: list[weakref.ref[Any]]) -> Iterator[list[bool]]:
    """Every cyclic collection while inside, made eager (a threshold of one allocation):
    whether any of ``refs`` was alive as each began. A batch alive at a collection is
    walked object by object (decision 0115: about 8 to 9 % of the edge's CPU on the x1 day)."""
    assert gc.isenabled(), "the collector is off: no collection would be seen"
    seen: list[bool] = []

    def began(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(any(ref() is not None for ref in refs))

    threshold = gc.get_threshold()
    gc.set_threshold(1)
    gc.callbacks.append(began)
    try:
        yield seen
    finally:
        gc.callbacks.remove(began)
        gc.set_threshold(*threshold)
