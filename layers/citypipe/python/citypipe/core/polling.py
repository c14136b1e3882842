"""What the poller decides without a clock, a socket or a bucket: when a poll is due, which
interval a device is asked for next, what a request says, and what an answer holds.

An answer is cut into items, one a batch for the edge: a Telraam report row (a segment's
hour), a Sensor.Community measurement (a sensor's instant). An item's identity is what it
is about (the API, the device's id, its time), so the same row fetched twice — after a
crash between the edge's write and the cursor's, or by two overlapping ticks — is the same
batch, written once, whatever the interval it came in. An item without a readable time
has no such identity: the edge names it by its content (and quarantines it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from citypipe.core.formats.common import iso_epoch
from citypipe.core.formats.sensor_community_api import measurement_time, sensor_id
from citypipe.domain.city import City
from citypipe.domain.naming import input_id
from citypipe.domain.polling import POLL_TICK_MINUTES, Poll, PollApi
from citypipe.domain.registry import normalize_id

HOUR = timedelta(hours=1)
TELRAAM_TIME = "%Y-%m-%d %H:%M:%SZ"


class MalformedAnswerError(ValueError):
    """A successful answer that is not what the API documents (not JSON, another shape)."""


@dataclass(frozen=True)
class Window:
    """The interval [start, end) a device is asked for."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Item:
    """One batch for the edge: a document of the API's format, its identity (None: by its
    content) and its time (None: unreadable), which moves a cursor."""

    document: Any
    identity: str | None
    at: datetime | None


def tick(fired: datetime) -> datetime:
    """The tick a schedule's firing belongs to (a late or early firing is its tick's)."""
    minutes = int(fired.timestamp() // 60)
    start = minutes - minutes % POLL_TICK_MINUTES
    return datetime.fromtimestamp(start * 60, UTC)


def due(poll: Poll, at_tick: datetime) -> bool:
    """Whether a poll runs at this tick: the ticks its ``every`` divides (in minutes since
    the epoch, so a daily poll runs at midnight UTC)."""
    return int(at_tick.timestamp() // 60) % poll.every == 0


@dataclass(frozen=True)
class Target:
    """A device a poll fetches: its registry name (its cursor's) and the API's id of it."""

    name: str
    ident: str


def targets(city: City, source: str, poll: Poll, at_tick: datetime) -> list[Target]:
    """The source's devices registered under the API's hub, in an order that turns with the
    tick (so a tick that runs out of requests starts the next one further on)."""
    hub = poll.spec.hub
    chosen = [
        Target(name, normalize_id(hub, device.id))
        for name, device in sorted(city.registry.devices.items())
        if device.hub == hub and city.registry.profiles[device.profile].source == source
    ]
    if not chosen:
        return []
    turn = int(at_tick.timestamp() // 60 // POLL_TICK_MINUTES) % len(chosen)
    return chosen[turn:] + chosen[:turn]


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def telraam_window(poll: Poll, cursor: datetime | None, now: datetime) -> Window | None:
    """The next interval of a segment: from its cursor (or ``backfill`` hours ago), whole
    hours that ended ``settle`` minutes ago at least, ``span`` hours at most."""
    settled = floor_hour(now - timedelta(minutes=poll.settle))
    start = cursor if cursor is not None else floor_hour(now - timedelta(hours=poll.backfill_hours))
    end = min(start + timedelta(hours=poll.spec.span_hours), settled)
    return Window(start, end) if end > start else None


def telraam_request(segment: str, window: Window) -> bytes:
    """``POST /v1/reports/traffic``'s body: a segment's hourly report over the window."""
    return json.dumps(
        {
            "level": "segments",
            "format": "per-hour",
            "id": segment,
            "time_start": window.start.strftime(TELRAAM_TIME),
            "time_end": window.end.strftime(TELRAAM_TIME),
        }
    ).encode()


def sensor_path(sensor: str) -> str:
    """``GET /airrohr/v1/sensor/{id}/``: a sensor's measurements of the last 5 minutes."""
    return f"/airrohr/v1/sensor/{sensor}/"


def _document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedAnswerError("not JSON") from None


def telraam_items(body: bytes, window: Window) -> list[Item]:
    """A traffic report's rows in the window, one item each (a row outside it is another
    window's). Raises ``MalformedAnswerError`` for an answer without a ``report`` array."""
    document = _document(body)
    if not isinstance(document, dict) or not isinstance(document.get("report"), list):
        raise MalformedAnswerError("no report array")
    items = []
    for row in document["report"]:
        at = _row_time(row.get("date")) if isinstance(row, dict) else None
        when = datetime.fromtimestamp(at, UTC) if at is not None else None
        if when is not None and not window.start <= when < window.end:
            continue
        segment = row.get("segment_id") if isinstance(row, dict) else None
        ident = None
        if when is not None and isinstance(segment, int | str) and not isinstance(segment, bool):
            ident = input_id("poll", PollApi.TELRAAM.value, str(segment), when.isoformat())
        items.append(Item({"report": [row]}, ident, when))
    return items


def _row_time(value: Any) -> float | None:
    """A report row's time; None when unreadable (the row is still an item: the edge
    quarantines it as ``invalid_time``)."""
    try:
        return iso_epoch(value)
    except (ValueError, OverflowError):
        return None


def sensor_items(body: bytes, after: datetime | None) -> list[Item]:
    """A sensor's measurements newer than its cursor, one item each. Raises
    ``MalformedAnswerError`` for an answer that is not a JSON array."""
    document = _document(body)
    if not isinstance(document, list):
        raise MalformedAnswerError("not an array of measurements")
    items = []
    for measurement in document:
        at = (
            measurement_time(measurement.get("timestamp"))
            if isinstance(measurement, dict)
            else None
        )
        when = datetime.fromtimestamp(at, UTC) if at is not None else None
        if when is not None and after is not None and when <= after:
            continue
        sensor = sensor_id(measurement)
        ident = (
            input_id("poll", PollApi.SENSOR_COMMUNITY.value, sensor, when.isoformat())
            if sensor is not None and when is not None
            else None
        )
        items.append(Item(measurement, ident, when))
    return items


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a 429's ``Retry-After`` asks to wait (delay-seconds or an HTTP date); None
    where it says nothing readable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text[:9]))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
