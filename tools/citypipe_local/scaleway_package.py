"""The Scaleway deployment, packaged offline: one zip per city namespace, x86_64, <= 100 MiB.

    python -m citypipe_local.scaleway_package --city infra/cities/velden-scaleway.yaml \
        --prefix <deployment prefix>-

builds ``.build/scaleway/<city>/`` — ``infra/scaleway/serverless.yml`` with the city's name,
region and the deployment's name prefix (the one ``stack up`` is given) rendered in, the
Scaleway entry points (``functions/*/scaleway.py``), the city the functions read
(``city.json``: the city file checked and merged, any file it extends and its registry
resolved) and ``package/`` (the library and its runtime dependencies, boto3 included:
Scaleway's runtime has none; every module with its Python 3.12 bytecode, or each new
instance compiles what it imports, docs/decisions/0113) — then runs ``serverless package``
(v3 with ``serverless-scaleway-functions``, pinned in ``infra/scaleway/package.json``)
there with placeholder credentials: the zip it writes, ``.serverless/citypipe-<city>.zip``,
is exactly what ``serverless deploy`` uploads.

Scaleway's Python runtimes run on Alpine Linux: the wheels are musllinux.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from citypipe.domain.city import SCALEWAY_REGIONS, City, ConfigError
from citypipe.domain.city_checks import checked_city
from citypipe.domain.naming import StackNames
from citypipe_local.package import (
    CITY_JSON,
    ROOT,
    PackagingError,
    compile_bytecode,
    install_runtime,
    runtime_interpreter,
    runtime_requirements,
    write_city_json,
)
from citypipe_local.stack import prefix_problems

TEMPLATE = ROOT / "infra" / "scaleway"
PLATFORMS = ("musllinux_1_2_x86_64", "musllinux_1_1_x86_64")
PYTHON = "3.12"  # the serverless.yml's runtime: python312
MAX_ZIP_BYTES = 100 * 1024 * 1024  # Scaleway's limit on a namespace's zip
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"  # `package` needs no account


# botocore's service models: the functions call these alone (sts and sso for credentials).
BOTOCORE_SERVICES = frozenset({"s3", "sqs", "secretsmanager", "sts", "sso", "sso-oidc"})


def trim_botocore(site: Path) -> None:
    data = site / "botocore" / "data"
    for service in data.iterdir():
        if service.is_dir() and service.name not in BOTOCORE_SERVICES:
            shutil.rmtree(service)


@dataclass(frozen=True)
class ScalewayPackage:
    directory: Path
    zip: Path
    zip_bytes: int


def _npm(directory: Path) -> Path:
    """``npm ci`` in infra/scaleway once (pinned by its lockfile); the serverless binary.

    No install script runs but argon2's, which the plugin needs: it builds from source with
    the local Node headers when its prebuilt binary cannot be downloaded (offline).
    """
    binary = directory / "node_modules" / ".bin" / "serverless"
    native = directory / "node_modules" / "argon2" / "lib" / "binding"
    if not binary.exists() or not native.exists():
        npm = ["npm", "--no-audit", "--no-fund"]
        subprocess.run([*npm, "ci", "--ignore-scripts"], cwd=directory, check=True)
        subprocess.run([*npm, "rebuild", "argon2"], cwd=directory, check=True)
    return binary


def render(city: City, prefix: str) -> str:
    """infra/scaleway/serverless.yml for this city and deployment prefix, the functions
    reading ``city.json``: serverless v3 cannot name a service from a parameter, so the
    values are rendered in."""
    if city.region not in SCALEWAY_REGIONS:
        raise PackagingError(
            f"region {city.region!r} is not a Scaleway region "
            f"({', '.join(sorted(SCALEWAY_REGIONS))}); a city deployed to Scaleway says so "
            "in its city file (see infra/cities/velden-scaleway.yaml)"
        )
    if problems := prefix_problems(StackNames(city.slug, prefix)):
        raise PackagingError(f"--prefix: {problems[0]}")
    values = {
        "city": city.slug,
        "region": city.region,
        "prefix": prefix,
        "cityFile": CITY_JSON,
    }
    rendered = (TEMPLATE / "serverless.yml").read_text()
    for name, value in values.items():
        rendered = rendered.replace(f"${{param:{name}}}", value)
    return rendered


def build_zip(
    city_file: Path,
    prefix: str,
    out: Path = ROOT / ".build" / "scaleway",
    platforms: Sequence[str] = PLATFORMS,
) -> ScalewayPackage:
    """A city's Scaleway zip (for Scaleway's Alpine runtime unless ``platforms`` say
    otherwise: the rehearsal's are this machine's)."""
    city = checked_city(city_file)
    try:
        rendered = render(city, prefix)
    except PackagingError as exc:
        raise PackagingError(f"{city_file}: {exc}") from None
    runtime_interpreter(PYTHON)  # none: refused before anything is downloaded
    target = out / city.slug
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / "serverless.yml").write_text(rendered)
    for function in sorted((ROOT / "functions").iterdir()):
        if (function / "scaleway.py").is_file():
            (target / "functions" / function.name).mkdir(parents=True)
            shutil.copy(function / "scaleway.py", target / "functions" / function.name)
    write_city_json(city, city_file, target / CITY_JSON)  # merged: what it extends is in it
    site = target / "package"
    install_runtime(site, runtime_requirements(provided=()), platforms, PYTHON)
    trim_botocore(site)
    compile_bytecode(site, PYTHON, "package")  # the function's folder is Scaleway's to choose
    (target / "node_modules").symlink_to(TEMPLATE / "node_modules")
    serverless = _npm(TEMPLATE)
    env = {
        **os.environ,
        "SCW_SECRET_KEY": PLACEHOLDER,
        "SCW_DEFAULT_PROJECT_ID": PLACEHOLDER,
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        **{
            name: "placeholder"
            for name in (
                "CITYPIPE_STORAGE__ACCESS_KEY_ID",
                "CITYPIPE_STORAGE__SECRET_ACCESS_KEY",
                "CITYPIPE_QUEUES__ACCESS_KEY_ID",
                "CITYPIPE_QUEUES__SECRET_ACCESS_KEY",
                "CITYPIPE_API_STORAGE__ACCESS_KEY_ID",
                "CITYPIPE_API_STORAGE__SECRET_ACCESS_KEY",
            )
        },
    }
    subprocess.run([str(serverless), "package"], cwd=target, env=env, check=True)
    archive = target / ".serverless" / f"citypipe-{city.slug}.zip"
    size = archive.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise PackagingError(f"{archive}: {size / 2**20:.1f} MiB, over Scaleway's 100 MiB")
    with zipfile.ZipFile(archive) as zipped:
        if zipped.testzip() is not None:
            raise PackagingError(f"{archive}: a corrupt member")
    return ScalewayPackage(target, archive, size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="citypipe_local.scaleway_package")
    parser.add_argument("--city", type=Path, required=True, help="the city file")
    parser.add_argument(
        "--prefix",
        required=True,
        help="the deployment's name prefix, as CITYPIPE_STACK__NAME_PREFIX for `stack up`",
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".build" / "scaleway")
    args = parser.parse_args(argv)
    try:
        built = build_zip(args.city, args.prefix, args.out)
    except (PackagingError, ConfigError) as exc:  # a city refused (not EU, not Scaleway's)
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        raise SystemExit(2) from None
    sys.stdout.write(f"scaleway: {built.zip} ({built.zip_bytes / 2**20:.1f} MiB)\n")


if __name__ == "__main__":
    main()
