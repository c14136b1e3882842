"""From zero to the first published file on a Scaleway-like stack, as docs/deploy.md says:
provision with `citypipe stack up --cloud scaleway`, push payloads, let the functions run
through their Scaleway entry points, request an export.

The embedded backend plays Scaleway: it refuses PutPublicAccessBlock, as Scaleway's Object
Storage does, and Object Storage and Queues are configured apart, each with its own keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.handlers import BUILTIN_HANDLERS
from repo import CITY_FILE

from citypipe.adapters.keys import ObjectKeyStore
from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.domain.city import City
from citypipe.domain.model import Function, Zone
from citypipe.settings import Settings
from citypipe_local.backends import Endpoint
from citypipe_local.cli import main
from citypipe_local.report import build_report
from citypipe_local.runner import LocalRunner, in_process_handlers
from citypipe_local.simulate import simulate


@pytest.fixture
def scaleway_env(embedded: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The settings a Scaleway deployment gets: services apart, each with its own keys."""
    backend = embedded.settings
    env = {
        "CITYPIPE_STACK__CITY_FILE": str(CITY_FILE),
        "CITYPIPE_STACK__NAME_PREFIX": f"scw{uuid.uuid4().hex[:8]}-",
        "CITYPIPE_BACKEND__REGION": "eu-central-1",
        "CITYPIPE_STORAGE__ENDPOINT_URL": str(backend.endpoint_url),
        "CITYPIPE_STORAGE__ACCESS_KEY_ID": "storage-key",
        "CITYPIPE_STORAGE__SECRET_ACCESS_KEY": "storage-secret",
        "CITYPIPE_QUEUES__ENDPOINT_URL": str(backend.endpoint_url),
        "CITYPIPE_QUEUES__ACCESS_KEY_ID": "queues-key",
        "CITYPIPE_QUEUES__SECRET_ACCESS_KEY": "queues-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refused: list[str] = []

    def scaleway_has_none(model: Any, **_: Any) -> None:
        if model.name == "PutPublicAccessBlock":
            refused.append(model.name)
            raise NotImplementedError("Scaleway: PutPublicAccessBlock is not implemented")

    BUILTIN_HANDLERS.append(("before-call.s3.PutPublicAccessBlock", scaleway_has_none))
    yield env
    BUILTIN_HANDLERS.remove(("before-call.s3.PutPublicAccessBlock", scaleway_has_none))
    assert refused == []  # nothing ever asked for it


def test_from_zero_to_the_first_published_file(
    scaleway_env: dict[str, str], city: City, tmp_path: Path
) -> None:
    on = ["--city", str(CITY_FILE)]
    # Given an hour of a small city's payloads, and a stack provisioned for Scaleway
    summary = simulate(city, tmp_path / "input", hours=1, scale=0.03)
    assert main(["stack", "up", *on, "--backend", "env", "--cloud", "scaleway"]) == 0
    # When the payloads are pushed, the functions run through their Scaleway entry points
    # (one message per POST), and an export is requested
    assert main(["push", *on, "--input", str(tmp_path / "input")]) == 0
    settings = Settings()
    deps = deps_from(settings)
    keys = key_store_from(settings, deps)
    runner = LocalRunner(
        deps.names,
        deps.queue,
        handlers=in_process_handlers(deps, keys, platform="scaleway"),
        platform="scaleway",
    )
    runner.drain([Function.INGEST, Function.ANONYMIZE, Function.AGGREGATE], timeout_s=300)
    assert main(["request-export", *on]) == 0
    runner.drain([Function.EXPORT], timeout_s=300)
    # Then the day is published, its secret sits in the keys bucket, and the books balance
    opened = [i.key for i in deps.store.list(deps.names.bucket(Zone.OPEN))]
    assert any(key.endswith(".csv") for key in opened)
    assert isinstance(keys, ObjectKeyStore)
    assert [i.key for i in deps.store.list(deps.names.keys_bucket(), "secrets/velden/")]
    report = build_report(deps, sum(summary.payloads.values()))  # hub messages and CSV rows
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
