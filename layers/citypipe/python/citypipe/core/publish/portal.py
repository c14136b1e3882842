"""The portal: one static, self-contained page at the root of the open zone.

``index.html`` lists every dataset with a download link per format for its recent days,
a chart per theme of the last published day by zone, a map of the zones (SVG drawn from
the city's GeoJSON), the licence, the privacy treatment and the place of the transparency
register. Charts and map are inline SVG rendered here: no script, no CDN, no web font;
the stylesheet and icon are objects in the open zone next to the data. Links are
relative, so the page works from the bucket, a CDN in front of it, or a copy on disk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from citypipe.core.disclosure import treatment
from citypipe.core.publish.dcat import FORMATS, describe_treatment
from citypipe.core.publish.geo import zone_name
from citypipe.core.publish.register import RECORD, REGISTER, SENSORS, Register
from citypipe.core.publish.statements import statements
from citypipe.core.publish.tables import columns, published_quantities
from citypipe.domain.books import Publication, ZoneSummary
from citypipe.domain.city import City
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat, Theme, measure_of

RECENT_DAYS = 14  # days listed per dataset; the catalogue and the data package list all
UNITS = {"ug/m3": "µg/m³", "{vehicle}": "vehicles", "{bicycle}": "bicycles",
         "{device}": "devices", "kW.h": "kWh"}  # fmt: skip
STATISTICS = {
    "mean": "mean of the day",
    "total": "total of the day",
    "peak": "most in one 15-minute window",
}
# SVG user units: about a phone's width in CSS pixels, so text drawn at 12-13 units stays
# readable on a phone; on a wide screen drawings are capped (svg max-width in the CSS).
WIDTH = 360

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
svg.map { max-width: 30rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr));
  gap: .5rem 1.5rem; }
figure.chart { max-width: 26rem; }
figcaption { margin-bottom: .25rem; }
.zone { fill: #dcebf3; stroke: #1f6f8b; stroke-width: 1.5; }
.zone-label { font-size: 12px; fill: var(--ink); text-anchor: middle; }
.bar { fill: var(--bar); }
.axis { stroke: var(--line); }
.label { font-size: 13px; fill: var(--ink); }
.value { font-size: 12px; fill: var(--muted); }
.withheld { font-size: 12px; fill: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
article.source { border-top: 1px solid var(--line); padding-top: .25rem; }
article.source dt { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-weight: 600; }
dl { margin: .5rem 0; } dt { font-family: ui-monospace, monospace; margin-top: .4rem; }
dd { margin: 0 0 0 1rem; color: var(--muted); font-size: .9rem; }
footer { padding-bottom: 2rem; color: var(--muted); font-size: .9rem; }
"""

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1f6f8b"/>'
    '<path d="M3 12V7M6.5 12V4M10 12V8M13.5 12V5" stroke="#fff" stroke-width="2"/></svg>\n'
)


def _unit(unit: str) -> str:
    return UNITS.get(unit, unit)


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.1f}"


def zones_map(city: City) -> str:
    """The zones as SVG paths, projected equirectangular (scaled by the cosine of the
    latitude: true to shape at a city's size), each named."""
    rings = [f.geometry.coordinates[0] for f in city.zones.features]
    lons = [p[0] for ring in rings for p in ring]
    lats = [p[1] for ring in rings for p in ring]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = (max(lons) - min(lons)) * squeeze or 1.0
    span_y = (max(lats) - min(lats)) or 1.0
    pad = 8
    scale = (WIDTH - 2 * pad) / span_x
    height = round(span_y * scale + 2 * pad)

    def point(lon: float, lat: float) -> tuple[float, float]:
        return (
            round(pad + (lon - min(lons)) * squeeze * scale, 1),
            round(pad + (max(lats) - lat) * scale, 1),
        )

    shapes = []
    for feature in city.zones.features:
        name = escape(zone_name(city, feature.id))
        path = " ".join(
            "M" + " L".join(f"{x},{y}" for x, y in (point(*p) for p in ring)) + " Z"
            for ring in feature.geometry.coordinates
        )
        xs, ys = zip(*(point(*p) for p in feature.geometry.coordinates[0]), strict=True)
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        shapes.append(
            f'<g><path class="zone" d="{path}"><title>{name}</title></path>'
            f'<text class="zone-label" x="{cx:.1f}" y="{cy + 4:.1f}">{name}</text></g>'
        )
    return (
        f'<svg class="map" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="Map of the zones of {escape(city.name)}">{"".join(shapes)}</svg>'
    )


