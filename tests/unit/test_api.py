"""The open-data API (OGC API - Features, Part 1: Core) over an exported open zone, in
memory: its documents, paging, filters and formats, its refusals (a fuzzed search of its
parameters: every answer a 2xx, 400 or 404 with an OGC exception, never a crash), its
bounds, and that it reads nothing but the open zone. tests/integration/test_api_owslib.py
runs OWSLib against the local server over a replay's open zone."""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from open_support import every_theme_city, open_zone_of_every_theme
from openapi_spec_validator import validate
from repo import ROOT, load_event
from unit_support import DAY

from citypipe.core import api as ogc
from citypipe.domain.city import City
from citypipe.domain.limits import API_MAX_LIMIT, API_MAX_QUERY_CHARS
from citypipe.domain.model import Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.ports import ObjectInfo, StoredObject
from citypipe.service import api as service
from citypipe.service.api import ApiRequest, ApiResponse, OpenData, reply
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryObjectStore
from citypipe_local.runner import LambdaContext

ORIGIN = "https://api.velden.example"
NEXT_DAY = "2026-06-02"
EARLIER, LATER = "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"
NAMES = StackNames("velden")


class Recording(InMemoryObjectStore):
    """Every bucket and key the API asks for."""

    def __init__(self, *buckets: str) -> None:
        super().__init__(buckets)
        self.asked: list[tuple[str, str]] = []

    def get(self, bucket: str, key: str) -> StoredObject:
        self.asked.append((bucket, key))
        return super().get(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self.asked.append((bucket, prefix))
        return super().list(bucket, prefix)


@pytest.fixture
def store(memory_deps: Deps) -> Recording:
    """A stack whose every zone holds objects; its open zone, one day of every theme."""
    found = Recording(*(NAMES.bucket(z) for z in Zone))
    for key, body in open_zone_of_every_theme(memory_deps).items():
        found.put(NAMES.bucket(Zone.OPEN), key, body)
    for zone in Zone:
        if zone is not Zone.OPEN:  # what the API must never read
            found.put(NAMES.bucket(zone), f"{zone.value}/velden/date={DAY}/x.parquet", b"no")
    return found


@pytest.fixture(scope="module")
def fuzzed(memory_stack: Callable[[City], Deps], city: City) -> OpenData:
    """The open zone for the fuzzed search (one for all its examples)."""
    store = InMemoryObjectStore([NAMES.bucket(Zone.OPEN)])
    for key, value in open_zone_of_every_theme(memory_stack(city)).items():
        store.put(NAMES.bucket(Zone.OPEN), key, value)
    return OpenData(every_theme_city(), NAMES, store)


@pytest.fixture
def data(store: Recording) -> OpenData:
    return OpenData(every_theme_city(), NAMES, store)


def get(data: OpenData, path: str, query: str = "", accept: str = "") -> ApiResponse:
    return reply(data, ApiRequest("GET", path, query, accept, ORIGIN))


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


def parquet_of(store: Recording, theme: str, day: str) -> bytes:
    key = NAMES.open_file_key(theme, OpenFormat.PARQUET, day)
    return store.get(NAMES.bucket(Zone.OPEN), key).body


def published_rows(store: Recording, theme: str) -> list[dict[str, Any]]:
    return list(pq.read_table(io.BytesIO(parquet_of(store, theme, DAY))).to_pylist())


# --- the documents -------------------------------------------------------------------------


def test_the_landing_page_links_the_description_the_conformance_and_the_collections(
    data: OpenData,
) -> None:
    response = get(data, "/features/")
    assert response.status == 200 and response.content_type == "application/json"
    rels = {link["rel"]: link["href"] for link in body(response)["links"]}
    assert rels == {
        "self": f"{ORIGIN}/features/",
        "service-desc": f"{ORIGIN}/features/api",
        "conformance": f"{ORIGIN}/features/conformance",
        "data": f"{ORIGIN}/features/collections",
    }


def test_the_api_declares_core_geojson_and_openapi_conformance(data: OpenData) -> None:
    assert set(body(get(data, "/features/conformance"))["conformsTo"]) == {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    }


def test_the_openapi_description_is_valid_openapi_3(data: OpenData) -> None:
    response = get(data, "/features/api")
    assert response.content_type == "application/vnd.oai.openapi+json;version=3.0"
    document = body(response)
    validate(document)
    assert document["servers"] == [{"url": f"{ORIGIN}/features"}]
    limit = next(
        p
        for p in document["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == API_MAX_LIMIT


def test_every_published_theme_is_a_collection_with_its_extent(data: OpenData) -> None:
    found = {c["id"]: c for c in body(get(data, "/features/collections"))["collections"]}
    assert set(found) == {
        "air-quality", "noise", "traffic-flow", "parking", "people-counts", "weather"
    }  # fmt: skip
    extent = found["air-quality"]["extent"]
    assert extent["temporal"]["interval"] == [[f"{DAY}T00:00:00Z", "2026-06-02T00:00:00Z"]]
    assert extent["spatial"]["bbox"] == [ogc.bbox_of(data.city)]
    assert body(get(data, "/features/collections/air-quality"))["id"] == "air-quality"


def test_a_collection_s_items_are_its_published_rows_each_in_its_zone(
    data: OpenData, store: Recording
) -> None:
    rows = published_rows(store, "air-quality")
    page = body(get(data, "/features/collections/air-quality/items", f"limit={API_MAX_LIMIT}"))
    assert page["type"] == "FeatureCollection" and page["numberReturned"] == len(rows)
    zones = {f.id: f.geometry.model_dump(mode="json") for f in data.city.zones.features}
    for feature, row in zip(page["features"], rows, strict=True):
        assert feature["geometry"] == zones[row["zone"]]
        assert feature["properties"]["quantity"] == row["quantity"]
        assert feature["properties"]["mean"] == row["mean"]
    assert [link["rel"] for link in page["links"]] == ["self"]  # the last page: no next


def test_one_feature_is_found_by_its_id(data: OpenData) -> None:
    first = body(get(data, "/features/collections/air-quality/items", "limit=1"))["features"][0]
    response = get(data, f"/features/collections/air-quality/items/{first['id']}")
    assert response.status == 200 and body(response) == first
    missing = first["id"].replace("T00", "T23").replace("~air.", "~air.x")
    assert get(data, f"/features/collections/air-quality/items/{missing}").status == 404


# --- paging, filters, formats --------------------------------------------------------------


def pages(data: OpenData, theme: str, query: str) -> Iterator[dict[str, Any]]:
    """Every page, following next links as a client does."""
    path, params = f"/features/collections/{theme}/items", query
    while True:
        page = body(get(data, path, params))
        yield page
        following = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not following:
            return
        split = urlsplit(following[0])
        assert split.path == path and split.geturl().startswith(ORIGIN)
        params = split.query


def next_day_of(store: Recording, theme: str) -> int:
    """The theme's day published again as the next day (its windows a day later): the
    rows of both days."""
    table = pq.read_table(io.BytesIO(parquet_of(store, theme, DAY)))
    for name in ("window_start", "window_end"):
        moved = pc.add(table.column(name), pa.scalar(timedelta(days=1), pa.duration("ms")))
        table = table.set_column(table.schema.get_field_index(name), name, moved)
    out = io.BytesIO()
    pq.write_table(table, out)
    key = NAMES.open_file_key(theme, OpenFormat.PARQUET, NEXT_DAY)
    store.put(NAMES.bucket(Zone.OPEN), key, out.getvalue())
    return 2 * table.num_rows


def test_paging_by_next_links_returns_every_row_of_every_day_once(
    data: OpenData, store: Recording
) -> None:
    rows = next_day_of(store, "people-counts")
    walked = list(pages(data, "people-counts", "limit=100"))
    ids = [f["id"] for page in walked for f in page["features"]]
    assert len(walked) == -(-rows // 100) and all(p["numberReturned"] <= 100 for p in walked)
    assert len(ids) == len(set(ids)) == rows
    assert {i[:8] for i in ids} == {"20260601", "20260602"}
    days = body(get(data, "/features/collections/people-counts"))["extent"]["temporal"]
    assert days["interval"] == [[f"{DAY}T00:00:00Z", "2026-06-03T00:00:00Z"]]


def test_a_datetime_reads_only_the_days_it_touches(data: OpenData, store: Recording) -> None:
    next_day_of(store, "people-counts")
    store.asked.clear()
    query = f"datetime={NEXT_DAY}T10:00:00Z&limit=1000"
    features = body(get(data, "/features/collections/people-counts/items", query))["features"]
    assert {f["properties"]["window_start"] for f in features} == {f"{NEXT_DAY}T10:00:00Z"}
    read = [key for _, key in store.asked if key.endswith(".parquet")]
    assert read == [NAMES.open_file_key("people-counts", OpenFormat.PARQUET, NEXT_DAY)]


def test_a_date_alone_is_its_whole_day(data: OpenData, store: Recording) -> None:
    next_day_of(store, "people-counts")
    query = f"datetime={NEXT_DAY}&limit=10000"
    features = body(get(data, "/features/collections/people-counts/items", query))["features"]
    assert len(features) == len(published_rows(store, "people-counts"))
    assert {f["properties"]["window_start"][:10] for f in features} == {NEXT_DAY}


def test_a_page_stops_reading_further_days_once_its_time_is_spent(
    store: Recording,
) -> None:
    ticks = iter(range(0, 10_000, 30))  # each look at the clock: 30 s later
    data = OpenData(every_theme_city(), NAMES, store, monotonic=lambda: float(next(ticks)))
    next_day_of(store, "people-counts")
    page = body(get(data, "/features/collections/people-counts/items", "limit=10000"))
    assert page["numberReturned"] == len(published_rows(store, "people-counts"))  # one day
    [following] = [link["href"] for link in page["links"] if link["rel"] == "next"]
    assert f"cursor={NEXT_DAY}.0" in following


def test_a_query_that_matches_nothing_is_held_to_the_time_budget_too(store: Recording) -> None:
    """Else a filter no row meets (zone=nope) reads every published day in one request."""
    ticks = iter(range(0, 10_000, 30))
    data = OpenData(every_theme_city(), NAMES, store, monotonic=lambda: float(next(ticks)))
    next_day_of(store, "people-counts")
    page = body(get(data, "/features/collections/people-counts/items", "zone=nowhere"))
    assert page["numberReturned"] == 0
    [following] = [link["href"] for link in page["links"] if link["rel"] == "next"]
    assert f"cursor={NEXT_DAY}.0" in following


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        ("text/csv", "csv"),
        ("text/csv;q=0.5, application/json;q=0.9", "json"),
        ("application/json;q=0.5, text/csv", "csv"),
        ("text/csv;q=0", "geojson"),
        ("text/csv;q=zero, image/png", "geojson"),
        ("*/*", "geojson"),
        ("", "geojson"),
    ],
)
def test_accept_picks_the_format_the_client_prefers(accept: str, served: str) -> None:
    assert ogc.feature_format({}, accept).name == served
    assert ogc.feature_format({"f": "json"}, accept).name == "json"  # f= comes first


def test_a_limit_over_the_maximum_is_served_as_the_maximum() -> None:
    assert ogc.items_query({"limit": str(API_MAX_LIMIT * 10)}, "").limit == API_MAX_LIMIT


def test_a_page_ends_at_the_byte_bound_with_a_next_link(
    data: OpenData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "API_MAX_PAGE_BYTES", 2_000)
    page = body(get(data, "/features/collections/people-counts/items", "limit=100"))
    assert 0 < page["numberReturned"] < 100
    assert len(json.dumps(page["features"])) < 2_500
    assert [link["rel"] for link in page["links"]] == ["self", "next"]


def test_bbox_datetime_zone_and_quantity_select_rows(data: OpenData, store: Recording) -> None:
    west = next(f for f in data.city.zones.features if f.id == "west")
    box = service._box(list(west.geometry.coordinates[0]))
    inner = ",".join(str(v + d) for v, d in zip(box, (0.001, 0.001, -0.001, -0.001), strict=True))
    query = (
        f"bbox={inner}&datetime={DAY}T00:00:00Z/{DAY}T00:29:59Z&quantity=people.presence&limit=1000"
    )
    features = body(get(data, "/features/collections/people-counts/items", query))["features"]
    assert len(features) == 2  # west's first two windows
    assert {f["properties"]["zone"] for f in features} == {"west"}
    by_zone = body(get(data, "/features/collections/people-counts/items", "zone=west&limit=1000"))
    assert len(by_zone["features"]) == 96
    assert {f["properties"]["zone"] for f in by_zone["features"]} == {"west"}
    other = body(get(data, "/features/collections/people-counts/items", "quantity=air.no2"))
    assert other["features"] == []


def test_csv_is_served_by_f_or_accept_with_crlf_lines_and_a_link_header(data: OpenData) -> None:
    path = "/features/collections/people-counts/items"
    by_f = get(data, path, "f=csv&limit=3")
    by_accept = get(data, path, "limit=3", "text/csv")
    assert by_f.body == by_accept.body and by_f.content_type == "text/csv; charset=utf-8"
    lines = by_f.body.decode().split("\r\n")
    assert lines[0].startswith("id,window_start,window_end,zone,quantity") and len(lines) == 5
    assert len(list(csv.reader(io.StringIO(by_f.body.decode())))) == 4
    assert 'rel="next"' in by_f.headers["link"]
    as_json = get(data, "/features/collections/air-quality/items", "limit=1", "application/json")
    assert as_json.content_type == "application/json"


# --- refusals and bounds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "status", "says"),
    [
        ("/features/collections/air-quality/items", "limit=0", 400, "limit"),
        ("/features/collections/air-quality/items", "limit=-1", 400, "limit"),
        ("/features/collections/air-quality/items", "bbox=1,2,3", 400, "bbox"),
        ("/features/collections/air-quality/items", "bbox=5,52,4,51", 400, "bbox"),
        ("/features/collections/air-quality/items", "bbox=a,b,c,d", 400, "bbox"),
        ("/features/collections/air-quality/items", "datetime=yesterday", 400, "datetime"),
        ("/features/collections/air-quality/items", f"datetime={LATER}/{EARLIER}", 400, "after"),
        ("/features/collections/air-quality/items", "datetime=2026-06-01T00:00:00", 400, "offset"),
        ("/features/collections/air-quality/items", "datetime=0001-01-01T00:00:00%2B01:00", 400,
         "calendar"),
        ("/features/collections/air-quality/items", "datetime=9999-12-31T23:59:59-01:00", 400,
         "calendar"),
        ("/features/collections/air-quality/items", "f=xml", 400, "f:"),
        ("/features/collections/air-quality/items", "cursor=x", 400, "cursor"),
        ("/features/collections/air-quality/items", "limit=1&limit=2", 400, "twice"),
        ("/features/collections/air-quality/items", "crs=EPSG:4326", 400, "unknown parameter crs"),
        ("/features/collections", "f=csv", 400, "json only"),
        ("/features/collections/raw", "", 404, "no such collection"),
        ("/features/collections/..%2F..%2Fraw", "", 404, "no such collection"),
        ("/features/collections/air-quality/items/not-an-id", "", 404, "no such feature"),
        ("/raw/velden/", "", 404, "/features/"),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_with_an_ogc_exception(
    data: OpenData, path: str, query: str, status: int, says: str
) -> None:
    response = get(data, path, query)
    assert response.status == status and response.content_type == "application/json"
    refusal = body(response)
    assert set(refusal) == {"code", "description"} and says in refusal["description"]


def test_a_query_over_its_bounds_is_refused(data: OpenData) -> None:
    path = "/features/collections/air-quality/items"
    assert get(data, path, "zone=" + "a" * API_MAX_QUERY_CHARS).status == 400
    assert get(data, path, "&".join(f"p{i}=1" for i in range(100))).status == 400


def test_only_get_is_answered(data: OpenData) -> None:
    response = reply(data, ApiRequest("POST", "/features/", "", "", ORIGIN))
    assert response.status == 405


def test_a_backend_failure_is_an_answer_not_a_crash(data: OpenData, store: Recording) -> None:
    store.buckets[NAMES.bucket(Zone.OPEN)].clear()
    store.buckets.pop(NAMES.bucket(Zone.OPEN))  # the bucket refuses: 500, logged
    response = get(data, "/features/collections")
    assert response.status == 500 and body(response)["code"] == "ServerError"


BBOXES = r"-?[0-9]{1,4}(\.[0-9]{1,3})?(,-?[0-9]{1,3}(\.[0-9])?){3}"
DATETIMES = (
    r"(\.\.|20[0-9]{2}-[01][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z?)?)"
    r"(/(\.\.|2026-06-0[0-9]T00:00:00Z))?"
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    path=st.sampled_from(
        ["/features/", "/features/collections", "/features/collections/air-quality/items",
         "/features/collections/people-counts/items/20260601T0000Z~centrum~people.presence",
         "/features/conformance"]
    ),
    params=st.lists(
        st.tuples(
            st.sampled_from(["limit", "bbox", "datetime", "f", "cursor", "zone", "quantity", "x"]),
            st.one_of(
                st.text(max_size=40),
                st.from_regex(BBOXES, fullmatch=True),
                st.from_regex(DATETIMES, fullmatch=True),
                st.sampled_from(["json", "csv", "geojson", "0", "10001", "2026-06-01.5"]),
            ),
        ),
        max_size=5,
    ),
)  # fmt: skip
def test_fuzzed_parameters_get_an_answer_or_a_clear_refusal(
    fuzzed: OpenData, path: str, params: list[tuple[str, str]]
) -> None:
    response = get(fuzzed, path, urlencode(params))
    assert response.status in (200, 400, 404)
    if response.status != 200:
        refusal = json.loads(response.body)
        assert refusal["code"] in ("InvalidParameterValue", "NotFound") and refusal["description"]


# --- the open zone only --------------------------------------------------------------------


def test_the_api_reads_the_open_zone_and_nothing_else(data: OpenData, store: Recording) -> None:
    for path, query in [
        ("/features/collections", ""),
        ("/features/collections/people-counts/items", "limit=5"),
        ("/features/collections/people-counts/items", "f=csv&datetime=2026-06-01T10:00:00Z"),
        ("/features/collections/people-counts/items/20260601T0000Z~centrum~people.presence", ""),
    ]:
        assert get(data, path, query).status == 200
    assert store.asked
    assert {bucket for bucket, _ in store.asked} == {NAMES.bucket(Zone.OPEN)}
    assert all(key.startswith(NAMES.open_prefix()) for _, key in store.asked)


def test_suppressed_cells_carry_no_figure(data: OpenData) -> None:
    features = body(get(data, "/features/collections/people-counts/items", "limit=1000"))
    suppressed = [
        f["properties"] for f in features["features"] if f["properties"]["status"] != "published"
    ]
    assert suppressed  # noord is under k
    assert all(p["distinct_devices"] is None for p in suppressed)


# --- the platforms -------------------------------------------------------------------------


def load(platform_file: str) -> Any:
    path = ROOT / "functions" / "api" / platform_file
    spec = importlib.util.spec_from_file_location(f"api_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lambda_handler_answers_an_http_api_event(data: OpenData) -> None:
    from citypipe.bootstrap.api import build

    event = copy.deepcopy(load_event("httpapi_webhook_senml.json"))
    event["routeKey"] = "GET /features/{proxy+}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = (
        "/features/collections/people-counts/items"
    )
    event["requestContext"]["http"]["method"] = "GET"
    event["rawQueryString"] = "limit=2&f=json"
    event["body"] = ""
    context = LambdaContext("api", "arn:aws:lambda:eu-central-1:123456789012:function:velden-api")
    answered = load("handler.py").handler(event, context, app=build(data))
    assert answered["statusCode"] == 200
    assert answered["headers"]["content-type"] == "application/json"
    page = json.loads(answered["body"])
    assert page["numberReturned"] == 2
    domain = event["requestContext"]["domainName"]
    assert page["links"][0]["href"].startswith(
        f"https://{domain}/features/collections/people-counts"
    )


def test_the_scaleway_function_answers_an_http_event(data: OpenData) -> None:
    from citypipe.bootstrap.api import build

    event = copy.deepcopy(load_event("scaleway_webhook_senml.json"))
    event.update(
        httpMethod="GET",
        path="/features/collections/people-counts/items",
        body="",
        queryStringParameters={"limit": "1"},
        multiValueQueryStringParameters=None,
    )
    answered = load("scaleway.py").handle(event, {}, app=build(data))
    assert answered["statusCode"] == 200 and json.loads(answered["body"])["numberReturned"] == 1
