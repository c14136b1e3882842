"""The tree is the architecture: what ships to a city's cloud, and what each function loads.

The import contracts themselves (the library never imports the laptop tooling; cores
import no cloud SDK; ingest's root loads no pyarrow) are checked by ``lint-imports`` in
``make lint``; these tests check what actually happens at run time and in the artefact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from citypipe_local.package import build_layer, runtime_requirements

HEAVY = ("pyarrow", "datasketches", "numpy")
LAPTOP_ONLY = ("citypipe_local", "moto", "localstack", "typer", "rich", "pytest", "_pytest")
VALIDATORS = ("rdflib", "pyshacl", "frictionless", "jsonschema", "playwright")


def loaded_by_cold_start(function: str) -> set[str]:
    """Top-level modules a fresh interpreter holds after importing a handler file, as
    Lambda does at cold start (no event handled yet)."""
    path = ROOT / "functions" / function / "handler.py"
    script = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", {str(path)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return set(json.loads(out))


def test_ingest_cold_start_loads_no_pyarrow_datasketches_or_laptop_tooling() -> None:
    loaded = loaded_by_cold_start("ingest")

    assert "citypipe" in loaded
    assert not loaded & {*HEAVY, *LAPTOP_ONLY}


@pytest.mark.parametrize("function", ["anonymize", "aggregate", "export"])
def test_no_handler_loads_laptop_tooling_or_validators(function: str) -> None:
    assert not loaded_by_cold_start(function) & {*LAPTOP_ONLY, *VALIDATORS}


def test_no_composition_root_creates_a_client_at_import() -> None:
    # Given a fresh interpreter with no AWS region or credentials at all
    roots = ("ingest", "anonymize", "aggregate", "export")
    script = "; ".join(f"import citypipe.bootstrap.{root}" for root in roots)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    # When every root is imported
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, cwd=ROOT, check=False
    )
    # Then nothing was built (that happens at the first invocation)
    assert done.returncode == 0, done.stderr.decode()


def test_the_layer_requirements_come_from_pyproject_less_what_lambda_provides() -> None:
    requirements = runtime_requirements()

    assert not any(r.startswith("boto3") for r in requirements)
    assert any(r.startswith("pyarrow") for r in requirements)
    assert not any(r.split(">")[0] in LAPTOP_ONLY for r in requirements)


@pytest.mark.slow
def test_the_built_layer_holds_the_library_and_its_runtime_dependencies_only(
    tmp_path: Path,
) -> None:
    # Given the layer built as `make layer` builds it (arm64 wheels, from PyPI or pip's cache)
    layer = build_layer(tmp_path / "layer")
    site = layer.path / "python"
    top = {p.name.split("-")[0].removesuffix(".py") for p in site.iterdir()}
    # Then it holds the library, file for file, and what it imports at run time
    library = ROOT / "layers" / "citypipe" / "python" / "citypipe"
    expected = sorted(
        str(p.relative_to(library)) for p in library.rglob("*.py") if "__pycache__" not in p.parts
    )
    shipped = sorted(str(p.relative_to(site / "citypipe")) for p in (site / "citypipe").rglob("*"))
    assert [s for s in shipped if s.endswith(".py")] == expected
    assert {"citypipe", "pyarrow", "datasketches", "pydantic", "aws_lambda_powertools"} <= top
    # And nothing a laptop or a test needs, no tests/ folders, no headers, no bytecode
    assert not top & {*LAPTOP_ONLY, "boto3", "botocore"}
    leftovers = [
        str(p.relative_to(site))
        for p in site.rglob("*")
        if (p.is_dir() and p.name in {"tests", "test", "__pycache__", "include"})
        or p.suffix in {".pyc", ".h", ".pyx", ".pxd"}
    ]
    assert leftovers == []
