"""The open-data API's pure parts: OGC API - Features, Part 1: Core (ISO 19168-1).

What a request asks (the route, the parameters, the format) and every document the API
answers — the landing page, the conformance classes, the collections (one a published
theme), a theme's rows as GeoJSON features (the zone's polygon, the row's columns as
properties), CSV, the OpenAPI 3.0 description and OGC-style exceptions — made here from
values, never read: ``service.api`` reads the open zone's Parquet and pages through it.

Every parameter is checked before anything is read: a bad one is a 400 that says which
and why (``ApiError``), never a crash. Paths are ``/features/...`` on every platform.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from citypipe.domain.city import City
from citypipe.domain.limits import (
    API_DEFAULT_LIMIT,
    API_MAX_LIMIT,
    API_MAX_PARAMETERS,
    API_MAX_QUERY_CHARS,
)
from citypipe.domain.naming import StackNames, public_address
from citypipe.domain.themes import Theme

ROOT = "/features"  # the API's path on every platform
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"
COLUMNS = (  # a row's columns as published (distinct_devices only in people datasets)
    "window_start", "window_end", "zone", "quantity", "unit", "count", "sum", "min",
    "max", "mean", "distinct_devices", "status", "reason",
)  # fmt: skip
ITEM_PARAMETERS = frozenset({"f", "limit", "bbox", "datetime", "cursor", "zone", "quantity"})
COLLECTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FEATURE_ID = re.compile(r"^(\d{8}T\d{4}Z)~([a-z0-9-]{1,64})~([a-z0-9_.]{1,64})$")
CURSOR = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(\d{1,9})$")
TOKEN = re.compile(r"^[a-z0-9_.-]{1,64}$")  # a zone or a quantity asked for


class ApiError(Exception):
    """A request the API refuses: its status, an OGC exception's code and description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


@dataclass(frozen=True)
class Format:
    name: str  # the value of f=
    media_type: str


GEOJSON = Format("geojson", "application/geo+json")
JSON = Format("json", "application/json")
CSV = Format("csv", "text/csv; charset=utf-8")
FEATURE_FORMATS = {f.name: f for f in (GEOJSON, JSON, CSV)}
ACCEPTED = {"application/geo+json": GEOJSON, "application/json": JSON, "text/csv": CSV}


@dataclass(frozen=True)
class Route:
    kind: str  # landing, conformance, api, collections, collection, items, item
    collection: str = ""
    feature: str = ""


def route(path: str) -> Route:
    """What a path asks for (404 for anything else: no path reaches outside a collection)."""
    if path != ROOT and not path.startswith(f"{ROOT}/"):
        raise ApiError(404, "NotFound", f"the API is at {ROOT}/")
    parts = [p for p in path[len(ROOT) :].split("/") if p]
    fixed = {(): "landing", ("conformance",): "conformance", ("api",): "api"}
    if tuple(parts) in fixed:
        return Route(fixed[tuple(parts)])
    if not parts or parts[0] != "collections" or len(parts) > 4:
        raise ApiError(404, "NotFound", f"no such resource: {_shown(path)}")
    if len(parts) == 1:
        return Route("collections")
    collection = parts[1]
    if not COLLECTION_ID.match(collection):
        raise ApiError(404, "NotFound", f"no such collection: {_shown(collection)}")
    if len(parts) == 2:
        return Route("collection", collection)
    if parts[2] != "items":
        raise ApiError(404, "NotFound", f"no such resource: {_shown(path)}")
    if len(parts) == 3:
        return Route("items", collection)
    return Route("item", collection, parts[3])


