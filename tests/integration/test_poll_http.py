"""The poller of hub APIs against a local HTTP server (a real socket): Telraam's traffic
reports and Sensor.Community's measurements as their public documentation shows them,
429s with Retry-After, 5xx, malformed bodies, and a cursor resumed after a crash.

The stack is in memory; time is a clock the poller's waits move (no real sleeping)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo import CITY_FILE
from unit_support import city_data

from citypipe.adapters.apikeys import FileApiKeys, SecretsManagerApiKeys
from citypipe.adapters.clients import secretsmanager_client
from citypipe.adapters.http import UrllibHttp
from citypipe.bootstrap import deps_from
from citypipe.domain.city import City, parse_city
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.polling import SPECS, PollApi
from citypipe.ports import Body, Clock
from citypipe.service.kernel import Deps
from citypipe.service.poll import SERVER_RETRY_S, Poller, poll_tick
from citypipe.settings import Settings, StackSettings
from citypipe_local import stack as stack_ops
from citypipe_local.backends import Endpoint
from citypipe_local.cli import main
from citypipe_local.fakes import (
    InMemoryApiKeys,
    InMemoryKeyStore,
    InMemoryObjectStore,
    InMemoryQueue,
)

TELRAAM_KEY = "tlr-0123456789abcdef-test-key"
NOW = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # a tick: 12:00 UTC
SEGMENT = "9101053"  # tc-081 in the example registry
SENSOR = "37987"


# --- the APIs, as documented ------------------------------------------------------------------


def telraam_row(hour: datetime, segment: str = SEGMENT, car: float = 120.4) -> dict[str, Any]:
    """One hourly row of ``POST /v1/reports/traffic`` (Telraam's API reference)."""
    return {
        "instance_id": -1,
        "segment_id": int(segment),
        "date": hour.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "interval": "hourly",
        "uptime": 0.7944,
        "heavy": 10.2,
        "car": car,
        "bike": 33.8,
        "pedestrian": 25.1,
        "heavy_lft": 5.1,
        "heavy_rgt": 5.1,
        "car_lft": 60.2,
        "car_rgt": 60.2,
        "bike_lft": 16.9,
        "bike_rgt": 16.9,
        "pedestrian_lft": 12.5,
        "pedestrian_rgt": 12.6,
        "direction": 1,
        "car_speed_hist_0to70plus": [1.9, 6.2, 21.0, 41.3, 20.6, 6.4, 1.6, 1.0],
        "car_speed_hist_0to120plus": [0.5, 1.4, 3.1, 6.2, 13.8, 21.3, 20.6, 15.2, 9.4, 5.3],
        "timezone": "Europe/Brussels",
        "v85": 41.5,
    }


def telraam_report(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"status_code": 200, "message": "ok", "report": list(rows)}).encode()


def measurement(at: datetime, sensor: str = SENSOR, pm10: str = "12.40") -> dict[str, Any]:
    """One item of ``GET /airrohr/v1/sensor/{id}/`` (the Sensor.Community API)."""
    return {
        "id": 24823648327,
        "sampling_rate": None,
        "timestamp": at.strftime("%Y-%m-%d %H:%M:%S"),
        "location": {
            "id": 61234, "latitude": "51.4312", "longitude": "5.4601", "altitude": "21.4",
            "country": "NL", "exact_location": 0, "indoor": 0,
        },
        "sensor": {
            "id": int(sensor), "pin": "1",
            "sensor_type": {"id": 14, "name": "SDS011", "manufacturer": "Nova Fitness"},
        },
        "sensordatavalues": [
            {"id": 52823001, "value": pm10, "value_type": "P1"},
            {"id": 52823002, "value": "7.10", "value_type": "P2"},
        ],
    }  # fmt: skip


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Api:
    """A local HTTP server answering from a script: per path, the answers in turn (the last
    one again once the script runs out)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answers = api.script.get(self.path) or [Answer(404, b'{"message": "no route"}')]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(self, path: str, *answers: Answer) -> None:
        self.script[path] = list(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.close()


# --- the city and the stack -------------------------------------------------------------------


def polling_city(url: str, **telraam: Any) -> City:
    """The example city, its Telraam segments polled and one Sensor.Community sensor (by its
    API id) polled, both at ``url``."""
    data = city_data()
    data["sources"]["traffic-counters"]["poll"] = [
        {"api": "telraam", "api_key": "telraam", "url": url, **telraam}
    ]
    data["sources"]["air-quality"]["poll"] = [{"api": "sensor-community", "url": url}]
    data["registry"]["profiles"]["aq-sc-api"] = {
        "source": "air-quality",
        "kind": "citizen air quality sensor, read from the Sensor.Community API",
        "hubs": ["sensor-community-api"],
        "fields": {"P1": {"quantity": "air.pm10"}, "P2": {"quantity": "air.pm25"}},
    }
    data["registry"]["devices"]["aq-api-1"] = {
        "profile": "aq-sc-api", "hub": "sensor-community-api", "id": SENSOR,
        "at": [5.46132, 51.43312],
    }  # fmt: skip
    return parse_city(data)


class SteppingClock(Clock):
    """Now is ``at``; a wait moves it (and is remembered)."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.at += timedelta(seconds=seconds)


