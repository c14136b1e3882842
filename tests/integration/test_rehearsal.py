"""The rehearsal (`make rehearse`): what `make package` and `make package-scaleway` build,
unpacked into empty folders, runs an hour of a small city in bare interpreters of the
runtime's version on the runtime's oldest supported SDK; its open data equals the source
tree's run on the same input and keys (citypipe_local.rehearse)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from repo import ROOT

from citypipe.domain.model import Function
from citypipe.settings import Settings
from citypipe_local.bare import BareInvoker, Runtime
from citypipe_local.rehearse import Cloud, Rehearsal, differences, rehearse, runtime_python

CITIES: dict[Cloud, Path] = {
    "aws": ROOT / "infra" / "cities" / "velden.yaml",
    "scaleway": ROOT / "infra" / "cities" / "velden-scaleway.yaml",
}


@pytest.mark.slow  # builds both clouds' artefacts (pip's cache, osls, serverless v3)
@pytest.mark.parametrize("cloud", ["aws", "scaleway"])
def test_the_artefacts_publish_what_the_source_tree_publishes(cloud: Cloud, tmp_path: Path) -> None:
    # Given a small city's hour, replayed by the source tree, then by the built artefacts
    done = rehearse(CITIES[cloud], cloud, tmp_path, hours=1.0, scale=0.03)
    # Then both runs' books balance and every open-zone file is the same, byte for byte
    assert done.balanced
    assert done.differences == []
    assert done.published > 0
    # And it was the artefacts that ran: every function, in a bare interpreter
    assert all(done.invocations[f.value] > 0 for f in Function), done.invocations
    assert done.passed
    assert "from_artefacts" not in json.loads((done.from_source / "report.json").read_text())


def test_a_rehearsal_in_which_the_artefacts_did_not_run_does_not_pass(tmp_path: Path) -> None:
    ran = dict.fromkeys((f.value for f in Function), 1)
    done = Rehearsal("aws", tmp_path, tmp_path, [], True, ran, 3)
    assert done.passed
    assert not replace(done, invocations={**ran, "export": 0}).passed
    assert not replace(done, published=0).passed
    assert not replace(done, differences=["velden/catalog.jsonld"]).passed


def test_a_bare_runtime_sees_nothing_but_its_artefacts(tmp_path: Path) -> None:
    # Given "artefacts" that are the handlers alone, without the layer (no library)
    runtime = Runtime(
        python=runtime_python(),
        platform="aws",
        path=(ROOT,),
        cwd=tmp_path,
        handlers={f: f"functions/{f.value}/handler.handler" for f in Function},
        city_file="infra/cities/velden.yaml",
        timeout_s=dict.fromkeys(Function, 30.0),
    )
    invoker = BareInvoker(Settings(), 1, tmp_path / "logs.jsonl", runtime)
    # When a function is invoked, Then its cold start fails as on a cloud: the library the
    # project's own environment holds is not on its path
    try:
        with pytest.raises(RuntimeError, match="No module named 'citypipe'"):
            invoker.invoke(Function.ANONYMIZE, "aws", {"Records": []}, {})
    finally:
        invoker.close()


def test_the_runtime_is_the_cloud_s_python() -> None:
    version = subprocess.run(
        [runtime_python(), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert version == ["3", "12"]


def test_the_comparison_names_every_file_that_differs(tmp_path: Path) -> None:
    for side, text in (("a", "1"), ("b", "2")):
        (tmp_path / side / "day").mkdir(parents=True)
        (tmp_path / side / "day" / "same.csv").write_text("x")
        (tmp_path / side / "day" / "other.csv").write_text(text)
        (tmp_path / side / f"only-{side}.json").write_text("{}")
    found = differences(tmp_path / "a", tmp_path / "b")
    assert found == ["day/other.csv", "only-a.json", "only-b.json"]