def _shown(text: str) -> str:
    """What a refusal repeats of the request: short, printable."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:80])
    return clean + ("…" if len(text) > 80 else "")


# --- parameters --------------------------------------------------------------------------------


def parameters(query: str) -> dict[str, str]:
    """The query's parameters (percent-decoded), each given once: a name given twice is
    ambiguous (400), and so is a query over the bounds."""
    if len(query) > API_MAX_QUERY_CHARS:
        raise ApiError(400, "InvalidParameterValue", f"a query of at most {API_MAX_QUERY_CHARS}")
    if query.count("&") + query.count(";") >= API_MAX_PARAMETERS:
        raise ApiError(400, "InvalidParameterValue", f"at most {API_MAX_PARAMETERS} parameters")
    found: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in found:
            raise ApiError(400, "InvalidParameterValue", f"{_shown(name)} given twice")
        found[name] = value
    return found


def unknown_parameters(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """400 for a parameter the resource does not take (OGC API - Features 7.4)."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ApiError(
            400,
            "InvalidParameterValue",
            f"unknown parameter {_shown(unknown[0])}: this resource takes "
            + (", ".join(sorted(allowed)) or "none"),
        )


def metadata_params(params: Mapping[str, str]) -> None:
    """The landing page, conformance, collections and the OpenAPI document: JSON only."""
    unknown_parameters(params, frozenset({"f"}))
    if params.get("f", "json") != "json":
        raise ApiError(400, "InvalidParameterValue", "f: this resource is served as json only")


def feature_format(params: Mapping[str, str], accept: str) -> Format:
    """``f=`` first, else the first media type of Accept the API serves, else GeoJSON."""
    if "f" in params:
        try:
            return FEATURE_FORMATS[params["f"]]
        except KeyError:
            raise ApiError(
                400, "InvalidParameterValue", "f: one of " + ", ".join(FEATURE_FORMATS)
            ) from None
    offered = []
    for order, part in enumerate(accept.split(",")[:16]):
        media, _, rest = part.partition(";")
        found = ACCEPTED.get(media.strip().lower())
        quality = _quality(rest)
        if found is not None and quality > 0:
            offered.append((-quality, order, found))
    return min(offered, key=lambda o: o[:2])[2] if offered else GEOJSON


def _quality(media_parameters: str) -> float:
    """An Accept entry's ``q`` (1 when it gives none, 0 when it is not a number)."""
    for parameter in media_parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


@dataclass(frozen=True)
class ItemsQuery:
    fmt: Format
    limit: int
    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None  # the interval asked for (None: open)
    end: datetime | None = None
    zone: str | None = None
    quantity: str | None = None
    cursor: tuple[str, int] | None = None  # (day, row) where the page starts

    def days(self) -> tuple[str | None, str | None]:
        """The first and last days the interval touches."""
        return (
            self.start.date().isoformat() if self.start else None,
            self.end.date().isoformat() if self.end else None,
        )


def items_query(params: Mapping[str, str], accept: str) -> ItemsQuery:
    """An items request's parameters, each checked (400 with the reason otherwise)."""
    unknown_parameters(params, ITEM_PARAMETERS)
    start, end = _interval(params["datetime"]) if "datetime" in params else (None, None)
    return ItemsQuery(
        fmt=feature_format(params, accept),
        limit=_limit(params.get("limit")),
        bbox=_bbox(params["bbox"]) if "bbox" in params else None,
        start=start,
        end=end,
        zone=_token(params, "zone"),
        quantity=_token(params, "quantity"),
        cursor=_cursor(params["cursor"]) if "cursor" in params else None,
    )


def _limit(text: str | None) -> int:
    """1 to API_MAX_LIMIT; more is served as the most (OGC API - Features, 7.15.3)."""
    if text is None:
        return API_DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise ApiError(400, "InvalidParameterValue", "limit: a whole number, at least 1")
    return min(int(text), API_MAX_LIMIT)


