"""Residents' opt-out (``service.optout``, ``service.optout_http``): an address kept only as
its HMAC under the opt-outs' own key; the edge drops its device's detections before any
pseudonym is made, counts them (how many, never which), and learns of an opt-out within
``OPTOUT_RELOAD_S`` by its clock."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from edge_support import quarantine_rows
from unit_support import at, observation, post

from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.core.pseudonyms import day_keys, pseudonym
from citypipe.domain.books import OPTED_OUT, IngestCounts
from citypipe.domain.limits import MAX_OPTOUT_BYTES, OPTOUT_RELOAD_S
from citypipe.domain.model import RAW_FIELDS, Function, Zone
from citypipe.entrypoints.http import webhook
from citypipe.service import optout
from citypipe.service.edge import Admitted, Inbound, Route, admit
from citypipe.service.kernel import Deps
from citypipe.service.metrics import (
    NAMESPACE,
    OPTOUTS_RECORDED,
    OPTOUTS_REFUSED,
    OPTOUTS_UNAVAILABLE,
    embedded_metrics,
)
from citypipe.service.optout import opt_out_count
from citypipe.service.optout_http import FORM, OptOutRate, answer_optout
from citypipe.service.webhook import WebhookRequest, WebhookResponse
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens

OUT = "AA:BB:CC:DD:EE:01"  # the device a resident opts out
OTHER = "AA:BB:CC:DD:EE:02"
T0 = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)


def _request(body: str, media: str = "application/json", method: str = "POST") -> WebhookRequest:
    return WebhookRequest(method, "", "", {"content-type": media}, body)


def _submit(deps: Deps, keys: InMemoryKeyStore, address: str, **kw: Any) -> WebhookResponse:
    return answer_optout(deps, keys, OptOutRate(), _request(json.dumps({"address": address}), **kw))


def _seen(deps: Deps, keys: InMemoryKeyStore, *macs: str, when: datetime = T0) -> Admitted:
    """wifi-22's detections of ``macs`` at ``when``, through the edge (the clock at ``when``)."""
    payloads = [
        Payload(
            observation("wifi-22", when + timedelta(seconds=n), mac), Context(when.timestamp()), n
        )
        for n, mac in enumerate(macs, start=1)
    ]
    return admit(at(deps, when), keys, Inbound(payloads, Route.REPLAY, FORMATS["canonical"]))


def _pseudonyms(admitted: Admitted) -> set[str]:
    column = RAW_FIELDS.index("pseudonym")
    return {row[column] for rows in admitted.normalized.by_partition.values() for row in rows}


