"""Fixtures of the integration tests that serve the webhook (``citypipe serve``'s server on
the embedded backend): ``test_serve.py`` and ``test_serve_optout.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from citypipe.service.kernel import Deps
from citypipe_local.backends import Endpoint
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens
from citypipe_local.serve import ServerOptions, WebhookServer


@pytest.fixture
def deps(embedded: Endpoint, fresh_stack: Callable[[Endpoint], tuple[Any, Deps]]) -> Deps:
    """A stack of its own on the embedded backend."""
    return fresh_stack(embedded)[1]


@pytest.fixture
def tokens() -> InMemoryWebhookTokens:
    """A webhook token minted for each of the example city's pushing sources."""
    store = InMemoryWebhookTokens()
    for source in ("air-quality", "traffic-counters", "wifi-counters"):
        store.mint(source)
    return store


@pytest.fixture
def server(deps: Deps, tokens: InMemoryWebhookTokens) -> Iterator[WebhookServer]:
    """The webhook server on a free port, stopped after the test."""
    started = WebhookServer(deps, tokens, InMemoryKeyStore(), ServerOptions(port=0, timeout_s=5))
    started.start()
    yield started
    started.shutdown()
    started.server_close()
