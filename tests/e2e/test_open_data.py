"""The open zone of a replayed city, as harvesters, FIWARE apps and residents get it.

A small simulated city is replayed through the real handlers (what ``make demo`` does at
full size); its ``out/open`` must pass ``frictionless validate`` and read in DuckDB as
the CSV says (the DCAT-AP, HVD and Smart Data Models checks of a replay are
test_open_data_shapes.py, against the project's own shapes and schemas, and make
conformance, against the official ones). Then the day's partials are
exported again by the export function against a real S3 API (the embedded moto server,
whose open bucket anyone may read, as a city serves it) and the portal is opened in
headless Chromium: no console error, no request leaving the open zone, charts drawn,
every link resolving to an object of the open zone, readable on a phone; every page (the
first, a page per dataset at the dataset's URI, the register's) checked by axe-core for
WCAG 2.1 AA at a phone's (375 px) and a desktop's width. The test saves
screenshots; ``CITYPIPE_SCREENSHOT_DIR`` keeps a copy (how ``docs/portal.png`` is made).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import pytest
import rdflib
from rdflib.compare import isomorphic
from validation import frictionless_validate

from citypipe.adapters.s3 import S3ObjectStore
from citypipe.adapters.sqs import SqsQueue
from citypipe.domain.city import City
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.ports import SystemClock
from citypipe.service.kernel import Deps
from citypipe.settings import StackSettings
from citypipe_local import stack
from citypipe_local.backends import Endpoint
from citypipe_local.replay import ReplayOptions, replay
from citypipe_local.simulate import simulate

pytestmark = pytest.mark.slow  # a full replay and a browser: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
CHROMIUM = os.environ.get("CITYPIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    recorded = tmp_path_factory.mktemp("input")
    simulate(city, recorded, hours=2.0, seed=5, scale=0.1)
    target = tmp_path_factory.mktemp("out")
    keys = tmp_path_factory.mktemp("keys")
    report = replay(CITY_FILE, recorded, target, ReplayOptions(batch_payloads=2_000, keys_dir=keys))
    assert report["balanced"], report["checks"]
    return target


@pytest.fixture(scope="module")
def open_dir(out: Path) -> Path:
    """``out/open/``: the open zone, ``velden/…`` (the bucket's ``open/velden/…``)."""
    return out / "open"


def catalogue(open_dir: Path) -> rdflib.Graph:
    return rdflib.Graph().parse(open_dir / "velden" / "catalog.jsonld", format="json-ld")


# --- what a harvester and a FIWARE application read --------------------------------------


def test_the_turtle_catalogue_is_the_json_ld_one(open_dir: Path) -> None:
    turtle = rdflib.Graph().parse(open_dir / "velden" / "catalog.ttl", format="turtle")
    assert isomorphic(turtle, catalogue(open_dir))


def test_the_data_package_passes_frictionless_validate(open_dir: Path) -> None:
    result = frictionless_validate(open_dir / "velden" / "datapackage.json")
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["tasks"], indent=1)[:4000]
    # air quality, traffic flow, people counts, weather; the register, the record and the
    # sensor register
    assert len(report["tasks"]) == 7


def test_duckdb_reads_a_theme_by_its_date_partitions_as_the_csv_says(open_dir: Path) -> None:
    theme = open_dir / "velden" / "traffic-flow"
    columns = "strftime(window_start AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'), zone, quantity"
    parquet = duckdb.sql(
        f"SELECT date, {columns}, count, sum FROM read_parquet('{theme}/*/*.parquet', "
        "hive_partitioning = true) ORDER BY ALL"
    ).fetchall()
    from_csv = duckdb.sql(
        f"SELECT window_start, zone, quantity, count, sum FROM read_csv('{theme}/*/*.csv', "
        "all_varchar = true) ORDER BY ALL"
    ).fetchall()
    assert len(parquet) > 50
    assert {row[0].isoformat() for row in parquet} == {"2026-06-01"}
    assert [(r[1], r[2], r[3], str(r[4]), repr(r[5])) for r in parquet] == [
        tuple(row) for row in from_csv
    ]


# --- the portal, served by an S3 API and opened in Chromium --------------------------------


@dataclass(frozen=True)
class Served:
    deps: Deps
    base: str  # the open bucket's URL, ending in /

    @property
    def bucket(self) -> str:
        return self.deps.names.bucket(Zone.OPEN)

    def key_of(self, url: str) -> str | None:
        """The open zone's key a URL names, or None when it points elsewhere."""
        if not url.startswith(self.base):
            return None
        return unquote(urlsplit(url).path.removeprefix(urlsplit(self.base).path))