def test_an_opted_out_devices_detections_are_dropped_counted_and_never_quarantined(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    assert _submit(memory_deps, memory_keys, OUT).status == 202
    admitted = _seen(memory_deps, memory_keys, OUT, OTHER, OUT)
    counts = admitted.counts
    assert (counts.received, counts.accepted, counts.quarantined) == (3, 1, {OPTED_OUT: 2})
    assert counts.received == counts.accepted + counts.duplicates + counts.quarantined_total
    # no pseudonym of it was written, the other device's was
    key = day_keys(memory_keys, "velden")(T0.date())
    assert _pseudonyms(admitted) == {pseudonym(key, OTHER)}
    assert quarantine_rows(memory_deps) == []  # a row would be a trace of the device


@pytest.mark.parametrize("spelling", ["aa-bb-cc-dd-ee-01", "aabb.ccdd.ee01", " AABBCCDDEE01 "])
def test_every_spelling_of_an_address_opts_out_the_same_device(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, spelling: str
) -> None:
    form = answer_optout(
        memory_deps, memory_keys, OptOutRate(), _request(f"address={spelling}", FORM)
    )
    assert form.status == 202 and form.text is not None  # the portal's form: a sentence
    assert _seen(memory_deps, memory_keys, OUT).counts.quarantined == {OPTED_OUT: 1}


def test_the_address_is_kept_only_as_its_hmac_under_the_opt_out_key(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    response = _submit(memory_deps, memory_keys, OUT)
    bucket = memory_deps.names.keys_bucket()
    [kept] = list(memory_deps.store.list(bucket, "optouts/"))
    digest = hmac.new(memory_keys.optout_secret(), b"aabbccddee01", hashlib.sha256).hexdigest()
    assert kept.key == f"optouts/velden/{digest}"
    assert memory_deps.store.get(bucket, kept.key).body == b""
    # the opt-outs' key is none of the daily keys, and is not the release secret
    assert memory_keys.optout_secret() not in (
        memory_keys.noise_secret(), memory_keys.daily_secret(T0.date())
    )  # fmt: skip
    # nothing anywhere, nor the answer, holds the address in any spelling
    held = [
        memory_deps.store.get(b, i.key).body.lower()
        for b in [memory_deps.names.bucket(z) for z in Zone] + [bucket]
        for i in memory_deps.store.list(b)
    ]
    answered = json.dumps(response.body).lower().encode()
    for spelling in (
        b"aa:bb:cc:dd:ee:01",
        b"aabbccddee01",
        hashlib.sha256(b"aabbccddee01").hexdigest().encode(),
    ):
        assert not any(spelling in body for body in [*held, answered, kept.key.encode()])


def test_an_opt_out_reaches_the_edge_within_the_reload_delay(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given an edge that loaded the opt-outs at T0 (none then)
    assert _seen(memory_deps, memory_keys, OTHER).counts.accepted == 1
    # When a resident opts out a second later
    assert _submit(at(memory_deps, T0 + timedelta(seconds=1)), memory_keys, OUT).status == 202
    # Then that edge counts the device until its set is OPTOUT_RELOAD_S old, never later
    before = T0 + timedelta(seconds=OPTOUT_RELOAD_S - 1)
    assert _seen(memory_deps, memory_keys, OUT, when=before).counts.accepted == 1
    reloaded = T0 + timedelta(seconds=OPTOUT_RELOAD_S)
    counts = _seen(memory_deps, memory_keys, OUT, when=reloaded).counts
    assert (counts.accepted, counts.quarantined) == (0, {OPTED_OUT: 1})


def test_an_edge_whose_clock_went_back_reloads(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    _seen(memory_deps, memory_keys, OTHER)
    _submit(memory_deps, memory_keys, OUT)
    earlier = T0 - timedelta(seconds=1)
    assert _seen(memory_deps, memory_keys, OUT, when=earlier).counts.quarantined == {OPTED_OUT: 1}


def test_a_hubs_batch_of_opted_out_detections_only_is_no_error_and_each_is_counted(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    _submit(memory_deps, memory_keys, OUT)
    deps = at(memory_deps, T0)
    first = observation("wifi-22", T0, OUT)
    second = observation("wifi-22", T0 + timedelta(seconds=30), OUT)
    answers = [post(deps, memory_keys, "wifi-counters", "canonical", b) for b in (first, second)]
    assert [status for status, _ in answers] == [202, 202]
    assert [body["reasons"] for _, body in answers] == [{OPTED_OUT: 1}] * 2
    # two batches, two lineages: neither is taken for a resend of the other
    audit = memory_deps.names.bucket(Zone.AUDIT)
    lineages = [
        json.loads(memory_deps.store.get(audit, i.key).body)
        for i in memory_deps.store.list(audit, memory_deps.names.lineage_prefix())
    ]
    counted = [IngestCounts.model_validate(x["counts"]) for x in lineages]
    assert sum(c.quarantined.get(OPTED_OUT, 0) for c in counted) == 2
    # the same post again is a resend: counted once
    assert post(deps, memory_keys, "wifi-counters", "canonical", first)[1].get("resent") is True


def test_the_count_of_opt_outs_says_how_many_never_which(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    for address in (OUT, OTHER, OUT.lower()):
        assert _submit(memory_deps, memory_keys, address).status == 202
    assert opt_out_count(memory_deps) == 2


def test_an_address_opted_out_before_gets_the_same_answer(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    first, again = (_submit(memory_deps, memory_keys, OUT) for _ in range(2))
    assert (first.status, first.body, first.headers) == (again.status, again.body, again.headers)


@pytest.mark.parametrize(
    ("request_", "status", "error"),
    [
        (_request('{"address": "aa:bb:cc:dd:ee:01"}', method="GET"), 405, "method_not_allowed"),
        (_request(json.dumps({"address": "a" * MAX_OPTOUT_BYTES})), 413, "body_too_large"),
        (_request("address=aa:bb:cc:dd:ee:01", "text/plain"), 415, "unsupported_media_type"),
        (_request("{not json"), 400, "invalid_body"),
        (_request('["aa:bb:cc:dd:ee:01"]'), 400, "missing_address"),
        (_request('{"address": 42}'), 400, "missing_address"),
        (_request('{"address": "aa:bb:cc:dd:ee"}'), 400, "invalid_address"),
        (_request('{"address": "zz:bb:cc:dd:ee:01"}'), 400, "invalid_address"),
        (_request("mac=aa:bb:cc:dd:ee:01", FORM), 400, "missing_address"),
    ],
    ids=[
        "get", "too-large", "not-json-or-form", "bad-json", "no-object", "not-text",
        "too-short", "not-hex", "no-address-field",
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_clearly_and_writes_nothing(
    memory_deps: Deps,
    memory_keys: InMemoryKeyStore,
    request_: WebhookRequest,
    status: int,
    error: str,
) -> None:
    response = answer_optout(memory_deps, memory_keys, OptOutRate(), request_)
    assert (response.status, response.body["error"]) == (status, error)
    assert "aa:bb" not in json.dumps(response.body)  # never repeated back
    assert opt_out_count(memory_deps) == 0


def test_requests_over_the_hours_rate_are_refused_until_the_next_hour(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    rate = OptOutRate(per_hour=2)
    body = _request(json.dumps({"address": OUT}))
    assert [answer_optout(memory_deps, memory_keys, rate, body).status for _ in range(3)] == [
        202, 202, 429,
    ]  # fmt: skip
    later = at(memory_deps, memory_deps.clock.now() + timedelta(hours=1))
    assert answer_optout(later, memory_keys, rate, body).status == 202


def test_the_hours_rate_is_the_citys_whichever_container_takes_a_request(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    """Each warm container (each server) has its own count; the bound is the city's: its
    hour's slots in the keys bucket, each put once (found by an independent review: a
    flood spread over containers took the bound once per container)."""
    body = _request(json.dumps({"address": OUT}))
    first, second = OptOutRate(per_hour=2), OptOutRate(per_hour=2)  # two containers
    assert [answer_optout(memory_deps, memory_keys, first, body).status for _ in range(2)] == [
        202, 202,
    ]  # fmt: skip
    assert answer_optout(memory_deps, memory_keys, second, body).status == 429
    later = at(memory_deps, memory_deps.clock.now() + timedelta(hours=1))
    assert answer_optout(later, memory_keys, second, body).status == 202


def test_an_hours_slots_hold_nothing(memory_deps: Deps, memory_keys: InMemoryKeyStore) -> None:
    """Empty objects named by an hour and a number: no address, no digest (a lifecycle rule
    expires them a day later: ``tests/unit/test_template.py``, ``test_stack.py``)."""
    body = _request(json.dumps({"address": OUT}))
    for _ in range(3):
        assert answer_optout(memory_deps, memory_keys, OptOutRate(), body).status == 202
    bucket, prefix = memory_deps.names.keys_bucket(), memory_deps.names.optout_rate_prefix()
    slots = [s.key for s in memory_deps.store.list(bucket, prefix)]
    hour = memory_deps.names.optout_rate_prefix(memory_deps.clock.now())
    assert slots == [f"{hour}{n:06d}" for n in range(3)]
    assert all(memory_deps.store.get(bucket, key).body == b"" for key in slots)


def test_a_request_of_the_hour_before_frees_no_slot_of_the_next(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    """A request stamped 10:59:59 (late, or on a clock behind) after 11:00's began takes
    10:00's slots, never frees 11:00's (found by an independent review: the hour's first
    request deleted every other hour's)."""
    body = _request(json.dumps({"address": OUT}))
    ten = at(memory_deps, T0 + timedelta(minutes=59, seconds=59))
    eleven = at(memory_deps, T0 + timedelta(hours=1, seconds=1))

    def one(deps: Deps) -> int:  # a fresh container each time
        return answer_optout(deps, memory_keys, OptOutRate(per_hour=2), body).status

    assert [one(ten), one(ten)] == [202, 202]
    assert [one(eleven), one(eleven)] == [202, 202]
    assert (one(ten), one(eleven), one(eleven)) == (429, 429, 429)


def test_a_full_hour_says_when_the_next_begins(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    body = _request(json.dumps({"address": OUT}))
    deps = at(memory_deps, T0 + timedelta(minutes=45))
    assert answer_optout(deps, memory_keys, OptOutRate(per_hour=1), body).status == 202
    refused = answer_optout(deps, memory_keys, OptOutRate(per_hour=1), body)
    assert (refused.status, refused.headers) == (429, {"retry-after": "900"})


def test_a_crowd_at_once_is_told_to_try_again_not_that_the_hour_is_full(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Others take the next slots first, round after round (a listing that lags): 503, try
    again in seconds, not 429 for the hour while the city's slots are free."""
    body = _request(json.dumps({"address": OUT}))
    bucket = memory_deps.names.keys_bucket()
    hour = memory_deps.names.optout_rate_prefix(memory_deps.clock.now())
    for n in range(optout.SLOT_TRIES * optout.SLOT_ROUNDS):
        memory_deps.store.put_if_absent(bucket, f"{hour}{n:06d}", b"", "application/octet-stream")
    real = memory_deps.store.list

    def lagging(bucket: str, prefix: str) -> Any:  # the listing shows none of them yet
        return [] if prefix == hour else real(bucket, prefix)

    with monkeypatch.context() as patched:
        patched.setattr(memory_deps.store, "list", lagging)
        refused = answer_optout(memory_deps, memory_keys, OptOutRate(), body)
    assert (refused.status, refused.body["error"]) == (503, "try_again")
    assert answer_optout(memory_deps, memory_keys, OptOutRate(), body).status == 202


def test_requests_at_once_take_no_more_than_the_hours_slots(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    """Conditional puts: however many containers race for the last slots, the hour's bound
    is taken, and no more."""
    body = _request(json.dumps({"address": OUT}))
    statuses: list[int] = []
    start = threading.Barrier(12)

    def one() -> None:
        start.wait()
        statuses.append(
            answer_optout(memory_deps, memory_keys, OptOutRate(per_hour=5), body).status
        )

    racers = [threading.Thread(target=one) for _ in range(12)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(statuses) == 12  # every request answered
    assert statuses.count(202) == 5 and set(statuses) <= {202, 429, 503}
    bucket, prefix = memory_deps.names.keys_bucket(), memory_deps.names.optout_rate_prefix()
    assert len(list(memory_deps.store.list(bucket, prefix))) == 5


def test_a_full_set_refuses_every_address_alike_and_keeps_the_old(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(optout, "MAX_OPT_OUTS", 1)
    assert _submit(memory_deps, memory_keys, OUT).status == 202
    full = _submit(memory_deps, memory_keys, OTHER)
    assert (full.status, full.body["error"]) == (507, "opt_outs_full")
    # one already in gets the same answer as one that is not: the set full tells nothing of
    # which addresses are in it
    again = _submit(memory_deps, memory_keys, OUT)
    assert (again.status, again.body) == (full.status, full.body)
    assert opt_out_count(memory_deps) == 1


def test_a_source_without_a_data_subject_drops_the_opted_out_device_too(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given a city whose Wi-Fi counters drop the MAC instead of pseudonymizing it
    city = memory_deps.city
    wifi = city.sources["wifi-counters"]
    personal = {**wifi.policy.personal, "device_mac": "drop"}
    policy = wifi.policy.model_copy(update={"personal": personal})
    sources = {**city.sources, "wifi-counters": wifi.model_copy(update={"policy": policy})}
    deps = dataclasses.replace(memory_deps, city=city.model_copy(update={"sources": sources}))
    _submit(deps, memory_keys, OUT)
    counts = _seen(deps, memory_keys, OUT, OTHER).counts
    assert (counts.accepted, counts.quarantined) == (1, {OPTED_OUT: 1})


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_api_gateways_post_to_optout_reaches_the_opt_out_not_a_webhook(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, version: str
) -> None:
    body = json.dumps({"address": OUT})
    headers = {"Content-Type": "application/json"}
    event: dict[str, Any] = (
        {"version": "2.0", "rawPath": "/optout", "headers": headers, "body": body,
         "requestContext": {"http": {"method": "POST"}, "requestId": "r"}}
        if version == "2.0"
        else {"httpMethod": "POST", "path": "/prod/optout", "headers": headers, "body": body}
    )  # fmt: skip
    tokens = InMemoryWebhookTokens()
    response = webhook(memory_deps, tokens, memory_keys, OptOutRate(), event)
    assert response["statusCode"] == 202 and "recorded" in response["body"]
    assert opt_out_count(memory_deps) == 1


def test_opted_out_detections_do_not_raise_the_quarantine_rate_the_alarm_reads() -> None:
    counts = IngestCounts(
        payloads=1, received=10, accepted=6, duplicates=0, quarantined={OPTED_OUT: 3, "too_old": 1}
    )
    fields = embedded_metrics("velden", Function.INGEST, counts, T0)
    assert (fields["ReadingsIn"], fields["ReadingsQuarantined"]) == (10, 1)


def test_an_opted_out_detection_refused_for_another_reason_is_still_only_counted(
    memory_deps: Deps, memory_keys: InMemoryKeyStore
) -> None:
    # Given an opted-out device's detection that is also too far ahead of the clock
    _submit(memory_deps, memory_keys, OUT)
    ahead = T0 + timedelta(hours=1)
    payload = Payload(observation("wifi-22", ahead, OUT), Context(T0.timestamp()), 1)
    inbound = Inbound([payload], Route.REPLAY, FORMATS["canonical"])
    counts = admit(at(memory_deps, T0), memory_keys, inbound).counts
    # Then it is dropped first: no future_time, no quarantine row of its payload
    assert counts.quarantined == {OPTED_OUT: 1}
    assert quarantine_rows(memory_deps) == []


def test_a_refused_opt_out_is_a_metric_the_stack_alarms_on(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An hour's bound reached is a flood or a crowd: each answer's line is an EMF document
    (per city: opt-outs recorded, refused for the hour), never the address; the AWS stack
    alarms on the refused (``tests/unit/test_template.py``)."""
    body = _request(json.dumps({"address": OUT}))
    with caplog.at_level("INFO", logger="citypipe"):
        statuses = [
            answer_optout(memory_deps, memory_keys, OptOutRate(per_hour=1), body).status
            for _ in range(2)
        ]
    assert statuses == [202, 429]
    lines = [r.__dict__ for r in caplog.records if r.getMessage() == "opt-out answered"]
    assert [(f["status"], f[OPTOUTS_RECORDED], f[OPTOUTS_REFUSED]) for f in lines] == [
        (202, 1, 0),
        (429, 0, 1),
    ]
    [directive] = lines[0]["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == (NAMESPACE, [["city"]])
    assert lines[0]["city"] == "velden"
    text = " ".join(r.getMessage() + repr(r.__dict__) for r in caplog.records).lower()
    assert "aa:bb:cc:dd:ee:01" not in text and "aabbccddee01" not in text
    keys_bucket, prefix = memory_deps.names.keys_bucket(), memory_deps.names.optout_prefix()
    [digest] = [i.key.removeprefix(prefix) for i in memory_deps.store.list(keys_bucket, prefix)]
    assert digest not in text  # nor its keyed hash


def test_a_full_set_is_a_refusal_the_metric_counts(
    memory_deps: Deps,
    memory_keys: InMemoryKeyStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flood kept under the hour's bound fills the set in about a week: then every
    resident is refused (507), and the alarm counts that too (found by an independent
    review: it counted only the hour's bound)."""
    monkeypatch.setattr(optout, "MAX_OPT_OUTS", 1)
    with caplog.at_level("INFO", logger="citypipe"):
        assert _submit(memory_deps, memory_keys, OUT).status == 202
        assert _submit(memory_deps, memory_keys, OTHER).status == 507
    full = [r.__dict__ for r in caplog.records if r.getMessage() == "opt-out answered"][-1]
    assert (full[OPTOUTS_RECORDED], full[OPTOUTS_REFUSED], full[OPTOUTS_UNAVAILABLE]) == (0, 1, 0)
