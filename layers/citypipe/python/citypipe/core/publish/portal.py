"""The portal: static, self-contained pages in the open zone, for a resident to read.

``index.html`` at the root: a map of the zones with the sources of the transparency
register in them, each dataset with its latest day by zone and downloads, the privacy
treatment, the register itself and the metadata. A page per dataset at the dataset's URI
(``datasets/<theme>``, what the catalogue's dataset IRIs name): the day's values on a map
of the zones and by zone, the course of the day, the downloads of the last days, the
columns. ``datasets/register``: the register and the record of processing. Drawings are
inline SVG made here (``drawing``): no script, no CDN, no web font, no map tiles; the
stylesheet and icon are objects in the open zone next to the data. Units are written as
people write them (°C, µg/m³, devices); the files keep UCUM codes. Links are relative, so
the pages work from the bucket, a CDN in front of it, or a copy on disk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from citypipe.core.disclosure import treatment
from citypipe.core.publish.dcat import (
    FORMATS,
    WINDOW_DAYS,
    describe_treatment,
    models_named,
    months_of,
)
from citypipe.core.publish.drawing import (
    NumberFormat,
    bar_chart,
    course_chart,
    sensor_legend,
    sensors_by_zone,
    titled,
    unit,
    with_unit,
    zones_map,
)
from citypipe.core.publish.geo import zone_name
from citypipe.core.publish.pages import DOCUMENT_START, relative
from citypipe.core.publish.register import RECORD, REGISTER, SENSORS, Register
from citypipe.core.publish.statements import statements
from citypipe.core.publish.tables import columns, published_quantities, statistic_of
from citypipe.domain.city import City
from citypipe.domain.export_books import Publication
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat, Theme, measure_of

__all__ = ["bar_chart", "index_html", "portal_files", "zones_map"]

STATISTIC_WORDS = {
    "mean": "the mean of the readings",
    "total": "the total counted",
    "peak": "the distinct devices seen, with noise",
}

STYLESHEET = """\
:root { color-scheme: light; --ink: #1d2733; --muted: #5b6775; --accent: #1f6f8b;
  --bar: #2a8fb5; --line: #d5dde5; --paper: #ffffff; --soft: #f3f6f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--soft); }
header, main, footer { max-width: 62rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 0 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
nav ul { list-style: none; padding: 0; margin: .75rem 0 1rem; display: flex; flex-wrap: wrap;
  gap: .4rem 1rem; }
a { color: var(--accent); overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }  /* a DPIA's or an authority's address, unbroken */
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem; margin: 0 0 1rem; }
.muted, figcaption { color: var(--muted); font-size: .9rem; }
figure { margin: .75rem 0; }
svg { display: block; width: 100%; height: auto; }
svg.map { max-width: 34rem; }
svg.key { display: inline-block; width: .8rem; height: .8rem; margin-right: .35rem;
  vertical-align: -.05rem; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
.maps { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr));
  gap: .5rem 1.5rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr));
  gap: .5rem 1.5rem; }
