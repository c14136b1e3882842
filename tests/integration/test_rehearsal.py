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
from citypipe_local.public import http_event
from citypipe_local.rehearse import (
    Cloud,
    Rehearsal,
    answered_differently,
    differences,
    rehearse,
    runtime_python,
)
from citypipe_local.runner import PUBLIC

SCALES: dict[Cloud, float] = {"aws": 0.05, "scaleway": 0.03}
CITIES: dict[Cloud, Path] = {
    "aws": ROOT / "infra" / "cities" / "velden.yaml",
    "scaleway": ROOT / "infra" / "cities" / "velden-scaleway.yaml",
}


@pytest.mark.slow  # builds both clouds' artefacts (pip's cache, osls, serverless v3)
@pytest.mark.parametrize("cloud", ["aws", "scaleway"])
def test_the_artefacts_publish_what_the_source_tree_publishes(cloud: Cloud, tmp_path: Path) -> None:
    # Given a small city's hour, replayed by the source tree, then by the built artefacts
    # (on AWS a little larger: at 0.03 the hour holds no IoT Core uplink of a LoRaWAN device)
    done = rehearse(CITIES[cloud], cloud, tmp_path, hours=1.0, scale=SCALES[cloud])
    # Then both runs' books balance and every open-zone file is the same, byte for byte
    assert done.balanced
    assert done.differences == []
    assert done.published > 0
    # And it was the artefacts that ran: every function, in a bare interpreter
    assert all(done.invocations[f.value] > 0 for f in Function), done.invocations
    # And, once the day was published, the artefacts' webhook and open-data API answered as
    # the source tree's did, request by request
    assert all(done.invocations[name] > 0 for name in PUBLIC), done.invocations
    assert done.answered_differently == []
    api = done.answers["api"]
    # every collection described and paged, features served
    items = {r: a for r, a in api.items() if "/items?" in r}
    assert len(items) >= 4
    assert all(a["status"] == 200 for a in api.values())
    assert any(a["returned"] for a in items.values())
    # a token refused for every source, an opt-out taken, and the captures' SenML packs,
    # dated today, accepted with their sources' tokens and handed to the buffer
    posted = done.answers["posted"].values()
    assert done.posted == len(posted) > 0
    assert all(a["status"] == 202 and a["accepted"] and a["buffered"] for a in posted)
    assert done.answers["optout"]["/optout"]["status"] == 202
    assert {a["status"] for a in done.answers["refused"].values()} == {401}
    # ... written by the artefacts' batcher (its manifests), and their day published: the
    # books that balanced count them
    assert any((done.from_artefacts / "raw" / "velden").glob("buffer/*/*")), "no batch written"
    assert done.posted_published
    # and on AWS, the captures' IoT Core uplinks handed to the artefacts' ingest as the
    # city's rule invokes it, accepted (written by the edge, with claims) and published
    ruled = done.answers["iot"].values()
    assert done.ruled == len(ruled) and (done.ruled > 0) == (cloud == "aws")
    assert all(a["accepted"] and not a["quarantined"] for a in ruled)
    assert done.ruled_written == done.ruled  # each written by the edge: its lineage
    assert done.answered() == dict.fromkeys(done.answered(), True)
    assert done.passed
    report = json.loads((done.from_source / "report.json").read_text())
    assert "from_artefacts" not in report
    assert report["public"] == done.answers  # the source tree's answers: the same


PAGE = {"status": 200, "content_type": "application/geo+json", "sha256": "0", "returned": 3}
REFUSED = {"status": 401, "content_type": "application/json", "sha256": "1", "returned": None}
TAKEN = {**REFUSED, "status": 202, "sha256": "2"}
ACCEPTED = {**TAKEN, "sha256": "3", "accepted": 3, "buffered": True}
RULED = {"accepted": 4, "duplicates": 0, "quarantined": {}}


