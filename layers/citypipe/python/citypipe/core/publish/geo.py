"""A theme's day as GeoJSON (RFC 7946): the city's zones, each with the latest published
value of every quantity and the day's summary, as flat properties a GIS reads directly
(``no2_day_mean``, ``no2_latest``, ``no2_latest_window``, ``no2_unit``, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citypipe.domain.city import City
from citypipe.domain.export_books import ZoneSummary
from citypipe.domain.themes import Theme, measure_of


def zone_name(city: City, zone: str) -> str:
    for feature in city.zones.features:
        if feature.id == zone:
            return str(feature.properties.get("name", zone))
    return zone


def zones_geojson(
    city: City, theme: Theme, day: str, summary: Sequence[ZoneSummary]
) -> dict[str, Any]:
    by_zone: dict[str, list[ZoneSummary]] = {}
    for item in summary:
        by_zone.setdefault(item.zone, []).append(item)
    features = []
    for feature in city.zones.features:
        properties: dict[str, Any] = {"zone": feature.id, "name": zone_name(city, feature.id)}
        for item in by_zone.get(feature.id, []):
            name = measure_of(item.quantity).name
            properties |= {
                f"{name}_unit": item.unit,
                f"{name}_day_{item.statistic}": item.value,
                f"{name}_day_min": item.minimum,
                f"{name}_day_max": item.maximum,
                f"{name}_windows_published": item.published,
                f"{name}_windows_suppressed": item.suppressed,
                f"{name}_windows_flagged": item.flagged,
                f"{name}_latest": item.latest_value,
                f"{name}_latest_window": item.latest_window,
            }
        features.append(
            {
                "type": "Feature",
                "id": feature.id,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [list(p) for p in ring] for ring in feature.geometry.coordinates
                    ],
                },
                "properties": properties,
            }
        )
    return {
        "type": "FeatureCollection",
        "name": f"{city.name}: {theme.title}, {day}",
        "date": day,
        "licence": city.licence,
        "features": features,
    }