figure.chart { max-width: 26rem; }
figcaption { margin-bottom: .25rem; }
.zone { fill: #dcebf3; stroke: #1f6f8b; stroke-width: 1.5; }
.zone-label { font-size: 12px; fill: var(--ink); text-anchor: middle; }
.zone-value { font-size: 12px; font-weight: 600; fill: var(--ink); text-anchor: middle; }
.sensor { stroke: #ffffff; stroke-width: 1.5; }
.s0 { fill: #b3401a; } .s1 { fill: #5b3c99; } .s2 { fill: #1d6b3a; } .s3 { fill: #8a5a00; }
.s4 { fill: #a0185a; } .s5 { fill: #1f4e8b; }
.line { fill: none; stroke: var(--bar); stroke-width: 2; }
.point { fill: var(--bar); }
.tick { font-size: 11px; fill: var(--muted); text-anchor: middle; }
.tick.end { text-anchor: end; }
.bar { fill: var(--bar); }
.axis { stroke: var(--line); }
.label { font-size: 13px; fill: var(--ink); }
.value { font-size: 12px; fill: var(--muted); }
.withheld { font-size: 12px; fill: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.scroll:focus { outline: 2px solid var(--accent); }
details { margin: .5rem 0; }
article.source { border-top: 1px solid var(--line); padding-top: .25rem; }
article.source dt { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-weight: 600; }
dl { margin: .5rem 0; } dt { font-family: ui-monospace, monospace; margin-top: .4rem; }
dd { margin: 0 0 0 1rem; color: var(--muted); font-size: .9rem; }
dl.quantities dt { font-family: inherit; font-weight: 600; }
footer { padding-bottom: 2rem; color: var(--muted); font-size: .9rem; }
"""

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1f6f8b"/>'
    '<path d="M3 12V7M6.5 12V4M10 12V8M13.5 12V5" stroke="#fff" stroke-width="2"/></svg>\n'
)


def _href(city: City, key: str, page: str) -> str:
    """A link from the page at key ``page`` to the object at ``key``, HTML-escaped."""
    del city
    return escape(relative(page, key))


def _document(city: City, page: str, title: str, nav: str, main: str) -> str:
    names = StackNames(city.slug)
    catalogue = _href(city, names.catalog_key(), page)
    return "\n".join(
        [
            *DOCUMENT_START,
            f"<title>{escape(title)}</title>",
            f'<link rel="stylesheet" href="{_href(city, names.asset_key("portal.css"), page)}">',
            f'<link rel="icon" type="image/svg+xml" '
            f'href="{_href(city, names.asset_key("favicon.svg"), page)}">',
            f'<link rel="alternate" type="application/ld+json" title="DCAT-AP catalogue" '
            f'href="{catalogue}">',
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="muted">Published by {escape(city.publisher.name)}</p>',
            f'<nav aria-label="Sections"><ul>{nav}</ul></nav>',
            "</header>",
            f"<main>{main}</main>",
            f"<footer>Contact: {escape(city.publisher.email)} · Published with citypipe.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _downloads(
    city: City, theme: Theme, publications: Sequence[Publication], page: str, days: int
) -> str:
    """A row per day, latest first (the last ``days``), a link per format."""
    formats = [f for f in OpenFormat if any(x.format == f for p in publications for x in p.files)]
    head = "".join(f'<th scope="col">{FORMATS[f].label}</th>' for f in formats)
    rows = []
    for publication in sorted(publications, key=lambda p: p.day, reverse=True)[:days]:
        links = {f.format: f for f in publication.files}
        cells = "".join(
            f'<td><a href="{_href(city, links[f].key, page)}" download>'
            f'{FORMATS[f].label}<span class="muted"> of {publication.day}</span></a></td>'
            if f in links
            else "<td></td>"
            for f in formats
        )
        version = f" (version {publication.version})" if publication.version > 1 else ""
        rows.append(f'<tr><th scope="row">{publication.day}{version}</th>{cells}</tr>')
    label = escape(f"{theme.title}: downloads")
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{label}">'
        f'<table class="downloads"><thead><tr><th scope="col">Day</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _charts(city: City, quantities: Sequence[str], latest: Publication) -> str:
    return "".join(
        bar_chart(city, q, latest.summary)
        for q in quantities
        if any(s.quantity == q for s in latest.summary)
    )


def _by_zone_table(city: City, quantities: Sequence[str], latest: Publication) -> str:
    """The day's value of every quantity in every zone: the maps' figures, in a table."""
    shown = [q for q in quantities if any(s.quantity == q for s in latest.summary)]
    value = {(s.zone, s.quantity): s for s in latest.summary}
    formats = {
        q: NumberFormat.of([s.value for s in latest.summary if s.quantity == q]) for q in shown
    }
    head = "".join(f'<th scope="col">{escape(titled(q))}</th>' for q in shown)
    rows = []
    for feature in city.zones.features:
        cells = []
        for q in shown:
            found = value.get((feature.id, q))
            if found is None or found.value is None:
                why = "suppressed" if found and found.suppressed else "no data"
                cells.append(f'<td class="number">{why}</td>')
            else:
                cells.append(f'<td class="number">{formats[q](found.value)}</td>')
        name = escape(zone_name(city, feature.id))
        rows.append(f'<tr><th scope="row">{name}</th>{"".join(cells)}</tr>')
    label = escape(f"The day's values by zone, {latest.day}")
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{label}"><table>'
        f'<thead><tr><th scope="col">Zone</th>{head}</tr></thead><tbody>{"".join(rows)}'
        "</tbody></table></div>"
    )


def _value_maps(city: City, quantities: Sequence[str], latest: Publication) -> str:
    """A map per quantity, each zone with its value of the day."""
    maps = []
    for q in quantities:
        rows = [s for s in latest.summary if s.quantity == q]
        if all(s.value is None for s in rows):
            continue  # nothing to show: the table and the bars say why
        fmt = NumberFormat.of([s.value for s in rows])
        values = {s.zone: with_unit(fmt(s.value), s.unit) for s in rows if s.value is not None}
        measure = measure_of(q)
        label = f"{measure.title}, {latest.day}, by zone, on a map of the zones"
        maps.append(
            f"<figure><figcaption>{escape(titled(q))}: the day by zone</figcaption>"
            f"{zones_map(city, label, values)}</figure>"
        )
    return f'<div class="maps">{"".join(maps)}</div>'


def _months(city: City, publications: Sequence[Publication], page: str) -> str:
    """Where the days before the last ones are listed: the catalogue's month pages."""
    names = StackNames(city.slug)
    if len(publications) <= WINDOW_DAYS:
        return ""
    links = ", ".join(
        f'<a href="{_href(city, names.catalog_page_key(m), page)}">{m}</a>'
        for m in months_of(publications)
    )
    return (
        f"<p>Every earlier day is listed in the catalogue's month pages (DCAT-AP, "
        f"JSON-LD): {links}.</p>"
    )


def _quantities(city: City, quantities: Sequence[str]) -> str:
    """What each quantity is, at the anchor its RDF observations name it by."""
    items = []
    for q in quantities:
        measure = measure_of(q)
        shown = f", in {unit(measure.unit)}" if unit(measure.unit) else ""
        items.append(
            f'<dt id="{escape(q)}">{escape(measure.title)}</dt><dd>Per window: '
            f"{escape(STATISTIC_WORDS[statistic_of(city, q)])}{escape(shown)}. In the files: "
            f"{escape(q)}, unit {escape(measure.unit)}.</dd>"
        )
    return f'<h3>The quantities</h3><dl class="quantities">{"".join(items)}</dl>'


def dataset_page(city: City, theme: Theme, publications: Sequence[Publication]) -> str:
    """The page at a theme's dataset URI."""
    page = StackNames(city.slug).dataset_page_key(theme.slug)
    latest = max(publications, key=lambda p: p.day)
    quantities = published_quantities(city, theme, publications)
    privacy = treatment(city, quantities)
    courses = "".join(course_chart(c, latest.day) for c in latest.course if any(
        v is not None for v in c.hours))  # fmt: skip
    glossary = "".join(
        f"<dt>{c.name}</dt><dd>{escape(c.description)}</dd>" for c in columns(privacy.personal)
    )
    model = f" NGSI-LD entities follow the {models_named(theme)}." if theme.model else ""
    index = _href(city, StackNames(city.slug).portal_key(), page)
    nav = "".join(
        f'<li><a href="{href}">{text}</a></li>'
        for href, text in (
            (index, "All datasets"), ("#map", "The day by zone"),
            ("#course", "The course of the day"), ("#downloads", "Downloads"),
        )
    )  # fmt: skip
    main = (
        f'<section id="about"><h2>About the data</h2><p>{escape(theme.description)} Per zone '
        f"and 15 minutes, times in UTC; the files give units as UCUM codes (Cel for °C, ug/m3 "
        f"for µg/m³).{model}</p>{_quantities(city, quantities)}"
        f'<p class="privacy">{escape(describe_treatment(privacy))}</p></section>'
        f'<section id="map"><h2>{latest.day} by zone</h2>{_value_maps(city, quantities, latest)}'
        f'<div class="charts">{_charts(city, quantities, latest)}</div>'
        f"{_by_zone_table(city, quantities, latest)}</section>"
        f'<section id="course"><h2>The course of {latest.day}</h2>'
        + (courses or "<p>Not recorded for this day.</p>")
        + "</section>"
        f'<section id="downloads"><h2>Downloads</h2>'
        f"{_downloads(city, theme, publications, page, WINDOW_DAYS)}"
        f"{_months(city, publications, page)}"
        f"<details><summary>Columns</summary><dl>{glossary}</dl></details></section>"
    )
    return _document(city, page, f"{city.name}: {theme.title.lower()}", nav, main)


def _dataset(city: City, theme: Theme, publications: Sequence[Publication]) -> str:
    """A dataset's section of the index: its latest day by zone, that day's files and a
    link to its page."""
    page = StackNames(city.slug).portal_key()
    latest = max(publications, key=lambda p: p.day)
    quantities = published_quantities(city, theme, publications)
    privacy = treatment(city, quantities)
    more = _href(city, StackNames(city.slug).dataset_page_key(theme.slug), page)
    return (
        f'<section id="{theme.slug}" class="dataset"><h2>{escape(theme.title)}</h2>'
        f"<p>{escape(theme.description)} Per zone and 15 minutes.</p>"
        f'<p class="privacy">{escape(describe_treatment(privacy))}</p>'
        f"<h3>{latest.day} by zone</h3>"
        f'<div class="charts">{_charts(city, quantities, latest)}</div>'
        f"<h3>Downloads of {latest.day}</h3>{_downloads(city, theme, publications, page, 1)}"
        f'<p><a href="{more}">{escape(theme.title)}: the map, the course of the day and every '
        "download</a></p></section>"
    )


REGISTER_FIELDS = (
    ("measures", "Measures"), ("where", "Where"), ("why", "Why"),
    ("personal_fields", "Personal data"), ("treatment", "Treatment"),
)  # fmt: skip
REGISTER_LINKS = {REGISTER: "Transparency register", RECORD: "Record of processing (Art. 30 GDPR)",
                  SENSORS: "Sensor register"}  # fmt: skip


def _units_written(text: str) -> str:
    """The register's ``air.no2 (ug/m3)`` as ``air.no2 (µg/m³)``: its files keep UCUM."""
    return re.sub(r"\(([^()]+)\)", lambda m: f"({unit(m.group(1)) or m.group(1)})", text)


def _register(city: City, register: Register, page: str) -> str:
    """The register, a source after the other, and its files and the record as links."""
    sources = "".join(
        f'<article class="source"><h3>{escape(row["source"])} · {escape(row["kind"])}</h3><dl>'
        + "".join(
            f"<dt>{title}</dt><dd>{escape(_units_written(row[key]))}</dd>"
            for key, title in REGISTER_FIELDS
        )
        + "</dl></article>"
        for row in register.rows
    )
    links = " · ".join(
        f'<a href="{_href(city, f.key, page)}">'
        f"{REGISTER_LINKS[f.key.rsplit('/', 1)[-1].rsplit('.', 1)[0]]} ({f.format.upper()})</a>"
        for f in register.files
    )
    names = StackNames(city.slug)
    residents = " · ".join(
        f'<a href="{_href(city, key, page)}">{title}</a>'
        for key, title in (
            (names.sensor_page_key(), "Every sensor, and its notice"),
            (names.optout_page_key(), "Opt out of being counted"),
            (names.rights_page_key(), "Your rights and your data"),
        )
    )
    return (
        "<p>Every source of sensor data: what it measures, where, why, and what is done "
        f"with personal data. Generated from the city's configuration.</p>{sources}"
        f"<p>{links}</p><p>{residents}</p>"
    )


def register_page(city: City, register: Register) -> str:
    """The page at the register dataset's URI."""
    page = StackNames(city.slug).dataset_page_key("register")
    index = _href(city, StackNames(city.slug).portal_key(), page)
    return _document(
        city,
        page,
        f"{city.name}: transparency register",
        f'<li><a href="{index}">All datasets</a></li>',
        f'<section id="register"><h2>The sources</h2>{_register(city, register, page)}</section>',
    )


def _sensors_table(city: City) -> str:
    """The map's dots in words: the register's sources and their devices, zone by zone."""
    rows = "".join(
        f'<tr id="zone-{escape(zone.id)}"><th scope="row">{escape(zone_name(city, zone.id))}</th>'
        "<td>"
        + (", ".join(f"{escape(s.kind)}: {s.devices}" for s in found) or "none")
        + "</td></tr>"
        for zone in city.zones.features
        for found in [sensors_by_zone(city).get(zone.id, [])]
    )
    return (
        '<div class="scroll" tabindex="0" role="region" aria-label="Sensors by zone"><table>'
        '<thead><tr><th scope="col">Zone</th><th scope="col">Sensors (devices)</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


def _counts_people(city: City, theme: Theme, by_theme: dict[str, list[Publication]]) -> bool:
    return treatment(city, published_quantities(city, theme, by_theme[theme.slug])).personal


def _people_line(city: City, people: Sequence[Theme]) -> str:
    """What the privacy section says of the datasets that count people: the guarantee per
    person and day, in a resident's words."""
    if not people:
        return ""
    guarantee = treatment(city, sorted(city.personal_quantities)).resident or ""
    return (
        f"<p>{', '.join(escape(t.title) for t in people)}: {escape(guarantee)} A cell is "
        f"published when its noisy figure reaches {city.disclosure.k}; every window of every "
        "zone with a counter has a row.</p>"
    )


def _lawfulness(city: City) -> str:
    """The legal basis, the DPIA, whom to write to, where to complain, and the rights."""
    said = statements(city)
    if said is None:
        return ""
    rights = "".join(f"<li>{escape(r)}</li>" for r in said.rights)
    return (
        f"<p>Legal basis: {escape(said.legal_basis)} {escape(said.dpia)}</p>"
        f"<p>{escape(said.dpo)} {escape(said.authority)}</p>"
        f"<h3>Your rights</h3><ul>{rights}</ul>"
    )


def index_html(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> str:
    """The portal's first page. ``register``: the transparency register and the record of
    processing; without them the section says they are coming."""
    page = StackNames(city.slug).portal_key()
    by_theme: dict[str, list[Publication]] = {}
    for publication in publications:
        by_theme.setdefault(publication.theme, []).append(publication)
    shown = [t for t in themes if t.slug in by_theme]
    latest = max((p.day for p in publications), default=None)
    nav = '<li><a href="#zones">Zones and sensors</a></li>' + "".join(
        f'<li><a href="#{t.slug}">{escape(t.title)}</a></li>' for t in shown
    )
    datasets = "".join(_dataset(city, t, by_theme[t.slug]) for t in shown)
    if not shown:
        datasets = "<section><p>Nothing is published yet.</p></section>"
    k_line = _people_line(city, [t for t in shown if _counts_people(city, t, by_theme)])
    register_html = (
        _register(city, register, page)
        if register
        else "<p>The transparency register — what is processed, why, how long it is kept and "
        "the privacy budget spent — will be published here.</p>"
    )
    licence = escape(city.licence)
    names = StackNames(city.slug)
    catalogue = _href(city, names.catalog_key(), page)
    turtle = _href(city, names.catalog_key("ttl"), page)
    sections = [("privacy", "Privacy"), ("register", "Transparency register"),
                ("metadata", "Metadata")]  # fmt: skip
    nav += "".join(f'<li><a href="#{ident}">{title}</a></li>' for ident, title in sections)
    sensors = sensors_by_zone(city)
    label = f"Map of the zones of {city.name}, a dot per kind of sensor in each"
    published = f"<p>Latest day published: {latest}.</p>" if latest else ""
    main = "".join(
        [
            published,
            f'<section id="zones"><h2>The zones and their sensors</h2>'
            f"{zones_map(city, label, sensors=sensors)}{sensor_legend(city, sensors)}"
            '<p class="muted">Readings are published per zone, never per sensor or place; '
            "the sensors are those of the transparency register.</p>"
            f"{_sensors_table(city)}</section>",
            datasets,
            '<section id="privacy"><h2>Privacy</h2><p>Personal data (a phone\'s Wi-Fi address) '
            "is replaced on arrival by a keyed code that changes every day; the keys are "
            f"destroyed after {city.key_retention_days} days, and with them every stored code; "
            "nothing personal is ever published. Each dataset above states its treatment.</p>"
            f"{k_line}{_lawfulness(city)}</section>",
            f'<section id="register"><h2>Transparency register</h2>{register_html}</section>',
            '<section id="metadata"><h2>Metadata and licence</h2><ul>',
            f'<li><a href="{catalogue}">DCAT-AP 3 catalogue (JSON-LD)</a> · '
            f'<a href="{turtle}">Turtle</a></li>',
            f'<li><a href="{_href(city, names.datapackage_key(), page)}">Frictionless data '
            "package</a></li>",
            f'<li>Licence: <a href="{licence}" rel="license">{licence}</a></li>',
            "</ul></section>",
        ]
    )
    return _document(city, page, f"{city.name} open sensor data", nav, main)


def portal_files(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> dict[str, tuple[bytes, str]]:
    """Key -> (bytes, content type) of the pages and their assets: the dataset pages
    first, the first page last (it links the others)."""
    names = StackNames(city.slug)
    html = "text/html; charset=utf-8"
    by_theme: dict[str, list[Publication]] = {}
    for publication in publications:
        by_theme.setdefault(publication.theme, []).append(publication)
    files = {
        names.asset_key("portal.css"): (STYLESHEET.encode(), "text/css; charset=utf-8"),
        names.asset_key("favicon.svg"): (FAVICON.encode(), "image/svg+xml"),
    }
    for theme in themes:
        if theme.slug in by_theme:
            body = dataset_page(city, theme, by_theme[theme.slug])
            files[names.dataset_page_key(theme.slug)] = (body.encode(), html)
    if register is not None:
        files[names.dataset_page_key("register")] = (register_page(city, register).encode(), html)
    files[names.portal_key()] = (
        index_html(city, themes, publications, register).encode(),
        html,
    )
    return files
