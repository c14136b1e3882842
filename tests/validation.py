"""Validators of the open zone, shared by every suite: SHACL (pyshacl), JSON Schema 2020-12
(jsonschema, references resolved from local files only: no network), Frictionless
(``frictionless validate``).

``make test`` validates against the project's own shapes and schemas (``tests/shapes``,
``tests/schemas``), written from the specifications' public text; ``make conformance``
validates the same documents against the official files of the third-party reference set
(``tests/conformance/reference.py``). Used on an export in memory (unit tests) and on a
replay's ``out/open`` (end to end tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pyshacl
import rdflib
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

TESTS = Path(__file__).resolve().parent
SHAPES = TESTS / "shapes"
DCAT_AP = SHAPES / "dcat-ap.ttl"  # DCAT-AP 3.0.1: mandatory, recommended, ranges
HVD = SHAPES / "hvd.ttl"  # DCAT-AP HVD 3.0.0: what a High-Value Dataset adds
SDM_SCHEMAS = TESTS / "schemas" / "sdm"  # the Smart Data Models the export publishes
R5R = rdflib.Namespace("http://data.europa.eu/r5r/")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
HVD_REGULATION = rdflib.URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")

Validator = Draft202012Validator


def without_dangling_properties(shapes: rdflib.Graph) -> list[rdflib.term.Node]:
    """Drop every ``sh:property`` that names a property shape the file never defines (no
    ``sh:path``): the official DCAT-AP 3.0.1 SHACL (dcat-ap-SHACL.ttl) names two such for
    dcat:DataService (SEMICeu/DCAT-AP issue 448), and SHACL engines refuse the whole file
    once a graph holds a data service. Every shape the file does define is kept. Returns
    what was dropped."""
    dangling = [
        o for o in set(shapes.objects(None, SH.property)) if (o, SH.path, None) not in shapes
    ]
    for shape in dangling:
        shapes.remove((None, SH.property, shape))
    return dangling


def _validate(graph: rdflib.Graph, shapes: Path | Sequence[Path]) -> tuple[bool, Any, str]:
    shapes_graph = rdflib.Graph()
    for path in [shapes] if isinstance(shapes, Path) else shapes:
        shapes_graph.parse(path)
    without_dangling_properties(shapes_graph)
    conforms, results, text = pyshacl.validate(
        graph,
        shacl_graph=shapes_graph,
        inference="none",
        allow_warnings=False,
    )
    return bool(conforms), results, str(text)


def shacl_report(graph: rdflib.Graph, shapes: Path | Sequence[Path]) -> tuple[bool, str]:
    """(conforms, report text) of a graph against a shapes file (or several, as one shapes
    graph), no inference. Warnings (a recommended property missing) fail it too: the
    catalogue has every one."""
    conforms, _, text = _validate(graph, shapes)
    return conforms, text


Finding = tuple[rdflib.term.Node, rdflib.term.Node | None, str]  # (focus, path, severity)


def shacl_findings(graph: rdflib.Graph, shapes: Path | Sequence[Path]) -> set[Finding]:
    """What the shapes found: (focus node, property path, severity name) of every result."""
    _, results, _ = _validate(graph, shapes)
    found = set()
    for result in results.subjects(rdflib.RDF.type, SH.ValidationResult):
        severity = results.value(result, SH.resultSeverity)
        found.add(
            (
                results.value(result, SH.focusNode),
                results.value(result, SH.resultPath),
                str(severity).rsplit("#", 1)[-1],
            )
        )
    return found


def hvd_subgraph(graph: rdflib.Graph) -> rdflib.Graph:
    """What the HVD profile applies to: the datasets under the HVD regulation or tagged with
    an HVD category, their distributions and every node they reach (the HVD shapes require
    legislation and a category of every dataset they see, so other datasets are left out,
    even where a data service that serves them too leads to them)."""
    roots = set(graph.subjects(R5R.applicableLegislation, HVD_REGULATION))
    roots |= set(graph.subjects(R5R.hvdCategory, None))
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
            other = (o, rdflib.RDF.type, DCAT.Dataset) in graph and o not in datasets
            if isinstance(o, rdflib.URIRef | rdflib.BNode) and not other:
                todo.append(o)
    return sub


def local_registry(resources: Iterable[tuple[str, Path]]) -> Registry:  # type: ignore[type-arg]
    """A registry of JSON Schemas from local files, each under the URI it is referenced by;
    nothing else resolves (no retrieval: a missing schema is an error, never a download)."""
    return Registry().with_resources(
        (uri, Resource.from_contents(json.loads(path.read_text("utf-8"))))
        for uri, path in resources
    )


@cache
def own_registry() -> Registry:  # type: ignore[type-arg]
    """The project's own Smart Data Model schemas, each under its ``$id``."""
    paths = sorted(SDM_SCHEMAS.glob("*.json"))
    return local_registry((json.loads(p.read_text("utf-8"))["$id"], p) for p in paths)


def own_sdm_validator(entity_type: str) -> Validator:
    """The project's own schema of an entity type (``tests/schemas/sdm/<type>.json``)."""
    schema = json.loads((SDM_SCHEMAS / f"{entity_type}.json").read_text("utf-8"))
    return Validator(schema, registry=own_registry(), format_checker=Validator.FORMAT_CHECKER)


def schema_errors(
    validator_for: Callable[[str], Validator], entities: Iterable[dict[str, Any]]
) -> list[str]:
    """Every schema error of every entity, as 'id: message', each entity validated by the
    schema of its type."""
    errors = []
    for entity in entities:
        validator = validator_for(entity["type"])
        errors += [f"{entity['id']}: {e.message}" for e in validator.iter_errors(entity)]
    return errors


def own_sdm_errors(entities: Iterable[dict[str, Any]]) -> list[str]:
    """Every error of these entities against the project's own Smart Data Model schemas."""
    return schema_errors(own_sdm_validator, entities)


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
