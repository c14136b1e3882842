"""The edge cannot be gamed with a valid token (issue 18): what a tester did with one, and
that none of it changes a published figure.

- the same reading resent inside new batches (each with one junk line) is written once:
  every later copy is a duplicate in the books (``service.claims``);
- a counter's 15-minute window above what one sensor can count is flagged, never
  published (``City.window_ceilings``);
- a reading of a day before the first whose key lives is refused (``too_old``): no ancient
  day is written, let alone published;
- a message on a hub's device topic whose payload is another device's is refused
  (``topic_device_mismatch``): a broker's per-device access rule binds the payload.

End to end where a figure is at stake: the webhook (or the bridge), anonymize and
aggregate, then export's published CSV.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from edge_support import ingest_dropped
from repo import load_event
from test_bridge import Acks, delivery, make_bridge, offer_all
from unit_support import at, city_data, drain, exporting, normalized, open_file, post

from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload, normalize
from citypipe.domain.books import IngestCounts
from citypipe.domain.city import City, parse_city
from citypipe.domain.model import QUANTITIES, Zone
from citypipe.domain.naming import StackNames
from citypipe.domain.themes import OpenFormat
from citypipe.service.claims import claimed, claims_kept_from, sweep_claims
from citypipe.service.edge import Inbound, Route, commit, prepare
from citypipe.service.export import export_day
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps
from citypipe_local.drops import drop_lines
from citypipe_local.fakes import InMemoryKeyStore
from citypipe_local.report import lineage_records

SOURCE, FORMAT = "traffic-counters", "senml"
COUNTER = "urn:dev:mac:0024befffe800001"  # tc-001
DAY = "2026-06-02"  # the memory stack's clock: 2026-06-02T23:30Z
T = 1_780_358_400  # 2026-06-02T00:00:00Z
JUNK = '{"bn": "urn:dev:mac:0024beffff000000/", "bt": 1780358400, "n": "vehicles", "v": 1}'


def pack(at: float, vehicles: float, device: str = COUNTER) -> str:
    """A loop counter's SenML pack: ``vehicles`` counted at ``at``."""
    return json.dumps(
        [{"bn": f"{device}/", "bt": at, "bu": "count"}, {"n": "vehicles", "v": vehicles}]
    )


def push(deps: Deps, *lines: str) -> dict[str, Any]:
    """A webhook request of these JSON lines with the source's token: its answer (202)."""
    status, answer = post(deps, InMemoryKeyStore(), SOURCE, FORMAT, "\n".join(lines))
    assert status == 202, answer
    return answer


def published(deps: Deps, day: str = DAY) -> list[dict[str, str]]:
    """The traffic-flow CSV of ``day`` after the pipeline ran: every row."""
    drain(deps)
    assert export_day(deps, exporting(), day) == "done"
    key = StackNames("velden").open_file_key("traffic-flow", OpenFormat.CSV, day)
    return list(csv.DictReader(io.StringIO(open_file(deps, key).decode())))


def ingest_books(deps: Deps) -> IngestCounts:
    """The sum of every ingest lineage record's counts."""
    total = IngestCounts.zero()
    for record in lineage_records(deps):
        if isinstance(record.counts, IngestCounts):
            total += record.counts
    return total


# --- one reading, counted once whatever the batches that carry it ----------------------------


def test_a_reading_resent_in_twenty_new_batches_is_published_once(memory_deps: Deps) -> None:
    first = push(memory_deps, pack(T + 60, 50))
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    for n in range(20):  # each batch new: the same reading beside one junk line of its own
        junk = JUNK.replace("000000/", f"{n:06d}/")
        answer = push(memory_deps, pack(T + 60, 50), junk)
        assert (answer["accepted"], answer["duplicates"], answer.get("resent")) == (0, 1, None)
    [row] = [r for r in published(memory_deps) if r["quantity"] == "traffic.vehicles"]
    assert (row["count"], row["sum"], row["status"]) == ("1", "50.0", "published")
    books = ingest_books(memory_deps)
    assert (books.accepted, books.duplicates, books.quarantined) == (
        1,
        20,
        {"invalid_payload": 20},
    )


