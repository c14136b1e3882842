"""Validators of the open zone against the official reference files (never copied into
this repository): DCAT-AP 3.0.1 and HVD SHACL shapes (pyshacl), the FIWARE Smart Data
Models (jsonschema, remote ``$ref`` resolved to the local files, offline), Frictionless
(``frictionless validate``). Shared by the unit tests (an export in memory) and the end
to end tests (a replay's ``out/open``)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pyshacl
import rdflib
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

DCAT_AP_SHAPES = [
    "3.0.1-shapes.ttl",
    "3.0.1-shapes_recommended.ttl",
    "3.0.1-range.ttl",
    "3.0.1-dcat-ap-SHACL.ttl",
]
HVD_SHAPES = "3.0.0-hvd-hvd-SHACL.ttl"
R5R = rdflib.Namespace("http://data.europa.eu/r5r/")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
HVD_REGULATION = rdflib.URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
REMOTE = {
    "https://smart-data-models.github.io/data-models/common-schema.json": "common-schema.json",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "Environment-schema.json": "Environment-schema.json",
}


def shacl_report(graph: rdflib.Graph, shapes: Path) -> tuple[bool, str]:
    """(conforms, report text) of a graph against one shapes file, no inference. Warnings
    (a recommended property missing) fail it too: the catalogue has every one."""
    conforms, _, text = pyshacl.validate(
        graph,
        shacl_graph=rdflib.Graph().parse(shapes),
        inference="none",
        allow_warnings=False,
    )
    return bool(conforms), str(text)


def hvd_subgraph(graph: rdflib.Graph) -> rdflib.Graph:
    """What the HVD profile applies to: the datasets under the HVD regulation, their
    distributions and every node they reach (the HVD shapes require legislation and a
    category of every dataset they see, so other datasets are left out)."""
    roots = set(graph.subjects(R5R.applicableLegislation, HVD_REGULATION))
    datasets = {r for r in roots if (r, rdflib.RDF.type, DCAT.Dataset) in graph}
    sub = rdflib.Graph()
    todo, seen = list(datasets), set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        for p, o in graph.predicate_objects(node):
            sub.add((node, p, o))
            if isinstance(o, rdflib.URIRef | rdflib.BNode):
                todo.append(o)
    return sub


@cache
def registry(reference_dir: Path) -> Registry:  # type: ignore[type-arg]
    """The Smart Data Models' remote schemas, from the local reference files."""
    models = reference_dir / "smart-data-models"
    resources = [
        (url, Resource.from_contents(json.loads((models / name).read_text())))
        for url, name in REMOTE.items()
    ]
    return Registry().with_resources(resources)


def sdm_validator(reference_dir: Path, entity_type: str) -> Draft202012Validator:
    schema = json.loads(
        (reference_dir / "smart-data-models" / entity_type / "schema.json").read_text()
    )
    return Draft202012Validator(
        schema,
        registry=registry(reference_dir),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def sdm_errors(reference_dir: Path, entities: list[dict[str, Any]]) -> list[str]:
    """Every schema error of every entity, as 'id: message'."""
    errors = []
    for entity in entities:
        validator = sdm_validator(reference_dir, entity["type"])
        errors += [f"{entity['id']}: {e.message}" for e in validator.iter_errors(entity)]
    return errors


def frictionless_validate(descriptor: Path) -> subprocess.CompletedProcess[str]:
    """``frictionless validate`` of a data package, as a user runs it (JSON report)."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("frictionless")),
            "validate",
            "--json",
            descriptor.name,
        ],
        capture_output=True,
        text=True,
        cwd=descriptor.parent,
        check=False,
        timeout=300,
    )
