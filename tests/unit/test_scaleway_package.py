"""The Scaleway deployment zip: built offline, under 100 MiB, holding what runs and nothing a
laptop needs — and the dependencies it trims still run the cores."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from bytecode_support import bytecode_problems, magic_number
from repo import CITY_FILE, ROOT
from unit_support import city_data

from citypipe.domain.city import load_city
from citypipe.domain.city_checks import checked_city
from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe.entrypoints.events import DRAIN_CRON_BODY
from citypipe.settings import Settings
from citypipe_local.package import (
    CITY_JSON,
    FUNCTION_ENVIRONMENT,
    LIBRARY,
    runtime_requirements,
    trim,
)
from citypipe_local.rehearse import deployed_environment
from citypipe_local.scaleway_package import (
    MAX_ZIP_BYTES,
    PackagingError,
    build_zip,
    main,
    render,
    trim_botocore,
)

LAPTOP_ONLY = ("citypipe_local", "moto", "localstack", "typer", "rich", "pytest", "_pytest")
SCALEWAY_CITY = CITY_FILE.parent / "velden-scaleway.yaml"


def test_a_city_outside_scaleways_regions_is_refused_before_anything_is_built(
    tmp_path: Path,
) -> None:
    with pytest.raises(PackagingError, match="not a Scaleway region"):
        build_zip(CITY_FILE, "acme-", tmp_path)  # velden.yaml says eu-central-1 (AWS)
    assert list(tmp_path.iterdir()) == []


def test_a_city_outside_the_eu_gets_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a city file in us-east-1 (the registry beside it, as its file names it)
    data = city_data()
    data["region"] = "us-east-1"
    city_file = tmp_path / "faraway.yaml"
    city_file.write_text(yaml.safe_dump(data))
    # When it is given to the Scaleway packager
    with pytest.raises(SystemExit) as ended:
        main(["--city", str(city_file), "--prefix", "acme-", "--out", str(tmp_path / "out")])
    # Then it ends with code 2 and one line saying why
    error = capsys.readouterr().err
    assert ended.value.code == 2
    assert error.count("\n") == 1
    assert "'us-east-1' is outside the EU/EEA" in error
    assert not (tmp_path / "out").exists()


def test_the_deployment_names_its_queues_with_its_prefix_and_answers_https_only() -> None:
    config = yaml.safe_load(render(checked_city(SCALEWAY_CITY), "acme-"))
    names = StackNames("velden", "acme-")

    assert config["provider"]["env"]["CITYPIPE_STACK__NAME_PREFIX"] == "acme-"
    triggers = {
        name: event["sqs"]["queue"]
        for name, function in config["functions"].items()
        for event in function.get("events", [])
        if "sqs" in event
    }
    # ingest's queue is drained by a CRON, in batches (a trigger would POST one a message)
    assert triggers == {f.value: names.queue(f) for f in Function if f is not Function.INGEST}
    inputs = [e["schedule"]["input"] for e in config["functions"]["ingest"]["events"]]
    assert DRAIN_CRON_BODY in inputs
    assert {f["httpOption"] for f in config["functions"].values()} == {"redirected"}
    assert "${param:" not in yaml.safe_dump(config)
    # the open-data API: public, on credentials of its own (read-only: docs/deploy.md)
    api = config["functions"]["api"]
    assert (api["privacy"], api["handler"]) == ("public", "functions/api/scaleway.handle")
    assert set(api["secret"]) == {
        "CITYPIPE_STORAGE__ACCESS_KEY_ID",
        "CITYPIPE_STORAGE__SECRET_ACCESS_KEY",
    }
    assert "CITYPIPE_API_STORAGE__" in yaml.safe_dump(api["secret"])


def test_every_function_reads_the_packaged_city_with_pydantics_plugin_scan_off() -> None:
    # Given the namespace's serverless.yml as rendered for the Scaleway example
    config = yaml.safe_load(render(checked_city(SCALEWAY_CITY), "acme-"))
    namespace = config["provider"]["env"]
    # Then every function (the namespace's variables are each one's) reads city.json and
    # skips pydantic's plugin scan, as the bench measures (bench/run.py)
    assert namespace["CITYPIPE_STACK__CITY_FILE"] == CITY_JSON
    assert FUNCTION_ENVIRONMENT.items() <= namespace.items()
    assert not [name for name, f in config["functions"].items() if "env" in f]
    assert CITY_JSON in config["package"]["patterns"]


def test_the_namespace_compresses_the_exports_spills_and_a_rehearsal_keeps_it() -> None:
    """Scaleway's scratch disk is a fixed 1 GiB (decision 0118): the export's spills are
    compressed there, and the rehearsal runs the artefacts so, against the source tree's
    plain spills (tests/integration/test_rehearsal.py: the same open files)."""
    config = yaml.safe_load(render(checked_city(SCALEWAY_CITY), "acme-"))
    namespace = config["provider"]["env"]
    assert namespace["CITYPIPE_EXPORT__COMPRESS_SPILLS"] == "true"
    kept = deployed_environment(namespace)
    assert kept["CITYPIPE_EXPORT__COMPRESS_SPILLS"] == "true"
    assert not [n for n in kept if n.startswith("CITYPIPE_") and "__COMPRESS" not in n]
    # over the rehearsal's own settings (bare.function_environment: a section per field,
    # the export's saying false), the deployment's choice wins
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYPIPE_EXPORT", '{"compress_spills": false}')
        for name, value in kept.items():
            env.setenv(name, value)
        assert Settings().export.compress_spills is True


@pytest.mark.parametrize("prefix", ["", "Acme-", "acme", "a" * 50 + "-"])
def test_a_prefix_that_cannot_name_the_buckets_is_refused(prefix: str) -> None:
    with pytest.raises(PackagingError, match="prefix"):
        render(checked_city(SCALEWAY_CITY), prefix)


@pytest.mark.slow
def test_the_zip_holds_the_entry_points_the_library_and_the_city_only(tmp_path: Path) -> None:
    # Given the Scaleway example city packaged as `make package-scaleway` does
    built = build_zip(SCALEWAY_CITY, "acme-", tmp_path)
    names = zipfile.ZipFile(built.zip).namelist()
    tops = {n.split("/")[1] for n in names if n.startswith("package/") and n.count("/") > 1}
    # Then it fits Scaleway's limit and holds every handler the serverless.yml names
    assert built.zip_bytes <= MAX_ZIP_BYTES
    config = yaml.safe_load((built.directory / "serverless.yml").read_text())
    assert config["service"] == "citypipe-velden"
    assert config["provider"]["scwRegion"] == "fr-par"
    for function in config["functions"].values():
        module, _ = function["handler"].rsplit(".", 1)
        assert f"{module}.py" in names
    assert "package/citypipe/bootstrap/ingest.py" in names
    assert {"citypipe", "pyarrow", "boto3", "botocore"} <= tops
    # And the functions read the city file given as the package wrote it: checked and
    # merged as JSON (what it extends, velden.yaml in eu-central-1, resolved: a function
    # reading that one would refuse its own fr-par endpoints), and no YAML city beside it
    deployed = config["provider"]["env"]["CITYPIPE_STACK__CITY_FILE"]
    assert deployed == CITY_JSON
    with zipfile.ZipFile(built.zip) as archive:
        city = load_city(Path(archive.extract(deployed, tmp_path / "unzipped")))
    assert city == checked_city(SCALEWAY_CITY)
    assert city.region == "fr-par"
    assert not [n for n in names if n.startswith("infra/")]
    # And nothing a laptop or a test needs
    assert not tops & set(LAPTOP_ONLY)
    assert not [n for n in names if "/tests/" in n or n.endswith(".h")]
    # And every module of the package, boto3's too, with its Python 3.12 bytecode (a new
    # instance would compile each module it imports), hash-based and never checked
    with zipfile.ZipFile(built.zip) as archive:
        shipped = [n for n in names if n.startswith("package/") and not n.endswith("/")]
        assert bytecode_problems(shipped, archive.read, magic_number()) == []
    assert sum(n.endswith(".cpython-312.pyc") for n in shipped) > 400
    assert not [n for n in names if n.startswith("functions/") and n.endswith("handler.py")]


def _python312() -> str:
    """Python 3.12 from pyenv's versions, else on PATH (never a pyenv shim)."""
    candidates: list[str | None] = []
    if pyenv := shutil.which("pyenv"):
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True)
        versions = Path(root.stdout.strip()).glob("versions/3.12*/bin/python3")
        candidates += sorted(str(p) for p in versions)
    candidates.append(shutil.which("python3.12"))
    found = next((c for c in candidates if c and "/shims/" not in c), None)
    assert found, "Python 3.12 (the functions' runtime) is needed: pyenv install 3.12"
    return found


