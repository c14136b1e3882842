"""What the portal draws, as inline SVG made here (no script, no tiles, no font): the map
of the zones from the city's GeoJSON with the day's values and the register's sensors,
bars by zone, the course of the day; and the words and numbers they are labelled with —
units as people write them, one number format per figure.

Every drawing is an ``<svg role="img">`` with a name, and the page shows the same figures
in a table beside it (for a screen reader, and for anyone who wants the numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from citypipe.core.publish.geo import zone_name
from citypipe.domain.city import City
from citypipe.domain.export_books import DayCourse, ZoneSummary
from citypipe.domain.themes import measure_of

# UCUM codes (what the files carry) as people write them.
UNITS = {
    "Cel": "°C", "ug/m3": "µg/m³", "uS/cm": "µS/cm", "kW.h": "kWh", "deg": "°",
    "{vehicle}": "vehicles", "{bicycle}": "bicycles", "{pedestrian}": "pedestrians",
    "{device}": "devices", "{index}": "", "1": "",
}  # fmt: skip
STATISTICS = {
    "mean": "mean of the day",
    "total": "total of the day",
    "peak": "most in one 15-minute window",
}
HOURLY = {
    "mean": "mean per hour",
    "total": "total per hour",
    "peak": "most in one 15-minute window of the hour",
}
# SVG user units: about a phone's width in CSS pixels, so text drawn at 12-13 units stays
# readable on a phone; on a wide screen drawings are capped (svg max-width in the CSS).
WIDTH = 360
HUES = 6  # the sensors' colours (.s0 to .s5 in the stylesheet), a source each
CHAR = 7.2  # the width of a character of the 12-13 unit labels, generously


def unit(code: str) -> str:
    """A UCUM code as people write it (``Cel`` -> ``°C``)."""
    return UNITS.get(code, code)


def with_unit(text: str, code: str) -> str:
    shown = unit(code)
    return f"{text} {shown}" if shown else text


def titled(quantity: str) -> str:
    """A quantity's title with its unit (``Nitrogen dioxide (NO2), µg/m³``), the unit left
    out where the title says it already (``Vehicles counted``)."""
    measure = measure_of(quantity)
    shown = unit(measure.unit)
    if not shown or shown.lower() in measure.title.lower():
        return measure.title
    return f"{measure.title}, {shown}"


@dataclass(frozen=True)
class NumberFormat:
    """One format for all the figures of a drawing or table: as many decimals as the
    least round of them needs (none or one), thousands grouped."""

    decimals: int

    @staticmethod
    def of(values: Sequence[float | None]) -> NumberFormat:
        shown = [v for v in values if v is not None]
        whole = all(round(v, 1) == int(round(v, 1)) for v in shown)
        return NumberFormat(0 if whole else 1)

    def __call__(self, value: float) -> str:
        return f"{value:,.{self.decimals}f}"


@dataclass(frozen=True)
class Sensors:
    """A source of the transparency register in a zone: its kind, how many devices, and
    its colour on the map (``hue``: one per source, the same in every zone)."""

    source: str
    kind: str
    devices: int
    hue: int


def sensors_by_zone(city: City) -> dict[str, list[Sensors]]:
    """The register's sources, zone by zone (the city file's devices): what the map marks.
    Devices are placed by zone only: the register says no more, and neither does the map."""
    counts: dict[tuple[str, str], int] = {}
    for device in city.devices.values():
        counts[(device.zone, device.source)] = counts.get((device.zone, device.source), 0) + 1
    hues = {source: i % HUES for i, source in enumerate(sorted({s for _, s in counts}))}
    found: dict[str, list[Sensors]] = {}
    for (zone, source), devices in sorted(counts.items()):
        kind = city.sources[source].kind if source in city.sources else source
        found.setdefault(zone, []).append(Sensors(source, kind, devices, hues[source]))
    return found


Point = tuple[float, float]


def _projection(city: City) -> tuple[int, Callable[[float, float], Point]]:
    """(height, point(lon, lat) -> (x, y)): equirectangular, scaled by the cosine of the
    latitude (true to shape at a city's size), to WIDTH."""
    rings = [f.geometry.coordinates[0] for f in city.zones.features]
    lons = [p[0] for ring in rings for p in ring]
    lats = [p[1] for ring in rings for p in ring]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = (max(lons) - min(lons)) * squeeze or 1.0
    span_y = (max(lats) - min(lats)) or 1.0
    pad = 8
    scale = (WIDTH - 2 * pad) / span_x

    def point(lon: float, lat: float) -> Point:
        return (
            round(pad + (lon - min(lons)) * squeeze * scale, 1),
            round(pad + (max(lats) - lat) * scale, 1),
        )

    return round(span_y * scale + 2 * pad), point


def zones_map(
    city: City,
    label: str,
    values: Mapping[str, str] | None = None,
    sensors: Mapping[str, Sequence[Sensors]] | None = None,
) -> str:
    """The zones as SVG paths, each named, with ``values`` (zone -> text) under its name
    and a dot per source of ``sensors`` in it (its kind and devices as the dot's title)."""
    height, point = _projection(city)
    shapes = []
    for feature in city.zones.features:
        name = escape(zone_name(city, feature.id))
        path = " ".join(
            "M" + " L".join(f"{x},{y}" for x, y in (point(*p) for p in ring)) + " Z"
            for ring in feature.geometry.coordinates
        )
        xs, ys = zip(*(point(*p) for p in feature.geometry.coordinates[0]), strict=True)
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        value = (values or {}).get(feature.id)
        text = f'<text class="zone-label" x="{cx:.1f}" y="{cy - 2:.1f}">{name}</text>'
        if value:
            text += (
                f'<text class="zone-value" x="{cx:.1f}" y="{cy + 13:.1f}">{escape(value)}</text>'
            )
        dots = "".join(
            f'<circle class="sensor s{s.hue}" cx="{cx - 9 * (len(found) - 1) + 18 * i:.1f}" '
            f'cy="{cy + (26 if value else 14):.1f}" r="5"><title>{escape(s.kind)}: '
            f"{s.devices} in {name}</title></circle>"
            for found in [list((sensors or {}).get(feature.id, []))]
            for i, s in enumerate(found)
        )
        shapes.append(
            f'<g><path class="zone" d="{path}"><title>{name}</title></path>{text}{dots}</g>'
        )
    return (
        f'<svg class="map" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(shapes)}</svg>'
    )


def sensor_legend(city: City, sensors: Mapping[str, Sequence[Sensors]]) -> str:
    """The key of the map's dots: a source per colour, as the dots are drawn."""
    kinds: list[str] = []
    for zone in city.zones.features:
        for s in sensors.get(zone.id, []):
            entry = (
                '<li><svg class="key" viewBox="0 0 12 12" aria-hidden="true">'
                f'<circle class="sensor s{s.hue}" cx="6" cy="6" r="5"/></svg>'
                f"{escape(s.kind)} ({escape(s.source)})</li>"
            )
            if entry not in kinds:
                kinds.append(entry)
    return f'<ul class="legend">{"".join(kinds)}</ul>' if kinds else ""


def bar_chart(city: City, quantity: str, summary: Sequence[ZoneSummary]) -> str:
    """A horizontal bar per zone of the day's value; a zone without a published cell gets
    words (suppressed, flagged, no data) instead of a bar: never a zero. Labels are sized
    to their text, so none is clipped."""
    measure = measure_of(quantity)
    rows = [s for s in summary if s.quantity == quantity]
    fmt = NumberFormat.of([s.value for s in rows])
    top = max((s.value for s in rows if s.value is not None), default=0.0) or 1.0
    names = [zone_name(city, s.zone) for s in rows]
    shown = [fmt(s.value) if s.value is not None else "" for s in rows]
    label_w = round(max((len(n) for n in names), default=4) * CHAR + 8)
    value_w = round(max((len(v) for v in shown), default=1) * CHAR + 10)
    row_h = 24
    bar_w = WIDTH - label_w - value_w
    parts = []
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        name = escape(names[i])
        parts.append(f'<text class="label" x="0" y="{y + 15}">{name}</text>')
        if row.value is None:
            why = "suppressed" if row.suppressed else "flagged" if row.flagged else "no data"
            parts.append(f'<text class="withheld" x="{label_w}" y="{y + 15}">{why}</text>')
            continue
        width = max(1.0, bar_w * max(row.value, 0.0) / top)
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="15">'
            f"<title>{name}: {escape(with_unit(shown[i], row.unit))}</title></rect>"
            f'<text class="value" x="{label_w + width + 6:.1f}" y="{y + 15}">'
            f"{escape(shown[i])}</text>"
        )
    height = 12 + len(rows) * row_h
    title = f"{titled(quantity)}: {STATISTICS[measure.summary]}"
    return (
        f'<figure class="chart" data-quantity="{escape(quantity)}">'
        f"<figcaption>{escape(title)}, by zone</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}, by zone">'
        f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{height}"/>'
        f"{''.join(parts)}</svg></figure>"
    )


