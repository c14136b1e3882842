"""Deployment artefacts, built offline from the project's own files: the Lambda layer and a
city's CloudFormation stack.

    python -m citypipe_local.package layer --out .build/layer
    python -m citypipe_local.package stack --city infra/cities/velden.yaml
    python -m citypipe_local.package deploy --city infra/cities/velden.yaml   (an AWS account)

**The layer** holds the ``citypipe`` library and its runtime dependencies for Lambda's
python3.12 on arm64, and nothing a city's cloud does not run: no ``citypipe_local``, no
test dependencies, no ``tests/`` folders or headers, no Arrow component the library never
loads (Flight, the S3/GCS/Azure/HDFS filesystems, ORC, the C++ tests) and no second copy
of a shared object under its development names. boto3 is not in it (the runtime has it).
Every module ships its bytecode for the runtime's Python, compiled here by that Python
(``compile_bytecode``): Lambda mounts the layer read-only, so a module without it is
compiled again at every cold start (docs/decisions/0113). Binaries for aarch64 cannot be
imported here, so ``missing_libraries`` proves the trimmed layer still links: every
``NEEDED`` entry of every shared object left is in the layer or in Lambda's base image.

**The stack** is ``serverless.yml`` packaged by osls 4 (pinned in ``package.json``), with
every value the template needs taken from the city file and passed as osls params; then
the region guard is added as CloudFormation ``Rules`` (osls cannot express them) and
``cfn-lint`` checks the template. The function zip holds the handlers and the city the
functions read: ``city.json``, the city file checked and merged (``write_city_json``). No
cloud account: osls asks CloudFormation whether the
stack exists, and gets its answer from an embedded moto server started here, with fake
credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from citypipe.domain.city import City, ConfigError, load_city, require_region
from citypipe.domain.city_checks import checked_city
from citypipe.domain.cityfile import city_files
from citypipe.domain.cityjson import city_json
from citypipe.domain.model import Zone
from citypipe.domain.naming import (
    BUCKET_NAME_MAX,
    StackNames,
    deployment_prefix,
)
from citypipe.service.metrics import NAMESPACE
from citypipe_local.pythons import find_python

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "citypipe" / "python" / "citypipe"
LAYER_DIR = ROOT / ".build" / "layer"
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})
# pyarrow >= 26 ships aarch64 wheels tagged manylinux_2_28 only; Lambda's python3.12 runtime
# (Amazon Linux 2023, glibc 2.34) takes both tags.
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
PYTHON = "3.12"
# Lambda's budget is 250 MB unzipped for a function and its layers; ours leaves headroom.
SIZE_BUDGET_BYTES = 200 * 1000 * 1000
# The city a deployed function reads, at the root of its code: the city file checked and
# merged, as JSON (domain/cityjson.py; docs/decisions: the JSON city).
CITY_JSON = "city.json"
# What every deployed function's environment sets besides citypipe's own settings, in
# serverless.yml and infra/scaleway/serverless.yml alike (tests hold both to it; the bench
# measures with it): pydantic's documented switch that skips scanning every installed
# package's metadata for its plugins at the first model built (~28 M instructions of
# ingest's import, cachegrind).
FUNCTION_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
# Where Lambda mounts the layer's python/ folder: the path its bytecode names its sources by.
LAYER_MOUNT = "/opt/python"

# What no function imports: the folders and files deleted from the dependencies (the
# wheels' own bytecode too, whatever Python wrote it: the runtime's is compiled after).
TRIMMED_DIRS = frozenset({"tests", "test", "testing", "__pycache__", "include", "benchmarks"})
TRIMMED_SUFFIXES = (".pyc", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cc", ".cpp", ".a")
# Arrow components the library never loads (it reads and writes Parquet, computes and
# groups with Acero): each extension module and the libraries only it links.
TRIMMED_ARROW = (
    "_flight.*", "flight.py", "libarrow_flight.so*", "libarrow_python_flight.so*",
    "_s3fs.*", "libarrow_s3.so*", "_gcsfs.*", "_azurefs.*", "_hdfs.*",
    "_orc.*", "orc.py", "_dataset_orc.*",
    "_pyarrow_cpp_tests.*", "benchmark.py", "conftest.py", "cuda.py", "_cuda.*",
    "src",
)  # fmt: skip
# Shared libraries every Lambda base image has (Amazon Linux 2023: glibc, the GCC runtime,
# zlib): a NEEDED entry for one of them is satisfied outside the layer.
LAMBDA_BASE_LIBRARIES = frozenset(
    {
        "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
        "libutil.so.1", "ld-linux-aarch64.so.1", "libstdc++.so.6", "libgcc_s.so.1",
        "libz.so.1",
    }
)  # fmt: skip


def runtime_requirements(
    provided: Iterable[str] = PROVIDED_BY_RUNTIME, pyproject: Path = ROOT / "pyproject.toml"
) -> list[str]:
    """The library's dependencies from pyproject.toml, less what the runtime provides
    (Lambda's: boto3; Scaleway's: nothing)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    skipped = set(provided)
    return [
        d
        for d in dependencies
        if d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() not in skipped
    ]