def _bbox(text: str) -> tuple[float, float, float, float]:
    """minLon,minLat,maxLon,maxLat in CRS84 (or six numbers with heights, which are ignored)."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise ApiError(400, "InvalidParameterValue", "bbox: four numbers (or six), comma-separated")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ApiError(400, "InvalidParameterValue", "bbox: numbers only") from None
    west, south, east, north = (
        (numbers[0], numbers[1], numbers[3], numbers[4]) if len(numbers) == 6 else tuple(numbers)
    )
    if not all(-180 <= x <= 180 for x in (west, east)) or not all(
        -90 <= y <= 90 for y in (south, north)
    ):
        raise ApiError(
            400, "InvalidParameterValue", "bbox: longitudes -180..180, latitudes -90..90"
        )
    if west > east or south > north:
        raise ApiError(400, "InvalidParameterValue", "bbox: min before max (no antimeridian)")
    return west, south, east, north


def _instant(text: str, end: bool) -> datetime | None:
    """An RFC 3339 date-time (or a date: the day's start, or with ``end`` its last moment);
    ``..`` or empty: open."""
    if text in ("..", ""):
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1, microseconds=-1) if end else moment
        if len(text) > 40 or "T" not in text.upper():
            raise ValueError(text)
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "InvalidParameterValue", f"datetime: {_shown(text)} is not an RFC 3339 date-time"
        ) from None
    if moment.tzinfo is None:
        raise ApiError(400, "InvalidParameterValue", "datetime: give the offset (Z for UTC)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before the calendar's first instant
        raise ApiError(
            400, "InvalidParameterValue", f"datetime: {_shown(text)} is outside the calendar"
        ) from None


def _interval(text: str) -> tuple[datetime | None, datetime | None]:
    """An instant, or an interval ``start/end`` (either side ``..`` or empty: open)."""
    parts = text.split("/")
    if len(parts) == 1:
        if parts[0] in ("..", ""):
            raise ApiError(400, "InvalidParameterValue", "datetime: an instant or an interval")
        return _instant(parts[0], False), _instant(parts[0], True)
    if len(parts) != 2 or parts in (["..", ".."], ["", ""]):
        raise ApiError(400, "InvalidParameterValue", "datetime: start/end, one side at most open")
    start, end = _instant(parts[0], False), _instant(parts[1], True)
    if start is not None and end is not None and start > end:
        raise ApiError(400, "InvalidParameterValue", "datetime: the start is after the end")
    return start, end


def _token(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not TOKEN.match(value):
        raise ApiError(400, "InvalidParameterValue", f"{name}: an id of the data ({_shown(value)})")
    return value


def _cursor(text: str) -> tuple[str, int]:
    match = CURSOR.match(text)
    if match is None:
        raise ApiError(400, "InvalidParameterValue", "cursor: as a next link gave it")
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        raise ApiError(400, "InvalidParameterValue", "cursor: as a next link gave it") from None
    return match.group(1), int(match.group(2))


def feature_key(feature_id: str) -> tuple[str, str]:
    """(day, zone) of a feature's id, ``<window start>~<zone>~<quantity>`` (404 otherwise)."""
    match = FEATURE_ID.match(feature_id)
    if match is None:
        raise ApiError(404, "NotFound", f"no such feature: {_shown(feature_id)}")
    try:
        moment = datetime.strptime(match.group(1), "%Y%m%dT%H%MZ")
    except ValueError:
        raise ApiError(404, "NotFound", f"no such feature: {_shown(feature_id)}") from None
    return moment.date().isoformat(), match.group(2)


# --- documents ---------------------------------------------------------------------------------


def _link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def landing(root: str, city: City) -> dict[str, Any]:
    return {
        "title": f"{city.name} open sensor data",
        "description": (
            f"OGC API - Features over the open data of {city.name}: the published rows of "
            "every dataset (zone, quantity, 15-minute window), as GeoJSON, JSON or CSV."
        ),
        "links": [
            _link(f"{root}/", "self", JSON.media_type, "this document"),
            _link(f"{root}/api", "service-desc", OPENAPI_MEDIA, "the API's OpenAPI description"),
            _link(f"{root}/conformance", "conformance", JSON.media_type, "conformance classes"),
            _link(f"{root}/collections", "data", JSON.media_type, "the datasets"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": list(CONFORMANCE)}


def bbox_of(city: City) -> list[float]:
    """The city's zones' bounding box, CRS84."""
    points = [p for f in city.zones.features for ring in f.geometry.coordinates for p in ring]
    return [
        min(p[0] for p in points),
        min(p[1] for p in points),
        max(p[0] for p in points),
        max(p[1] for p in points),
    ]


def collection(root: str, city: City, theme: Theme, days: Sequence[str]) -> dict[str, Any]:
    """A theme as a collection: its extent is the city's zones and its published days."""
    base = f"{root}/collections/{theme.slug}"
    dataset = public_address(city.portal_url, StackNames(city.slug).dataset_page_key(theme.slug))
    interval = [f"{days[0]}T00:00:00Z", _iso(_next_day(days[-1]))] if days else [None, None]
    return {
        "id": theme.slug,
        "title": theme.title,
        "description": theme.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {
            "spatial": {"bbox": [bbox_of(city)], "crs": CRS84},
            "temporal": {
                "interval": [interval],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "links": [
            _link(base, "self", JSON.media_type, theme.title),
            *(
                _link(f"{base}/items?f={f.name}", "items", _bare(f), f"rows ({f.name})")
                for f in (GEOJSON, JSON, CSV)
            ),
            _link(dataset, "describedby", "text/html", "the dataset"),
        ],
    }


def collections(
    root: str, city: City, found: Sequence[tuple[Theme, Sequence[str]]]
) -> dict[str, Any]:
    return {
        "links": [_link(f"{root}/collections", "self", JSON.media_type, "the datasets")],
        "collections": [collection(root, city, theme, days) for theme, days in found],
    }


def _next_day(day: str) -> datetime:
    start = date.fromisoformat(day)
    return datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)


def _bare(fmt: Format) -> str:
    """The media type without its parameters."""
    return fmt.media_type.split(";")[0]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feature_id(row: Mapping[str, Any]) -> str:
    start: datetime = row["window_start"]
    return f"{start.astimezone(UTC):%Y%m%dT%H%MZ}~{row['zone']}~{row['quantity']}"


def feature(row: Mapping[str, Any], geometry: Mapping[str, Any] | None) -> dict[str, Any]:
    """A published row as a GeoJSON feature: its zone's polygon, its columns."""
    return {
        "type": "Feature",
        "id": feature_id(row),
        "geometry": geometry,
        "properties": {name: _value(row[name]) for name in COLUMNS if name in row},
    }


def _value(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def encoded(row: Mapping[str, Any], geometry: Mapping[str, Any] | None, fmt: Format) -> bytes:
    """One row in the page's format: a feature's JSON, or a CSV record (CRLF)."""
    if fmt is CSV:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(
            [feature_id(row), *("" if row.get(n) is None else _value(row[n]) for n in COLUMNS)]
        )
        return out.getvalue().encode()
    return orjson.dumps(feature(row, geometry))


def csv_header() -> bytes:
    return ("id," + ",".join(COLUMNS) + "\r\n").encode()


def next_link(
    root: str, theme: str, query: ItemsQuery, params: Mapping[str, str], at: tuple[str, int]
) -> str:
    """The next page: the same parameters, the cursor where this page stopped."""
    kept = {k: v for k, v in params.items() if k != "cursor"}
    kept["cursor"] = f"{at[0]}.{at[1]}"
    return f"{root}/collections/{quote(theme)}/items?{urlencode(sorted(kept.items()))}"


def page(
    root: str,
    theme: str,
    query: ItemsQuery,
    params: Mapping[str, str],
    parts: Sequence[bytes],
    following: tuple[str, int] | None,
) -> bytes:
    """The page's body: a FeatureCollection (its links, self and next), or a CSV table
    (its next page in the response's Link header: ``page_links``)."""
    if query.fmt is CSV:
        return csv_header() + b"".join(parts)
    links = page_links(root, theme, query, params, following)
    head = {"type": "FeatureCollection", "numberReturned": len(parts), "links": links}
    return orjson.dumps(head)[:-1] + b',"features":[' + b",".join(parts) + b"]}"


def page_links(
    root: str,
    theme: str,
    query: ItemsQuery,
    params: Mapping[str, str],
    following: tuple[str, int] | None,
) -> list[dict[str, str]]:
    self_href = f"{root}/collections/{quote(theme)}/items"
    if params:
        self_href += "?" + urlencode(sorted(params.items()))
    media = _bare(query.fmt)
    links = [_link(self_href, "self", media, "this page")]
    if following is not None:
        links.append(
            _link(next_link(root, theme, query, params, following), "next", media, "the next page")
        )
    return links


def exception(error: ApiError) -> bytes:
    """An OGC API exception (its JSON schema: code, description)."""
    return orjson.dumps({"code": error.code, "description": error.description})
