"""The catalogue stays small: two simulated years of daily publications of every theme,
built with the pure core (no replay), after each day. The catalogue lists the last
``WINDOW_DAYS`` days of each theme and pages the rest by month (Hydra), so its size stops
growing once the window is full, each month's page is bounded by a month, and every
distribution of the two years is on some page (decision 0094)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from open_support import export_every_theme

from citypipe.core.publish.dcat import WINDOW_DAYS, catalogue, catalogue_pages
from citypipe.core.publish.jsontext import json_bytes
from citypipe.core.publish.turtle import to_turtle
from citypipe.domain.city import City
from citypipe.domain.export_books import Publication, VersionNote
from citypipe.domain.model import Zone
from citypipe.domain.themes import themes_of
from citypipe.service.kernel import Deps

DAYS = 730


def _on(record: Publication, day: str, n: int) -> Publication:
    """The record as if published on ``day``; every tenth day a second version (a late
    reading), so the window holds version notes too."""
    files = [f.model_copy(update={"key": f.key.replace(record.day, day)}) for f in record.files]
    version = 2 if n % 10 == 0 else 1
    history = [VersionNote(version=v, note="late readings added") for v in range(1, version + 1)]
    return record.model_copy(
        update={"day": day, "files": files, "version": version, "history": history}
    )


@pytest.fixture(scope="module")
def two_years(city: City, memory_stack: Callable[[City], Deps]) -> tuple[Deps, list[Publication]]:
    """Every theme's record of a real export's day, published again every day of two
    years."""
    deps = export_every_theme(memory_stack(city))
    bucket, prefix = deps.names.bucket(Zone.OPEN), deps.names.publications_prefix()
    keys = [i.key for i in deps.store.list(bucket, prefix)]
    day_one = [Publication.model_validate_json(o.body) for o in deps.store.get_many(bucket, keys)]
    first = date(2025, 1, 1)
    records = [
        _on(r, (first + timedelta(days=n)).isoformat(), n) for n in range(DAYS) for r in day_one
    ]
    return deps, records


def test_the_catalogue_size_is_bounded_over_two_years(
    two_years: tuple[Deps, list[Publication]],
) -> None:
    deps, records = two_years
    themes = themes_of(deps.city)
    per_day = len(records) // DAYS
    # every day while the window fills and a month after, then every fortnight
    measured = [*range(1, 2 * WINDOW_DAYS + 1), *range(2 * WINDOW_DAYS + 14, DAYS, 14), DAYS]
    sizes, turtle = {}, {}
    for days in measured:
        document = catalogue(deps.city, themes, records[: days * per_day])
        sizes[days] = len(json_bytes(document))
        if days % 7 == 0 or days == DAYS:
            turtle[days] = len(to_turtle(document).encode())
    full, turtle_full = sizes[WINDOW_DAYS], turtle[35]
    # it grows while the window fills ...
    assert sizes[1] * 10 < full
    # ... and never again: two years on, within a few bytes (the version notes the window
    # holds) of the full window, in JSON-LD and in Turtle
    assert max(s for d, s in sizes.items() if d > WINDOW_DAYS) <= full * 1.01
    assert max(s for d, s in turtle.items() if d > 35) <= turtle_full * 1.01
    assert sizes[DAYS] >= full * 0.99


def test_every_distribution_of_two_years_is_on_a_page_bounded_by_a_month(
    two_years: tuple[Deps, list[Publication]],
) -> None:
    deps, records = two_years
    themes = themes_of(deps.city)
    pages = catalogue_pages(deps.city, themes, records)
    bound = len(json_bytes(catalogue(deps.city, themes, records)))  # 31 days
    assert len(pages) == 24  # January 2025 to December 2026
    listed: set[str] = set()
    for key, page in pages.items():
        listed |= {d["@id"] for s in page["dcat:dataset"] for d in s["dcat:distribution"]}
        assert len(json_bytes(page)) <= bound * 1.01  # a month of 31 days, at most
        assert key.endswith(".jsonld")
    published = {f"{deps.city.portal_url.rstrip('/')}/{f.key}" for r in records for f in r.files}
    assert published == listed


def test_the_pages_follow_each_other_from_the_catalogue(
    two_years: tuple[Deps, list[Publication]],
) -> None:
    deps, records = two_years
    themes = themes_of(deps.city)
    base = deps.city.portal_url.rstrip("/")
    documents = {f"{base}/{deps.names.catalog_key()}": catalogue(deps.city, themes, records)}
    documents |= {
        f"{base}/{k}": page for k, page in catalogue_pages(deps.city, themes, records).items()
    }
    here, seen = f"{base}/{deps.names.catalog_key()}", []
    while here:
        seen.append(here)
        view = documents[here]["hydra:view"]
        assert view["@id"] == here
        here = view.get("hydra:next", {}).get("@id")
    assert sorted(seen) == sorted(documents)
    assert seen[1].endswith("catalog/2026-12.jsonld") and seen[-1].endswith("2025-01.jsonld")