@dataclass(frozen=True)
class Layer:
    path: Path
    unzipped_bytes: int
    files: int


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _soname(path: Path) -> str | None:
    for tag in _dynamic_tags(path):
        if tag.entry.d_tag == "DT_SONAME":
            return str(tag.soname)
    return None


def _dynamic_tags(path: Path) -> Iterator[Any]:
    with path.open("rb") as handle:
        try:
            elf = ELFFile(handle)
        except ELFError:
            return
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                yield from list(section.iter_tags())


def needed(path: Path) -> list[str]:
    """The ``NEEDED`` entries of a shared object: what the dynamic linker loads with it."""
    return [str(t.needed) for t in _dynamic_tags(path) if t.entry.d_tag == "DT_NEEDED"]


def shared_objects(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.so*") if p.is_file() and _is_elf(p))


def missing_libraries(site: Path) -> dict[str, list[str]]:
    """Shared objects of the layer whose ``NEEDED`` libraries are neither in the layer (by
    file name; auditwheel's ``*.libs`` folders are found by RPATH) nor in Lambda's base
    image: ``{object: [missing, ...]}``, empty when everything links."""
    objects = shared_objects(site)
    present = {p.name for p in objects} | LAMBDA_BASE_LIBRARIES
    missing = {}
    for path in objects:
        absent = [lib for lib in needed(path) if lib not in present]
        if absent:
            missing[str(path.relative_to(site))] = absent
    return missing


def trim(site: Path) -> None:
    """Delete what no function imports from installed dependencies (any platform)."""
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in TRIMMED_DIRS and path.parent != site:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in TRIMMED_SUFFIXES:
            path.unlink()
    for pattern in ("bin",):  # console scripts of the dependencies
        shutil.rmtree(site / pattern, ignore_errors=True)
    arrow = site / "pyarrow"
    for pattern in TRIMMED_ARROW:
        for path in arrow.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    _drop_development_names(site)


def _drop_development_names(site: Path) -> None:
    """Wheels carry a shared library under its SONAME and again under the development names
    (``libx.so``, ``libx.so.1.2.3``) as full copies: the loader only asks for the SONAME."""
    for path in shared_objects(site):
        soname = _soname(path)
        if soname and soname != path.name and (path.parent / soname).is_file():
            path.unlink()


def install_runtime(
    site: Path,
    requirements: Sequence[str],
    platforms: Sequence[str],
    python: str,
    constraints: Path = ROOT / "constraints.txt",
) -> None:
    """The pinned wheels of ``requirements`` for a runtime (``platforms``' tags, CPython
    ``python``) into ``site``: binaries only, no bytecode yet (``compile_bytecode`` adds
    the runtime's once the trimming is done). Needs PyPI (or pip's cache), whatever the
    machine's own platform."""
    tags = [arg for platform in platforms for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(site), *tags, "--implementation", "cp",
            "--python-version", python, "--only-binary=:all:", "--no-compile",
            "-c", str(constraints), *requirements,
        ],
        check=True,
    )  # fmt: skip
    shutil.copytree(LIBRARY, site / "citypipe", ignore=shutil.ignore_patterns("__pycache__"))
    trim(site)


def runtime_interpreter(python: str) -> str:
    """This machine's interpreter of the runtime's version ``python`` (``"3.12"``): a
    ``.pyc`` is read only by the minor version that wrote it, so no other may compile."""
    major, minor = (int(part) for part in python.split("."))
    try:
        return find_python((major, minor), (major, minor), "the runtime's bytecode")
    except RuntimeError as exc:
        raise PackagingError(str(exc)) from None