def test_the_same_batch_sent_again_is_still_a_resend(memory_deps: Deps) -> None:
    body = (pack(T + 60, 50), pack(T + 120, 7))
    push(memory_deps, *body)
    again = push(memory_deps, *body)
    assert (again["accepted"], again["duplicates"], again["resent"]) == (0, 2, True)


def test_a_batch_whose_write_failed_after_its_claims_keeps_its_readings(memory_deps: Deps) -> None:
    """At least once: a batch retried after it claimed its readings (and crashed before its
    lineage) is the same batch, and its claims are its own."""
    payloads = normalized_payloads(pack(T + 60, 50), pack(T + 120, 7))
    batch = prepare(memory_deps, None, Inbound(payloads, Route.REPLAY, only_source=SOURCE))
    claimed(memory_deps, batch.ident, batch.write.outcome)  # then the process died
    counts = commit(memory_deps, batch.write)
    assert counts is not None and (counts.accepted, counts.duplicates) == (2, 0)
    raw = list(memory_deps.store.list(memory_deps.names.bucket(Zone.RAW)))
    assert sum(1 for _ in raw) == 1


def test_a_reading_two_bridges_write_is_written_once(memory_deps: Deps) -> None:
    """Beyond a bridge's own journal: another bridge (or the same one with its journal
    lost) finds the reading claimed."""
    keys = InMemoryKeyStore()
    for owner in ("bridge-a", "bridge-b"):
        bridge = make_bridge(memory_deps, keys, Acks(memory_deps))
        bridge.journal.owner = owner
        offer_all(bridge, [delivery(1, pack(T + 60, 50).encode())])
        bridge.flush()
    books = ingest_books(memory_deps)
    assert (books.accepted, books.duplicates) == (1, 1)
    [row] = [r for r in published(memory_deps) if r["quantity"] == "traffic.vehicles"]
    assert row["sum"] == "50.0"


def test_readings_at_other_times_or_of_other_quantities_are_no_duplicates(
    memory_deps: Deps,
) -> None:
    push(memory_deps, pack(T + 60, 50))
    assert (
        push(memory_deps, pack(T + 61, 50), pack(T + 60, 50, device=COUNTER[:-1] + "2"))["accepted"]
        == 2
    )


def test_people_sightings_are_not_claimed(memory_deps: Deps) -> None:
    """A people figure counts distinct devices: a sighting sent twice changes nothing, and
    a claim per Wi-Fi detection would cost a request each."""
    sighting = json.dumps(
        {"sensor": "wifi-24", "quantity": "people.presence", "unit": "{device}", "value": 1,
         "observed_at": "2026-06-02T00:01:00Z", "personal": {"device_mac": "AA:BB:CC:11:22:33"}}
    )  # fmt: skip
    status, _ = post(memory_deps, InMemoryKeyStore(), "wifi-counters", "canonical", sighting)
    assert status == 202
    assert not list(memory_deps.store.list(memory_deps.names.bucket(Zone.QUARANTINE), "claims/"))


def test_claims_are_kept_while_their_day_is_accepted_and_a_day_longer(memory_deps: Deps) -> None:
    push(memory_deps, pack(T + 60, 50))
    today = date(2026, 6, 2)
    assert claims_kept_from(memory_deps.city, today) == date(2026, 5, 31)
    assert sweep_claims(memory_deps, claims_kept_from(memory_deps.city, today)) == 0
    assert sweep_claims(memory_deps, claims_kept_from(memory_deps.city, today + timedelta(2))) == 0
    assert sweep_claims(memory_deps, claims_kept_from(memory_deps.city, today + timedelta(3))) == 1


