"""Shared fixtures. Backends are real: moto server as a child process, LocalStack on the
host (started by the fixture when none answers). Unit tests use the in-memory fakes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from repo import CITY_FILE, webhook_token

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


@pytest.fixture(scope="session")
def city() -> City:
    return load_city(CITY_FILE)


def _memory_stack(city: City) -> Deps:
    """A whole city stack in memory: every zone bucket and the keys bucket, every queue with
    its DLQ, the IoT failures queue."""
    names = StackNames(city.slug)
    queue = InMemoryQueue()
    for function in Function:
        queue.create(names.dlq(function))
        queue.create(names.queue(function), 30, names.dlq(function), 3)
    queue.create(names.iot_failures())
    return Deps(
        city=city,
        names=names,
        store=InMemoryObjectStore([*(names.bucket(z) for z in Zone), names.keys_bucket()]),
        queue=queue,
        clock=FixedClock(datetime(2026, 6, 2, 23, 30, tzinfo=UTC)),  # 1 June's people are due
    )


@pytest.fixture
def memory_deps(city: City) -> Deps:
    """A whole city stack in memory: every zone bucket, every queue with its DLQ, the IoT
    failures queue."""
    return _memory_stack(city)


@pytest.fixture(scope="session")
def memory_stack() -> Callable[[City], Deps]:
    """Makes a whole stack in memory for a city of the test's own."""
    return _memory_stack


@pytest.fixture
def memory_keys() -> InMemoryKeyStore:
    """The daily secrets of anonymize and the hourly job, in memory."""
    return InMemoryKeyStore()


@pytest.fixture
def memory_tokens(city: City) -> InMemoryWebhookTokens:
    """Every source of the city with one webhook token (``webhook_token``)."""
    tokens = InMemoryWebhookTokens()
    for source in city.sources:
        tokens.digests[source] = [token_digest(webhook_token(source))]
    return tokens


@pytest.fixture(scope="session")
def embedded() -> Iterator[Endpoint]:
    with backend("embedded") as endpoint:
        yield endpoint


def _fresh_stack(endpoint: Endpoint) -> tuple[Settings, Deps]:
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
def fresh_stack() -> Callable[[Endpoint], tuple[Settings, Deps]]:
    """Makes a city stack of its own (a unique name prefix) on a backend."""
    return _fresh_stack


@pytest.fixture(scope="session")
def localstack() -> Iterator[Endpoint]:
    with backend("localstack", Settings().localstack_endpoint) as endpoint:
        yield endpoint
