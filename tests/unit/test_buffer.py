"""The webhook's buffer (``service.buffer``, decision 90): each request's pseudonymous
readings handed to ingest's queue, written in batches by its consumer, exactly once.

- a buffered request writes nothing but its message, and the message holds no identifier;
- many requests make one raw object per source and day, one lineage record, one claim check;
- a request is counted once whatever its redeliveries (the same batch again, another
  grouping), a hub's resend is recognized, a reading resent inside another request is a
  duplicate;
- two batchers given the same request at once (SQS delivering its message twice, in
  other groupings) write it once: one of them yields and its requests come again;
- a batcher that crashed before its manifest announced nothing; one that crashed after it
  and before its decision is yielded by the next; one that crashed after deciding is
  completed from its manifest; a message that is no request is quarantined.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from edge_support import quarantine_rows, spellings
from test_edge_gaming import FORMAT, JUNK, SOURCE, T, pack, published
from unit_support import observation, post

from citypipe.bootstrap import ingest as bootstrap_ingest
from citypipe.domain.books import IngestCounts
from citypipe.domain.errors import BackendRefusedError, TransientError
from citypipe.domain.model import Function, Zone
from citypipe.entrypoints import drain as drain_module
from citypipe.entrypoints.events import DRAIN_CRON_BODY
from citypipe.ports import ReceivedMessage
from citypipe.service.buffer import MANIFESTS_KEPT, Batcher
from citypipe.service.kernel import Deps
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens
from citypipe_local.report import dead_letters, lineage_records
from citypipe_local.runner import LocalRunner, in_process_handlers, load_handler

KEYS = InMemoryKeyStore()


def push(deps: Deps, *lines: str, source: str = SOURCE, fmt: str = FORMAT) -> dict[str, Any]:
    status, answer = post(deps, KEYS, source, fmt, "\n".join(lines), buffered=True)
    assert status == 202, answer
    return answer


def queued(deps: Deps) -> list[ReceivedMessage]:
    """Every message waiting in ingest's queue (received: invisible until deleted)."""
    queue, messages = deps.names.queue(Function.INGEST), []
    while batch := deps.queue.receive(queue, 10):
        messages += batch
    return messages


def take(deps: Deps, messages: list[ReceivedMessage], batcher: Batcher | None = None) -> None:
    """The consumer's batch: the messages written as one, then deleted."""
    poison = (batcher or Batcher(deps)).take([(m.body, m.message_id) for m in messages])
    assert poison == []
    deps.queue.delete(deps.names.queue(Function.INGEST), [m.receipt_handle for m in messages])


def books(deps: Deps) -> IngestCounts:
    total = IngestCounts.zero()
    for record in lineage_records(deps):
        if isinstance(record.counts, IngestCounts):
            total += record.counts
    return total


def raw_keys(deps: Deps) -> list[str]:
    return [i.key for i in deps.store.list(deps.names.bucket(Zone.RAW), "raw/")]


def ingest_lineage(deps: Deps) -> list[str]:
    audit = deps.names.bucket(Zone.AUDIT)
    return [i.key for i in deps.store.list(audit, deps.names.lineage_prefix(Function.INGEST))]


def test_a_buffered_request_writes_nothing_but_its_message(memory_deps: Deps) -> None:
    answer = push(memory_deps, pack(T + 60, 50))
    assert (answer["accepted"], answer["buffered"]) == (1, True)
    assert raw_keys(memory_deps) == [] and ingest_lineage(memory_deps) == []
    assert len(queued(memory_deps)) == 1


def test_nothing_in_the_buffer_holds_an_identifier(memory_deps: Deps) -> None:
    macs = ["AA:BB:CC:00:11:22", "de:ad:be:ef:00:01"]
    seen = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    body = "\n".join(observation("wifi-21", seen, mac).decode() for mac in macs)
    answer = push(memory_deps, body, source="wifi-counters", fmt="canonical")
    assert answer["accepted"] == 2
    [message] = queued(memory_deps)
    text = message.body.lower()
    assert not [s for mac in macs for s in spellings(mac) if s in text]
    assert "device_mac" not in text and '"pseudonym"' not in text  # columns, pseudonyms only


