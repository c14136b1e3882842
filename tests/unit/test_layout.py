"""The tree is the architecture: what ships to a city's cloud, and what each function loads.

The import contracts themselves (the library never imports the laptop tooling; cores
import no cloud SDK; ingest's root loads no pyarrow) are checked by ``lint-imports`` in
``make lint``; these tests check what actually happens at run time and in the artefact.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bytecode_support import PYTHON, folder_bytecode_problems, magic_number
from repo import ROOT

from citypipe_local import package
from citypipe_local.package import (
    LAMBDA_BASE_LIBRARIES,
    LAYER_MOUNT,
    SIZE_BUDGET_BYTES,
    Layer,
    PackagingError,
    build_layer,
    compile_bytecode,
    missing_libraries,
    needed,
    runtime_interpreter,
    runtime_requirements,
    shared_objects,
    trim,
)

HEAVY = ("pyarrow", "numpy")
LAPTOP_ONLY = ("citypipe_local", "moto", "localstack", "typer", "rich", "pytest", "_pytest")
BRIDGE_ONLY = ("citypipe_bridge", "paho")  # the MQTT bridge is a process of its own
VALIDATORS = ("rdflib", "pyshacl", "frictionless", "jsonschema", "playwright")
# A test's independent reading of events; the library logs with its own formatter (0109)
TEST_ONLY = ("aws_lambda_powertools",)


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


def test_ingest_cold_start_loads_no_pyarrow_or_laptop_tooling() -> None:
    loaded = loaded_by_cold_start("ingest")

    assert "citypipe" in loaded
    assert not loaded & {*HEAVY, *LAPTOP_ONLY, *BRIDGE_ONLY, *TEST_ONLY}


@pytest.mark.parametrize("function", ["anonymize", "aggregate", "export"])
def test_no_handler_loads_laptop_tooling_or_validators(function: str) -> None:
    loaded = loaded_by_cold_start(function)
    assert not loaded & {*LAPTOP_ONLY, *VALIDATORS, *BRIDGE_ONLY, *TEST_ONLY}


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


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Layer:
    """The layer built as `make layer` builds it (arm64 wheels, from PyPI or pip's cache)."""
    return build_layer(tmp_path_factory.mktemp("layer") / "layer")


@pytest.mark.slow
def test_the_built_layer_holds_the_library_and_its_runtime_dependencies_only(
    layer: Layer,
) -> None:
    site = layer.path / "python"
    top = {p.name.split("-")[0].removesuffix(".py") for p in site.iterdir()}
    # Then it holds the library, file for file, and what it imports at run time
    library = ROOT / "layers" / "citypipe" / "python" / "citypipe"
    expected = sorted(
        str(p.relative_to(library)) for p in library.rglob("*.py") if "__pycache__" not in p.parts
    )
    shipped = sorted(str(p.relative_to(site / "citypipe")) for p in (site / "citypipe").rglob("*"))
    assert [s for s in shipped if s.endswith(".py")] == expected
    assert {"citypipe", "pyarrow", "pydantic"} <= top
    # And nothing a laptop or a test needs, no tests/ folders, no headers
    assert not top & {*LAPTOP_ONLY, *BRIDGE_ONLY, *TEST_ONLY, "boto3", "botocore"}
    leftovers = [
        str(p.relative_to(site))
        for p in site.rglob("*")
        if (p.is_dir() and p.name in {"tests", "test", "include"})
        or p.suffix in {".h", ".pyx", ".pxd"}
    ]
    assert leftovers == []


@pytest.mark.slow
def test_every_module_in_the_layer_ships_its_runtimes_bytecode_and_no_other(
    layer: Layer,
) -> None:
    # Lambda mounts the layer read-only: a module without python3.12 bytecode beside it is
    # compiled at every cold start, and bytecode checked against its source would be
    # compared with the zip's mtimes
    site = layer.path / "python"

    assert folder_bytecode_problems(site, magic_number()) == []
    assert len(list(site.rglob("*.pyc"))) == len(list(site.rglob("*.py"))) > 300


def test_the_bytecode_is_the_runtimes_the_same_wherever_it_is_built(tmp_path: Path) -> None:
    # Given the library copied into two build folders and compiled for the layer
    library = ROOT / "layers" / "citypipe" / "python" / "citypipe"
    sites = [tmp_path / "one" / "python", tmp_path / "elsewhere" / "deeper" / "python"]
    for site in sites:
        shutil.copytree(library, site / "citypipe", ignore=shutil.ignore_patterns("__pycache__"))
        compile_bytecode(site, PYTHON, LAYER_MOUNT)
    # Then every module has its 3.12 bytecode, hash-based and never checked
    assert folder_bytecode_problems(sites[0], magic_number()) == []
    # And the same bytes, wherever they were built (sources named where Lambda mounts them)
    first, second = ({p.relative_to(s): p.read_bytes() for p in s.rglob("*.pyc")} for s in sites)
    assert first == second
    assert (
        f"{LAYER_MOUNT}/citypipe/settings.py".encode()
        in first[Path("citypipe/__pycache__/settings.cpython-312.pyc")]
    )


def test_a_source_changed_after_its_bytecode_is_found(tmp_path: Path) -> None:
    # Given the library compiled for the layer, then one source edited (as a build step
    # that ran after compiling would): the runtime would run the old bytecode, unchecked
    site = tmp_path / "python"
    library = ROOT / "layers" / "citypipe" / "python" / "citypipe"
    shutil.copytree(library, site / "citypipe", ignore=shutil.ignore_patterns("__pycache__"))
    compile_bytecode(site, PYTHON, LAYER_MOUNT)
    ports = site / "citypipe" / "ports.py"
    ports.write_text(ports.read_text().replace("GET_CONCURRENCY = 16", "GET_CONCURRENCY = 99"))
    # Then the check says which module's bytecode is not its source's
    assert folder_bytecode_problems(site, magic_number()) == [
        "citypipe/__pycache__/ports.cpython-312.pyc: compiled from another source than the "
        "one shipped"
    ]


def test_the_runtime_imports_the_bytecode_without_reading_its_source(tmp_path: Path) -> None:
    # Given a compiled library whose source is then changed (a new mtime, a syntax error):
    # the runtime would have to compile it again if it compared the two
    site = tmp_path / "python"
    shutil.copytree(
        ROOT / "layers" / "citypipe" / "python" / "citypipe",
        site / "citypipe",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    compile_bytecode(site, PYTHON, LAYER_MOUNT)
    (site / "citypipe" / "__init__.py").write_text("this is not Python\n")
    # When the runtime's Python imports it, writing no bytecode (a read-only layer)
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import citypipe; print(citypipe.__doc__)"
    )
    done = subprocess.run(
        [runtime_interpreter(PYTHON), "-I", "-B", "-c", code],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # Then it ran the shipped bytecode
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("citypipe, the production library")


def test_no_bytecode_is_compiled_without_the_runtimes_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a machine with no Python 3.12 (a .pyc is read by the version that wrote it only)
    def no_python(oldest: tuple[int, int], newest: tuple[int, int], needed_by: str) -> str:
        raise RuntimeError(f"{needed_by} needs Python 3.12: install one")

    monkeypatch.setattr(package, "find_python", no_python)
    (tmp_path / "module.py").write_text("x = 1\n")
    # Then the layer is refused, with what to install, before anything is downloaded
    with pytest.raises(PackagingError, match=r"bytecode needs Python 3\.12"):
        build_layer(tmp_path / "layer")
    assert not (tmp_path / "layer").exists()
    # and nothing is compiled by another Python
    with pytest.raises(PackagingError, match=r"bytecode needs Python 3\.12"):
        compile_bytecode(tmp_path, PYTHON, LAYER_MOUNT)
    assert not list(tmp_path.rglob("*.pyc"))


@pytest.mark.slow
def test_function_and_layer_stay_within_the_size_budget(layer: Layer) -> None:
    handlers = sum(p.stat().st_size for p in (ROOT / "functions").rglob("handler.py"))

    assert layer.unzipped_bytes + handlers <= SIZE_BUDGET_BYTES


@pytest.mark.slow
def test_the_unused_arrow_components_are_trimmed(layer: Layer) -> None:
    arrow = {p.name.split(".")[0] for p in (layer.path / "python" / "pyarrow").iterdir()}

    assert not arrow & {"_flight", "libarrow_flight", "_s3fs", "libarrow_s3", "_orc"}
    assert {"_acero", "_compute", "_parquet", "libparquet", "libarrow_acero"} <= arrow


@pytest.mark.slow
def test_every_shared_object_left_in_the_layer_links(layer: Layer) -> None:
    # The aarch64 binaries cannot be loaded here: their NEEDED entries are read instead.
    site = layer.path / "python"
    objects = {p.name: p for p in shared_objects(site)}
    assert needed(objects["lib.cpython-312-aarch64-linux-gnu.so"])  # the reading works

    assert missing_libraries(site) == {}
    # and nothing links what the trim removed
    linked = {lib for path in objects.values() for lib in needed(path)}
    assert not {"libarrow_flight.so.2600", "libarrow_s3.so.2600"} & linked
    assert linked - set(objects) <= LAMBDA_BASE_LIBRARIES


@pytest.mark.slow
def test_the_library_still_runs_on_dependencies_trimmed_the_same_way(tmp_path: Path) -> None:
    # Given this machine's wheels of the same pinned versions, trimmed by the layer's rules
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(site), "--no-deps", "--only-binary=:all:",
         "-c", str(ROOT / "constraints.txt"), "pyarrow", "numpy"],
        check=True,
    )  # fmt: skip
    trim(site)
    # When the library writes and reads Parquet and groups (Acero) with them
    script = """
import sys, pyarrow
from datetime import UTC, datetime
from citypipe.core.aggregate import merge_partials, partial_of
from citypipe.core.anonymize import CLEAN_SCHEMA
from citypipe.core.columnar import parquet_bytes, read_parquet
assert pyarrow.__file__.startswith(sys.argv[1]), pyarrow.__file__
rows = [{"source": "wifi-counters", "sensor": "wifi-012", "quantity": "people.presence",
         "unit": "{person}", "value": 1.0, "observed_at": datetime(2026, 6, 1, 10, tzinfo=UTC),
         "zone": "centrum", "pseudonym": p} for p in ("a", "b", "a")]
table = pyarrow.Table.from_pylist(rows, schema=CLEAN_SCHEMA)
partial = partial_of(read_parquet(parquet_bytes(table)))
merged = merge_partials([partial, partial])
print(merged.num_rows, int(sum(merged["count"].to_pylist())))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        env={"PYTHONPATH": f"{site}:{ROOT / 'layers' / 'citypipe' / 'python'}", "PATH": "/usr/bin"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # Then it works: one cell, six readings
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "6"]


def _calls(name: str, tree: Path) -> list[str]:
    """Every module under ``tree`` that calls a function called ``name``."""
    found = []
    for path in sorted(tree.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == name:
                    found.append(str(path.relative_to(ROOT)))
                    break
    return found


def test_only_the_edges_entrance_runs_the_normalization_path() -> None:
    # Every route (webhook, IoT rule, bridge, drops, replay) goes through service.edge
    callers = [
        module
        for tree in ("layers", "tools", "bridge", "functions")
        for module in _calls("normalize", ROOT / tree)
    ]
    assert callers == ["layers/citypipe/python/citypipe/service/edge.py"]


# The names a role repeats on purpose: each composition root builds its app (``build``,
# ``cold_start``), each hub format adapter reads a payload (``parse``), each command
# starts (``main``).
PROTOCOL_NAMES = {"build", "cold_start", "parse", "main"}


def test_no_two_public_functions_share_a_name() -> None:
    # Given every module's top-level public functions, in every package of the project
    where: dict[str, list[str]] = {}
    for tree in ("layers/citypipe/python/citypipe", "tools/citypipe_local", "bridge"):
        for path in sorted((ROOT / tree).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    where.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    # Then a name means one function, but for the roles every module of a kind plays
    shared = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert set(shared) <= PROTOCOL_NAMES, {n: shared[n] for n in set(shared) - PROTOCOL_NAMES}


def test_no_test_imports_conftest() -> None:
    # conftest.py holds fixtures, which pytest gives a test; helpers are plain modules
    importing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if any(
            isinstance(node, ast.ImportFrom) and node.module == "conftest"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert importing == []