def course_chart(course: DayCourse, day: str) -> str:
    """The course of the day over the whole city, an hour a point (UTC), the line broken
    where an hour has no published value; its figures in a table beneath."""
    fmt = NumberFormat.of(course.hours)
    values = [v for v in course.hours if v is not None]
    top = max(values, default=0.0) or 1.0
    bottom = min(0.0, *values) if values else 0.0
    labels = [fmt(top), fmt(bottom)]
    left, right, plot_h, base = round(max(len(t) for t in labels) * CHAR + 8), 20, 120, 130
    step = (WIDTH - left - right) / 23

    def y(v: float) -> float:
        return round(base - plot_h * (v - bottom) / ((top - bottom) or 1.0), 1)

    runs: list[list[str]] = [[]]
    dots = []
    for hour, v in enumerate(course.hours):
        if v is None:
            runs.append([])
            continue
        x = round(left + hour * step, 1)
        runs[-1].append(f"{x},{y(v)}")
        dots.append(
            f'<circle class="point" cx="{x}" cy="{y(v)}" r="2.5"><title>{hour:02d}:00 UTC: '
            f"{escape(with_unit(fmt(v), course.unit))}</title></circle>"
        )
    lines = "".join(f'<polyline class="line" points="{" ".join(r)}"/>' for r in runs if r)
    ticks = "".join(
        f'<text class="tick" x="{left + h * step:.1f}" y="{base + 16}">{h:02d}:00</text>'
        for h in (0, 6, 12, 18, 23)
    )
    scale = (
        f'<text class="tick end" x="{left - 4}" y="{y(top) + 4}">{escape(fmt(top))}</text>'
        f'<text class="tick end" x="{left - 4}" y="{base + 4}">{escape(fmt(bottom))}</text>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - right}" y2="{base}"/>'
    )
    title = f"{titled(course.quantity)}: {HOURLY[course.statistic]}"
    label = f"{title}, {day} (UTC), the whole city"
    cells = "".join(
        f'<tr><th scope="row">{h:02d}:00</th><td>{shown}</td></tr>'
        for h, v in enumerate(course.hours)
        for shown in [fmt(v) if v is not None else "none published"]
    )
    return (
        f'<figure class="chart course" data-quantity="{escape(course.quantity)}">'
        f"<figcaption>{escape(label)}</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {base + 24}" role="img" aria-label="{escape(label)}">'
        f"{scale}{lines}{''.join(dots)}{ticks}</svg>"
        f"<details><summary>The figures, hour by hour</summary>"
        f'<table><thead><tr><th scope="col">Hour (UTC)</th>'
        f'<th scope="col">{escape(with_unit("Value,", course.unit).rstrip(","))}</th></tr></thead>'
        f"<tbody>{cells}</tbody></table></details></figure>"
    )
