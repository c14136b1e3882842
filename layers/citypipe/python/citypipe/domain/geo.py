"""Points to zones: the location generalization anonymize applies. Pure Python, cached."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

Ring = Sequence[tuple[float, float]]


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_polygon(lon: float, lat: float, rings: Sequence[Ring]) -> bool:
    """GeoJSON polygon: the first ring is the outline, the others are holes."""
    if not rings or not _in_ring(lon, lat, rings[0]):
        return False
    return not any(_in_ring(lon, lat, hole) for hole in rings[1:])


class ZoneIndex:
    """Finds the zone holding a point. Sensors are fixed, so lookups are cached."""

    def __init__(self, zones: Sequence[tuple[str, Sequence[Ring]]]) -> None:
        self._zones = list(zones)
        self.zone_of = lru_cache(maxsize=65536)(self._zone_of)

    @property
    def ids(self) -> list[str]:
        return [zone_id for zone_id, _ in self._zones]

    def _zone_of(self, lon: float, lat: float) -> str | None:
        for zone_id, rings in self._zones:
            if in_polygon(lon, lat, rings):
                return zone_id
        return None