@pytest.mark.slow
def test_the_trimmed_dependencies_still_run_the_cores(tmp_path: Path) -> None:
    # Given the runtime dependencies installed for this machine (x86_64, glibc) and Python
    # 3.12, trimmed exactly as the Scaleway zip is
    site = tmp_path / "package"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(site), "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", "3.12", "--only-binary=:all:", "--no-compile",
            "-c", str(ROOT / "constraints.txt"), *runtime_requirements(provided=()),
        ],
        check=True,
    )  # fmt: skip
    shutil.copytree(LIBRARY, site / "citypipe")
    trim(site)
    trim_botocore(site)
    # When a Python 3.12 with only those on its path aggregates, writes Parquet, reads it
    # back, discloses a day and makes S3 and SQS clients
    script = """
import datetime as dt, pyarrow as pa
from citypipe.adapters.clients import s3_client, sqs_client
from citypipe.core.aggregate import merge_partials, partial_of
from citypipe.core.anonymize import CLEAN_SCHEMA
from citypipe.core.columnar import parquet_bytes, read_parquet
from citypipe.settings import BackendSettings
at = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
rows = [{"source": "w", "sensor": "s", "quantity": "people.presence", "unit": "{device}",
         "value": 1.0, "observed_at": at, "zone": "centrum", "pseudonym": f"p{i}"}
        for i in range(12)]
partial = read_parquet(parquet_bytes(partial_of(pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA))))
merged = merge_partials([partial, partial])
backend = BackendSettings(region="fr-par", endpoint_url="https://s3.fr-par.scw.cloud")
s3_client(backend), sqs_client(backend)
print(int(merged["count"][0].as_py()))
"""
    done = subprocess.run(
        [_python312(), "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n{script}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # Then everything they need is still there
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "24"