def stack(city: City, store: InMemoryObjectStore | None = None) -> Deps:
    names = StackNames(city.slug)
    queue = InMemoryQueue()
    for function in Function:
        queue.create(names.dlq(function))
        queue.create(names.queue(function), 30, names.dlq(function), 3)
    buckets = [*(names.bucket(z) for z in Zone), names.keys_bucket()]
    store = store or InMemoryObjectStore(buckets)
    return Deps(city, names, store, queue, SteppingClock(NOW))


def poller(deps: Deps, key: str | None = TELRAAM_KEY) -> Poller:
    keys = InMemoryApiKeys()
    if key is not None:
        keys.put("telraam", key)
    assert isinstance(deps.clock, SteppingClock)
    return Poller(deps, InMemoryKeyStore(), UrllibHttp(), keys, deps.clock.sleep)


def keys_under(deps: Deps, zone: Zone | None, prefix: str) -> list[str]:
    bucket = deps.names.bucket(zone) if zone is not None else deps.names.keys_bucket()
    return [o.key for o in deps.store.list(bucket, prefix)]


def raw_keys(deps: Deps) -> list[str]:
    return keys_under(deps, Zone.RAW, f"raw/{deps.city.slug}/")


TRAFFIC = "/v1/reports/traffic"
SENSOR_PATH = f"/airrohr/v1/sensor/{SENSOR}/"


def one_segment(api: Api, **telraam: Any) -> Deps:
    """A city whose traffic counters poll one segment (the others' registrations removed)."""
    data_city = polling_city(api.url, **telraam)
    devices = {
        name: d for name, d in data_city.registry.devices.items()
        if d.hub != "telraam" or d.id == SEGMENT
    }  # fmt: skip
    registry = data_city.registry.model_copy(update={"devices": devices})
    return stack(data_city.model_copy(update={"registry": registry}))


# --- Telraam ---------------------------------------------------------------------------------


