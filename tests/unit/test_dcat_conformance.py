"""The published catalogue conforms to the official DCAT-AP 3.0.1 SHACL shapes.

The shapes are read from the reference directory (never copied into this repository).
Shapes that check controlled vocabularies fetch EU vocabularies over the network, which
is not available here, so the test validates against the shape files alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyshacl
import pytest
import rdflib

from citypipe.core.dcat import catalog
from citypipe.domain.city import City
from citypipe.domain.naming import DATASET, csv_key

SHAPES = ["3.0.1-shapes.ttl", "3.0.1-shapes_recommended.ttl", "3.0.1-range.ttl"]


@pytest.fixture
def catalog_graph(city: City) -> rdflib.Graph:
    days = ["2026-06-01", "2026-06-02"]
    document = catalog(city, DATASET, [(d, csv_key(city.city, d)) for d in days])
    return rdflib.Graph().parse(data=json.dumps(document), format="json-ld")


@pytest.mark.parametrize("shapes", SHAPES)
def test_catalog_conforms_to_dcat_ap_shapes(
    catalog_graph: rdflib.Graph, reference_dir: Path, shapes: str
) -> None:
    shape_graph = rdflib.Graph().parse(reference_dir / "dcat-ap" / shapes)

    conforms, _, report = pyshacl.validate(
        catalog_graph, shacl_graph=shape_graph, inference="none", allow_warnings=True
    )

    assert conforms, report


def test_catalog_lists_one_distribution_per_published_day(catalog_graph: rdflib.Graph) -> None:
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")

    distributions = set(catalog_graph.objects(None, dcat.distribution))

    assert len(distributions) == 2
