"""Points to zones (the location generalization anonymize applies), and zones against each
other (overlaps, centres, distances: the checks of a city file). Pure Python, cached."""

from __future__ import annotations

import itertools
import math
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


# --- zones against each other: overlaps, centres, distances ------------------------------

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

# Closer to a line than this (in degrees: 0.1 mm) is on it: float noise, not geography.
_ON_LINE = 1e-9
_EARTH_KM = 6371.0088  # the mean radius


def _side(a: Point, b: Point, c: Point) -> int:
    """Where ``c`` is from the line a -> b: 1 left, -1 right, 0 on it."""
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    if abs(cross) <= _ON_LINE * math.hypot(b[0] - a[0], b[1] - a[1]):
        return 0
    return 1 if cross > 0 else -1


def _along(a: Point, b: Point, c: Point) -> float:
    """Where ``c`` projects on a -> b: 0 at a, 1 at b."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    return ((c[0] - a[0]) * dx + (c[1] - a[1]) * dy) / (dx * dx + dy * dy)


def _area2(ring: Ring) -> float:
    """Twice the signed area of a closed ring (positive: counter-clockwise)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))


def _box(rings: Sequence[Ring]) -> Box:
    lons = [lon for lon, _ in rings[0]]
    lats = [lat for _, lat in rings[0]]
    return min(lons), min(lats), max(lons), max(lats)


class _Outline:
    """A polygon's edges that reach into a box (the others cannot meet the other polygon),
    each with the side its inside is on, and what the other polygon's outline does on it:
    the vertices of the other lying on it (where it is cut in pieces), the edges of the
    other running along it."""

    def __init__(self, rings: Sequence[Ring], box: Box) -> None:
        self.rings = rings
        self.edges: list[tuple[Point, Point, int]] = []  # a, b, +1: the inside on the left
        for i, ring in enumerate(rings):
            area = _area2(ring)
            inside = (1 if area > 0 else -1 if area < 0 else 0) * (1 if i == 0 else -1)
            self.edges += [
                (a, b, inside) for a, b in itertools.pairwise(ring) if _reaches(a, b, box)
            ]
        self.cuts: list[set[float]] = [set() for _ in self.edges]
        self.runs_along: list[set[int]] = [set() for _ in self.edges]

    def lies_on(self, edge: int, point: Point) -> None:
        """``point`` (of the other outline) is on the line of ``edge``."""
        a, b, _ = self.edges[edge]
        t = _along(a, b, point)
        if 0 < t < 1:
            self.cuts[edge].add(t)


def _reaches(a: Point, b: Point, box: Box) -> bool:
    return (
        min(a[0], b[0]) <= box[2] and max(a[0], b[0]) >= box[0]
        and min(a[1], b[1]) <= box[3] and max(a[1], b[1]) >= box[1]
    )  # fmt: skip


def _buckets(one: _Outline, two: _Outline, box: Box) -> list[tuple[list[int], list[int]]]:
    """The edges of each outline by cell of a grid over the box: only edges sharing a cell
    can meet (the point they meet at is in a cell both reach)."""
    size = max(1, int(math.sqrt(len(one.edges) + len(two.edges))))
    width = (box[2] - box[0]) / size or 1.0
    height = (box[3] - box[1]) / size or 1.0

    def cells(a: Point, b: Point) -> list[int]:
        columns = [min(size - 1, max(0, int((v - box[0]) / width))) for v in (a[0], b[0])]
        rows = [min(size - 1, max(0, int((v - box[1]) / height))) for v in (a[1], b[1])]
        return [
            column * size + row
            for column in range(min(columns), max(columns) + 1)
            for row in range(min(rows), max(rows) + 1)
        ]

    grid: list[tuple[list[int], list[int]]] = [([], []) for _ in range(size * size)]
    for side, outline in enumerate((one, two)):
        for index, (a, b, _) in enumerate(outline.edges):
            for cell in cells(a, b):
                grid[cell][side].append(index)
    return [cell for cell in grid if cell[0] and cell[1]]