def test_a_segment_is_asked_for_its_settled_hours_with_the_key_and_each_row_lands_once(
    api: Api,
) -> None:
    # Given a segment never polled, and Telraam answering its hours
    deps = one_segment(api)
    hours = [NOW - timedelta(hours=h) for h in range(26, 2, -1)]  # 10:00 yesterday .. 09:00
    api.on(TRAFFIC, Answer(body=telraam_report(*(telraam_row(h) for h in hours))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick at 12:00 runs
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then one request asked, with the key, for the hours since a day ago (its backfill) that
    # had settled two hours ago
    [request] = [s for s in api.seen if s.path == TRAFFIC]
    assert request.method == "POST"
    assert request.headers["X-Api-Key"] == TELRAAM_KEY
    assert json.loads(request.body) == {
        "level": "segments", "format": "per-hour", "id": SEGMENT,
        "time_start": "2026-06-01 12:00:00Z", "time_end": "2026-06-02 10:00:00Z",
    }  # fmt: skip
    # and each of the 22 rows in that window was written once (a row outside it is not taken)
    assert counts.requests == 1 and counts.answered == 1 and counts.failed == {}
    assert counts.written == 22 and counts.duplicates == 0
    assert counts.readings.accepted == 22 * 4  # car, heavy, bike, pedestrian
    assert counts.readings.quarantined == {}
    assert len(raw_keys(deps)) == 22
    # and the segment's cursor stands at the window's end
    assert keys_under(deps, None, "poll/velden/traffic-counters/cursors/tc-081/") == [
        "poll/velden/traffic-counters/cursors/tc-081/20260602T100000Z.json"
    ]


def test_the_same_report_fetched_twice_lands_once(api: Api) -> None:
    # Given a tick that wrote a segment's rows, then lost its cursor (a crash before the
    # cursor's write)
    deps = one_segment(api)
    hours = [NOW - timedelta(hours=h) for h in range(26, 2, -1)]
    api.on(TRAFFIC, Answer(body=telraam_report(*(telraam_row(h) for h in hours))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    poll_tick(poller(deps), NOW)
    written = raw_keys(deps)
    for key in keys_under(deps, None, "poll/"):
        deps.store.delete(deps.names.keys_bucket(), key)
    # When the same tick runs again and Telraam gives the same report
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then every row is found written before: nothing is written twice
    assert counts.written == 0 and counts.duplicates == 22
    assert raw_keys(deps) == written


def test_a_revised_row_fetched_again_is_still_written_once(api: Api) -> None:
    # Given an hour written, then Telraam revising its count (uptime re-extrapolated)
    deps = one_segment(api, backfill_hours=3)
    hour = NOW - timedelta(hours=3)
    api.on(TRAFFIC, Answer(body=telraam_report(telraam_row(hour, car=100.0))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    poll_tick(poller(deps), NOW)
    for key in keys_under(deps, None, "poll/"):
        deps.store.delete(deps.names.keys_bucket(), key)
    api.on(TRAFFIC, Answer(body=telraam_report(telraam_row(hour, car=104.0))))
    # When it is fetched again
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then the hour is the same batch (its identity is the segment's hour): not counted twice
    assert counts.written == 0 and counts.duplicates == 1
    assert len(raw_keys(deps)) == 1


class CrashOnCursor(InMemoryObjectStore):
    """A store whose ``nth`` cursor write fails (the function died there)."""

    def __init__(self, buckets: list[str], nth: int) -> None:
        super().__init__(buckets)
        self.cursor_writes = 0
        self.nth = nth

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        if "/cursors/" in key:
            self.cursor_writes += 1
            if self.cursor_writes == self.nth:
                raise TransientError("the function died here")
        return super()._put(bucket, key, body, content_type, if_absent)


def test_a_cursor_resumes_after_a_crash_without_counting_twice(api: Api) -> None:
    # Given a segment polled at 12:00 (its cursor at 10:00), then a tick at 13:00 that died
    # after the edge wrote the 10:00 row, before its cursor moved
    city = one_segment(api, backfill_hours=4).city
    names = StackNames(city.slug)
    buckets = [*(names.bucket(z) for z in Zone), names.keys_bucket()]
    deps = stack(city, CrashOnCursor(buckets, nth=2))
    assert isinstance(deps.clock, SteppingClock)
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    hours = [NOW - timedelta(hours=h) for h in (4, 3)]
    api.on(TRAFFIC, Answer(body=telraam_report(*(telraam_row(h) for h in hours))))
    poll_tick(poller(deps), NOW)
    hours.append(NOW - timedelta(hours=2))
    api.on(TRAFFIC, Answer(body=telraam_report(*(telraam_row(h) for h in hours))))
    deps.clock.at = NOW + timedelta(hours=1)
    with pytest.raises(TransientError):
        poll_tick(poller(deps), deps.clock.at)
    assert len(raw_keys(deps)) == 3
    # When the next tick runs, an hour later, and Telraam has one more hour
    hours.append(NOW - timedelta(hours=1))
    api.on(TRAFFIC, Answer(body=telraam_report(*(telraam_row(h) for h in hours))))
    deps.clock.at = NOW + timedelta(hours=2)
    counts = poll_tick(poller(deps), deps.clock.at)["traffic-counters/telraam"]
    # Then it asks again from where the cursor stood, writes only the new hour, and moves on
    assert json.loads(api.seen[-1].body)["time_start"] == "2026-06-02 10:00:00Z"
    assert counts.written == 1 and counts.duplicates == 1
    assert len(raw_keys(deps)) == 4
    assert keys_under(deps, None, "poll/velden/traffic-counters/cursors/tc-081/") == [
        "poll/velden/traffic-counters/cursors/tc-081/20260602T120000Z.json"
    ]


def test_a_cursor_never_moves_back(api: Api) -> None:
    # Given a cursor written further on by another tick (two ticks overlapping)
    deps = one_segment(api, backfill_hours=4)
    api.on(TRAFFIC, Answer(body=telraam_report()))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    ahead = deps.names.cursor_key("traffic-counters", "tc-081", NOW - timedelta(hours=2))
    deps.store.put(deps.names.keys_bucket(), ahead, b"{}")
    # When this tick finds the segment up to date
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then it asks nothing and the cursor stays ahead
    assert counts.requests == 0
    assert keys_under(deps, None, "poll/velden/traffic-counters/cursors/tc-081/") == [ahead]


def test_a_short_retry_after_is_waited_for_then_asked_again(api: Api) -> None:
    # Given Telraam answering 429 (Retry-After: 7), then the report
    deps = one_segment(api, backfill_hours=3)
    api.on(
        TRAFFIC,
        Answer(429, b'{"message": "Too Many Requests"}', {"Retry-After": "7"}),
        Answer(body=telraam_report(telraam_row(NOW - timedelta(hours=3)))),
    )
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick runs
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then it waited the 7 seconds asked, asked again and wrote the row
    assert isinstance(deps.clock, SteppingClock)
    assert 7.0 in deps.clock.waits
    assert counts.requests == 2 and counts.failed == {"rate_limited": 1}
    assert counts.written == 1


def test_a_long_retry_after_ends_the_tick_and_is_kept_until_it_passes(api: Api) -> None:
    # Given Telraam asking to wait an hour, with two segments to poll
    deps = stack(polling_city(api.url, max_requests=5))
    api.on(TRAFFIC, Answer(429, b"{}", {"Retry-After": "3600"}))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick runs
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then it asked once, and left every segment to a later tick
    assert counts.requests == 1 and counts.failed == {"rate_limited": 1}
    assert counts.deferred == counts.devices == 10
    # and the next tick, within the hour, asks nothing
    api.seen.clear()
    soon = NOW + timedelta(minutes=60)
    assert isinstance(deps.clock, SteppingClock)
    deps.clock.at = soon - timedelta(minutes=5)
    counts = poll_tick(poller(deps), soon)["traffic-counters/telraam"]
    assert [s for s in api.seen if s.path == TRAFFIC] == []
    assert counts.deferred == 10


def test_server_errors_are_tried_once_more_then_counted_and_the_api_left_alone(api: Api) -> None:
    # Given Telraam failing with 503 for every segment
    deps = stack(polling_city(api.url, backfill_hours=3))
    api.on(TRAFFIC, Answer(503, b'{"message": "Service Unavailable"}'))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick runs
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then each segment was tried twice, a pause apart (and segments Telraam's spacing
    # apart), and after three segments failed the rest wait for a later tick; no cursor
    # moved, nothing was written
    assert isinstance(deps.clock, SteppingClock)
    spacing = SPECS[PollApi.TELRAAM].spacing_seconds
    retry = SERVER_RETRY_S
    assert deps.clock.waits == [retry, spacing, retry, spacing, retry]
    assert counts.requests == 6 and counts.failed == {"server_error": 6}
    assert counts.deferred == 10 - 3
    assert keys_under(deps, None, "poll/velden/traffic-counters/cursors/") == []
    assert raw_keys(deps) == []


def test_requests_are_spaced_and_bounded_per_tick(api: Api) -> None:
    # Given ten segments, at most four requests a tick
    deps = stack(polling_city(api.url, backfill_hours=3, max_requests=4))
    api.on(TRAFFIC, Answer(body=telraam_report()))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick runs
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then four segments were asked, Telraam's spacing apart, and six wait
    assert isinstance(deps.clock, SteppingClock)
    assert counts.requests == 4 and counts.deferred == 6
    assert deps.clock.waits == [2.0, 2.0, 2.0]
    # and the next tick starts with another segment
    first = json.loads(next(s for s in api.seen if s.path == TRAFFIC).body)["id"]
    api.seen.clear()
    later = NOW + timedelta(minutes=60)
    deps.clock.at = later
    poll_tick(poller(deps), later)
    assert json.loads(next(s for s in api.seen if s.path == TRAFFIC).body)["id"] != first


def test_a_malformed_answer_is_quarantined_and_the_cursor_stays(api: Api) -> None:
    # Given Telraam answering 200 with an HTML page
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(body=b"<html><body>maintenance</body></html>"))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the tick runs (twice)
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    again = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then it is counted, quarantined once with a reason, and the cursor did not move
    assert counts.failed == {"malformed": 1} and counts.written == 1
    assert again.failed == {"malformed": 1} and again.duplicates == 1
    assert sum(counts.readings.quarantined.values()) == 1
    assert len(keys_under(deps, Zone.QUARANTINE, "quarantine/velden/ingest/")) == 1
    assert keys_under(deps, None, "poll/velden/traffic-counters/cursors/") == []
    assert raw_keys(deps) == []


def test_a_row_of_another_segment_is_quarantined_by_the_edge(api: Api) -> None:
    # Given a report holding a row of a segment the city does not register
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(body=telraam_report(telraam_row(NOW - timedelta(hours=3), "4711"))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    # Then the edge refused it, as for a pushed report
    assert counts.readings.accepted == 0
    assert set(counts.readings.quarantined) == {"unknown_device"}
    assert raw_keys(deps) == []


def test_without_its_api_key_nothing_is_asked_and_it_is_said(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    deps = one_segment(api)
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    with caplog.at_level(logging.INFO, logger="citypipe"):
        counts = poll_tick(poller(deps, key=None), NOW)["traffic-counters/telraam"]
    assert counts.failed == {"no_api_key": 1}
    assert counts.requests == 0 and counts.deferred == 1
    assert [s for s in api.seen if s.path == TRAFFIC] == []
    [said] = [r for r in caplog.records if r.getMessage() == "poll without its API key"]
    assert said.fix == "citypipe api-key --name telraam"  # type: ignore[attr-defined]


def test_the_api_key_is_never_logged_nor_stored_in_a_zone(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(503, b"{}"), Answer(body=b"not json"))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    with caplog.at_level(logging.DEBUG):
        poll_tick(poller(deps), NOW)
    assert TELRAAM_KEY not in caplog.text
    for zone in Zone:
        for info in deps.store.list(deps.names.bucket(zone)):
            assert (
                TELRAAM_KEY.encode() not in deps.store.get(deps.names.bucket(zone), info.key).body
            )


# --- Sensor.Community ----------------------------------------------------------------------


def test_a_sensors_measurements_are_written_once_each_and_its_cursor_moves(api: Api) -> None:
    # Given the API answering a sensor's last five minutes, twice overlapping
    deps = one_segment(api)
    api.on(TRAFFIC, Answer(body=telraam_report()))
    first = [measurement(NOW - timedelta(seconds=s)) for s in (290, 145)]
    api.on(SENSOR_PATH, Answer(body=json.dumps(first).encode()))
    counts = poll_tick(poller(deps), NOW)["air-quality/sensor-community"]
    assert counts.written == 2 and counts.readings.accepted == 4
    # When five minutes later the answer holds the newest of them and two new ones
    later = NOW + timedelta(minutes=5)
    assert isinstance(deps.clock, SteppingClock)
    deps.clock.at = later
    second = [
        measurement(NOW - timedelta(seconds=145)),
        *(measurement(later - timedelta(seconds=s)) for s in (290, 145)),
    ]
    api.on(SENSOR_PATH, Answer(body=json.dumps(second).encode()))
    counts = poll_tick(poller(deps), later)["air-quality/sensor-community"]
    # Then only the two new ones are written, and the request was a plain GET without a key
    assert counts.written == 2 and counts.duplicates == 0
    assert len(keys_under(deps, Zone.RAW, "raw/velden/")) == 4
    request = api.seen[-1]
    assert request.method == "GET" and "X-Api-Key" not in request.headers
    # and a lost cursor only makes them duplicates
    for key in keys_under(deps, None, "poll/velden/air-quality/"):
        deps.store.delete(deps.names.keys_bucket(), key)
    counts = poll_tick(poller(deps), later)["air-quality/sensor-community"]
    assert counts.written == 0 and counts.duplicates == 3


def test_a_measurement_dated_ahead_never_takes_the_cursor_past_the_clock(api: Api) -> None:
    # Given the API answering one measurement dated years ahead (refused: future_time)
    deps = one_segment(api)
    api.on(TRAFFIC, Answer(body=telraam_report()))
    ahead = [measurement(datetime(9999, 12, 31, 23, 59, tzinfo=UTC))]
    api.on(SENSOR_PATH, Answer(body=json.dumps(ahead).encode()))
    poll_tick(poller(deps), NOW)
    # When, a tick later, the sensor's real measurements come
    later = NOW + timedelta(minutes=5)
    assert isinstance(deps.clock, SteppingClock)
    deps.clock.at = later
    real = [measurement(later - timedelta(seconds=s)) for s in (290, 145)]
    api.on(SENSOR_PATH, Answer(body=json.dumps(real).encode()))
    counts = poll_tick(poller(deps), later)["air-quality/sensor-community"]
    # Then they are written: the cursor stopped at the clock, not at the year 9999
    assert counts.written == 2 and counts.readings.accepted == 4


def test_the_location_a_measurement_carries_is_never_written(api: Api) -> None:
    deps = one_segment(api)
    api.on(TRAFFIC, Answer(body=telraam_report()))
    api.on(
        SENSOR_PATH, Answer(body=json.dumps([measurement(NOW - timedelta(seconds=60))]).encode())
    )
    poll_tick(poller(deps), NOW)
    [key] = raw_keys(deps)
    raw = deps.store.get(deps.names.bucket(Zone.RAW), key).body
    text = gzip.decompress(raw).decode()
    assert "51.4312" not in text and "5.4601" not in text and "61234" not in text


def test_a_poll_runs_at_the_ticks_its_interval_divides(api: Api) -> None:
    # Telraam hourly (by default), Sensor.Community every 5 minutes
    deps = one_segment(api)
    api.on(TRAFFIC, Answer(body=telraam_report()))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    at = NOW + timedelta(minutes=5)
    assert isinstance(deps.clock, SteppingClock)
    deps.clock.at = at
    assert set(poll_tick(poller(deps), at + timedelta(seconds=20))) == {
        "air-quality/sensor-community"
    }
    assert set(poll_tick(poller(deps), NOW)) == {
        "air-quality/sensor-community",
        "traffic-counters/telraam",
    }


# --- what is not followed, not read, not accepted ----------------------------------------------


def test_a_redirect_is_not_followed_and_a_wrong_key_is_refused(api: Api) -> None:
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(302, b"", {"Location": f"{api.url}/elsewhere"}))
    api.on("/elsewhere", Answer(body=telraam_report(telraam_row(NOW - timedelta(hours=3)))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    assert counts.failed == {"refused": 1}
    assert [s.path for s in api.seen if s.path == "/elsewhere"] == []
    api.on(TRAFFIC, Answer(403, b'{"message": "Forbidden"}'))
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    assert counts.failed == {"refused": 1} and raw_keys(deps) == []


def test_an_answer_over_a_mebibyte_is_refused_unread(api: Api) -> None:
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(body=b"[" + b" " * (1024 * 1024) + b"]"))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    counts = poll_tick(poller(deps), NOW)["traffic-counters/telraam"]
    assert counts.failed == {"no_answer": 2}  # tried once more, as for no answer at all
    assert counts.written == 0 and raw_keys(deps) == []


def test_a_429_without_retry_after_is_waited_out_for_five_minutes(api: Api) -> None:
    deps = one_segment(api, backfill_hours=3)
    api.on(TRAFFIC, Answer(429, b"{}"))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    poll_tick(poller(deps), NOW)
    body = deps.store.get(
        deps.names.keys_bucket(), deps.names.backoff_key("traffic-counters", "telraam")
    ).body
    assert json.loads(body) == {"until": (NOW + timedelta(minutes=5)).isoformat()}


def test_sensor_community_is_asked_a_second_apart(api: Api) -> None:
    deps = one_segment(api)
    city = deps.city
    second = city.registry.devices["aq-api-1"].model_copy(update={"id": "37988"})
    devices = {**city.registry.devices, "aq-api-2": second}
    deps = stack(
        city.model_copy(update={"registry": city.registry.model_copy(update={"devices": devices})})
    )
    api.on(TRAFFIC, Answer(body=telraam_report()))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    api.on("/airrohr/v1/sensor/37988/", Answer(body=b"[]"))
    at = NOW + timedelta(minutes=5)  # Sensor.Community's tick alone
    assert isinstance(deps.clock, SteppingClock)
    deps.clock.at = at
    counts = poll_tick(poller(deps), at)["air-quality/sensor-community"]
    assert counts.requests == 2 and deps.clock.waits == [1.0]


# --- the operator's command ----------------------------------------------------------------------


def test_the_api_key_goes_in_from_stdin_to_the_store_the_functions_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYPIPE_POLL__DIRECTORY", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(TELRAAM_KEY + "\n"))
    assert main(["api-key", "--name", "telraam", "--store", "file", "--city", str(CITY_FILE)]) == 0
    assert FileApiKeys(tmp_path / "velden").get("telraam") == TELRAAM_KEY
    said = capsys.readouterr()
    assert TELRAAM_KEY not in said.out + said.err
    # a name no poll of the city file gives is refused
    monkeypatch.setattr("sys.stdin", io.StringIO(TELRAAM_KEY + "\n"))
    assert main(["api-key", "--name", "wunderground", "--store", "file"]) == 2
    assert "no poll of the city file names it" in capsys.readouterr().err


def test_citypipe_poll_runs_a_tick_against_a_stack(
    api: Api,
    embedded: Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stack on the embedded backend whose city polls one segment at the local API,
    # and its key set with `citypipe api-key`
    city = one_segment(api, backfill_hours=6).city
    data = city.model_dump(mode="json", exclude_none=True)
    city_file = tmp_path / "velden.yaml"
    city_file.write_text(yaml.safe_dump(data))
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    settings = Settings(
        backend=embedded.settings,
        stack=StackSettings(deployment="local", city_file=city_file, name_prefix=prefix),
    )
    deps = deps_from(settings)
    stack_ops.up(deps.city, deps.names, stack_ops.make_clients(embedded.settings), settings.stack)
    monkeypatch.setenv("CITYPIPE_BACKEND", embedded.settings.model_dump_json())
    monkeypatch.setenv("CITYPIPE_STACK__NAME_PREFIX", prefix)
    monkeypatch.setattr("sys.stdin", io.StringIO(TELRAAM_KEY))
    assert main(["api-key", "--name", "telraam", "--city", str(city_file)]) == 0
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # (an hour in the window [6 h, 2 h ago) even if an hour begins while the test runs)
    api.on(TRAFFIC, Answer(body=telraam_report(telraam_row(now - timedelta(hours=4)))))
    api.on(SENSOR_PATH, Answer(body=b"[]"))
    # When the operator runs one tick
    assert main(["poll", "--city", str(city_file), "--at", now.isoformat()]) == 0
    # Then Telraam was asked with the stored key, and its row is in the raw zone
    [request] = [s for s in api.seen if s.path == TRAFFIC]
    assert request.headers["X-Api-Key"] == TELRAAM_KEY
    assert len(raw_keys(deps)) == 1
    said = capsys.readouterr()
    assert "traffic-counters/telraam" in said.err and TELRAAM_KEY not in said.out + said.err


def test_an_api_key_in_secrets_manager_is_read_back_by_ingests_adapter(embedded: Endpoint) -> None:
    client = secretsmanager_client(embedded.settings)
    prefix = f"citypipe-poll-{uuid.uuid4().hex[:8]}"
    stored = SecretsManagerApiKeys(client, prefix, "velden")
    assert stored.get("telraam") is None
    stored.put("telraam", TELRAAM_KEY)
    stored.put("telraam", TELRAAM_KEY + "-rotated")  # a second put replaces it
    assert (
        SecretsManagerApiKeys(client, prefix, "velden").get("telraam") == TELRAAM_KEY + "-rotated"
    )
    name = StackNames("velden").api_key_secret(prefix, "telraam")
    assert client.describe_secret(SecretId=name)["Name"] == f"{prefix}/velden/api-keys/telraam"