def test_many_requests_make_one_object_one_lineage_one_claim_check(memory_deps: Deps) -> None:
    for minute in range(30):
        push(memory_deps, pack(T + 60 * minute, minute))
    take(memory_deps, queued(memory_deps))
    assert len(raw_keys(memory_deps)) == 1 and len(ingest_lineage(memory_deps)) == 1
    notices = memory_deps.queue.receive(memory_deps.names.queue(Function.ANONYMIZE), 10)
    assert len(notices) == 1 and json.loads(notices[0].body)["records"] == 30
    counts = books(memory_deps)
    assert (counts.payloads, counts.received, counts.accepted) == (30, 30, 30)


def test_a_request_is_counted_once_whatever_its_redeliveries(memory_deps: Deps) -> None:
    for minute in range(6):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    batcher = Batcher(memory_deps)
    take(memory_deps, messages[:4], batcher)
    take(memory_deps, messages[:4], batcher)  # the same batch delivered again
    take(memory_deps, messages[2:], Batcher(memory_deps))  # another grouping, another process
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (6, 6, 0)
    [row] = published(memory_deps)
    assert (row["count"], row["sum"]) == ("6", "60.0")


def test_a_hubs_resend_and_a_reading_resent_in_another_request_are_duplicates(
    memory_deps: Deps,
) -> None:
    push(memory_deps, pack(T + 60, 50))
    take(memory_deps, queued(memory_deps))
    push(memory_deps, pack(T + 60, 50))  # the hub resends the same request
    push(memory_deps, pack(T + 60, 50), pack(T + 120, 7))  # ... and the reading in another
    take(memory_deps, queued(memory_deps), Batcher(memory_deps))
    counts = books(memory_deps)
    assert (counts.payloads, counts.resent, counts.accepted, counts.duplicates) == (3, 1, 2, 1)
    [row] = published(memory_deps)  # one window: 50 and 7, each once
    assert (row["count"], row["sum"]) == ("2", "57.0")


def large(at: float, count: int) -> list[str]:
    """The lines of a request too large for a queue message (``SQS_MAX_BYTES``): ``count``
    of the counter's packs, a second apart, the values 0, 1, 2, 0, 1, 2, ... (a window's
    900 within the counter's ceiling)."""
    return [pack(at + i, i % 3) for i in range(count)]


def published_sum(deps: Deps) -> float:
    return sum(float(row["sum"]) for row in published(deps))


@pytest.mark.parametrize("large_first", [True, False])
def test_a_reading_in_a_large_request_and_in_a_buffered_one_is_written_once(
    memory_deps: Deps, large_first: bool
) -> None:
    """A request too large for a message is written at once, as a batch of its own: it
    reads and writes the same manifests as every buffered batch, so a reading it shares
    with a buffered request is written once, whichever comes first (before, it took
    claims, which buffered batches do not read: the reading was written twice)."""
    lines = large(T + 600, 3_000)
    small = pack(T + 600 + 7, 7 % 3)  # the large request's eighth reading, alone
    if large_first:
        push(memory_deps, *lines)
        assert queued(memory_deps) == []  # too large for a message
    push(memory_deps, small)
    take(memory_deps, queued(memory_deps))
    if not large_first:
        push(memory_deps, *lines)
        assert queued(memory_deps) == []
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (3_001, 3_000, 1)
    assert published_sum(memory_deps) == sum(i % 3 for i in range(3_000))


def test_a_large_request_resent_is_written_once(memory_deps: Deps) -> None:
    lines = large(T + 600, 3_000)
    push(memory_deps, *lines)
    push(memory_deps, *lines)  # the hub resends it
    counts = books(memory_deps)
    assert (counts.accepted, counts.duplicates) == (3_000, 0)
    assert published_sum(memory_deps) == sum(i % 3 for i in range(3_000))


class Crash(Exception):
    pass