def bar_chart(city: City, quantity: str, summary: Sequence[ZoneSummary]) -> str:
    """A horizontal bar per zone of the day's value; a zone without a published cell gets
    words (suppressed, flagged, no data) instead of a bar: never a zero."""
    measure = measure_of(quantity)
    rows = [s for s in summary if s.quantity == quantity]
    top = max((s.value for s in rows if s.value is not None), default=0.0) or 1.0
    label_w, value_w, row_h = 96, 60, 24
    bar_w = WIDTH - label_w - value_w
    parts = []
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        name = escape(zone_name(city, row.zone))
        parts.append(f'<text class="label" x="0" y="{y + 15}">{name}</text>')
        if row.value is None:
            why = "suppressed" if row.suppressed else "flagged" if row.flagged else "no data"
            parts.append(f'<text class="withheld" x="{label_w}" y="{y + 15}">{why}</text>')
            continue
        width = max(1.0, bar_w * max(row.value, 0.0) / top)
        shown = f"{_number(row.value)} {_unit(row.unit)}"
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="15">'
            f"<title>{name}: {escape(shown)}</title></rect>"
            f'<text class="value" x="{label_w + width + 6:.1f}" y="{y + 15}">'
            f"{escape(_number(row.value))}</text>"
        )
    height = 12 + len(rows) * row_h
    title = f"{measure.title}, {_unit(measure.unit)}: {STATISTICS[measure.summary]}"
    return (
        f'<figure class="chart" data-quantity="{escape(quantity)}">'
        f"<figcaption>{escape(title)}, by zone</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}, by zone">'
        f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{height}"/>'
        f"{''.join(parts)}</svg></figure>"
    )


def _href(city: City, key: str) -> str:
    """A link from the portal page (at the root of the city's open zone) to an object of
    it: relative, so the page works wherever the zone is served from."""
    return escape(key.removeprefix(StackNames(city.slug).open_prefix()))


def _downloads(city: City, theme: Theme, publications: Sequence[Publication]) -> str:
    formats = [f for f in OpenFormat if any(x.format == f for p in publications for x in p.files)]
    head = "".join(f"<th>{FORMATS[f].label}</th>" for f in formats)
    rows = []
    for publication in sorted(publications, key=lambda p: p.day, reverse=True)[:RECENT_DAYS]:
        links = {f.format: f for f in publication.files}
        cells = "".join(
            f'<td><a href="{_href(city, links[f].key)}" download>{FORMATS[f].label}</a></td>'
            if f in links
            else "<td></td>"
            for f in formats
        )
        version = f" (v{publication.version})" if publication.version > 1 else ""
        rows.append(f"<tr><td>{publication.day}{version}</td>{cells}</tr>")
    return (
        f'<div class="scroll"><table class="downloads" aria-label="{escape(theme.title)} '
        f'downloads"><thead><tr><th>Day</th>{head}</tr></thead><tbody>{"".join(rows)}'
        "</tbody></table></div>"
    )


def _dataset(city: City, theme: Theme, publications: Sequence[Publication]) -> str:
    latest = max(publications, key=lambda p: p.day)
    quantities = published_quantities(city, theme, publications)
    privacy = treatment(city, quantities)
    charts = "".join(
        bar_chart(city, q, latest.summary)
        for q in quantities
        if any(s.quantity == q for s in latest.summary)
    )
    glossary = "".join(
        f"<dt>{c.name}</dt><dd>{escape(c.description)}</dd>" for c in columns(privacy.personal)
    )
    model = (
        f" NGSI-LD entities follow the Smart Data Model {theme.model.type}." if theme.model else ""
    )
    return (
        f'<section id="{theme.slug}" class="dataset"><h2>{escape(theme.title)}</h2>'
        f"<p>{escape(theme.description)} Per zone and 15 minutes, times in UTC, units in "
        f"UCUM.{model}</p>"
        f'<p class="privacy">{escape(describe_treatment(privacy))}</p>'
        f'<h3>{latest.day} by zone</h3><div class="charts">{charts}</div>'
        f"<h3>Downloads</h3>{_downloads(city, theme, publications)}"
        f"<details><summary>Columns</summary><dl>{glossary}</dl></details></section>"
    )


REGISTER_FIELDS = (
    ("measures", "Measures"), ("where", "Where"), ("why", "Why"),
    ("personal_fields", "Personal data"), ("treatment", "Treatment"),
)  # fmt: skip
REGISTER_LINKS = {REGISTER: "Transparency register", RECORD: "Record of processing (Art. 30 GDPR)",
                  SENSORS: "Sensor register"}  # fmt: skip


