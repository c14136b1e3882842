"""The poller: hub APIs the city calls, since they never push (``sources.<s>.poll``).

Invoked on a fixed tick (``POLL_TICK_MINUTES``: an EventBridge schedule on AWS, a CRON on
Scaleway, the local runner on a laptop), it runs each source's polls due at that tick. For
each device the source registers under the API's hub it reads the device's cursor, asks
the API for what came after it, and hands each item of the answer (a Telraam row, a
Sensor.Community measurement) to the edge — the one entrance (``service.edge``), as a
batch of its own whose identity is the item's (``core.polling``): fetched twice, written
once. Then the cursor moves.

A cursor is kept in the stack's keys bucket, one object a position (``StackNames.cursor_key``)
written with a conditional put: the latest position is the one in force, so two ticks
that overlap never move it back, and a crash between the edge's write and the cursor's
only makes the next tick fetch an interval again (written nothing twice).

The provider's limits are kept: requests spaced (``ApiSpec.spacing_seconds``), at most
``max_requests`` a tick, a 429's ``Retry-After`` waited for when it is short and
remembered (``StackNames.backoff_key``) when it is not; a tick stops at its time budget.
What failed is counted by reason (``PollCounts.failed``) and logged; an answer that is not
the API's documented shape is handed to the edge all the same, which quarantines its
shape (never a value), and its device's cursor stays where it was.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.core.polling import (
    Item,
    MalformedAnswerError,
    Target,
    due,
    retry_after,
    sensor_items,
    sensor_path,
    targets,
    telraam_items,
    telraam_request,
    telraam_window,
    tick,
)
from citypipe.domain.books import IngestCounts, PollCounts
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_BODY_BYTES
from citypipe.domain.polling import Poll, PollApi
from citypipe.ports import ApiKeys, Http, HttpAnswer, KeyStore
from citypipe.service.collector import paused
from citypipe.service.edge import Inbound, Route, commit, prepare
from citypipe.service.kernel import Deps, log
from citypipe.service.metrics import poll_metrics

REQUEST_TIMEOUT_S = 20.0
MAX_WAIT_S = 30.0  # a Retry-After this short is waited for; a longer one ends the poll's tick
SERVER_RETRY_S = 2.0  # a 5xx or no answer is tried once more after this
STOP_AFTER_FAILURES = 3  # failed devices in a row: the API is down, the rest wait a tick
CURSOR_FORMAT = "%Y%m%dT%H%M%SZ"
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Poller:
    """What a tick needs beyond the stack: the key store (the edge's pseudonyms), the
    outbound HTTP client, the API keys, a way to wait, and the tick's time budget."""

    deps: Deps
    keys: KeyStore | None
    http: Http
    api_keys: ApiKeys
    sleep: Sleep
    budget_s: float = 60.0


class _Stop(Exception):
    """The poll's tick ends here: the rest of its devices wait for a later one (``reason``:
    counted as a failure; ``done``: the device at hand was fetched, and failed)."""

    def __init__(self, reason: str | None = None, *, done: bool = False) -> None:
        super().__init__(reason or "stopped")
        self.reason = reason
        self.done = done


@dataclass
class _Tally:
    devices: int = 0
    deferred: int = 0
    requests: int = 0
    answered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    written: int = 0
    duplicates: int = 0
    readings: IngestCounts = field(default_factory=IngestCounts.zero)

    def counts(self) -> PollCounts:
        return PollCounts(
            devices=self.devices, deferred=self.deferred, requests=self.requests,
            answered=self.answered, failed=dict(sorted(self.failed.items())),
            written=self.written, duplicates=self.duplicates, readings=self.readings,
        )  # fmt: skip


def poll_tick(poller: Poller, fired: datetime) -> dict[str, PollCounts]:
    """Run every poll due at the tick ``fired`` belongs to; their counts by
    ``<source>/<api>``."""
    at = tick(fired)
    deadline = poller.deps.clock.now() + timedelta(seconds=poller.budget_s)
    done: dict[str, PollCounts] = {}
    for name, source in poller.deps.city.sources.items():
        for poll in source.poll:
            if due(poll, at):
                run = _Run(poller, name, poll, at, deadline)
                done[f"{name}/{poll.api.value}"] = run.counts()
    return done


class _Run:
    """One poll of one source at one tick."""

    def __init__(
        self, poller: Poller, source: str, poll: Poll, at: datetime, deadline: datetime
    ) -> None:
        self.p, self.deps, self.source, self.poll = poller, poller.deps, source, poll
        self.deadline = deadline
        self.tally = _Tally()
        self.last_request: datetime | None = None
        self.failures_in_a_row = 0
        self.fmt = FORMATS[poll.spec.format]
        self.devices = targets(self.deps.city, source, poll, at)
        self.tally.devices = len(self.devices)
        self.key: str | None = None

    def counts(self) -> PollCounts:
        left = list(self.devices)
        try:
            self._begin()
            while left:
                self._device(left[0])
                left.pop(0)
        except _Stop as stop:
            self.tally.deferred = len(left) - stop.done
            if stop.reason is not None:
                self.tally.failed[stop.reason] += 1
        counts = self.tally.counts()
        _log(self.deps, self.source, self.poll.api, counts)
        return counts

    # --- the tick's start: a back-off still running, the API key -----------------------------

    def _begin(self) -> None:
        until = self._backoff()
        if until is not None and until > self.deps.clock.now():
            raise _Stop()
        if self.poll.api_key is not None:
            self.key = self.p.api_keys.get(self.poll.api_key)
            if not self.key:
                log.error(
                    "poll without its API key",
                    extra={"source": self.source, "api": self.poll.api.value,
                           "fix": f"citypipe api-key --name {self.poll.api_key}"},
                )  # fmt: skip
                raise _Stop("no_api_key")

    def _backoff(self) -> datetime | None:
        bucket, key = self.deps.names.keys_bucket(), self._backoff_key()
        if not self.deps.store.exists(bucket, key):
            return None
        text = json.loads(self.deps.store.get(bucket, key).body)["until"]
        return datetime.fromisoformat(str(text))

    def _backoff_key(self) -> str:
        return self.deps.names.backoff_key(self.source, self.poll.api.value)

    # --- one device ----------------------------------------------------------------------------

    def _device(self, device: Target) -> None:
        if self.poll.api is PollApi.TELRAAM:
            self._segment(device)
        else:
            self._sensor(device)

    def _segment(self, device: Target) -> None:
        """A Telraam segment: its next windows, one request each, until it is up to date."""
        cursor = self._cursor(device)
        while (window := telraam_window(self.poll, cursor, self.deps.clock.now())) is not None:
            answer = self._fetch(
                "POST", "/v1/reports/traffic", telraam_request(device.ident, window)
            )
            if answer is None:
                return
            if not self._admit_answer(answer, partial(telraam_items, window=window)):
                return
            self._move(device, window.end)
            cursor = window.end

    def _sensor(self, device: Target) -> None:
        """A Sensor.Community sensor: its measurements after its cursor."""
        cursor = self._cursor(device)
        answer = self._fetch("GET", sensor_path(device.ident), None)
        if answer is None:
            return
        newest: list[datetime] = []

        def items(body: bytes) -> list[Item]:
            found = sensor_items(body, cursor)
            newest.extend(i.at for i in found if i.at is not None)
            return found

        if (
            self._admit_answer(answer, items)
            and newest
            and (cursor is None or max(newest) > cursor)
        ):
            # never past the clock: a measurement dated ahead is refused (future_time), and a
            # cursor there would skip every later one unseen (one fetched again is a duplicate)
            self._move(device, min(max(newest), self.deps.clock.now()))

    # --- requests, paced, within the provider's limits -------------------------------------------

    def _fetch(self, method: str, path: str, body: bytes | None) -> bytes | None:
        """An answer's body (2xx), or None where the device fails this tick (counted)."""
        answer = self._request(method, path, body)
        first = _failure(answer)
        if first in ("server_error", "no_answer"):  # tried once more, after a pause
            self.tally.failed[first] += 1
            self.p.sleep(SERVER_RETRY_S)
            answer = self._request(method, path, body)
        if answer is not None and answer.status == 429:
            answer = self._rate_limited(answer, method, path, body)
        reason = _failure(answer)
        if reason is None and answer is not None:
            self.tally.answered += 1
            self.failures_in_a_row = 0
            return answer.body
        self._failed(reason or "no_answer", answer)
        return None

    def _request(self, method: str, path: str, body: bytes | None) -> HttpAnswer | None:
        self._pace()
        self.tally.requests += 1
        headers = {"Accept": "application/json", "User-Agent": "citypipe-poller"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.key is not None:
            headers["X-Api-Key"] = self.key
        url = self.poll.base_url + path
        try:
            return self.p.http.request(
                method, url, headers, body, REQUEST_TIMEOUT_S, MAX_BODY_BYTES
            )
        except TransientError:
            return None

    def _pace(self) -> None:
        """Wait the API's spacing since the last request; stop where the tick's requests or
        time would run out."""
        now = self.deps.clock.now()
        if self.tally.requests >= self.poll.max_requests:
            raise _Stop()
        if self.last_request is not None:
            wait = self.poll.spec.spacing_seconds - (now - self.last_request).total_seconds()
            if wait > 0:
                self.p.sleep(wait)
                now = self.deps.clock.now()
        if now + timedelta(seconds=REQUEST_TIMEOUT_S) > self.deadline:
            raise _Stop()
        self.last_request = now

    def _rate_limited(
        self, answer: HttpAnswer, method: str, path: str, body: bytes | None
    ) -> HttpAnswer | None:
        """A 429: wait its Retry-After and ask once more if short, else remember it and end
        the poll's tick (every device's request would be refused as well)."""
        now = self.deps.clock.now()
        wait = retry_after(answer.headers.get("retry-after"), now)
        if wait is not None and wait <= MAX_WAIT_S:
            self.tally.failed["rate_limited"] += 1
            self.p.sleep(wait)
            answer2 = self._request(method, path, body)
            if answer2 is None or answer2.status != 429:
                return answer2
            wait = retry_after(answer2.headers.get("retry-after"), self.deps.clock.now())
        until = self.deps.clock.now() + timedelta(seconds=wait if wait is not None else 60 * 5)
        self.deps.store.put(
            self.deps.names.keys_bucket(),
            self._backoff_key(),
            json.dumps({"until": until.isoformat()}).encode(),
            "application/json",
        )
        log.warning("poll rate limited", extra={"source": self.source, "api": self.poll.api.value})
        raise _Stop("rate_limited")

    def _failed(self, reason: str, answer: HttpAnswer | None) -> None:
        self.tally.failed[reason] += 1
        self.failures_in_a_row += 1
        log.warning(
            "poll failed",
            extra={"source": self.source, "api": self.poll.api.value, "reason": reason,
                   "status": answer.status if answer is not None else None},
        )  # fmt: skip
        if self.failures_in_a_row >= STOP_AFTER_FAILURES:
            raise _Stop(done=True)

    # --- the edge ------------------------------------------------------------------------------

    def _admit_answer(self, body: bytes, items_of: Callable[[bytes], list[Item]]) -> bool:
        """Every item of an answer through the edge; False for an answer of another shape
        (handed to the edge whole, which quarantines its shape)."""
        try:
            items = items_of(body)
        except MalformedAnswerError:
            self.tally.failed["malformed"] += 1
            self._admit(body, None, parsed=False)
            return False
        for item in items:
            self._admit(item.document, item.identity, parsed=True)
        return True

    def _admit(self, document: object, identity: str | None, *, parsed: bool) -> None:
        now = self.deps.clock.now()
        inbound = Inbound(
            payloads=[Payload(document, Context(now.timestamp()), parsed=parsed)],
            route=Route.POLL,
            fmt=self.fmt,
            only_source=self.source,
            identity=identity,
        )
        with paused():
            batch = prepare(self.deps, self.p.keys, inbound)
            written = commit(self.deps, batch.write)
        if written is not None:  # the counts commit recorded: claims' duplicates left out
            self.tally.written += 1
            self.tally.readings += written
        else:
            self.tally.duplicates += 1

    # --- cursors -------------------------------------------------------------------------------

    def _cursor(self, device: Target) -> datetime | None:
        """Where a device's cursor stands: its latest position, else nowhere."""
        names = self.deps.names
        found = list(
            self.deps.store.list(names.keys_bucket(), names.cursor_prefix(self.source, device.name))
        )
        return _position(found[-1].key) if found else None

    def _move(self, device: Target, position: datetime) -> None:
        """A new position, written once (a conditional put: another tick may have written
        it), then the older ones deleted (the latest is the one in force)."""
        names, store, bucket = self.deps.names, self.deps.store, self.deps.names.keys_bucket()
        key = names.cursor_key(self.source, device.name, position)
        store.put_if_absent(bucket, key, json.dumps({"position": position.isoformat()}).encode())
        for older in store.list(bucket, names.cursor_prefix(self.source, device.name)):
            if older.key < key:
                store.delete(bucket, older.key)


def _failure(answer: HttpAnswer | None) -> str | None:
    """Why an answer gives nothing (None: it is a body to read)."""
    if answer is None:
        return "no_answer"
    if answer.status == 429:
        return "rate_limited"
    if answer.status >= 500:
        return "server_error"
    if not 200 <= answer.status < 300:
        return "refused"
    return None


def _position(key: str) -> datetime:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return datetime.strptime(name, CURSOR_FORMAT).replace(tzinfo=UTC)


def _log(deps: Deps, source: str, api: PollApi, counts: PollCounts) -> None:
    log.info(
        "polled",
        extra={
            "function": "ingest", "source": source, "api": api.value,
            "counts": counts.model_dump(mode="json"),
            **poll_metrics(deps.city.slug, counts, deps.clock.now()),
        },
    )  # fmt: skip
