"""The open-data API (OGC API - Features) over the open zone, on any platform.

``reply`` takes a platform-neutral ``ApiRequest`` and returns an ``ApiResponse``; the
documents and the checks of every parameter are ``core.api``'s. What is read is the open
zone only, through the ``ObjectStore`` port: a theme's published days (listed under
``open/<city>/<theme>/``) and each day's Parquet, one day at a time, in batches of rows,
never more than ``API_MAX_DAY_BYTES`` of it. A page ends at ``limit`` features, at
``API_MAX_PAGE_BYTES`` of body or when ``API_BUDGET_S`` has passed — whichever comes first
— with a ``next`` link where it stopped (a cursor: the day and the row). A client's
mistake is a 400 with an OGC exception; a backend's failure a 503 or 500, never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from citypipe.core import api as ogc
from citypipe.core.openapi import openapi
from citypipe.domain.city import City
from citypipe.domain.errors import NotFoundError, TransientError
from citypipe.domain.limits import (
    API_BUDGET_S,
    API_MAX_DAY_BYTES,
    API_MAX_PAGE_BYTES,
)
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames, day_of
from citypipe.domain.themes import OpenFormat, Theme, themes_of
from citypipe.ports import Expiring, ObjectStore
from citypipe.service.kernel import log

BATCH_ROWS = 1024  # rows of a day's Parquet decoded at a time
LISTING_S = 60.0  # a warm container remembers a theme's published days this long


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: str  # as sent, percent-encoded
    accept: str
    origin: str  # scheme://host the client reached the API at (its links start there)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedDay:
    day: str
    key: str
    size: int


class OpenData:
    """The open zone of one city, as the API reads it (nothing else of the stack)."""

    def __init__(
        self,
        city: City,
        names: StackNames,
        store: ObjectStore,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.city, self.names, self.store, self.monotonic = city, names, store, monotonic
        self.bucket = names.bucket(Zone.OPEN)
        self.themes = {t.slug: t for t in themes_of(city)}
        self.geometry = {f.id: f.geometry.model_dump(mode="json") for f in city.zones.features}
        self.boxes = {
            f.id: _box([p for ring in f.geometry.coordinates for p in ring])
            for f in city.zones.features
        }
        self._days: Expiring[str, list[PublishedDay]] = Expiring(LISTING_S)

    def theme(self, slug: str) -> Theme:
        theme = self.themes.get(slug)
        if theme is None:
            raise ogc.ApiError(404, "NotFound", f"no such collection: {slug}")
        return theme

    def days(self, theme: Theme) -> list[PublishedDay]:
        """The theme's published days, in order (their Parquet files, listed)."""
        return self._days.get(theme.slug, lambda: self._list(theme))

    def _list(self, theme: Theme) -> list[PublishedDay]:
        prefix = f"{self.names.open_prefix()}{theme.slug}/date="
        return [
            PublishedDay(day, info.key, info.size)
            for info in self.store.list(self.bucket, prefix)
            if info.key
            == self.names.open_file_key(
                theme.slug, OpenFormat.PARQUET, day := day_of(info.key, prefix)
            )
        ]

    def rows(self, day: PublishedDay, first: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """A day's rows from ``first`` on, with their positions: decoded a batch at a time."""
        if day.size > API_MAX_DAY_BYTES:
            raise RuntimeError(f"{day.key}: {day.size} bytes, over the API's bound")
        body = self.store.get(self.bucket, day.key).body
        position = 0
        for batch in pq.ParquetFile(pa.BufferReader(body)).iter_batches(batch_size=BATCH_ROWS):
            if position + batch.num_rows > first:
                for offset, row in enumerate(batch.to_pylist()):
                    if position + offset >= first:
                        yield position + offset, row
            position += batch.num_rows

    def zones(self, query: ogc.ItemsQuery) -> set[str] | None:
        """The zones a query keeps (None: every one)."""
        if query.bbox is None and query.zone is None:
            return None
        kept = set(self.boxes) if query.zone is None else {query.zone}
        if query.bbox is not None:
            kept = {z for z in kept if z in self.boxes and _meets(self.boxes[z], query.bbox)}
        return kept


def _box(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _meets(one: tuple[float, ...], two: tuple[float, ...]) -> bool:
    return one[0] <= two[2] and two[0] <= one[2] and one[1] <= two[3] and two[1] <= one[3]


def _kept(row: Mapping[str, Any], query: ogc.ItemsQuery, zones: set[str] | None) -> bool:
    if zones is not None and row["zone"] not in zones:
        return False
    if query.quantity is not None and row["quantity"] != query.quantity:
        return False
    start: datetime = row["window_start"]
    end: datetime = row["window_end"]
    return (query.end is None or start <= query.end) and (query.start is None or end > query.start)


@dataclass
class _Page:
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    following: tuple[str, int] | None = None  # where the next page starts


def _page(data: OpenData, theme: Theme, query: ogc.ItemsQuery) -> _Page:
    """Features from the cursor on, up to the limit, the byte bound and the time budget."""
    page, started = _Page(), data.monotonic()
    first_day, first_row = query.cursor or ("", 0)
    low, high = query.days()
    zones = data.zones(query)
    read = False  # a day read: a page always moves on, found features or not
    for day in data.days(theme):
        if day.day < first_day or (low and day.day < low) or (high and day.day > high):
            continue
        if read and data.monotonic() - started > API_BUDGET_S:  # features found or not:
            page.following = (day.day, 0)  # a page (maybe empty) and where to go on
            break
        read = True
        for position, row in data.rows(day, first_row if day.day == first_day else 0):
            if not _kept(row, query, zones):
                continue
            part = ogc.encoded(row, data.geometry.get(row["zone"]), query.fmt)
            if len(page.parts) == query.limit or page.size + len(part) > API_MAX_PAGE_BYTES:
                page.following = (day.day, position)
                return page
            page.parts.append(part)
            page.size += len(part)
    return page


def _items(
    data: OpenData, request: ApiRequest, route: ogc.Route, params: dict[str, str]
) -> ApiResponse:
    theme = data.theme(route.collection)
    query = ogc.items_query(params, request.accept)
    page = _page(data, theme, query)
    root = request.origin + ogc.ROOT
    body = ogc.page(root, theme.slug, query, params, page.parts, page.following)
    headers = {}
    if page.following is not None:
        next_href = ogc.next_link(root, theme.slug, query, params, page.following)
        headers["link"] = f'<{next_href}>; rel="next"'
    return ApiResponse(200, body, query.fmt.media_type, headers)


def _item(
    data: OpenData, request: ApiRequest, route: ogc.Route, params: dict[str, str]
) -> ApiResponse:
    theme = data.theme(route.collection)
    ogc.unknown_parameters(params, frozenset({"f"}))
    fmt = ogc.feature_format(params, request.accept)
    day, zone = ogc.feature_key(route.feature)
    found = next((d for d in data.days(theme) if d.day == day), None)
    for _, row in data.rows(found) if found else ():
        if ogc.feature_id(row) == route.feature:
            body = ogc.encoded(row, data.geometry.get(zone), fmt)
            return ApiResponse(
                200, ogc.csv_header() + body if fmt is ogc.CSV else body, fmt.media_type
            )
    raise ogc.ApiError(404, "NotFound", f"no such feature in {theme.slug}: {route.feature}")


def _metadata(data: OpenData, request: ApiRequest, route: ogc.Route) -> dict[str, Any]:
    root = request.origin + ogc.ROOT
    city = data.city
    if route.kind == "landing":
        return ogc.landing(root, city)
    if route.kind == "conformance":
        return ogc.conformance()
    if route.kind == "api":
        return openapi(root, city, list(data.themes.values()))
    if route.kind == "collection":
        theme = data.theme(route.collection)
        return ogc.collection(root, city, theme, [d.day for d in data.days(theme)])
    found = [(t, [d.day for d in data.days(t)]) for t in data.themes.values()]
    return ogc.collections(root, city, [(t, days) for t, days in found if days])


def _answer(data: OpenData, request: ApiRequest) -> ApiResponse:
    if request.method != "GET":
        raise ogc.ApiError(405, "MethodNotAllowed", "the API answers GET only")
    route = ogc.route(request.path)
    params = ogc.parameters(request.query)
    if route.kind == "items":
        return _items(data, request, route, params)
    if route.kind == "item":
        return _item(data, request, route, params)
    ogc.metadata_params(params)
    document = _metadata(data, request, route)
    media = ogc.OPENAPI_MEDIA if route.kind == "api" else ogc.JSON.media_type
    return ApiResponse(200, orjson.dumps(document), media)


def reply(data: OpenData, request: ApiRequest) -> ApiResponse:
    """Any request: the document asked for, or an OGC exception (400, 404, 405, 503, 500)."""
    started = time.perf_counter()
    try:
        response = _answer(data, request)
    except ogc.ApiError as refused:
        response = _refused(refused)
    except (TransientError, NotFoundError) as failed:  # a day removed while read: try again
        log.warning("api: the open zone did not answer", extra={"error": type(failed).__name__})
        response = _refused(ogc.ApiError(503, "ServiceUnavailable", "try again shortly"))
        response.headers["retry-after"] = "5"
    except Exception as failed:
        log.error("api: the request failed", extra={"error": type(failed).__name__})
        response = _refused(ogc.ApiError(500, "ServerError", "the request failed; see the log"))
    log.info(
        "api request",
        extra={
            "route": request.path[:120],
            "status": response.status,
            "bytes": len(response.body),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return response


def _refused(error: ogc.ApiError) -> ApiResponse:
    return ApiResponse(error.status, ogc.exception(error), ogc.JSON.media_type)
