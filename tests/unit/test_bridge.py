"""The MQTT bridge's work on fakes: batches written once, acknowledged only once written,
each message counted once whatever the broker delivers again and wherever the bridge
crashes. The same code runs against a real Mosquitto in tests/integration/test_mosquitto.py.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import queue
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from edge_support import quarantine_rows
from unit_support import collections_seeing, watched, with_store

from citypipe.core import ingest
from citypipe.domain.books import IngestCounts
from citypipe.domain.errors import BackendRefusedError, TransientError
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import StackNames
from citypipe.ports import KeyStore
from citypipe.service import bridge as bridge_service
from citypipe.service.bridge import Bridge, Connected, Delivery, GaveUp, Limits
from citypipe.service.journal import EdgeJournal
from citypipe.service.kernel import Deps
from citypipe_bridge import main as bridge_main
from citypipe_bridge.settings import BridgeSettings, MqttSettings
from citypipe_local.fakes import FixedClock, InMemoryObjectStore
from citypipe_local.report import Books, lineage_records

TRAFFIC = "velden/gateway/traffic-counters/senml"
WIFI = "velden/gateway/wifi-counters/canonical"
COUNTER = "urn:dev:mac:0024befffe800001"  # tc-001, a traffic counter
AIR = "2001:db8:7e1d::65"  # aq-101, an air quality monitor
MAC = "AA:BB:CC:11:22:33"
OWNER = "bridge-test"


def senml(at: int, vehicles: int = 7, device: str = COUNTER, indent: bool = False) -> bytes:
    pack = [{"bn": f"{device}/", "bt": at, "bu": "count"}, {"n": "vehicles", "v": vehicles}]
    return json.dumps(pack, indent=2 if indent else None).encode()


def presence(at: str, mac: str = MAC) -> bytes:
    return json.dumps(
        {
            "sensor": "wifi-24",
            "quantity": "people.presence",
            "unit": "{device}",
            "value": 1,
            "observed_at": at,
            "personal": {"device_mac": mac, "rssi": -60},
        }
    ).encode()


T0 = 1_780_358_400  # 2026-06-02T00:00:00Z, an hour before the fixtures' clock


def delivery(
    mid: int,
    payload: bytes,
    topic: str = TRAFFIC,
    *,
    epoch: int = 1,
    dup: bool = False,
    retain: bool = False,
) -> Delivery:
    return Delivery(mid, topic, payload, 1, dup, retain, float(T0 + 600), epoch)


class Acks:
    """The acknowledgements the bridge asked for, and whether the lineage of everything
    written so far existed at that moment."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.sent: list[tuple[int, int]] = []  # (mid, epoch)
        self.written_before: list[bool] = []

    def __call__(self, mid: int, qos: int, epoch: int) -> None:
        self.sent.append((mid, epoch))
        self.written_before.append(any(_lineage_keys(self.deps)))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lineage_keys(deps: Deps) -> list[str]:
    bucket = deps.names.bucket(Zone.AUDIT)
    return [i.key for i in deps.store.list(bucket, deps.names.lineage_prefix(Function.INGEST))]


def make_bridge(
    deps: Deps,
    keys: KeyStore,
    acks: Acks | None = None,
    limits: Limits | None = None,
    clock: Clock | None = None,
) -> Bridge:
    journal = EdgeJournal(deps, keys, OWNER)
    limits = limits or Limits(messages=3, bytes=1 << 20, age_s=10)
    bridge = Bridge(
        deps, keys, journal, acks or Acks(deps), limits, clock or Clock(), backoff=(0.0,)
    )
    bridge.start()
    return bridge


def offer_all(bridge: Bridge, items: Iterable[Delivery | Connected]) -> None:
    for item in items:
        bridge.offer(item)
        if bridge.due():
            bridge.flush()


def ingest_books(deps: Deps) -> IngestCounts:
    return Books.read(lineage_records(deps)).ingest


def journal_texts(deps: Deps) -> list[str]:
    bucket = deps.names.bucket(Zone.RAW)
    prefix = deps.names.journal_prefix(OWNER)
    return [
        gzip.decompress(deps.store.get(bucket, i.key).body).decode()
        for i in deps.store.list(bucket, prefix)
    ]