def test_the_hourly_job_deletes_the_claims_of_days_the_edge_refuses(memory_deps: Deps) -> None:
    push(memory_deps, pack(T + 60, 50))
    kept = memory_deps.names.bucket(Zone.QUARANTINE)  # never the audit zone: locked for years
    keys = InMemoryKeyStore()  # its own: the job destroys old secrets (not the shared ones)

    def claims() -> int:
        return len(list(memory_deps.store.list(kept, memory_deps.names.claims_prefix())))

    for fired, left in ((datetime(2026, 6, 4, 0, 5, tzinfo=UTC), 1),
                        (datetime(2026, 6, 5, 0, 5, tzinfo=UTC), 0)):  # fmt: skip
        done = hourly(at(memory_deps, fired), exporting(keys), fired)
        assert (claims(), done.claims_swept, done.quarantine_swept) == (left, 1 - left, 0)


def normalized_payloads(*lines: str) -> list[Payload]:
    ctx = Context(received_at=T + 600)
    return [Payload(line.encode(), ctx, n, fmt=FORMATS[FORMAT]) for n, line in enumerate(lines, 1)]


# --- a window above what one counter can count ----------------------------------------------


def test_a_window_above_its_counters_ceiling_is_flagged_never_published(memory_deps: Deps) -> None:
    """26 posts of 3,415 vehicles (each within a reading's plausible range) in one
    counter's window: 88,790, flagged; the next window's 50 are published."""
    for n in range(26):
        push(memory_deps, pack(T + 60 + n, 3_415))
    push(memory_deps, pack(T + 15 * 60 + 1, 50))
    rows = [r for r in published(memory_deps) if r["quantity"] == "traffic.vehicles"]
    assert [(r["status"], r["reason"], r["sum"]) for r in rows] == [
        ("flagged", "above_device_ceiling", ""),
        ("published", "", "50.0"),
    ]


def test_a_window_up_to_the_ceiling_is_published(memory_deps: Deps) -> None:
    ceiling = QUANTITIES["traffic.vehicles"].window_ceiling
    assert ceiling is not None
    push(memory_deps, pack(T + 60, ceiling))
    [row] = [r for r in published(memory_deps) if r["quantity"] == "traffic.vehicles"]
    assert (row["status"], float(row["sum"])) == ("published", ceiling)


def test_a_profile_sets_its_own_ceiling_for_a_count_only() -> None:
    data = city_data()
    fields = data["registry"]["profiles"]["tc-senml"]["fields"]
    fields["vehicles"]["max_per_window"] = 400
    city = parse_city(data)
    assert city.window_ceilings["tc-001", "traffic.vehicles"] == 400
    data["registry"]["profiles"]["aq-lorawan"]["fields"]["no2"]["max_per_window"] = 400
    with pytest.raises(ValueError, match="no count"):
        parse_city(data)


def test_the_ceilings_of_counts_are_those_the_docs_state() -> None:
    ceilings = {name: q.window_ceiling for name, q in QUANTITIES.items() if q.window_ceiling}
    assert ceilings == {
        "traffic.vehicles": 3_000,
        "traffic.heavy_vehicles": 3_000,
        "traffic.bicycles": 3_000,
        "traffic.pedestrians": 10_000,
    }


def test_only_counts_have_ceilings(city: City) -> None:
    assert {q for _, q in city.window_ceilings} <= {
        name for name, q in QUANTITIES.items() if q.unit.startswith("{") and not q.counts_people
    }


# --- readings of days long gone -------------------------------------------------------------


def test_a_reading_of_2017_is_refused_and_no_2017_day_is_written(memory_deps: Deps) -> None:
    old = datetime(2017, 3, 1, 8, tzinfo=UTC).timestamp()
    status, answer = post(memory_deps, InMemoryKeyStore(), SOURCE, FORMAT, pack(old, 50))
    assert (status, answer["reasons"]) == (400, {"too_old": 1})
    drain(memory_deps)
    for zone in (Zone.RAW, Zone.CLEAN, Zone.AGGREGATES, Zone.OPEN):
        keys = [i.key for i in memory_deps.store.list(memory_deps.names.bucket(zone))]
        assert not [k for k in keys if "2017" in k], zone


