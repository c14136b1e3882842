"""The poller's pure parts and its configuration: when a poll runs, which interval a segment
is asked for, what a 429's Retry-After asks, what a city file may declare; and its entry
points, the schedule on AWS and the CRON on Scaleway. (Against a local HTTP server:
tests/integration/test_poll_http.py.)"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from repo import ROOT, load_event
from unit_support import city_data, invoke_handler, scheduled_event

from citypipe.core.polling import (
    Window,
    due,
    retry_after,
    sensor_items,
    telraam_items,
    telraam_window,
    tick,
)
from citypipe.domain.city import ConfigError, parse_city
from citypipe.domain.city_checks import city_warnings
from citypipe.domain.model import Function, Zone
from citypipe.domain.polling import POLL_TICK_MINUTES, Poll, PollApi
from citypipe.entrypoints.events import POLL_CRON_BODY
from citypipe.service.kernel import Deps
from citypipe_local.fakes import FixedClock, InMemoryKeyStore, InMemoryObjectStore
from citypipe_local.runner import app_for, load_handler

NOON = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)


def telraam(**fields: Any) -> Poll:
    return Poll.model_validate({"api": "telraam", "api_key": "telraam", **fields})


# --- when, and what --------------------------------------------------------------------------


def test_a_firing_belongs_to_its_tick_and_a_poll_runs_at_the_ticks_its_interval_divides() -> None:
    assert tick(NOON + timedelta(minutes=4, seconds=59)) == NOON
    assert tick(NOON - timedelta(seconds=1)) == NOON - timedelta(minutes=5)
    hourly, five = telraam(), Poll(api=PollApi.SENSOR_COMMUNITY)
    assert (hourly.every, five.every) == (60, 5)
    assert [due(hourly, NOON + timedelta(minutes=m)) for m in (0, 5, 55, 60)] == [
        True, False, False, True,
    ]  # fmt: skip
    assert all(due(five, NOON + timedelta(minutes=m)) for m in (0, 5, 55))


def test_a_segments_window_is_whole_settled_hours_from_its_cursor_a_day_at_most() -> None:
    poll = telraam()  # settles 120 minutes, a day a request
    now = NOON + timedelta(minutes=37)
    # never polled: from its backfill (24 hours) to the last hour settled
    assert telraam_window(poll, None, now) == Window(
        datetime(2026, 6, 1, 12, tzinfo=UTC), datetime(2026, 6, 2, 10, tzinfo=UTC)
    )
    # far behind: a day at most
    old = datetime(2026, 5, 20, tzinfo=UTC)
    assert telraam_window(poll, old, now) == Window(old, old + timedelta(hours=24))
    # up to date: nothing to ask
    assert telraam_window(poll, datetime(2026, 6, 2, 10, tzinfo=UTC), now) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0", 0.0), ("Tue, 02 Jun 2026 12:01:30 GMT", 90.0),
     ("Tue, 02 Jun 2026 11:00:00 GMT", 0.0), ("", None), (None, None), ("soon", None),
     ("-3", None)],
)  # fmt: skip
def test_retry_after_is_read_in_both_its_forms(header: str | None, seconds: float | None) -> None:
    assert retry_after(header, NOON) == seconds


def test_an_item_is_named_by_what_it_is_about_not_by_the_request_it_came_in() -> None:
    row = {"segment_id": 9101053, "date": "2026-06-02T09:00:00.000Z", "car": 3.0}
    early = Window(datetime(2026, 6, 2, 8, tzinfo=UTC), datetime(2026, 6, 2, 10, tzinfo=UTC))
    late = Window(datetime(2026, 6, 2, 9, tzinfo=UTC), datetime(2026, 6, 2, 12, tzinfo=UTC))
    body = json.dumps({"report": [row]}).encode()
    [a], [b] = telraam_items(body, early), telraam_items(body, late)
    assert a.identity == b.identity is not None
    # a row without a readable time has no such identity (the edge names it by content)
    [c] = telraam_items(json.dumps({"report": [{**row, "date": "yesterday"}]}).encode(), early)
    assert (c.identity, c.at) == (None, None)
    measurement = {"timestamp": "2026-06-02 09:59:50", "sensor": {"id": 37987}}
    [m] = sensor_items(json.dumps([measurement]).encode(), None)
    assert m.identity is not None and m.at == datetime(2026, 6, 2, 9, 59, 50, tzinfo=UTC)
    assert sensor_items(json.dumps([measurement]).encode(), m.at) == []  # the cursor's


# --- the city file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"api": "telraam"}, "needs api_key"),
        ({"api": "sensor-community", "api_key": "sc"}, "takes no API key"),
        ({"api": "telraam", "api_key": "telraam", "every_minutes": 7}, "a multiple of 5"),
        ({"api": "telraam", "api_key": "telraam", "url": "http://telraam.example"}, "https://"),
        ({"api": "telraam", "api_key": "tlr-AbC/123"}, "pattern"),
        ({"api": "weather"}, "telraam"),
    ],
)
def test_a_poll_says_what_it_needs(fields: dict[str, Any], says: str) -> None:
    data = city_data()
    data["sources"]["traffic-counters"]["poll"] = [fields]
    with pytest.raises(ConfigError, match=says):
        parse_city(data)


def test_a_poll_takes_https_or_this_machine() -> None:
    assert telraam(url="https://telraam.example/").base_url == "https://telraam.example"
    assert telraam(url="http://127.0.0.1:8099").base_url == "http://127.0.0.1:8099"
    assert telraam().base_url == "https://telraam-api.net"


def test_a_poll_without_devices_under_its_hub_is_a_warning_and_twice_is_refused() -> None:
    # a city extending the example inherits its polls, not its registry: it loads, warned
    data = city_data()
    data["sources"]["air-quality"]["poll"] = [{"api": "sensor-community"}]
    said = [(p.key, p.message) for p in city_warnings(parse_city(data))]
    assert (
        "sources.air-quality.poll.0.api",
        "no device of air-quality is registered under hub sensor-community-api: the poll "
        "asks nothing",
    ) in said
    assert not [p for p in city_warnings(parse_city(city_data())) if "poll" in p.key]
    data = city_data()
    data["sources"]["traffic-counters"]["poll"] = [
        {"api": "telraam", "api_key": "a"}, {"api": "telraam", "api_key": "b"},
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="telraam twice"):
        parse_city(data)


# --- the entry points --------------------------------------------------------------------------


def polling_stack(deps: Deps) -> Deps:
    """The example city (Telraam polled, no key set), at noon, with its keys bucket."""
    buckets = [*(deps.names.bucket(z) for z in Zone), deps.names.keys_bucket()]
    return dataclasses.replace(deps, store=InMemoryObjectStore(buckets), clock=FixedClock(NOON))


def test_ingests_schedule_runs_the_polls_due(memory_deps: Deps) -> None:
    deps = polling_stack(memory_deps)
    answer = invoke_handler(
        Function.INGEST, scheduled_event("2026-06-02T12:00:20Z"), deps, InMemoryKeyStore()
    )
    # the example city polls Telraam hourly; here without its key: counted, asked nothing
    assert answer["polls"]["traffic-counters/telraam"]["failed"] == {"no_api_key": 1}
    assert answer["polls"]["traffic-counters/telraam"]["requests"] == 0
    at_five_past = scheduled_event("2026-06-02T12:05:00Z")
    assert invoke_handler(Function.INGEST, at_five_past, deps, InMemoryKeyStore()) == {"polls": {}}


def test_the_cron_trigger_at_ingest_runs_the_pollers_tick(memory_deps: Deps) -> None:
    deps = polling_stack(memory_deps)
    handle = load_handler(Function.INGEST, platform="scaleway")
    app = app_for(Function.INGEST, deps, InMemoryKeyStore())
    response = handle(
        load_event("scaleway_cron_poll.json"), load_event("scaleway_context.json"), app=app
    )
    assert response["statusCode"] == 200
    polls = json.loads(response["body"])["polls"]
    assert polls["traffic-counters/telraam"]["failed"] == {"no_api_key": 1}


def test_a_city_that_polls_nothing_answers_the_tick_at_once(memory_stack: Any) -> None:
    data = city_data()
    del data["sources"]["traffic-counters"]["poll"]
    deps = memory_stack(parse_city(data))
    answer = invoke_handler(
        Function.INGEST, scheduled_event("2026-06-02T12:00:00Z"), deps, InMemoryKeyStore()
    )
    assert answer == {"polls": {}}


def test_scaleways_cron_ticks_at_the_pollers_tick_with_the_body_ingest_takes() -> None:
    config = yaml.safe_load((ROOT / "infra" / "scaleway" / "serverless.yml").read_text())
    [schedule] = [
        e["schedule"]
        for e in config["functions"]["ingest"]["events"]
        if e["schedule"]["input"] == POLL_CRON_BODY  # beside the CRON that drains its queue
    ]
    assert schedule["rate"] == f"*/{POLL_TICK_MINUTES} * * * *"
    assert schedule["input"] == POLL_CRON_BODY
    assert json.loads(load_event("scaleway_cron_poll.json")["body"]) == POLL_CRON_BODY
