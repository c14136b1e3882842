"""The open zone of a city with every theme, exported in memory: what the open-data tests
of make test (tests/unit/test_open_conformance.py, test_open_shapes.py) and of make
conformance (tests/conformance/test_open_zone.py) validate."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import rdflib
from unit_support import (
    DAY,
    RELEASE_KEYS,
    add_source,
    city_data,
    devices,
    exporting,
    no2,
    put_partial,
    reading,
    vehicles,
)

from citypipe.domain.city import City, parse_city
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.service.export import export_day
from citypipe.service.kernel import Deps

THEMES = ["air-quality", "noise", "traffic-flow", "parking", "people-counts", "weather"]


def every_theme_city() -> City:
    """The example city, with noise monitors and parking sensors declared too."""
    data = city_data()
    add_source(
        data,
        "noise-monitors",
        "noise monitor",
        "noise mapping under the Environmental Noise Directive",
        laeq="noise.laeq",
    )
    add_source(data, "parking-sensors", "parking occupancy sensor", "parking guidance",
               occupancy="parking.occupancy")  # fmt: skip
    return parse_city(data)


def export_every_theme(memory_deps: Deps) -> Deps:
    """A day of every theme (under k for people in noord) exported into the stack's open
    zone, in memory."""
    deps = dataclasses.replace(memory_deps, city=every_theme_city())
    put_partial(
        deps,
        "a",
        no2(0, 21.5),
        no2(20, 30.0, zone="noord"),
        reading(1, 48.5, quantity="air.pm10"),
        reading(2, 62.0, quantity="noise.laeq"),
        reading(3, 7.0, quantity="traffic.bicycles"),
        reading(4, 81.0, quantity="parking.occupancy", zone="west"),
        vehicles(5, 14.0),
        reading(5, 3.0, quantity="traffic.heavy_vehicles"),
        reading(5, 40.0, quantity="traffic.pedestrians"),
        reading(6, 18.5, quantity="weather.temperature"),
        reading(6, 65.0, quantity="weather.humidity"),
        reading(6, 101_300.0, quantity="weather.pressure"),
        *devices(60),
        *devices(3, zone="noord", first=100),
    )
    assert export_day(deps, exporting(RELEASE_KEYS), DAY) == "done"
    return deps


_OPEN_ZONE: dict[str, bytes] = {}


def open_zone_of_every_theme(memory_deps: Deps) -> dict[str, bytes]:
    """The open zone of ``export_every_theme`` (key -> body), exported once per process and
    shared by the tests that only read it (the export is deterministic: a fixed clock and
    release keys). ``memory_deps``: a fresh stack, used the first time only."""
    if not _OPEN_ZONE:
        deps = export_every_theme(memory_deps)
        bucket = deps.names.bucket(Zone.OPEN)
        _OPEN_ZONE.update(
            {i.key: deps.store.get(bucket, i.key).body for i in deps.store.list(bucket)}
        )
    return _OPEN_ZONE


def open_body(deps: Deps, key: str) -> bytes:
    return deps.store.get(deps.names.bucket(Zone.OPEN), key).body


def catalogue_graph(deps: Deps) -> rdflib.Graph:
    return rdflib.Graph().parse(
        data=open_body(deps, StackNames("velden").catalog_key()), format="json-ld"
    )


def entities(deps: Deps, theme: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        open_body(deps, StackNames("velden").open_file_key(theme, OpenFormat.NGSI_LD, DAY))
    )
    return found