def test_the_first_day_whose_key_lives_is_accepted_the_day_before_is_not(
    memory_deps: Deps,
) -> None:
    """The memory stack's clock is 2 June; two days of keys: 1 and 2 June."""
    first = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    answer = push(memory_deps, pack(first, 5), pack(first - 0.001, 5))
    assert (answer["accepted"], answer["reasons"]) == (1, {"too_old": 1})


def test_the_age_is_judged_at_the_payloads_arrival(city: City) -> None:
    """A capture replayed later (its arrival recorded) is as old as it was when it came; a
    reading of that day arriving now is too old."""
    may = datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()
    captured = Payload(pack(may, 5).encode(), Context(received_at=may + 60), 1)
    sent_now = Payload(pack(may, 5).encode(), Context(received_at=T), 2)
    result = normalize(city, FORMATS[FORMAT], [captured, sent_now], now=T, key_for=None)
    assert (result.accepted, dict(result.reasons)) == (1, {"too_old": 1})


def test_each_payload_of_a_batch_is_judged_at_its_own_arrival_in_any_order(city: City) -> None:
    """Arrivals of two days taking turns in one batch (the last ahead of the clock: now's
    day): each payload's readings are judged by its own arrival, never the one before."""
    may = datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()
    arrivals = [T, may + 3_600, T + 3_600, may + 7_200, T + 2 * 86_400]
    payloads = [
        Payload(pack(may + line * 60, 5).encode(), Context(received_at=arrived), line)
        for line, arrived in enumerate(arrivals, start=1)
    ]
    result = normalize(city, FORMATS[FORMAT], payloads, now=T + 60, key_for=None)
    assert (result.accepted, dict(result.reasons)) == (2, {"too_old": 3})


@pytest.mark.parametrize("arrived", [math.inf, math.nan, 1e300, -1e300, 0.0])
def test_an_arrival_no_clock_could_read_never_crashes_a_batch(city: City, arrived: float) -> None:
    """An arrival a replay's header or a bridge's property claimed: ahead of the clock it is
    now, before 2000 (or none) the bound is 2000."""
    payload = Payload(pack(T, 5).encode(), Context(received_at=arrived), 1)
    refused = Payload(b"{not json", Context(received_at=arrived), 2)  # quarantined, dated
    result = normalize(city, FORMATS[FORMAT], [payload, refused], now=T + 60, key_for=None)
    assert result.accepted == 1
    # a quarantine row's arrival no clock could read, or ahead of it, is the batch's clock
    [row] = [row for row in result.quarantine if row["line"] == 2]
    expected = arrived if 946_684_800 <= arrived <= T + 60 else T + 60
    assert row["received_at"] == f"{datetime.fromtimestamp(int(expected), UTC):%Y-%m-%dT%H:%M:%S}Z"


def test_a_drop_of_the_citys_own_system_may_backfill_past_days(memory_deps: Deps) -> None:
    """An inbox drop needs the city's cloud credentials, not a hub's token: its rows of
    past days are a backfill, bounded by 2000 only."""
    may = datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()
    ingest_dropped(memory_deps, drop_lines(memory_deps, FORMAT, [pack(may, 5)]))
    assert ingest_books(memory_deps).accepted == 1


def test_a_reading_ahead_of_the_clock_is_still_refused(memory_deps: Deps) -> None:
    ahead = datetime(2026, 6, 2, 23, 36, tzinfo=UTC).timestamp()
    status, answer = post(memory_deps, InMemoryKeyStore(), SOURCE, FORMAT, pack(ahead, 5))
    assert (status, answer["reasons"]) == (400, {"future_time": 1})


# --- a device's topic binds its payload -----------------------------------------------------

AIR_EUI = "70b3d5e75e010001"  # aq-001


def tts_uplink(device_id: str = "velden-aq-001") -> dict[str, Any]:
    uplink: dict[str, Any] = load_event("hubs/tts-v3/mqtt-uplink.json")
    uplink["end_device_ids"].update(device_id=device_id, dev_eui=AIR_EUI.upper())
    return uplink