def test_a_rehearsal_in_which_the_artefacts_did_not_run_does_not_pass(tmp_path: Path) -> None:
    ran = dict.fromkeys((*(f.value for f in Function), *PUBLIC), 1)
    items = "/features/collections/weather/items?limit=3"
    answers = {
        "api": {items: PAGE},
        "refused": {"/ingest/weather/canonical": REFUSED},
        "validator": {},
        "optout": {"/optout": TAKEN},
        "posted": {"/ingest/weather/senml #1": ACCEPTED},
        "iot": {"iot #1": RULED},
    }
    done = Rehearsal(
        cloud="aws", from_source=tmp_path, from_artefacts=tmp_path, differences=[],
        balanced=True, invocations=ran, published=3, answers=answers, posted=1,
        posted_published=True, ruled=1, ruled_written=1,
    )  # fmt: skip
    assert done.passed
    assert not replace(done, invocations={**ran, "export": 0}).passed
    assert not replace(done, invocations={**ran, "api": 0}).passed
    assert not replace(done, published=0).passed
    assert not replace(done, differences=["velden/catalog.jsonld"]).passed
    # nor one whose public entry points answered otherwise than the source tree's, failed,
    # served no feature, let a wrong token in, took no opt-out, did not accept and buffer
    # every pack there was to post or IoT uplink to hand over, or did not publish their day
    assert not replace(done, answered_differently=[f"api {items}"]).passed
    for changed in (
        {"api": {items: {**PAGE, "status": 500}}},
        {"api": {items: {**PAGE, "returned": 0}}},
        {"api": {}},
        {"refused": {"/ingest/weather/canonical": TAKEN}},
        {"refused": {}},
        {"optout": {"/optout": REFUSED}},
        {"posted": {"/ingest/weather/senml #1": {**ACCEPTED, "buffered": None}}},
        {"posted": {"/ingest/weather/senml #1": {**ACCEPTED, "accepted": 0}}},
        {"posted": {}},
        {"iot": {"iot #1": {**RULED, "accepted": 0}}},
        {"iot": {"iot #1": {**RULED, "duplicates": 4}}},
        {"iot": {}},
    ):
        assert not replace(done, answers=answers | changed).passed, changed
    assert not replace(done, posted=2).passed
    assert not replace(done, ruled=2).passed
    assert not replace(done, ruled_written=0).passed  # the edge wrote no batch of them
    assert not replace(done, posted_published=False).passed
    # and a city whose captures hold no pack to post, or no uplink, passes without one
    assert replace(done, answers=answers | {"posted": {}}, posted=0).passed
    assert replace(done, answers=answers | {"iot": {}}, ruled=0, ruled_written=0).passed


def test_two_runs_answers_are_compared_request_by_request() -> None:
    left = {"api": {"/features": PAGE, "/features/api": PAGE}, "webhook": {"POST x": REFUSED}}
    right = {"api": {"/features": {**PAGE, "sha256": "2"}}, "webhook": {"POST x": REFUSED}}
    assert answered_differently(left, right) == ["api /features", "api /features/api"]
    assert answered_differently(left, left) == []


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
    runtime = replace(runtime, public={"api": ("functions/api/handler.handler", 29.0)})
    invoker = BareInvoker(Settings(), 1, tmp_path / "logs.jsonl", runtime)
    # When a function is invoked, Then its cold start fails as on a cloud: the library the
    # project's own environment holds is not on its path
    try:
        with pytest.raises(RuntimeError, match="No module named 'citypipe'"):
            invoker.invoke(Function.ANONYMIZE, "aws", {"Records": []}, {})
        # And so does a public entry point's: the API's, as its deployment names it
        event = http_event("aws", "GET", "/features")
        with pytest.raises(RuntimeError, match=r"^api: .*No module named 'citypipe'"):
            invoker.invoke_public("api", "aws", event, {})
        # And one the deployment does not name is refused, not guessed
        with pytest.raises(ValueError, match="no handler of the public entry point 'webhook'"):
            invoker.invoke_public("webhook", "aws", event, {})
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
