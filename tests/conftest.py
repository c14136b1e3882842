"""Shared fixtures. Backends are real: moto server as a child process, LocalStack on the
host (started by the fixture when none answers). Unit tests use the in-memory fakes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from citypipe.bootstrap import deps_from
from citypipe.domain.city import City, load_city
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.ports import token_digest
from citypipe.service.kernel import Deps
from citypipe.settings import KeySettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint, backend
from citypipe_local.fakes import (
    FixedClock,
    InMemoryKeyStore,
    InMemoryObjectStore,
    InMemoryQueue,
    InMemoryWebhookTokens,
)

ROOT = Path(__file__).resolve().parents[1]
CITY_FILE = ROOT / "infra" / "cities" / "velden.yaml"
EVENTS = ROOT / "events"


@pytest.fixture(scope="session")
def city() -> City:
    return load_city(CITY_FILE)


def memory_stack(city: City) -> Deps:
    """A whole city stack in memory: every zone bucket, every queue with its DLQ."""
    names = StackNames(city.slug)
    queue = InMemoryQueue()
    for function in Function:
        queue.create(names.dlq(function))
        queue.create(names.queue(function), 30, names.dlq(function), 3)
    return Deps(
        city=city,
        names=names,
        store=InMemoryObjectStore([names.bucket(z) for z in Zone]),
        queue=queue,
        clock=FixedClock(datetime(2026, 6, 2, 1, 0, tzinfo=UTC)),
    )


@pytest.fixture
def memory_deps(city: City) -> Deps:
    """A whole city stack in memory: every zone bucket, every queue with its DLQ."""
    return memory_stack(city)


@pytest.fixture
def memory_keys() -> InMemoryKeyStore:
    """The daily secrets of anonymize and the hourly job, in memory."""
    return InMemoryKeyStore()


def webhook_token(source: str) -> str:
    """The token a test hub holds for a source: the fixtures' for air-quality."""
    fixture = load_event("httpapi_webhook_senml.json")
    if source == fixture["pathParameters"]["source"]:
        return str(fixture["headers"]["x-citypipe-token"])
    return f"cpt-{source}-test-token"


@pytest.fixture
def memory_tokens(city: City) -> InMemoryWebhookTokens:
    """Every source of the city with one webhook token (``webhook_token``)."""
    tokens = InMemoryWebhookTokens()
    for source in city.sources:
        tokens.digests[source] = [token_digest(webhook_token(source))]
    return tokens


def load_event(name: str) -> Any:
    """A real-shaped fixture from events/."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def embedded() -> Iterator[Endpoint]:
    with backend("embedded") as endpoint:
        yield endpoint


def fresh_stack(endpoint: Endpoint) -> tuple[Settings, Deps]:
    """A city stack of its own (a unique name prefix) provisioned on ``endpoint``, its keys
    in its keys bucket."""
    settings = Settings(
        backend=endpoint.settings,
        stack=StackSettings(
            deployment="local", city_file=CITY_FILE, name_prefix=f"t{uuid.uuid4().hex[:8]}-"
        ),
        keys=KeySettings(store="object"),
    )
    deps = deps_from(settings)
    stack.up(deps.city, deps.names, stack.make_clients(settings.backend), settings.stack)
    return settings, deps


@pytest.fixture(scope="session")
def localstack() -> Iterator[Endpoint]:
    with backend("localstack", Settings().localstack_endpoint) as endpoint:
        yield endpoint
