"""The city as a deployment ships it: the city file checked, merged and written as JSON
(``domain/cityjson.py``, ``citypipe_local.package.write_city_json``). A deployed function
reads it without importing PyYAML; it is the same city as the YAML's, and refused as the
YAML's data is, naming the key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo import CITY_FILE, ROOT
from unit_support import city_data

from citypipe.domain.city import ConfigError, load_city
from citypipe.domain.city_checks import check_city
from citypipe.domain.cityjson import city_json
from citypipe_local.package import FUNCTION_ENVIRONMENT, PackagingError, write_city_json
from citypipe_local.simulate import scaled_city

SCALEWAY_CITY = ROOT / "infra" / "cities" / "velden-scaleway.yaml"
FUNCTIONS = ("ingest", "anonymize", "aggregate", "export", "api")


def _written(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "city.json"
    path.write_text(json.dumps(data, default=str))
    return path


@pytest.mark.parametrize("city_file", [CITY_FILE, SCALEWAY_CITY], ids=["velden", "scaleway"])
def test_an_example_city_as_json_is_the_same_city(city_file: Path, tmp_path: Path) -> None:
    # Given an example city file (the Scaleway one extends velden.yaml; both name a registry)
    yaml_city = load_city(city_file)
    # When it is written as the JSON a package ships, and read back
    json_city = load_city(write_city_json(yaml_city, city_file, tmp_path / "city.json"))
    # Then it is the same city, the registry's devices and the file it extends included
    assert json_city == yaml_city
    assert json_city.region == yaml_city.region
    assert json_city.devices == yaml_city.devices


def test_a_scaled_city_as_json_is_the_same_city(tmp_path: Path) -> None:
    # Given a city three times the example's (a registry of its own, extending velden.yaml)
    scaled = scaled_city(CITY_FILE, 3, tmp_path / "scaled")
    # When it is written as JSON and read back
    path = tmp_path / "city.json"
    path.write_bytes(city_json(scaled))
    # Then it is the same city, every copied device in it
    assert load_city(path) == load_city(scaled)
    assert len(load_city(path).registry.devices) == 3 * len(load_city(CITY_FILE).registry.devices)


def test_the_packager_refuses_a_json_that_is_not_the_city_it_checked(tmp_path: Path) -> None:
    # Given the example city checked, and the JSON of another file (Paris, not Frankfurt)
    checked = load_city(CITY_FILE)
    # When it is written as that city's JSON, it is refused
    with pytest.raises(PackagingError, match="does not read back as the city"):
        write_city_json(checked, SCALEWAY_CITY, tmp_path / "city.json")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("region", "us-east-1"),
        ("disclosure.k", 1),
        ("registry.devices.aq-001.hub", "xml"),
        ("sources.air-quality.purpouse", "typo"),
    ],
    ids=["region-outside-eu", "k-below-two", "unknown-hub", "misspelled-key"],
)
def test_a_json_city_is_refused_as_the_yaml_is_naming_the_key(
    key: str, value: Any, tmp_path: Path
) -> None:
    # Given the example city's data with one key made wrong, written as JSON
    data = city_data()
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    path = _written(tmp_path, data)
    # When it is loaded, it is refused: the file and the key, no line (the YAML's business)
    with pytest.raises(ConfigError) as refused:
        load_city(path)
    [problem, *_] = refused.value.problems
    assert (problem.file, problem.line, problem.key) == (str(path), None, key)
    assert "\n" not in str(refused.value)


def test_a_json_city_that_extends_another_file_is_refused(tmp_path: Path) -> None:
    # A packaged city is merged already: `extends` is not read from JSON
    path = _written(tmp_path, {**city_data(), "extends": "velden.yaml"})
    with pytest.raises(ConfigError) as refused:
        load_city(path)
    assert refused.value.problems[0].key == "extends"


def test_a_key_written_twice_in_a_json_city_is_refused_at_its_key(tmp_path: Path) -> None:
    # Given a packaged city edited by hand: a device registered twice (JSON, like YAML,
    # would keep the last one without a word)
    text = json.dumps(city_data(), default=str)
    device = '"aq-001":{"hub":"lorawan","id":"70b3d5e75e0100ff","profile":"aq-lorawan"},'
    path = tmp_path / "city.json"
    path.write_text(text.replace('"devices": {', '"devices": {' + device, 1))
    # When it is loaded, it is refused, naming the key
    with pytest.raises(ConfigError) as refused:
        load_city(path)
    [problem] = refused.value.problems
    assert (problem.file, problem.line) == (str(path), None)
    assert problem.key == "registry.devices.aq-001"
    assert problem.message == "appears twice in one object"


def test_a_json_city_that_is_not_json_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "city.json"
    path.write_text("slug: velden\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: not JSON"):
        load_city(path)


def test_a_json_city_that_is_not_an_object_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _written(tmp_path, ["velden"])
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: a packaged city is a JSON"):
        load_city(path)


def test_a_missing_json_city_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"city\.json: cannot be read"):
        load_city(tmp_path / "city.json")


def test_a_json_city_is_checked_by_key(tmp_path: Path) -> None:
    # `citypipe check-city` on a packaged city: its warnings and errors name keys, no line
    checked = check_city(write_city_json(load_city(CITY_FILE), CITY_FILE, tmp_path / "c.json"))
    assert checked.city == load_city(CITY_FILE)
    assert checked.errors == ()


def _modules_after_cold_starts(city: Path, functions: tuple[str, ...]) -> set[str]:
    """The top-level modules a fresh interpreter holds after these functions' cold starts
    (their composition roots: the city read, the clients made, nothing sent), in a deployed
    function's environment."""
    code = (
        "import importlib, sys\n"
        f"for f in {functions!r}:\n"
        "    importlib.import_module(f'citypipe.bootstrap.{f}').cold_start()\n"
        "print(' '.join(sorted({m.partition('.')[0] for m in sys.modules})))"
    )
    environment = os.environ | FUNCTION_ENVIRONMENT
    environment |= {
        "CITYPIPE_STACK": json.dumps({"city_file": str(city)}),
        "AWS_REGION": load_city(city).region,
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=city.parent,
    )
    return set(done.stdout.split())


