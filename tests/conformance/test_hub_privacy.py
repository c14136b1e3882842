"""The edge over the reference payloads: identifiers never reach durable storage in clear,
and a refused payload is quarantined once, as its shape. (Moved from
tests/unit/test_edge_privacy.py; the same checks over the project's own payloads of every
format are tests/unit/test_hub_fixture_privacy.py, in make test.)"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from edge_support import leaks, push_to_webhook, quarantine_rows, stored_text
from unit_support import at

from citypipe.domain.city import City
from citypipe.service.kernel import Deps
from conformance.reference import (
    EXPECTED,
    FOLDER_FORMAT,
    REFERENCE_IDENTIFIERS,
    arrival,
    reference_city,
)


def format_of(name: str) -> str:
    return FOLDER_FORMAT[name.split("/", maxsplit=1)[0]]


def source_of(city: City, name: str) -> str:
    """The source a reference payload's devices belong to (its hub's webhook token is that
    source's); any source for a payload that is refused whole."""
    expected = EXPECTED[name]
    if isinstance(expected, dict):
        return next(iter(city.sources))
    device = city.registry.devices[expected[0][0]]
    return city.registry.profiles[device.profile].source


@pytest.fixture
def reference_deps(memory_deps: Deps) -> Deps:
    return dataclasses.replace(memory_deps, city=reference_city(memory_deps.city))


# --- reference payloads: nothing of their identifiers stored -----------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("cut", [False, True], ids=["as-sent", "truncated"])
def test_no_identifier_of_a_reference_payload_is_stored_or_logged(
    reference_dir: Path,
    reference_deps: Deps,
    caplog: pytest.LogCaptureFixture,
    name: str,
    cut: bool,
) -> None:
    # Given a reference payload as its hub sends it (or cut short, so it cannot be parsed)
    body = (reference_dir / "payloads" / name).read_bytes()
    if cut:
        body = body[: len(body) * 2 // 3]
    # When it is pushed to the webhook
    with caplog.at_level(logging.DEBUG):
        push_to_webhook(reference_deps, source_of(reference_deps.city, name), format_of(name), body)
    # Then no zone and no log line holds any of its identifiers, in any spelling
    stored = stored_text(reference_deps) + caplog.text.lower()
    assert leaks(REFERENCE_IDENTIFIERS, body, stored) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_rejected_reference_payload_is_quarantined_once(
    reference_dir: Path, reference_deps: Deps, name: str
) -> None:
    body = (reference_dir / "payloads" / name).read_bytes()
    now = reference_deps.clock.now().timestamp()
    deps = at(reference_deps, datetime.fromtimestamp(arrival(name, now), UTC))
    push_to_webhook(deps, source_of(deps.city, name), format_of(name), body)
    rows = quarantine_rows(deps)
    assert len(rows) == (1 if isinstance(EXPECTED[name], dict) else 0)
