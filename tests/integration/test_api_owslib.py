"""The open-data API as a data user meets it: OWSLib's OGC API - Features client against
``citypipe api``, a real HTTP server process, over the open zone of a real small replay.

The same documents, paging and refusals as the cloud's api function (``service.api``, the
unit tests in tests/unit/test_api.py); here a third-party client reads them over a socket
and every row it pages through is one the replay published.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
import requests
from open_replay import replay_small_city
from owslib.ogcapi.features import Features
from repo import ROOT

from citypipe.domain.city import City

pytestmark = pytest.mark.slow  # a replay: `make test-fast` skips it


@pytest.fixture(scope="module")
def open_dir(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    return replay_small_city(tmp_path_factory, city) / "open"


@pytest.fixture(scope="module")
def api(open_dir: Path) -> Iterator[str]:
    """``citypipe api --open <replay>/open --port 0``: its URL, from its first line."""
    command = Path(sys.executable).with_name("citypipe")
    process = subprocess.Popen(
        [str(command), "api", "--open", str(open_dir), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CITYPIPE_LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        word, url = process.stdout.readline().split()
        assert word == "api" and url.endswith("/features/")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def published(open_dir: Path, theme: str) -> list[dict[str, Any]]:
    """Every row the replay published of a theme, day by day."""
    files = sorted((open_dir / "velden" / theme).glob("date=*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_owslib_reads_the_landing_page_conformance_and_openapi(api: str) -> None:
    features = Features(api)
    assert {link["rel"] for link in features.links} >= {"service-desc", "conformance", "data"}
    assert {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    } <= set(features.conformance()["conformsTo"])
    assert features.api()["openapi"].startswith("3.0")


def test_owslib_lists_every_published_dataset(api: str, open_dir: Path) -> None:
    features = Features(api)
    themes = {p.name for p in (open_dir / "velden").iterdir() if any(p.glob("date=*/*.parquet"))}
    assert set(features.feature_collections()) == themes
    assert {"air-quality", "traffic-flow"} <= themes  # the High-Value Datasets
    collection = features.collection("air-quality")
    assert collection["extent"]["spatial"]["crs"].endswith("CRS84")


def test_owslib_pages_through_a_dataset_to_its_last_published_row(api: str, open_dir: Path) -> None:
    features = Features(api)
    rows = published(open_dir, "traffic-flow")
    seen: list[str] = []
    kwargs: dict[str, Any] = {"limit": 20}
    while True:
        page = features.collection_items("traffic-flow", **kwargs)
        assert page["type"] == "FeatureCollection" and page["numberReturned"] <= 20
        seen += [f["id"] for f in page["features"]]
        following = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not following:
            break
        kwargs = {"limit": 20, "cursor": parse_qs(urlsplit(following[0]).query)["cursor"][0]}
    assert len(rows) > 40 and len(seen) == len(set(seen)) == len(rows)
    one = features.collection_item("traffic-flow", seen[-1])
    assert one["id"] == seen[-1] and one["geometry"]["type"] == "Polygon"


def test_owslib_filters_by_bbox_and_datetime(api: str, open_dir: Path) -> None:
    features = Features(api)
    start = min(r["window_start"] for r in published(open_dir, "air-quality"))
    instant = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    page = features.collection_items(
        "air-quality", bbox=[-180, -90, 180, 90], datetime_=instant, limit=1000
    )
    assert page["features"]
    assert {f["properties"]["window_start"] for f in page["features"]} == {instant}
    nowhere = features.collection_items("air-quality", bbox=[0, 0, 0.1, 0.1])
    assert nowhere["features"] == []


def test_csv_and_a_bad_parameter_over_the_socket(api: str) -> None:
    items = f"{api}collections/air-quality/items"
    as_csv = requests.get(items, params={"f": "csv", "limit": 5}, timeout=30)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.count("\r\n") == 6
    refused = requests.get(items, params={"limit": "lots"}, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["code"] == "InvalidParameterValue"
