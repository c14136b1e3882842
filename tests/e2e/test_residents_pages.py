"""The residents' pages in a real browser (Chromium, as ``test_open_data.py`` runs it):
each passes axe-core's WCAG 2.1 A and AA rules, and a sensor's notice prints on one A4
sheet, its register entry readable and the screen's hints left out.

axe-core is the one ``package.json`` pins (``npm ci`` installs it in ``node_modules/``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from repo import ROOT

from citypipe.core.publish.residents import residents_files
from citypipe.core.publish.sensors import sensor_rows
from citypipe.domain.city import City
from citypipe.domain.naming import StackNames

CHROMIUM = os.environ.get("CITYPIPE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]  # fmt: skip
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
NAMES = StackNames("velden")


@pytest.fixture(scope="module")
def zone(city: City, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The residents' pages of the example city, as the open zone holds them."""
    root = tmp_path_factory.mktemp("open")
    for key, (body, _) in residents_files(city, 3):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: .ci/chromium installs it"
    assert AXE.exists(), f"{AXE} missing: `npm ci` installs axe-core (package.json)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def pages(city: City) -> list[str]:
    rows = sensor_rows(city)
    personal = next(r["sensor"] for r in rows if r["personal_data"] == "yes")
    environmental = next(r["sensor"] for r in rows if r["personal_data"] == "no")
    return [
        NAMES.sensor_page_key(), NAMES.optout_page_key(), NAMES.rights_page_key(),
        NAMES.notice_key(personal), NAMES.notice_key(environmental),
    ]  # fmt: skip


@pytest.mark.parametrize("which", range(5), ids=["sensors", "optout", "rights", "notice-personal",
                                                 "notice-environmental"])  # fmt: skip
def test_each_residents_page_passes_axe_core_wcag_21_aa(
    city: City, zone: Path, browser: Any, which: int
) -> None:
    page = browser.new_page()
    try:
        page.goto((zone / pages(city)[which]).as_uri())
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA
        )
    finally:
        page.close()
    violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == []
    assert result["passes"]  # the rules ran


@pytest.mark.parametrize("personal", [True, False], ids=["personal", "environmental"])
def test_a_notice_prints_on_one_a4_sheet_with_its_register_entry(
    city: City, zone: Path, browser: Any, personal: bool
) -> None:
    row = next(r for r in sensor_rows(city) if (r["personal_data"] == "yes") is personal)
    page = browser.new_page()
    try:
        page.goto((zone / NAMES.notice_key(row["sensor"])).as_uri())
        page.emulate_media(media="print")
        entry = page.locator(".entry")
        assert entry.inner_text() == row["register_url"] and entry.is_visible()
        assert not page.locator(".screen").is_visible()  # the screen's hint is not printed
        assert not page.locator("nav").is_visible()
        pdf = page.pdf(format="A4", prefer_css_page_size=True)
    finally:
        page.close()
    sheets = re.search(rb"/Type /Pages\s*/Count (\d+)", pdf) or re.search(
        rb"/Count (\d+)\s*/Type /Pages", pdf
    )
    assert sheets is not None and int(sheets.group(1)) == 1