@pytest.fixture(scope="module")
def served(out: Path, city: City, embedded: Endpoint) -> Iterator[Served]:
    """The replay's open zone, as its export published it, in a fresh stack on moto: the
    portal as a browser gets it from the bucket. (The people counts cannot be exported
    again from the run: their pseudonyms died with its keys.)"""
    clients = stack.make_clients(embedded.settings)
    names = StackNames(city.slug, prefix=f"pt{uuid.uuid4().hex[:8]}-")
    stack.up(city, names, clients, StackSettings(city_file=CITY_FILE, name_prefix=names.prefix))
    deps = Deps(city, names, S3ObjectStore(clients.s3), SqsQueue(clients.sqs), SystemClock())
    published = out / "open"
    for path in sorted(p for p in published.rglob("*") if p.is_file()):
        key = f"open/{path.relative_to(published)}"  # out/open/<city>/...
        deps.store.put(names.bucket(Zone.OPEN), key, path.read_bytes(), _media_type(path))
    yield Served(deps, f"{embedded.settings.endpoint_url}/{names.bucket(Zone.OPEN)}/")
    stack.down(names, clients)


def _media_type(path: Path) -> str:
    """What the export put the file as (the browser needs it for the page and its assets)."""
    return {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".json": "application/json",
        ".jsonld": "application/ld+json",
        ".csv": "text/csv",
        ".geojson": "application/geo+json",
        ".ttl": "text/turtle",
    }.get(
        path.suffix,
        "text/html; charset=utf-8"
        if path.parent.name == "datasets"
        else "application/octet-stream",
    )  # fmt: skip (a dataset's page: no extension)


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": PHONE}


@dataclass
class Visit:
    """What Chromium saw of every page of the portal, at a desktop's and a phone's width."""

    pages: list[str]  # the keys visited: the first page and every dataset page
    console_errors: list[str]
    failed: list[str]  # requests that failed or answered >= 400
    outside: list[str]  # requests to anywhere but the open bucket (blocked)
    links: list[str]  # every href and src, resolved
    anchors: list[str]  # in-page targets (page#id) that exist
    charts: list[dict[str, Any]]  # the first page's
    overflow: dict[str, int]  # horizontal scroll on a phone, in CSS pixels, per page
    # axe-core's serious or critical WCAG 2.1 A/AA violations, per page and width
    violations: dict[str, list[str]]
    screenshots: dict[str, Path]


def _pages(served: Served) -> list[str]:
    """The portal's pages: its first page, then every page under datasets/."""
    names = served.deps.names
    prefix = names.dataset_page_key("")
    datasets = sorted(i.key for i in served.deps.store.list(served.bucket, prefix))
    return [StackNames("velden").portal_key(), *datasets]


