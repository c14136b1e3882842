"""Deployment artefacts, built offline from the project's own files: the Lambda layer.

The layer holds the ``citypipe`` library and its runtime dependencies for Lambda's
python3.12 on arm64, and nothing a city's cloud does not run: no ``citypipe_local``, no
test dependencies, no ``tests/`` folders, headers or bytecode of the dependencies. boto3
is not in it (the runtime has it).

    python -m citypipe_local.package layer --out .build/layer
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "citypipe" / "python" / "citypipe"
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})
# pyarrow >= 26 ships aarch64 wheels tagged manylinux_2_28 only; Lambda's python3.12 runtime
# (Amazon Linux 2023, glibc 2.34) takes both tags.
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
PYTHON = "3.12"
# What no function imports: the folders and files deleted from the dependencies.
TRIMMED_DIRS = frozenset({"tests", "test", "testing", "__pycache__", "include", "benchmarks"})
TRIMMED_SUFFIXES = (".pyc", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cc", ".cpp", ".a")


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


def trim(site: Path) -> None:
    """Delete what no function imports from installed dependencies."""
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in TRIMMED_DIRS and path.parent != site:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in TRIMMED_SUFFIXES:
            path.unlink()
    for pattern in ("bin",):  # console scripts of the dependencies
        shutil.rmtree(site / pattern, ignore_errors=True)


def build_layer(out: Path, constraints: Path = ROOT / "constraints.txt") -> Layer:
    """Install the runtime dependencies for arm64 into ``out/python``, add the library,
    trim what no function imports. Needs PyPI (or pip's cache), no cloud account."""
    shutil.rmtree(out, ignore_errors=True)
    site = out / "python"
    site.mkdir(parents=True)
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(site), *platforms, "--implementation", "cp",
            "--python-version", PYTHON, "--only-binary=:all:", "--no-compile",
            "-c", str(constraints), *runtime_requirements(),
        ],
        check=True,
    )  # fmt: skip
    shutil.copytree(LIBRARY, site / "citypipe", ignore=shutil.ignore_patterns("__pycache__"))
    trim(site)
    files = [p for p in out.rglob("*") if p.is_file()]
    return Layer(out, sum(p.stat().st_size for p in files), len(files))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="citypipe_local.package")
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="build the Lambda layer directory")
    layer.add_argument("--out", type=Path, default=ROOT / ".build" / "layer")
    args = parser.parse_args(argv)
    built = build_layer(args.out)
    print(
        f"layer: {built.path} ({built.unzipped_bytes / 1e6:.1f} MB unzipped, {built.files} files)"
    )


if __name__ == "__main__":
    main()