def compile_bytecode(site: Path, python: str, shipped_at: str) -> None:
    """Every ``.py`` under ``site`` compiled by the runtime's Python into its
    ``__pycache__`` (``<module>.cpython-312.pyc``), as ``unchecked-hash`` bytecode: the
    runtime loads it without comparing it with its source (a zip keeps no meaningful
    mtime, and a deployed source never changes). ``shipped_at``: where the runtime finds
    ``site``, the path the bytecode names its sources by (not this machine's build folder:
    the same sources give the same bytes wherever they are built)."""
    done = subprocess.run(
        [
            runtime_interpreter(python), "-m", "compileall", "-q", "-f", "-j", "0",
            "--invalidation-mode", "unchecked-hash", "-d", shipped_at, str(site),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PackagingError(
            f"Python {python} could not compile {site}:\n{done.stdout}{done.stderr}"
        )


def host_platforms() -> tuple[str, ...]:
    """This machine's wheel tags (glibc Linux): the artefacts rebuilt for a rehearsal here."""
    machine = platform.machine()
    return (f"manylinux_2_28_{machine}", f"manylinux2014_{machine}")


def build_layer(
    out: Path = LAYER_DIR, platforms: Sequence[str] = PLATFORMS, python: str = PYTHON
) -> Layer:
    """Install the runtime dependencies (for arm64 unless ``platforms`` say otherwise) into
    ``out/python``, add the library, trim what no function imports, compile what is left
    with the runtime's Python (this machine needs one: ``pyenv install 3.12``). No cloud
    account."""
    runtime_interpreter(python)  # none: refused before anything is downloaded
    shutil.rmtree(out, ignore_errors=True)
    site = out / "python"
    site.mkdir(parents=True)
    install_runtime(site, runtime_requirements(), platforms, python)
    compile_bytecode(site, python, LAYER_MOUNT)
    return measure(out)


def measure(path: Path) -> Layer:
    files = [p for p in path.rglob("*") if p.is_file()]
    return Layer(path, sum(p.stat().st_size for p in files), len(files))


# --- the stack ------------------------------------------------------------------------------

OSLS = ROOT / "node_modules" / ".bin" / "osls"
STAGE = "prod"
TEMPLATE = "cloudformation-template-update-stack.json"
# An account id is 12 digits; names are checked with the longest one.
ACCOUNT_ID_PLACEHOLDER = "${AWS::AccountId}"
ACCOUNT_ID_DIGITS = 12


class PackagingError(RuntimeError):
    """Packaging cannot go on; the message says why and what to do."""


def iot_rule_prefix(city: str) -> str:
    """The names of the AWS IoT Core rules allowed to invoke ingest (rule names take letters,
    digits and underscores only)."""
    return f"citypipe_{city.replace('-', '_')}_"


def stack_name(city: City) -> str:
    return f"citypipe-{city.slug}"


def stack_params(
    city: City,
    city_file: str,
    layer_dir: str,
    generation: int = 1,
) -> dict[str, str]:
    """The osls params of a city's stack: every value serverless.yml takes from the city.
    ``city_file``: the city the functions read, in their zip (``CITY_JSON``);
    ``generation``: of the names (``deployment_prefix``)."""
    days = city.retention_days
    prefix = deployment_prefix(ACCOUNT_ID_PLACEHOLDER, city.region, generation)
    names = StackNames(city.slug)
    params = {
        "city": city.slug,
        "region": city.region,
        "stackName": stack_name(city),
        "cityFile": city_file,
        "layerDir": layer_dir,
        "namePrefix": prefix,
        "keysObjectPrefix": names.key_object_prefix(),
        "keysHorizonObject": names.key_horizon_object(),
        "keysDays": str(city.key_retention_days + 1),
        "tokensObjectPrefix": names.webhook_tokens_object_prefix(),
        "keyDestructionPrefix": names.key_destruction_prefix(),
        "noiseSecretObject": names.noise_secret_object(),
        "epsilonPrefix": names.epsilon_prefix(),
        "scrubPrefix": names.scrub_prefix(),
        "openPrefix": names.open_prefix(),
        "k": str(city.disclosure.k),
        "metricsNamespace": NAMESPACE,
        "iotRulePrefix": iot_rule_prefix(city.slug),
    }
    for zone in Zone:
        kept = days.get(zone)
        params[f"{zone.value}Days"] = "none" if kept is None else str(kept)
    params["openRetention"] = "forever" if days.get(Zone.OPEN) is None else "expiring"
    return params


def check_names(city: City, generation: int = 1) -> None:
    """Bucket names must fit S3's 63 characters with any 12-digit account id."""
    if generation < 1:
        raise PackagingError(f"--generation {generation}: generations start at 1")
    prefix = deployment_prefix("0" * ACCOUNT_ID_DIGITS, city.region, generation)
    names = StackNames(city.slug, prefix)
    too_long = [names.bucket(z) for z in Zone if len(names.bucket(z)) > BUCKET_NAME_MAX]
    if too_long:
        raise PackagingError(
            f"bucket names longer than {BUCKET_NAME_MAX} characters: {too_long}; "
            "choose a shorter city slug"
        )


def region_rules(city: City) -> dict[str, object]:
    """CloudFormation Rules: the stack refuses to be created or updated anywhere but in
    the city's region (a deploy with another --region fails before any resource)."""
    return {
        "CityRegion": {
            "Assertions": [
                {
                    "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, city.region]},
                    "AssertDescription": (
                        f"citypipe {city.slug} is kept in {city.region} (its city file's "
                        "region): refusing to deploy it to another region"
                    ),
                }
            ]
        }
    }


def ensure_osls() -> Path:
    """osls as pinned in package.json + package-lock.json (``npm ci``, once)."""
    if not OSLS.exists():
        if shutil.which("npm") is None:
            raise PackagingError("npm not found: install Node.js 20 or later (see README)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True
        )
    return OSLS


def _offline_environment(endpoint: str, region: str) -> dict[str, str]:
    """The environment osls runs in: fake credentials, every AWS call to the local moto
    server, none of the caller's AWS settings (no account is touched, even by mistake)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="citypipe-offline",
        AWS_SECRET_ACCESS_KEY="citypipe-offline",  # noqa: S106 (a local emulator's)
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
    )
    return env


def _param_args(params: Mapping[str, str]) -> list[str]:
    return [f"--param={name}={value}" for name, value in params.items()]


def _add_rules(package_dir: Path, city: City) -> None:
    """Put the region guard into the packaged template and into the state osls deploys."""
    rules = region_rules(city)
    template_path = package_dir / TEMPLATE
    template = json.loads(template_path.read_text())
    template["Rules"] = rules
    template_path.write_text(json.dumps(template, indent=2))
    state_path = package_dir / "serverless-state.json"
    state = json.loads(state_path.read_text())
    state["service"]["provider"]["compiledCloudFormationTemplate"]["Rules"] = rules
    state_path.write_text(json.dumps(state, indent=2))


@dataclass(frozen=True)
class PackagedStack:
    city: City
    directory: Path  # what osls deploy --package takes
    template: Path
    layer: Layer
    lint: str  # cfn-lint's findings (warnings at most)


def lint(template: Path) -> str:
    """cfn-lint on the template: raise on any error, return the warnings."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            "--",
            str(template),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = done.stdout.strip()
    errors = [line for line in findings.splitlines() if ":E" in line]
    if done.returncode & 0b11 or errors:  # 1: cfn-lint failed, 2: an error found
        raise PackagingError(f"cfn-lint found errors in {template}:\n{findings}{done.stderr}")
    return findings


def write_city_json(city: City, city_file: Path, target: Path) -> Path:
    """The checked ``city`` of ``city_file`` written to ``target`` as the JSON a deployed
    function reads (its data merged: the file it extends and its registry resolved).
    Refused unless the JSON reads back as the very same city."""
    target.write_bytes(city_json(city_file))
    if load_city(target) != city:
        raise PackagingError(f"{city_file}: its JSON ({target}) does not read back as the city")
    return target


def service_copy(target: Path, city_file: Path) -> Path:
    """What `make package` packages from, copied to ``target``: ``serverless.yml``, the
    handlers and the city's files (a stack packaged outside the clone, e.g. with another
    layer)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy(ROOT / "serverless.yml", target)
    shutil.copytree(
        ROOT / "functions", target / "functions", ignore=shutil.ignore_patterns("__pycache__")
    )
    (target / "infra" / "cities").mkdir(parents=True)
    for path in city_files(city_file):
        shutil.copy(path, target / "infra" / "cities")
    return target


def package_stack(
    city_file: Path,
    region: str | None = None,
    layer_dir: Path = LAYER_DIR,
    service_dir: Path = ROOT,
    build: bool = False,
    generation: int = 1,
) -> PackagedStack:
    """Package one city's stack offline into ``<service_dir>/.serverless`` and lint it.

    Refuses a city outside the EU/EEA (the city file does not load) and a ``region`` other
    than the city's, before anything is built. ``layer_dir`` must hold a built layer, or
    ``build`` builds it there. The checked city is written as ``<service_dir>/city.json``,
    which the function zip holds and the functions read (``CITY_JSON``).
    """
    city = checked_city(city_file)
    require_region(city, region or city.region, "packaging")
    check_names(city, generation)
    if build:
        build_layer(layer_dir)
    if not (layer_dir / "python" / "citypipe").is_dir():
        raise PackagingError(f"no layer in {layer_dir}: run `make layer` first")
    layer = measure(layer_dir)
    function_bytes = sum(p.stat().st_size for p in (service_dir / "functions").rglob("*.py"))
    if layer.unzipped_bytes + function_bytes > SIZE_BUDGET_BYTES:
        raise PackagingError(
            f"function + layer is {(layer.unzipped_bytes + function_bytes) / 1e6:.1f} MB "
            f"unzipped, over the {SIZE_BUDGET_BYTES / 1e6:.0f} MB budget"
        )
    osls = ensure_osls()
    write_city_json(city, city_file, service_dir / CITY_JSON)
    params = stack_params(
        city,
        CITY_JSON,
        os.path.relpath(layer_dir.resolve(), service_dir.resolve()),
        generation,
    )
    package_dir = service_dir / ".serverless"
    shutil.rmtree(package_dir, ignore_errors=True)
    from citypipe_local.backends.embedded import embedded

    with embedded(city.region) as endpoint:
        assert endpoint.settings.endpoint_url is not None
        done = subprocess.run(
            [str(osls), "package", "--stage", STAGE, "--region", city.region,
             *_param_args(params)],
            cwd=service_dir,
            env=_offline_environment(endpoint.settings.endpoint_url, city.region),
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise PackagingError(f"osls package failed:\n{done.stdout}{done.stderr}")
    _add_rules(package_dir, city)
    template = package_dir / TEMPLATE
    return PackagedStack(city, package_dir, template, layer, lint(template))


def deploy_stack(city_file: Path, region: str | None = None, generation: int = 1) -> None:
    """``osls deploy`` of the stack packaged by ``package_stack``, with the caller's AWS
    credentials, after the same region checks, for the generation it was packaged for."""
    city = checked_city(city_file)
    require_region(city, region or os.environ.get("AWS_REGION") or city.region, "deploy")
    package_dir = ROOT / ".serverless"
    template = json.loads((package_dir / TEMPLATE).read_text())
    if template.get("Rules") != region_rules(city):
        raise PackagingError(f"{package_dir} is not {city.slug}'s package: run `make package`")
    params = stack_params(city, CITY_JSON, os.path.relpath(LAYER_DIR, ROOT), generation)
    packaged_prefix = template["Resources"]["IngestLambdaFunction"]["Properties"]["Environment"]
    if packaged_prefix["Variables"]["CITYPIPE_STACK__NAME_PREFIX"] != {
        "Fn::Sub": params["namePrefix"]
    }:
        raise PackagingError(
            f"{package_dir} was packaged for another --generation: package it again with this one"
        )
    subprocess.run(
        [str(ensure_osls()), "deploy", "--package", ".serverless", "--stage", STAGE,
         "--region", city.region, *_param_args(params)],
        cwd=ROOT,
        check=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="citypipe_local.package")
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="build the Lambda layer directory")
    layer.add_argument("--out", type=Path, default=LAYER_DIR)
    for name, help_text in (
        ("stack", "package a city's stack offline (osls 4) and lint it (cfn-lint)"),
        ("deploy", "deploy the packaged stack with your AWS credentials (osls deploy)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--city", type=Path, required=True, help="the city file")
        command.add_argument("--region", help="refused unless it is the city file's region")
        command.add_argument(
            "--generation", type=int, default=1,
            help="of the names: 2 or more to deploy again beside what a removed stack kept",
        )  # fmt: skip
    commands.choices["stack"].add_argument(
        "--build-layer", action="store_true", help="build the layer first (make package)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "layer":
            built = build_layer(args.out)
            print(
                f"layer: {built.path} ({built.unzipped_bytes / 1e6:.1f} MB unzipped, "
                f"{built.files} files)"
            )
        elif args.command == "stack":
            packaged = package_stack(
                args.city, args.region, build=args.build_layer, generation=args.generation
            )
            print(
                f"stack {stack_name(packaged.city)} ({packaged.city.region}) packaged in "
                f"{packaged.directory}; layer {packaged.layer.unzipped_bytes / 1e6:.1f} MB "
                f"unzipped; cfn-lint: no error"
                + (f", warnings:\n{packaged.lint}" if packaged.lint else "")
            )
        else:
            deploy_stack(args.city, args.region, args.generation)
    except (ConfigError, PackagingError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
