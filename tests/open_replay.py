"""A small city replayed through the real handlers (what ``make demo`` does at full size),
for the tests that validate a replay's open zone: the end to end tests against the
project's own shapes and schemas (tests/e2e/test_open_data_shapes.py), the conformance
tests against the official ones (tests/conformance/test_replay.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib

from citypipe.domain.city import City
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

CITY_FILE = Path(__file__).resolve().parents[1] / "infra" / "cities" / "velden.yaml"


def replay_small_city(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    """Two hours of a tenth of the example city, replayed: the ``out`` directory."""
    recorded = tmp_path_factory.mktemp("input")
    simulate(city, recorded, hours=2.0, seed=5, scale=0.1)
    target = tmp_path_factory.mktemp("out")
    keys = tmp_path_factory.mktemp("keys")
    report = replay(CITY_FILE, recorded, target, ReplayOptions(batch_payloads=2_000, keys_dir=keys))
    assert report["balanced"], report["checks"]
    return target


def catalogue(open_dir: Path) -> rdflib.Graph:
    """The replay's DCAT-AP catalogue (JSON-LD)."""
    return rdflib.Graph().parse(open_dir / "velden" / "catalog.jsonld", format="json-ld")


def ngsi_ld_entities(open_dir: Path) -> list[dict[str, Any]]:
    """Every NGSI-LD entity of every theme's days."""
    files = sorted(open_dir.rglob("date=*/*.jsonld"))
    return [e for f in files for e in json.loads(f.read_text())]