def _axe(page: Any) -> list[str]:
    """axe-core run in the page: its serious and critical WCAG 2.1 A and AA violations."""
    page.add_script_tag(content=AXE.read_text("utf-8"))
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['html'][:200]}"
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture(scope="module")
def visit(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Visit:
    assert Path(CHROMIUM).exists(), (
        f"Chromium not found at {CHROMIUM}: .ci/chromium installs Debian's chromium"
    )
    assert AXE.exists(), f"axe-core not found at {AXE}: `npm ci` installs it (package.json)"
    from playwright.sync_api import Request, Route, sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    seen = Visit(_pages(served), [], [], [], [], [], [], {}, {}, {})

    def guard(route: Route, request: Request) -> None:
        if request.url.startswith(served.base):
            route.continue_()
        else:
            seen.outside.append(request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            for width, viewport in WIDTHS.items():
                for key in seen.pages:
                    page = browser.new_page(viewport=viewport, device_scale_factor=1)
                    page.route("**/*", guard)
                    page.on(
                        "console",
                        lambda m: m.type == "error" and seen.console_errors.append(m.text),
                    )
                    page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
                    page.on("requestfailed", lambda r: seen.failed.append(r.url))
                    page.on(
                        "response",
                        lambda r: r.status >= 400 and seen.failed.append(f"{r.status} {r.url}"),
                    )
                    page.goto(served.base + key, wait_until="networkidle")
                    name = f"{key.rsplit('/', 1)[-1].removesuffix('.html')}-{width}"
                    seen.violations[name] = _axe(page)
                    path = shots / f"portal-{name}.png"
                    page.screenshot(path=str(path), full_page=True)
                    seen.screenshots[name] = path
                    if width == "phone":
                        seen.overflow[name] = page.evaluate(
                            "document.documentElement.scrollWidth - window.innerWidth"
                        )
                    else:
                        _links(page, seen, first=key == seen.pages[0])
                    page.close()
        finally:
            browser.close()
    keep = os.environ.get("CITYPIPE_SCREENSHOT_DIR")
    if keep:
        for path in seen.screenshots.values():
            shutil.copy(path, Path(keep) / path.name)
    return seen


def _links(page: Any, seen: Visit, first: bool) -> None:
    """A page's links and in-page targets; the first page's charts."""
    seen.links += page.eval_on_selector_all(
        "a[href], link[href], img[src], script[src]", "els => els.map(e => e.href || e.src)"
    )
    seen.anchors += page.eval_on_selector_all(
        "a[href*='#']",
        "els => els.filter(e => e.pathname === location.pathname "
        "&& document.getElementById(e.hash.slice(1))).map(e => e.href)",
    )
    if first:
        seen.charts = page.eval_on_selector_all(
            "section.dataset figure.chart",
            """figs => figs.map(f => ({
                dataset: f.closest('section').id,
                width: f.querySelector('svg').getBoundingClientRect().width,
                bars: [...f.querySelectorAll('rect.bar')]
                      .filter(b => b.getBoundingClientRect().width > 0).length}))""",
        )


def test_the_portal_loads_without_a_console_error_or_a_failed_request(visit: Visit) -> None:
    assert visit.console_errors == []
    assert visit.failed == []


def test_the_portal_asks_for_nothing_outside_the_open_zone(visit: Visit) -> None:
    assert visit.outside == []


def test_every_page_meets_wcag_2_1_aa_by_axe_core_at_a_phones_and_a_desktops_width(
    visit: Visit,
) -> None:
    # the first page, a page per dataset and the register's, each at both widths
    assert len(visit.pages) >= 5 and len(visit.violations) == 2 * len(visit.pages)
    assert {page: found for page, found in visit.violations.items() if found} == {}


def test_axe_core_sees_a_page_that_fails_wcag(tmp_path: Path) -> None:
    """The check can fail: a picture without a text alternative and a form field without
    a label are serious or critical violations."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_content(
                '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
                '<svg role="img"><circle r="4"/></svg><input type="text"></main></body></html>'
            )
            found = _axe(page)
        finally:
            browser.close()
    assert {v.split(" ", 1)[0] for v in found} == {"svg-img-alt", "label"}


def test_every_dataset_has_a_chart_drawn_with_bars(visit: Visit) -> None:
    drawn = {c["dataset"] for c in visit.charts if c["width"] > 200 and c["bars"] > 0}
    assert drawn == {"air-quality", "traffic-flow", "people-counts", "weather"}


def test_every_dataset_uri_of_the_catalogue_is_a_page_of_the_portal(
    visit: Visit, open_dir: Path, city: City
) -> None:
    datasets = set(catalogue(open_dir).subjects(rdflib.RDF.type, DCAT.Dataset))
    keys = {str(d).removeprefix(city.portal_url) for d in datasets}
    assert len(keys) >= 5 and keys == set(visit.pages[1:])


def test_every_link_of_the_portal_resolves_to_an_object_of_the_open_zone(
    visit: Visit, served: Served, city: City
) -> None:
    local = [url for url in visit.links if served.key_of(url) is not None]
    elsewhere = {url for url in visit.links if served.key_of(url) is None}
    # the only links out are the licence (a document, not data) and in-page anchors
    assert elsewhere <= {city.licence}
    missing = [
        url
        for url in local
        if "#" not in url
        and served.deps.store.head(served.bucket, served.key_of(url) or "") is None
    ]
    assert len(local) > 20 and missing == []
    # every link to a part of a page (each is to a part of its own page) finds that part
    in_page = {url for url in local if "#" in url}
    assert in_page and in_page == set(visit.anchors)


def test_every_dataset_links_a_download_per_format(visit: Visit, served: Served) -> None:
    keys = [served.key_of(url) or "" for url in visit.links]
    for theme in ("air-quality", "traffic-flow", "people-counts"):
        formats = {k.rsplit(".", 1)[1] for k in keys if k.startswith(f"open/velden/{theme}/")}
        assert formats == {"csv", "parquet", "geojson", "jsonld", "ttl"}


def test_every_page_of_the_portal_fits_a_phone_screen(visit: Visit) -> None:
    assert len(visit.overflow) == len(visit.pages)
    assert {page: px for page, px in visit.overflow.items() if px > 0} == {}


def test_the_portal_screenshots_are_saved(visit: Visit) -> None:
    for path in visit.screenshots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