def _register(city: City, register: Register) -> str:
    """The register, a source after the other, and its files and the record as links."""
    sources = "".join(
        f'<article class="source"><h3>{escape(row["source"])} · {escape(row["kind"])}</h3><dl>'
        + "".join(f"<dt>{title}</dt><dd>{escape(row[key])}</dd>" for key, title in REGISTER_FIELDS)
        + "</dl></article>"
        for row in register.rows
    )
    links = " · ".join(
        f'<a href="{_href(city, f.key)}">'
        f"{REGISTER_LINKS[f.key.rsplit('/', 1)[-1].rsplit('.', 1)[0]]} ({f.format.upper()})</a>"
        for f in register.files
    )
    names = StackNames(city.slug)
    residents = " · ".join(
        f'<a href="{_href(city, key)}">{title}</a>'
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
    """The page. ``register``: the transparency register and the record of processing;
    without them the section says they are coming."""
    by_theme: dict[str, list[Publication]] = {}
    for publication in publications:
        by_theme.setdefault(publication.theme, []).append(publication)
    shown = [t for t in themes if t.slug in by_theme]
    latest = max((p.day for p in publications), default=None)
    nav = "".join(f'<li><a href="#{t.slug}">{escape(t.title)}</a></li>' for t in shown)
    datasets = "".join(_dataset(city, t, by_theme[t.slug]) for t in shown)
    if not shown:
        datasets = "<section><p>Nothing is published yet.</p></section>"
    k_line = _people_line(city, [t for t in shown if _counts_people(city, t, by_theme)])
    register_html = (
        _register(city, register)
        if register
        else "<p>The transparency register — what is processed, why, how long it is kept and "
        "the privacy budget spent — will be published here.</p>"
    )
    licence = escape(city.licence)
    names = StackNames(city.slug)
    catalogue, turtle = _href(city, names.catalog_key()), _href(city, names.catalog_key("ttl"))
    sections = [("zones", "Zones"), ("privacy", "Privacy"), ("register", "Transparency register"),
                ("metadata", "Metadata")]  # fmt: skip
    nav += "".join(f'<li><a href="#{ident}">{title}</a></li>' for ident, title in sections)
    published = f" · latest day {latest}" if latest else ""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(city.name)} open sensor data</title>",
            f'<link rel="stylesheet" href="{_href(city, names.asset_key("portal.css"))}">',
            f'<link rel="icon" type="image/svg+xml" '
            f'href="{_href(city, names.asset_key("favicon.svg"))}">',
            f'<link rel="alternate" type="application/ld+json" title="DCAT-AP catalogue" '
            f'href="{catalogue}">',
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{escape(city.name)} open sensor data</h1>",
            f'<p class="muted">Published by {escape(city.publisher.name)}{published}</p>',
            f'<nav aria-label="Sections"><ul>{nav}</ul></nav>',
            "</header>",
            "<main>",
            datasets,
            f'<section id="zones"><h2>The zones</h2>{zones_map(city)}'
            '<p class="muted">Readings are published per zone, never per sensor or place.</p>'
            "</section>",
            '<section id="privacy"><h2>Privacy</h2><p>Personal data (a phone\'s Wi-Fi address) '
            "is replaced on arrival by a keyed code that changes every day; the keys are "
            f"destroyed after {city.key_retention_days} days, and with them every stored code; "
            "nothing personal is ever published. Each dataset above states its treatment.</p>"
            f"{k_line}{_lawfulness(city)}</section>",
            f'<section id="register"><h2>Transparency register</h2>{register_html}</section>',
            '<section id="metadata"><h2>Metadata and licence</h2><ul>',
            f'<li><a href="{catalogue}">DCAT-AP 3 catalogue (JSON-LD)</a> · '
            f'<a href="{turtle}">Turtle</a></li>',
            f'<li><a href="{_href(city, names.datapackage_key())}">Frictionless data package</a>'
            "</li>",
            f'<li>Licence: <a href="{licence}" rel="license">{licence}</a></li>',
            "</ul></section>",
            "</main>",
            f"<footer>Contact: {escape(city.publisher.email)} · Published with citypipe.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def portal_files(
    city: City,
    themes: Sequence[Theme],
    publications: Sequence[Publication],
    register: Register | None = None,
) -> dict[str, tuple[bytes, str]]:
    """Key -> (bytes, content type) of the page and its assets."""
    names = StackNames(city.slug)
    return {
        names.portal_key(): (
            index_html(city, themes, publications, register).encode(),
            "text/html; charset=utf-8",
        ),
        names.asset_key("portal.css"): (
            STYLESHEET.encode(),
            "text/css; charset=utf-8",
        ),
        names.asset_key("favicon.svg"): (FAVICON.encode(), "image/svg+xml"),
    }