def _meet(one: _Outline, k: int, two: _Outline, j: int) -> Point | None:
    """Where edge ``k`` of one and ``j`` of two cross, each through the other's inside;
    else None, once what they do on each other is noted (cuts, running along)."""
    a, b, _ = one.edges[k]
    c, d, _ = two.edges[j]
    sides = _side(a, b, c), _side(a, b, d), _side(c, d, a), _side(c, d, b)
    if sides[0] * sides[1] < 0 and sides[2] * sides[3] < 0:
        dx, dy, ex, ey = b[0] - a[0], b[1] - a[1], d[0] - c[0], d[1] - c[1]
        t = ((c[0] - a[0]) * ey - (c[1] - a[1]) * ex) / (dx * ey - dy * ex)
        return a[0] + t * dx, a[1] + t * dy
    for point, side in ((c, sides[0]), (d, sides[1])):
        if side == 0:
            one.lies_on(k, point)
    for point, side in ((a, sides[2]), (b, sides[3])):
        if side == 0:
            two.lies_on(j, point)
    if sides[0] == sides[1] == 0:
        start, end = sorted((_along(a, b, c), _along(a, b, d)))
        if min(end, 1) > max(start, 0):
            one.runs_along[k].add(j)
            two.runs_along[j].add(k)
    return None


def _piece_inside(one: _Outline, two: _Outline) -> Point | None:
    """With no crossing, a piece of one's outline (between the other's vertices on it) is
    inside the other, outside it, or runs along its outline: a point of a piece inside, or
    of a piece along it with both insides on the same side, is where the two overlap."""
    for k, (a, b, _) in enumerate(one.edges):
        cuts = sorted({0.0, 1.0} | one.cuts[k])
        for start, end in itertools.pairwise(cuts):
            t = (start + end) / 2
            middle = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            other = next(
                (j for j in one.runs_along[k] if 0 < _along(*two.edges[j][:2], middle) < 1),
                None,
            )
            if other is None and in_polygon(*middle, two.rings):
                return middle
            if other is not None and _same_side(one.edges[k], two.edges[other]):
                return middle
    return None


def _same_side(mine: tuple[Point, Point, int], theirs: tuple[Point, Point, int]) -> bool:
    """Two edges along each other: are both polygons' insides on the same side of them?"""
    (a, b, inside), (c, d, other) = mine, theirs
    direction = (b[0] - a[0]) * (d[0] - c[0]) + (b[1] - a[1]) * (d[1] - c[1])
    return inside * other * direction > 0


def interior_overlap(first: Sequence[Ring], second: Sequence[Ring]) -> Point | None:
    """A point near where the insides of two polygons (GeoJSON rings: the outline, then
    holes) overlap, or None. Polygons that only touch — a shared edge, a corner, one in a
    hole of the other — do not overlap."""
    return _overlap(first, _box(first), second, _box(second))


def overlaps(polygons: Sequence[Sequence[Ring]]) -> list[tuple[int, int, Point]]:
    """Every two polygons whose insides overlap (by index, the first first), each with a
    point near where they do. Only polygons whose boxes overlap are compared."""
    boxes = [_box(rings) for rings in polygons]
    order = sorted(range(len(polygons)), key=lambda i: boxes[i][0])
    found = []
    for n, i in enumerate(order):
        for j in order[n + 1 :]:
            if boxes[j][0] >= boxes[i][2]:
                break  # sorted by west edge: every later box starts east of this one
            point = _overlap(polygons[i], boxes[i], polygons[j], boxes[j])
            if point is not None:
                found.append((min(i, j), max(i, j), point))
    return sorted(found)


def _overlap(first: Sequence[Ring], one: Box, second: Sequence[Ring], two: Box) -> Point | None:
    """Either two edges cross, each through the other's inside, or none does, and then the
    outlines meet only at vertices and along shared edges: each piece of one outline
    between those points is inside the other polygon, outside, or along its outline
    (``_piece_inside``). Edges are compared only within the boxes' overlap, by grid cell."""
    box = (max(one[0], two[0]), max(one[1], two[1]), min(one[2], two[2]), min(one[3], two[3]))
    if box[0] >= box[2] or box[1] >= box[3]:
        return None  # the boxes do not overlap, or only touch
    outlines = _Outline(first, box), _Outline(second, box)
    tested: set[tuple[int, int]] = set()
    for mine, theirs in _buckets(*outlines, box):
        for k in mine:
            for j in theirs:
                if (k, j) not in tested:
                    tested.add((k, j))
                    if (point := _meet(outlines[0], k, outlines[1], j)) is not None:
                        return point
    return _piece_inside(*outlines) or _piece_inside(outlines[1], outlines[0])


def centroid(rings: Sequence[Ring]) -> Point:
    """The centre of a polygon's outline (of its area; of its vertices if it has none)."""
    ring = rings[0]
    area = lon = lat = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        area += cross
        lon += (x0 + x1) * cross
        lat += (y0 + y1) * cross
    if area == 0:
        points = ring[:-1] or ring
        return sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
    return lon / (3 * area), lat / (3 * area)


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance between two [lon, lat] positions, in kilometres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))