@pytest.mark.slow
def test_a_deployed_functions_cold_start_imports_no_yaml(tmp_path: Path) -> None:
    # Given the example city as a package ships it
    city = write_city_json(load_city(CITY_FILE), CITY_FILE, tmp_path / "city.json")
    # When every function's composition root starts from it in a fresh interpreter
    loaded = _modules_after_cold_starts(city, FUNCTIONS)
    # Then the city was read (the roots ran) without PyYAML
    assert "citypipe" in loaded
    assert "yaml" not in loaded


@pytest.mark.slow
def test_a_local_run_still_reads_the_yaml_city() -> None:
    # A laptop's run is given the city file people write: PyYAML reads it
    assert "yaml" in _modules_after_cold_starts(CITY_FILE, ("ingest",))


def test_a_set_in_the_yaml_is_packaged_as_a_list_and_a_binary_is_refused_at_its_key(
    tmp_path: Path,
) -> None:
    # Given the example city whose registry writes a profile's ignored fields as a !!set
    for path in (CITY_FILE, CITY_FILE.parent / "velden-devices.yaml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    registry = tmp_path / "velden-devices.yaml"
    text = registry.read_text()
    registry.write_text(text.replace("ignore: [lat, lon]", "ignore: !!set {lat, lon}", 1))
    city = load_city(tmp_path / "velden.yaml")
    # When it is packaged, it reads back as the same city
    assert (
        load_city(write_city_json(city, tmp_path / "velden.yaml", tmp_path / "city.json")) == city
    )
    # And a !!binary, which JSON has no form for, is refused at its key, not with a traceback
    registry.write_text(text.replace("ignore: [lat, lon]", "ignore: !!binary aGk=", 1))
    with pytest.raises(ConfigError, match=r"registry\.profiles\.[\w-]+\.ignore: a bytes has no"):
        city_json(tmp_path / "velden.yaml")