def crashing(deps: Deps, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """The batcher's process dies at ``where``: announce (after its decision), the
    decision's put (after its manifest) or the manifest's put (after its raw objects)."""
    import citypipe.service.buffer as buffer

    def die(*_: Any, **__: Any) -> Any:
        raise Crash

    if where == "announce":
        monkeypatch.setattr(buffer, "record", die)
        return
    real = deps.store.put_if_absent
    marks = {"decision": ".decision", "manifest": ".json"}[where]  # the put that dies

    def dies(key: str) -> bool:
        return key.startswith("buffer/") and key.endswith(marks)

    def put(bucket: str, key: str, *args: Any) -> Any:
        if dies(key):
            raise Crash
        return real(bucket, key, *args)

    monkeypatch.setattr(deps.store, "put_if_absent", put)


@pytest.mark.parametrize("where", ["announce", "decision", "manifest"])
def test_a_batch_that_crashed_loses_nothing_and_writes_nothing_twice(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    for minute in range(5):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    with monkeypatch.context() as patched:
        crashing(memory_deps, patched, where)
        with pytest.raises(Crash):
            Batcher(memory_deps).take([(m.body, m.message_id) for m in messages[:3]])
    # every message comes again, in other groupings, to fresh processes
    take(memory_deps, messages[1:], Batcher(memory_deps))
    take(memory_deps, messages[:1], Batcher(memory_deps))
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (5, 5, 0)
    [row] = published(memory_deps)
    assert (row["count"], row["sum"]) == ("5", "50.0")


def test_a_batch_that_crashed_before_its_quarantine_rows_is_completed_with_them(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Announced, then killed before its rows were put: the redelivery completes it from
    its manifest, rows included, each once."""
    import citypipe.service.buffer as buffer

    for minute in range(3):
        push(memory_deps, pack(T + 60 * minute, 10), JUNK.replace("000000/", f"{minute:06d}/"))
    messages = queued(memory_deps)
    with monkeypatch.context() as patched:
        patched.setattr(buffer, "put_quarantine", lambda *_: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            Batcher(memory_deps).take([(m.body, m.message_id) for m in messages])
    assert quarantine_rows(memory_deps) == []
    take(memory_deps, messages, Batcher(memory_deps))  # delivered again
    assert [r["rejected"] for r in quarantine_rows(memory_deps)] == [{"invalid_payload": 1}] * 3
    assert books(memory_deps).quarantined == {"invalid_payload": 3}


def attempt(deps: Deps, messages: list[ReceivedMessage]) -> str:
    """One delivery of these messages to a fresh batcher: written, or yielded to another
    (its messages then come again)."""
    try:
        take(deps, messages, Batcher(deps))
    except TransientError as exc:
        assert "yield" in str(exc)
        return "yielded"
    return "written"


def interleaved(
    deps: Deps, monkeypatch: pytest.MonkeyPatch, at: str, other: Callable[[], None]
) -> None:
    """``other`` (another batcher at work) runs once when this one reaches ``at``:
    ``refreshed`` (it read the manifests, is about to write its raw objects) or
    ``manifest`` (its manifest is written, it has not decided)."""
    real = deps.store.put_if_absent
    pending = [other]

    def put(bucket: str, key: str, *args: Any) -> Any:
        if at == "refreshed" and key.startswith("raw/") and pending:
            pending.pop()()
        result = real(bucket, key, *args)
        if at == "manifest" and key.startswith("buffer/") and key.endswith(".json") and pending:
            pending.pop()()
        return result

    monkeypatch.setattr(deps.store, "put_if_absent", put)


def assert_written_once(deps: Deps, requests: int) -> None:
    counts = books(deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (requests, requests, 0)
    [row] = published(deps)
    assert (row["count"], row["sum"]) == (str(requests), f"{10.0 * requests}")


@pytest.mark.parametrize("at", ["refreshed", "manifest"])
@pytest.mark.parametrize("resend", [False, True])
def test_two_batchers_given_a_request_at_once_write_it_once(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch, at: str, resend: bool
) -> None:
    """SQS may deliver a message twice at once, in two batches: the second batcher runs
    while the first is at ``at``. With ``resend``, the overlap is a hub's resend (another
    request, the same content) rather than the same request."""
    for minute in range(6):
        push(memory_deps, pack(T + 60 * minute, 10))
    if resend:
        push(memory_deps, pack(T + 60 * 2, 10))
    messages = queued(memory_deps)
    first, second = messages[:4], messages[4:] if resend else messages[2:]
    outcomes: list[str] = []
    with monkeypatch.context() as patched:
        interleaved(memory_deps, patched, at, lambda: outcomes.append(attempt(memory_deps, second)))
        outcomes.insert(0, attempt(memory_deps, first))
    assert outcomes.count("written") >= 1
    for group, outcome in zip((first, second), outcomes, strict=True):
        if outcome == "yielded":  # its messages come again, to a fresh batcher
            take(memory_deps, group, Batcher(memory_deps))
    assert_written_once(memory_deps, 6)
    assert books(memory_deps).resent == (1 if resend else 0)


@pytest.mark.parametrize("at", ["refreshed", "manifest"])
def test_a_refused_payload_is_kept_once_whichever_batch_yields(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    """A quarantine row is one payload, kept once (docs/operations.md): a batch that
    yields writes none of its rows, and the batch that announces writes them all."""
    for minute in range(5):  # each request: a reading, and a payload no SenML pack
        push(memory_deps, pack(T + 60 * minute, 10), JUNK.replace("000000/", f"{minute:06d}/"))
    messages = queued(memory_deps)
    first, second = messages[:3], messages[1:]
    outcomes: list[str] = []
    with monkeypatch.context() as patched:
        interleaved(memory_deps, patched, at, lambda: outcomes.append(attempt(memory_deps, second)))
        outcomes.insert(0, attempt(memory_deps, first))
    assert "yielded" in outcomes
    for group, outcome in zip((first, second), outcomes, strict=True):
        if outcome == "yielded":
            take(memory_deps, group, Batcher(memory_deps))
    counts = books(memory_deps)  # two payloads a request: a reading, a refused one
    assert (counts.payloads, counts.accepted, counts.quarantined) == (10, 5, {"invalid_payload": 5})
    rows = quarantine_rows(memory_deps)
    assert [r["rejected"] for r in rows] == [{"invalid_payload": 1}] * 5


def test_a_rivals_manifest_in_the_next_hour_is_read(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batcher starts a moment before the hour ends; the second writes its
    manifest after it, under the next hour's name: read again, the manifests are listed
    past the first's now (found by an independent review)."""
    memory_deps.clock.at = datetime(2026, 6, 2, 23, 59, 59, 900000, tzinfo=UTC)  # type: ignore[attr-defined]
    for minute in range(6):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    first, second = messages[:4], messages[2:]
    outcomes: list[str] = []

    def other() -> None:
        memory_deps.clock.at += timedelta(seconds=1)  # type: ignore[attr-defined]
        outcomes.append(attempt(memory_deps, second))

    with monkeypatch.context() as patched:
        interleaved(memory_deps, patched, "refreshed", other)
        outcomes.insert(0, attempt(memory_deps, first))
    assert outcomes == ["yielded", "written"]
    take(memory_deps, first, Batcher(memory_deps))
    assert_written_once(memory_deps, 6)


@pytest.mark.parametrize(("overlap", "lockstep"), [(True, False), (True, True), (False, True)])
def test_two_batchers_that_both_wrote_their_manifests_write_a_request_once(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch, overlap: bool, lockstep: bool
) -> None:
    """Two batchers in step: both read the manifests before either wrote its own, both
    wrote theirs, both read them again before either decided. Sharing a request, each
    sees the other undecided and puts ``yield`` on it: at most one of them writes,
    whoever put first — neither, when both put ``yield`` on the other before either put
    its own decision (``lockstep``). Sharing nothing, neither stands in the other's way."""
    for minute in range(6):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    groups = (messages[:4], messages[2:] if overlap else messages[4:])
    in_step = threading.Barrier(2, timeout=10)
    real_put, real_refresh = memory_deps.store.put_if_absent, Batcher._refresh

    def put(bucket: str, key: str, *args: Any) -> Any:
        result = real_put(bucket, key, *args)
        if key.startswith("buffer/") and key.endswith(".json"):
            in_step.wait()  # both manifests written
        return result

    def refresh(self: Batcher, *args: Any) -> None:
        real_refresh(self, *args)
        in_step.wait()  # both read them (before writing; again before deciding)

    real_rivals = Batcher._rivals

    def rivals(self: Batcher, *args: Any, **kwargs: Any) -> bool:
        found = real_rivals(self, *args, **kwargs)
        in_step.wait()  # both put yield on the other before either puts its own decision
        return found

    outcomes: dict[int, str] = {}
    with monkeypatch.context() as patched:
        patched.setattr(memory_deps.store, "put_if_absent", put)
        patched.setattr(Batcher, "_refresh", refresh)
        if lockstep:
            patched.setattr(Batcher, "_rivals", rivals)
        threads = [
            threading.Thread(
                target=lambda n=n: outcomes.__setitem__(n, attempt(memory_deps, groups[n]))
            )
            for n in (0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    written = list(outcomes.values()).count("written")
    assert len(outcomes) == 2 and (written <= 1 if overlap else written == 2)
    if overlap and lockstep:
        assert written == 0
    for n, group in enumerate(groups):
        if outcomes[n] == "yielded":
            take(memory_deps, group, Batcher(memory_deps))
    assert_written_once(memory_deps, 6)


def test_a_large_request_that_yields_fails_and_is_counted_once_when_sent_again(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The large request's batch and a buffered one sharing a reading, in step: the other
    batcher makes it yield (decision 120). Nothing of it is announced, the request fails
    (the platform answers 5xx), and the hub's retry is written once."""
    lines = large(T + 600, 3_000)
    push(memory_deps, pack(T + 600 + 7, 7 % 3))
    small = queued(memory_deps)
    outcomes: list[str] = []
    with monkeypatch.context() as patched:
        interleaved(
            memory_deps, patched, "manifest", lambda: outcomes.append(attempt(memory_deps, small))
        )
        with pytest.raises(TransientError, match="yield"):
            post(memory_deps, KEYS, SOURCE, FORMAT, "\n".join(lines), buffered=True)
    assert outcomes == ["written"]
    assert books(memory_deps).accepted == 1  # the large request: nothing yet
    push(memory_deps, *lines)  # the hub sends it again
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (3_001, 3_000, 1)
    assert published_sum(memory_deps) == sum(i % 3 for i in range(3_000))


def test_a_batch_written_before_decisions_stands_as_announced(memory_deps: Deps) -> None:
    """A city upgraded within the manifests' window: a manifest without a decision, of a
    batcher that had none (version 1), was its batch's commitment."""
    for minute in range(3):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    take(memory_deps, messages)
    store, raw = memory_deps.store, memory_deps.names.bucket(Zone.RAW)
    for info in list(store.list(raw, memory_deps.names.buffer_prefix())):
        if info.key.endswith(".json"):
            manifest = json.loads(store.get(raw, info.key).body)
            del manifest["v"]
            store.put(raw, info.key, json.dumps(manifest).encode())
        else:
            store.delete(raw, info.key)  # its decision and mark: none then
    take(memory_deps, messages[1:], Batcher(memory_deps))  # again, grouped otherwise
    assert_written_once(memory_deps, 3)


@pytest.mark.parametrize(
    "later", [timedelta(minutes=30), timedelta(minutes=75), timedelta(hours=20)]
)
def test_a_request_redelivered_hours_later_is_still_counted_once(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch, later: timedelta
) -> None:
    """A queue's retries span hours (Scaleway: 8 receives of 30 minutes; a dead-letter
    queue redriven): a batcher looks back from when the request was handed over."""
    for minute in range(3):
        push(memory_deps, pack(T + 60 * minute, 10))
    messages = queued(memory_deps)
    with monkeypatch.context() as patched:
        crashing(memory_deps, patched, "announce")  # after its manifest
        with pytest.raises(Crash):
            Batcher(memory_deps).take([(m.body, m.message_id) for m in messages])
    memory_deps.clock.at += later  # type: ignore[attr-defined]
    take(memory_deps, messages[1:], Batcher(memory_deps))  # in another grouping
    take(memory_deps, messages[:1], Batcher(memory_deps))
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted) == (3, 3)
    [row] = published(memory_deps)
    assert (row["count"], row["sum"]) == ("3", "30.0")


def test_a_request_handed_over_longer_ago_than_manifests_live_is_quarantined(
    memory_deps: Deps,
) -> None:
    """Its manifest may be swept: written again, it could be counted twice."""
    push(memory_deps, pack(T + 60, 10))
    [message] = queued(memory_deps)
    memory_deps.clock.at += MANIFESTS_KEPT + timedelta(minutes=1)  # type: ignore[attr-defined]
    poison = Batcher(memory_deps).take([(message.body, message.message_id)])
    assert [e.reason for _, _, e in poison] == ["buffer_expired"]
    assert raw_keys(memory_deps) == []


def test_a_message_that_is_no_request_is_quarantined(memory_deps: Deps) -> None:
    body = json.dumps({"citypipe-piece": 1, "city": "velden", "parts": "?"})
    poison = Batcher(memory_deps).take([(body, "m-1")])
    assert [(b, i, e.reason) for b, i, e in poison] == [(body, "m-1", "invalid_message")]


def test_a_queue_that_refuses_the_request_fails_it_before_any_answer(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not durable, not answered 2xx: the platform answers 5xx and the hub sends it again."""

    def refuse(*_: Any) -> None:
        raise TransientError("throttled", "the queue")

    monkeypatch.setattr(memory_deps.queue, "_send_batch", refuse)
    with pytest.raises(TransientError):
        post(memory_deps, KEYS, SOURCE, FORMAT, pack(T + 60, 50), buffered=True)
    assert raw_keys(memory_deps) == [] and quarantine_rows(memory_deps) == []


def test_a_dead_lettered_request_is_in_the_books_unless_a_batch_wrote_it(
    memory_deps: Deps,
) -> None:
    push(memory_deps, pack(T + 60, 50), pack(T + 120, 7))
    push(memory_deps, pack(T + 180, 3))
    written, lost = queued(memory_deps)
    take(memory_deps, [written])
    dlq = memory_deps.names.dlq(Function.INGEST)
    memory_deps.queue.send(dlq, [written.body, lost.body])  # e.g. deleted too late, and one
    [dead] = dead_letters(memory_deps, Function.INGEST)  # that failed every time
    assert dead.records == 1  # its one payload: the books say where it went


def test_scaleway_drains_ingests_queue_in_batches_on_its_cron(memory_deps: Deps) -> None:
    """Its queue trigger would POST the requests one by one: a CRON drains the queue."""
    for minute in range(25):
        push(memory_deps, pack(T + 60 * minute, 4))
    app = bootstrap_ingest.build(memory_deps, KEYS, InMemoryWebhookTokens(), buffered=True)
    cron = {"httpMethod": "POST", "headers": {}, "body": json.dumps(DRAIN_CRON_BODY)}
    answer = load_handler(Function.INGEST, platform="scaleway")(cron, None, app=app)
    assert json.loads(answer["body"]) == {"batches": 1, "done": 25, "failed": 0}
    assert len(ingest_lineage(memory_deps)) == 1 and len(raw_keys(memory_deps)) == 1
    assert sum(memory_deps.queue.depth(memory_deps.names.queue(Function.INGEST))) == 0


def test_the_local_runner_drains_scaleways_ingest_as_its_cron_does(memory_deps: Deps) -> None:
    """Deployed, ingest's queue has no trigger on Scaleway: its CRON drains it (decision
    90). The local runner fires that CRON, never POSTs one of ingest's messages; the
    other functions' queue triggers still POST one message each."""
    for minute in range(25):
        push(memory_deps, pack(T + 60 * minute, 4))
    handlers = in_process_handlers(memory_deps, KEYS, platform="scaleway")
    bodies: list[str] = []

    def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bodies.append(event["body"])
        return handlers[Function.INGEST](event, context)

    runner = LocalRunner(
        memory_deps.names,
        memory_deps.queue,
        handlers={**handlers, Function.INGEST: ingest},
        platform="scaleway",
    )
    runner.drain([Function.INGEST, Function.ANONYMIZE], timeout_s=60)
    assert bodies and all(json.loads(b) == DRAIN_CRON_BODY for b in bodies)
    assert runner.stats[Function.INGEST].messages == 25
    assert len(ingest_lineage(memory_deps)) == 1  # one batch, as the deployed CRON makes
    assert runner.stats[Function.ANONYMIZE].invocations == runner.stats[Function.ANONYMIZE].messages


def scaleway_runner(deps: Deps, ingest: Any = None) -> LocalRunner:
    handlers = in_process_handlers(deps, KEYS, platform="scaleway")
    if ingest is not None:
        handlers[Function.INGEST] = ingest
    return LocalRunner(deps.names, deps.queue, handlers=handlers, platform="scaleway")


def test_a_drain_that_fails_before_it_takes_anything_is_not_fired_again_at_once(
    memory_deps: Deps,
) -> None:
    """Its messages stay visible; the runner backs off between firings rather than firing
    thousands a second (found by an independent review)."""
    push(memory_deps, pack(T + 60, 4))
    fired: list[int] = []

    def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
        fired.append(1)
        raise TransientError("the queue refused the receive")

    with pytest.raises(TimeoutError):
        scaleway_runner(memory_deps, ingest).drain([Function.INGEST], timeout_s=1)
    assert 1 <= len(fired) <= 20


def test_a_drain_whose_delete_is_refused_carries_on_and_counts_each_request_once(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch slower than its visibility timeout: its receipts are stale. The drain takes
    the next batches; the refused ones come again and count nothing."""
    monkeypatch.setattr(drain_module, "DRAIN_MESSAGES", 10)
    for minute in range(25):
        push(memory_deps, pack(T + 60 * minute, 4))
    queue, refused = memory_deps.queue, []
    real = queue.delete

    def delete(name: str, handles: Any) -> None:
        if not refused:
            refused.extend(handles)
            raise TransientError("stale receipts")
        real(name, handles)

    monkeypatch.setattr(queue, "delete", delete)
    runner = scaleway_runner(memory_deps)
    assert runner._fire_cron(Function.INGEST)
    assert runner.stats[Function.INGEST].messages == 25 and len(refused) == 10
    take(memory_deps, queued(memory_deps), Batcher(memory_deps))  # they come again
    assert (books(memory_deps).payloads, books(memory_deps).accepted) == (25, 25)


def test_a_drain_the_backend_refuses_ends_the_run(memory_deps: Deps) -> None:
    """Access denied, a missing queue: a deployment problem, loud at once (as a refused
    receive is on AWS), not a drain fired again forever."""
    push(memory_deps, pack(T + 60, 4))

    def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise BackendRefusedError("AccessDenied", "the queue")

    with pytest.raises(BackendRefusedError):
        scaleway_runner(memory_deps, ingest).drain([Function.INGEST], timeout_s=30)


def overlapping_drains(
    deps: Deps, monkeypatch: pytest.MonkeyPatch, queue: str
) -> dict[str, set[str]]:
    """Two containers drain ``queue`` at once, each fired again until it is empty:
    ``drain-0`` receives three messages at a time (its batches grouped otherwise) and is
    slow to write each raw object; ``drain-1`` is fired a moment later. Returns the
    message ids each was given."""
    real_put, real_receive = deps.store.put_if_absent, deps.queue.receive
    received: dict[str, set[str]] = {}
    failures: list[BaseException] = []

    def slow_put(bucket: str, key: str, *args: Any) -> Any:
        if key.startswith("raw/") and threading.current_thread().name == "drain-0":
            time.sleep(0.2)  # a batch slower than the visibility timeout
        return real_put(bucket, key, *args)

    def receive(name: str, most: int = 10, *args: Any) -> list[ReceivedMessage]:
        drain = threading.current_thread().name
        messages = real_receive(name, 3 if drain == "drain-0" else most, *args)
        if name == queue:
            received.setdefault(drain, set()).update(m.message_id for m in messages)
        return messages

    def container() -> None:
        app = bootstrap_ingest.build(deps, KEYS, InMemoryWebhookTokens(), buffered=True)
        assert app.drain is not None
        deadline = time.monotonic() + 60
        if threading.current_thread().name == "drain-1":
            time.sleep(0.02)  # drain-0 holds its first batch
        try:
            while sum(deps.queue.depth(queue)) and time.monotonic() < deadline:
                app.drain()
                time.sleep(0.03)  # receipts lapse: what was not deleted comes again
        except BaseException as exc:
            failures.append(exc)

    monkeypatch.setattr(deps.store, "put_if_absent", slow_put)
    monkeypatch.setattr(deps.queue, "receive", receive)
    drains = [threading.Thread(target=container, name=f"drain-{n}") for n in range(2)]
    for drain in drains:
        drain.start()
    for drain in drains:
        drain.join()
    assert failures == []
    return received


def test_overlapping_drains_write_each_request_once(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed on Scaleway, a drain may run 240 s and its CRON fires every minute: under
    load two drains overlap, in two containers (two batchers). A batch slower than the
    queue's visibility timeout is delivered to the other drain too, and its delete is
    stale. Each request is still written once (decisions 120, 121). Without decisions (the
    re-read and the put-once decision skipped) the books count 39 requests of 30."""
    for minute in range(30):
        push(memory_deps, pack(T + 60 * minute, 4))
    queue = memory_deps.names.queue(Function.INGEST)
    memory_deps.queue.queues[queue].visibility_timeout_s = 0.001  # type: ignore[attr-defined]
    monkeypatch.setattr(drain_module, "DRAIN_MESSAGES", 7)
    received = overlapping_drains(memory_deps, monkeypatch, queue)
    assert sum(memory_deps.queue.depth(queue)) == 0
    assert received.keys() == {"drain-0", "drain-1"}
    assert received["drain-0"] & received["drain-1"]  # the two were given the same messages
    counts = books(memory_deps)
    assert (counts.payloads, counts.accepted, counts.duplicates) == (30, 30, 0)
    assert sum(float(row["sum"]) for row in published(memory_deps)) == 120.0


def announced_then_failed(deps: Deps, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    """A large request whose batch announced, then failed before its lineage: its claim
    check to anonymize refused for now. The request fails (no queue message of it comes
    again)."""
    real, anonymize = deps.queue.send_json, deps.names.queue(Function.ANONYMIZE)

    def throttled(queue: str, *args: Any, **kwargs: Any) -> Any:
        if queue == anonymize:
            raise TransientError("throttled", "the queue")
        return real(queue, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(deps.queue, "send_json", throttled)
        with pytest.raises(TransientError):
            post(deps, KEYS, SOURCE, FORMAT, "\n".join(lines), buffered=True)


def test_a_large_request_whose_batch_failed_after_announcing_is_not_lost(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub sends it again as a new request, never the same one. The retry's content is
    the announced batch's: that batch is made whole from its manifest before the retry
    counts as its resend (found by an independent review: it counted ``resent`` over a
    batch never recorded)."""
    lines = large(T + 600, 3_000)
    announced_then_failed(memory_deps, monkeypatch, lines)
    push(memory_deps, *lines)  # the hub sends it again: a new request id
    counts = books(memory_deps)
    assert (counts.accepted, counts.duplicates, counts.resent) == (3_000, 0, 3_000)
    assert published_sum(memory_deps) == sum(i % 3 for i in range(3_000))


def test_a_reading_found_in_a_batch_that_failed_after_announcing_makes_it_whole(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, the hub's retry being another request that holds one of its readings."""
    lines = large(T + 600, 3_000)
    announced_then_failed(memory_deps, monkeypatch, lines)
    push(memory_deps, pack(T + 600 + 7, 7 % 3))
    take(memory_deps, queued(memory_deps))
    counts = books(memory_deps)
    assert (counts.accepted, counts.duplicates) == (3_000, 1)
    assert published_sum(memory_deps) == sum(i % 3 for i in range(3_000))