# --- batches and acknowledgements ---------------------------------------------------------------


def test_a_batch_is_written_when_full_and_its_messages_acknowledged_only_then(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    acks = Acks(memory_deps)
    bridge = make_bridge(memory_deps, memory_keys, acks)
    # Given two messages of a three-message batch
    offer_all(bridge, [delivery(1, senml(T0)), delivery(2, senml(T0 + 60))])
    assert (acks.sent, _lineage_keys(memory_deps)) == ([], [])
    # When the third comes
    offer_all(bridge, [delivery(3, senml(T0 + 120))])
    # Then the batch is written once, and every message acknowledged after the write
    assert len(_lineage_keys(memory_deps)) == 1
    assert acks.sent == [(1, 1), (2, 1), (3, 1)]
    assert acks.written_before == [True, True, True]
    assert ingest_books(memory_deps).accepted == 3


def test_no_collection_walks_a_batch_the_collector_wakes_once_it_is_let_go(
    memory_deps: Deps, memory_keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = watched(monkeypatch, bridge_service, "prepare", lambda batch: batch.normalized)
    bridge = make_bridge(memory_deps, memory_keys)
    # Given collections as eager as can be
    with collections_seeing(batches) as seen:
        # When a batch is written
        offer_all(bridge, [delivery(n, senml(T0 + 60 * n)) for n in (1, 2, 3)])
    # Then the collector ran, but never while the batch was alive
    assert len(batches) == 1 and len(_lineage_keys(memory_deps)) == 1
    assert seen and not any(seen)


def test_a_batch_is_written_when_its_first_message_is_old_enough(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    clock = Clock()
    bridge = make_bridge(memory_deps, memory_keys, clock=clock)
    bridge.offer(delivery(1, senml(T0)))
    clock.now = 9.9
    assert not bridge.due()
    clock.now = 10.0
    assert bridge.due()


def test_a_batch_is_written_when_it_holds_enough_bytes(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys, limits=Limits(messages=100, bytes=120))
    bridge.offer(delivery(1, senml(T0)))
    assert not bridge.due()
    bridge.offer(delivery(2, senml(T0 + 60)))
    assert bridge.due()


class FlakyStore(InMemoryObjectStore):
    """The first ``failures`` writes fail transiently, as a throttled backend's do."""

    def __init__(self, buckets: Iterable[str] = (), failures: int = 0) -> None:
        super().__init__(list(buckets))
        self.failures = failures

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("SlowDown")
        return super()._put(bucket, key, body, content_type, if_absent)


def test_a_failing_write_is_tried_again_and_nothing_acknowledged_before_it_is_done(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, FlakyStore)
    bridge = make_bridge(deps, memory_keys, acks := Acks(deps))
    deps.store.failures = 7  # type: ignore[attr-defined]
    offer_all(bridge, [delivery(m, senml(T0 + 60 * m)) for m in (1, 2, 3)])

    assert len(_lineage_keys(deps)) == 1
    assert acks.written_before == [True, True, True]
    assert ingest_books(deps).accepted == 3


class WatchedStore(FlakyStore):
    """A flaky store that notes, at each write tried, whether the collector could run."""

    def __init__(self, buckets: Iterable[str] = (), failures: int = 0) -> None:
        super().__init__(buckets, failures)
        self.collecting: list[bool] = []

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        self.collecting.append(gc.isenabled())
        return super()._put(bucket, key, body, content_type, if_absent)


class WatchedStop(threading.Event):
    """A bridge's stop event that notes, at each back-off, whether the collector could run."""

    def __init__(self) -> None:
        super().__init__()
        self.collecting: list[bool] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.collecting.append(gc.isenabled())
        return super().wait(timeout)


def test_the_collector_runs_while_a_write_waits_to_be_tried_again_and_not_while_it_is_tried(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    # Given a backend that fails the bridge's first two writes
    deps = with_store(memory_deps, WatchedStore)
    bridge = make_bridge(deps, memory_keys)
    bridge._stop = stop = WatchedStop()
    deps.store.failures = 2  # type: ignore[attr-defined]
    # When a batch is written
    offer_all(bridge, [delivery(m, senml(T0 + 60 * m)) for m in (1, 2, 3)])
    # Then the collector ran during both back-offs (minutes of them on a backend that stays
    # away, the MQTT client's thread allocating meanwhile), and was paused at every try
    assert stop.collecting == [True, True]
    assert deps.store.collecting and not any(deps.store.collecting)  # type: ignore[attr-defined]
    assert ingest_books(deps).accepted == 3 and gc.isenabled()


class RefusingStore(InMemoryObjectStore):
    """Every write refused, as a bucket policy denying the bridge would: counts the tries."""

    def __init__(self, buckets: Iterable[str] = ()) -> None:
        super().__init__(list(buckets))
        self.refuse = False
        self.tries = 0

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        if self.refuse:
            self.tries += 1
            raise BackendRefusedError("AccessDenied")
        return super()._put(bucket, key, body, content_type, if_absent)


def buggy_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the edge outside any format adapter, on one content: a count of 13."""
    kept = ingest._Batch._kept

    def failing(batch: Any, found: Any, plan: Any, value: Any, r: Any) -> Any:
        if r.value == 13:
            raise ZeroDivisionError("a bug")
        return kept(batch, found, plan, value, r)

    monkeypatch.setattr(ingest._Batch, "_kept", failing)


def test_a_message_the_edge_fails_on_is_quarantined_and_the_others_written(
    memory_deps: Deps, memory_keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    buggy_edge(monkeypatch)
    bridge = make_bridge(memory_deps, memory_keys, acks := Acks(memory_deps))
    offer_all(bridge, [delivery(1, senml(T0)), delivery(2, senml(T0 + 60, 13)),
                       delivery(3, senml(T0 + 120))])  # fmt: skip
    # intake goes on: the next batch is written as ever
    offer_all(bridge, [delivery(m, senml(T0 + 60 * m)) for m in (4, 5, 6)])

    assert [mid for mid, _ in acks.sent] == [1, 2, 3, 4, 5, 6]
    books = ingest_books(memory_deps)
    assert (books.payloads, books.accepted, books.quarantined) == (6, 5, {"edge_error": 1})
    assert (bridge.books.written, bridge.books.batches, bridge.books.balanced) == (6, 2, True)
    rows = quarantine_rows(memory_deps)
    assert [(r["rejected"], r["details"][0]["detail"]) for r in rows] == [
        ({"edge_error": 1}, "the edge failed on this message: ZeroDivisionError (a bug, logged)")
    ]


def test_a_batch_of_messages_the_edge_fails_on_is_quarantined_whole(
    memory_deps: Deps, memory_keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    buggy_edge(monkeypatch)
    bridge = make_bridge(memory_deps, memory_keys, acks := Acks(memory_deps))
    offer_all(bridge, [delivery(m, senml(T0 + 60 * m, 13)) for m in (1, 2, 3)])

    assert len(acks.sent) == 3
    assert ingest_books(memory_deps).quarantined == {"edge_error": 3}


def test_a_batch_the_edge_fails_on_though_on_no_message_alone_is_quarantined_whole(
    memory_deps: Deps, memory_keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bug only messages together meet: the edge fails on a batch of more than one
    prepare = bridge_service.prepare

    def failing(deps: Deps, keys: Any, inbound: Any) -> Any:
        if sum(p.rejection is None for p in inbound.payloads) > 1:
            raise IndexError("a bug")
        return prepare(deps, keys, inbound)

    monkeypatch.setattr(bridge_service, "prepare", failing)
    bridge = make_bridge(memory_deps, memory_keys, acks := Acks(memory_deps))
    offer_all(bridge, [delivery(m, senml(T0 + 60 * m)) for m in (1, 2, 3)])

    assert len(acks.sent) == 3  # none left in a loop: quarantined, counted, acknowledged
    assert ingest_books(memory_deps).quarantined == {"edge_error": 3}
    [row] = {r["details"][0]["detail"] for r in quarantine_rows(memory_deps)}
    assert row == "the edge failed on this message: IndexError (a bug, logged)"


def test_a_backend_that_stays_away_stops_the_bridge_after_its_tries_nothing_acknowledged(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, FlakyStore)
    journal = EdgeJournal(deps, memory_keys, OWNER)
    acks = Acks(deps)
    bridge = Bridge(deps, memory_keys, journal, acks, Limits(messages=3), backoff=(0.0,), tries=4)
    inbound: queue.Queue[Delivery | Connected] = queue.Queue()
    for m in (1, 2, 3):
        inbound.put(delivery(m, senml(T0 + 60 * m)))
    deps.store.failures = 1_000  # type: ignore[attr-defined]

    books = bridge.run(inbound, threading.Event())  # returns: no stop was asked

    assert bridge.failure == "the bridge gave up writing (journal: TransientError)"
    assert deps.store.failures == 1_000 - 4  # type: ignore[attr-defined]
    assert (acks.sent, books.written, books.pending, books.balanced) == ([], 0, 3, True)


def test_a_backend_that_refuses_the_bridge_is_not_tried_again(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, RefusingStore)
    bridge = make_bridge(deps, memory_keys, acks := Acks(deps))
    deps.store.refuse = True  # type: ignore[attr-defined]
    for m in (1, 2, 3):
        bridge.offer(delivery(m, senml(T0 + 60 * m)))

    with pytest.raises(GaveUp, match="journal: BackendRefusedError"):
        bridge.flush()
    assert (deps.store.tries, acks.sent, bridge.books.pending) == (1, [], 3)  # type: ignore[attr-defined]


def test_a_bridge_that_gave_up_fails_its_command(
    memory_deps: Deps, memory_keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``citypipe-bridge`` exits 1 (``BridgeFailed``) for its supervisor to restart it."""
    deps = with_store(memory_deps, RefusingStore)
    deps.store.refuse = True  # type: ignore[attr-defined]

    class Client:
        def __init__(self, *args: Any) -> None:
            self.inbound: queue.Queue[Delivery | Connected] = args[2]

        def start(self) -> None:
            self.inbound.put(delivery(1, senml(T0)))

        def stop(self) -> None:
            pass

        def ack(self, mid: int, qos: int, epoch: int) -> None:
            raise AssertionError("nothing may be acknowledged")

    monkeypatch.setattr(bridge_main, "MqttClient", Client)
    mqtt = MqttSettings(broker="mqtt://127.0.0.1:1", client_id=OWNER, batch_messages=1)
    settings = BridgeSettings.model_construct(mqtt=mqtt)

    with pytest.raises(bridge_main.BridgeFailed, match="gave up writing"):
        bridge_main.run(settings, threading.Event(), deps, memory_keys)


# --- what a broker delivers again ---------------------------------------------------------------


def test_a_message_delivered_again_after_its_batch_was_written_is_acknowledged_not_written(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    acks = Acks(memory_deps)
    bridge = make_bridge(memory_deps, memory_keys, acks)
    batch = [delivery(m, senml(T0 + 60 * m)) for m in (1, 2, 3)]
    offer_all(bridge, batch)
    # When the connection drops before the acknowledgements reached the broker, which
    # delivers the three again (DUP) on the next connection
    again = [delivery(d.mid, d.payload, epoch=2, dup=True) for d in batch]
    offer_all(bridge, [Connected(2, session_present=True), *again])

    assert acks.sent[3:] == [(1, 2), (2, 2), (3, 2)]
    assert len(_lineage_keys(memory_deps)) == 1
    assert bridge.books.redelivered == 3
    assert ingest_books(memory_deps).payloads == 3


def test_a_message_of_a_dropped_connection_is_left_to_the_broker_and_written_once(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    acks = Acks(memory_deps)
    bridge = make_bridge(memory_deps, memory_keys, acks)
    # Given two messages batched, then the connection drops
    first = [delivery(1, senml(T0)), delivery(2, senml(T0 + 60))]
    offer_all(bridge, [*first, Connected(2, session_present=True)])
    # When the broker delivers them again (DUP) with a third
    offer_all(
        bridge,
        [
            delivery(5, senml(T0), epoch=2, dup=True),
            delivery(6, senml(T0 + 60), epoch=2, dup=True),
            delivery(7, senml(T0 + 120), epoch=2),
        ],
    )
    # Then the three are written once, acknowledged on the connection they came on
    assert acks.sent == [(5, 2), (6, 2), (7, 2)]
    assert bridge.books.discarded == 2
    assert ingest_books(memory_deps).payloads == 3
    assert bridge.books.balanced


def test_a_delivery_of_an_earlier_connection_is_never_acknowledged(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    acks = Acks(memory_deps)
    bridge = make_bridge(memory_deps, memory_keys, acks)
    offer_all(bridge, [Connected(3, session_present=True), delivery(1, senml(T0), epoch=2)])

    assert acks.sent == []
    assert bridge.books.discarded == 1


def test_the_same_message_sent_twice_on_one_connection_is_batched_once(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    offer_all(
        bridge,
        [delivery(1, senml(T0)), delivery(1, senml(T0), dup=True), delivery(2, senml(T0 + 60))],
    )
    bridge.flush()

    assert ingest_books(memory_deps).payloads == 2
    assert (bridge.books.written, bridge.books.redelivered) == (2, 1)


def test_a_retained_value_replayed_on_subscribing_is_no_reading(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    acks = Acks(memory_deps)
    bridge = make_bridge(memory_deps, memory_keys, acks)
    offer_all(bridge, [delivery(1, senml(T0), retain=True)])
    bridge.flush()

    assert acks.sent == [(1, 1)]
    assert (bridge.books.retained, _lineage_keys(memory_deps)) == (1, [])


# --- where a message belongs --------------------------------------------------------------------


def test_a_message_on_a_topic_no_source_declares_is_quarantined(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    offer_all(bridge, [delivery(1, senml(T0), topic="velden/old/senml")])
    bridge.flush()

    assert ingest_books(memory_deps).quarantined == {"unknown_topic": 1}


def test_a_reading_of_another_sources_device_is_quarantined_as_wrong_source(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    air = json.dumps([{"bn": f"{AIR}/", "bt": T0, "bu": "ug/m3"}, {"n": "no2", "v": 20}]).encode()
    offer_all(bridge, [delivery(1, air, topic=TRAFFIC)])
    bridge.flush()

    assert ingest_books(memory_deps).quarantined == {"wrong_source": 1}


# --- duplicates across batches --------------------------------------------------------------------


def test_a_resend_in_a_later_batch_is_counted_as_a_duplicate(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    offer_all(bridge, [delivery(1, senml(T0, vehicles=4))])
    bridge.flush()
    # When the hub sends the same reading again, re-serialized, in a later batch
    offer_all(bridge, [delivery(2, senml(T0, vehicles=4, indent=True))])
    bridge.flush()

    books = ingest_books(memory_deps)
    assert (books.payloads, books.received, books.accepted, books.duplicates) == (2, 2, 1, 1)


def test_two_batches_that_normalize_alike_are_both_in_the_books(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    for mid in (1, 2):  # the same refused payload, alone in its batch, twice
        offer_all(bridge, [delivery(mid, b"{not json", topic=TRAFFIC)])
        bridge.flush()

    assert ingest_books(memory_deps).quarantined == {"invalid_json": 2}


# --- crashes: the journal -------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (no handler runs, nothing is retried)."""


class CrashingStore(InMemoryObjectStore):
    """Dies at the first write whose key starts with ``at``; then behaves."""

    def __init__(self, buckets: Iterable[str] = ()) -> None:
        super().__init__(list(buckets))
        self.at: str | None = None
        self.nth = 1

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        if self.at is not None and key.startswith(self.at):
            self.nth -= 1
            if self.nth == 0:
                self.at = None
                raise Crash(key)
        return super()._put(bucket, key, body, content_type, if_absent)


BATCH = [delivery(m, senml(T0 + 60 * m, vehicles=m)) for m in (1, 2, 3)]


def crash_then_restart(deps: Deps, keys: KeyStore, at: str, nth: int = 1) -> Bridge:
    """A batch of three through a bridge that dies at ``at``; then a new bridge process
    (the same journal) to which the broker delivers the three again."""
    store: CrashingStore = deps.store  # type: ignore[assignment]
    store.at, store.nth = at, nth
    with pytest.raises(Crash):
        offer_all(make_bridge(deps, keys), BATCH)
    restarted = make_bridge(deps, keys)
    again = [delivery(d.mid, d.payload, dup=True) for d in BATCH]
    offer_all(restarted, [Connected(1, session_present=True), *again])
    restarted.flush()
    return restarted


def test_a_crash_before_the_write_completes_is_completed_by_the_next_start(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, CrashingStore)
    # the raw objects are written, then the process dies before the lineage record
    restarted = crash_then_restart(
        deps, memory_keys, StackNames("velden").lineage_prefix(Function.INGEST)
    )

    assert restarted.books.recovered == 1
    assert restarted.books.redelivered == 3
    books = ingest_books(deps)
    assert (books.payloads, books.accepted, books.duplicates) == (3, 3, 0)
    raw = [k for k in deps.store.buckets["velden-raw"] if not k.startswith("bridge/")]  # type: ignore[attr-defined]
    assert len(raw) == 1


def test_a_crash_after_the_write_and_before_the_acknowledgements_counts_nothing_twice(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, CrashingStore)
    # the batch is written, then the process dies as the journal records it done
    restarted = crash_then_restart(
        deps, memory_keys, StackNames("velden").journal_prefix(OWNER), nth=2
    )

    assert (restarted.books.recovered, restarted.books.redelivered) == (0, 3)
    assert ingest_books(deps).payloads == 3


def test_a_crash_before_the_journal_records_the_batch_loses_nothing(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    deps = with_store(memory_deps, CrashingStore)
    # the process dies before anything of the batch is durable: the three are new again
    restarted = crash_then_restart(deps, memory_keys, StackNames("velden").journal_prefix(OWNER))

    assert (restarted.books.recovered, restarted.books.written) == (0, 3)
    assert ingest_books(deps).payloads == 3


def test_the_journal_holds_no_identifier_and_no_digest_anyone_can_recompute(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    payload = presence("2026-06-02T00:10:00Z")
    offer_all(bridge, [delivery(1, payload, topic=WIFI)])
    bridge.flush()

    texts = journal_texts(memory_deps)
    plain = hashlib.sha256(WIFI.encode() + b"\x00" + payload).hexdigest()
    assert len(texts) == 1
    for text in texts:
        assert MAC not in text and MAC.lower() not in text and "aabbcc112233" not in text
        assert WIFI not in text
        assert plain[:32] not in text
    assert json.loads(texts[0])["prepared"] is None  # what was written is not kept twice


def test_a_message_alike_a_written_one_but_numbered_apart_is_a_new_message(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    # a counter at rest sends the same bytes on the same topic each minute (dated by
    # arrival): the broker numbers the messages apart
    bridge = make_bridge(memory_deps, memory_keys)
    at_rest = senml(T0)
    offer_all(
        bridge, [delivery(1, at_rest), delivery(2, senml(T0 + 60)), delivery(3, senml(T0 + 120))]
    )
    # Given the same bytes again, batched but not written when the connection drops
    offer_all(bridge, [delivery(4, at_rest), Connected(2, session_present=True)])
    # When the broker delivers it again under its number
    offer_all(bridge, [delivery(4, at_rest, epoch=2, dup=True)])
    bridge.flush()
    # Then it is written, not taken for the first
    assert bridge.books.redelivered == 0
    assert ingest_books(memory_deps).payloads == 4


def test_the_journal_forgets_batches_past_its_retention(
    memory_deps: Deps, memory_keys: KeyStore
) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    offer_all(bridge, BATCH)
    clock: FixedClock = memory_deps.clock  # type: ignore[assignment]
    clock.at += timedelta(hours=1, seconds=1)

    assert bridge.journal.forget() == 1
    assert journal_texts(memory_deps) == []
    assert not bridge.journal.written(BATCH[0].mid, TRAFFIC, BATCH[0].payload)


def test_the_books_balance_and_are_typed(memory_deps: Deps, memory_keys: KeyStore) -> None:
    bridge = make_bridge(memory_deps, memory_keys)
    offer_all(bridge, [*BATCH, delivery(9, senml(T0), retain=True)])
    books: Any = bridge.books

    assert books.balanced
    assert books.model_dump()["readings"]["accepted"] == 3