def chirpstack_up(dev_eui: str = AIR_EUI) -> dict[str, Any]:
    up: dict[str, Any] = load_event("hubs/chirpstack-v4/up-numbers-as-strings.json")
    up["deviceInfo"]["devEui"] = dev_eui
    up["object"] = {"no2": 21.5}
    return up


def chirpstack_v3_up(dev_eui: str) -> dict[str, Any]:
    up: dict[str, Any] = load_event("hubs/chirpstack-v3/up-json-v3-legacy.json")
    up.update(devEUI=dev_eui, publishedAt="2026-06-01T09:00:00Z", rxInfo=[])
    return up


TTS = "v3/velden-air@velden/devices/{}/up"
CHIRPSTACK_V3 = "application/7/device/{}/event/up"
AIR_EUI_BASE64 = base64.b64encode(bytes.fromhex(AIR_EUI)).decode()
CHIRPSTACK = "application/5bb92de6-49b3-49af-a366-34667f2230be/device/{}/event/up"
NOW = datetime(2026, 6, 1, 10, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("fmt", "payload", "topic", "accepted"),
    [
        ("tts-v3", tts_uplink(), TTS.format("velden-aq-001"), True),
        ("tts-v3", tts_uplink(), TTS.format("velden-aq-002"), False),
        ("tts-v3", tts_uplink(device_id=""), TTS.format("velden-aq-001"), False),
        ("chirpstack-v4", chirpstack_up(), CHIRPSTACK.format(AIR_EUI), True),
        ("chirpstack-v4", chirpstack_up(), CHIRPSTACK.format(AIR_EUI.upper()), True),
        ("chirpstack-v4", chirpstack_up(), CHIRPSTACK.format("70b3d5e75e010002"), False),
        ("chirpstack-v4", chirpstack_up(), "velden/gateway/air-quality/chirpstack", True),
        ("chirpstack-v3", chirpstack_v3_up(AIR_EUI), CHIRPSTACK_V3.format(AIR_EUI), True),
        ("chirpstack-v3", chirpstack_v3_up(AIR_EUI_BASE64), CHIRPSTACK_V3.format(AIR_EUI), True),
        (
            "chirpstack-v3",
            chirpstack_v3_up(AIR_EUI),
            CHIRPSTACK_V3.format("70b3d5e75e010002"),
            False,
        ),
    ],
)
def test_a_payload_on_a_hubs_device_topic_is_that_devices(
    city: City, fmt: str, payload: dict[str, Any], topic: str, accepted: bool
) -> None:
    result = normalized(city, fmt, payload, topic=topic, now=NOW)
    assert bool(result.accepted) is accepted
    assert result.reasons == ({} if accepted else {"topic_device_mismatch": 1})


def test_a_batch_judges_each_messages_topic_not_its_formats_first(city: City) -> None:
    # Given one batch: a device's uplink on its own topic, then the same device's uplink
    # on another device's topic (the ingest core remembers a verdict per format and topic)
    uplink = json.dumps(tts_uplink()).encode()
    payloads = [
        Payload(uplink, Context(received_at=NOW, topic=TTS.format(device)), n)
        for n, device in enumerate(["velden-aq-001", "velden-aq-002"], start=1)
    ]
    # Then the first is read and the second refused, whatever the first's verdict
    result = normalize(city, FORMATS["tts-v3"], payloads, now=NOW, key_for=None)
    assert (result.accepted > 0, result.reasons) == (True, {"topic_device_mismatch": 1})


def test_a_device_publishing_on_anothers_topic_is_quarantined_by_the_bridge(
    memory_deps: Deps,
) -> None:
    bridge = make_bridge(memory_deps, InMemoryKeyStore(), Acks(memory_deps))
    uplink = tts_uplink()
    uplink["uplink_message"]["received_at"] = "2026-06-02T00:05:00Z"
    offer_all(bridge, [delivery(1, json.dumps(uplink).encode(), topic=TTS.format("other"))])
    bridge.flush()
    books = ingest_books(memory_deps)
    assert (books.accepted, books.quarantined) == (0, {"topic_device_mismatch": 1})
