"""``make demo`` installs the ``local`` extra only (Makefile: ``venv-local``): the CLI must
import without what the ``dev`` extra adds. A fresh clone's demo once failed on the
packager's ``elftools``, installed with the suite's tools only."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

from repo import ROOT


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=;\s]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_cli_imports_with_the_local_extra_alone() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev_only = _names(extras["dev"]) - _names(extras["local"]) - _names(extras["bridge"])
    dev_only -= _names(project["dependencies"]) | {"citypipe"}
    # the top-level modules of the dev extra's own distributions, made unimportable
    hidden = sorted(
        module
        for module, dists in packages_distributions().items()
        if {d.lower() for d in dists} & dev_only and module.isidentifier()
    )
    code = (
        f"import sys\nfor name in {hidden!r}: sys.modules[name] = None\nimport citypipe_local.cli\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
