"""A partner's withdrawal (issue 21): recorded once, refused at the edge from then on with a
machine-readable reason; its objects purged from the clean and aggregate zones and its days
exported again, recorded in the audit zone; a withdrawal that would release a people day
twice refused whole, before anything is deleted."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from unit_support import (
    DAY,
    city_data,
    devices,
    exporting,
    put_partial,
    reading,
    vehicles,
)

from citypipe.domain.books import IngestCounts, WithdrawalRequested
from citypipe.domain.city import parse_city
from citypipe.domain.export_books import WithdrawalCarriedOut
from citypipe.domain.model import Zone
from citypipe.service import partners
from citypipe.service.export import export_day, withdrawal
from citypipe.service.export.withdrawal import carry_out, withdrawal_runs
from citypipe.service.housekeeping import hourly
from citypipe.service.ingest import ingest_drop
from citypipe.service.kernel import Deps
from citypipe.service.partners import WithdrawalRefusedError, withdraw, withdrawn_sources
from citypipe_local.drops import drop
from citypipe_local.fakes import FixedClock

PARTNER = "velden-mobility"
LOOPS = (
    b"station;interval_start;vehicles;bicycles\n"
    b"VLD-TC-091;2026-06-01T10:00:00Z;41;3\n"
    b"VLD-TC-092;2026-06-01T10:00:00Z;17;1\n"
)


def dropped(deps: Deps, name: str) -> IngestCounts:
    message = drop(deps, "csv", f"loop-export/{name}.csv", LOOPS, 2)
    outcome = partial(ingest_drop, keys=None)(
        deps.store.get(message.bucket, message.key), message, deps, name
    )
    assert isinstance(outcome.counts, IngestCounts)
    return outcome.counts


def test_the_edge_refuses_a_withdrawn_partners_readings_with_a_reason(memory_deps: Deps) -> None:
    assert dropped(memory_deps, "before").accepted == 4
    request = withdraw(memory_deps, PARTNER)
    assert request.sources == ["operator-counters"]
    after = dropped(memory_deps, "after")
    assert (after.accepted, after.quarantined) == (0, {"partner_withdrawn": 4})


def test_a_withdrawal_is_recorded_once_and_an_unknown_partner_refused(memory_deps: Deps) -> None:
    first = withdraw(memory_deps, PARTNER)
    assert withdraw(memory_deps, PARTNER) == first
    audit = memory_deps.names.bucket(Zone.AUDIT)
    body = memory_deps.store.get(audit, memory_deps.names.withdrawal_key(PARTNER)).body
    assert WithdrawalRequested.model_validate_json(body) == first
    with pytest.raises(WithdrawalRefusedError, match="nobody is no partner of velden"):
        withdraw(memory_deps, "nobody")


def test_a_city_without_partners_asks_nothing_at_the_edge(memory_deps: Deps) -> None:
    data = city_data()
    del data["partners"]
    deps = dataclasses.replace(memory_deps, city=parse_city(data))
    calls: list[Any] = []
    listing = deps.store.list
    deps.store.list = lambda *a, **k: calls.append(a) or listing(*a, **k)  # type: ignore[method-assign]
    assert withdrawn_sources(deps) == frozenset()
    assert calls == []


def test_a_warm_edge_remembers_the_withdrawals_a_minute() -> None:
    assert partners.CACHE_S == 60.0


def partner_rows(minute: float, value: float) -> dict[str, Any]:
    return {**vehicles(minute, value), "source": "operator-counters", "sensor": "tc-091"}


def partner_day(deps: Deps, city: bool = True) -> str:
    """A day of the partner's counters (and the city's), each a partial of its own (as
    aggregate writes them), published; the partner's partial's key."""
    if city:
        put_partial(deps, "city", vehicles(0, 10.0), vehicles(15, 20.0))
    put_partial(deps, "partner", partner_rows(0, 5.0))
    partner_key = f"aggregates/velden/date={DAY}/operator-counters/partner.parquet"
    mixed = f"aggregates/velden/date={DAY}/mixed/partner.parquet"
    aggregates = deps.names.bucket(Zone.AGGREGATES)
    deps.store.put(aggregates, partner_key, deps.store.get(aggregates, mixed).body)
    deps.store.delete(aggregates, mixed)
    assert export_day(deps, exporting(), DAY) == "done"
    return partner_key


def test_a_withdrawal_purges_the_partner_and_publishes_its_days_again(memory_deps: Deps) -> None:
    partner_key = partner_day(memory_deps)
    withdraw(memory_deps, PARTNER)

    run = carry_out(memory_deps, exporting(), PARTNER)

    assert run is not None and run.days == [DAY]
    assert run.aggregates == [partner_key]
    assert run.clean == [f"clean/velden/date={DAY}/operator-counters/partner.parquet"]
    for zone in (Zone.CLEAN, Zone.AGGREGATES):
        keys = [i.key for i in memory_deps.store.list(memory_deps.names.bucket(zone))]
        assert not [k for k in keys if "/operator-counters/" in k]
    audit = memory_deps.names.bucket(Zone.AUDIT)
    [record] = memory_deps.store.list(audit, memory_deps.names.withdrawal_runs_prefix(PARTNER))
    assert (
        WithdrawalCarriedOut.model_validate_json(memory_deps.store.get(audit, record.key).body)
        == run
    )
    # nothing left: a second run does nothing
    assert carry_out(memory_deps, exporting(), PARTNER) is None
    assert withdrawal_runs(memory_deps) == [run]


def test_a_withdrawal_that_stopped_half_way_is_finished_by_the_next_run(
    memory_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge done, the export timed out: the next hourly run finishes it from its plan
    (else nothing of the partner is left to find, and its readings stay published)."""
    partner_day(memory_deps)
    opened = memory_deps.names.bucket(Zone.OPEN)

    def published() -> dict[str, bytes]:
        infos = memory_deps.store.list(opened)
        return {i.key: memory_deps.store.get(opened, i.key).body for i in infos if ".csv" in i.key}

    before = published()
    withdraw(memory_deps, PARTNER)

    def timed_out(*_: Any, **__: Any) -> None:
        raise TimeoutError("the export ran out of time")

    with monkeypatch.context() as patched:
        patched.setattr(withdrawal, "export_day", timed_out)
        with pytest.raises(TimeoutError):
            carry_out(memory_deps, exporting(), PARTNER)
    assert withdrawal_runs(memory_deps) == []  # not done, and the books say so

    run = carry_out(memory_deps, exporting(), PARTNER)

    assert run is not None and run.days == [DAY]
    assert withdrawal_runs(memory_deps) == [run]
    assert published() != before  # the day published again, without the partner
    assert carry_out(memory_deps, exporting(), PARTNER) is None


def test_a_withdrawal_that_would_release_a_people_day_twice_is_refused_whole(
    memory_deps: Deps,
) -> None:
    # the partner's source counts people too: its readings are in a released people day
    data = city_data()
    data["partners"][PARTNER]["sources"] = ["wifi-counters"]
    data["partners"][PARTNER]["purposes"] = ["public-services"]
    deps = dataclasses.replace(memory_deps, city=parse_city(data))
    put_partial(deps, "people", *devices(30), reading(0, 1.0, quantity="air.no2"))
    assert export_day(deps, exporting(), DAY, closing=True) == "done"
    withdraw(deps, PARTNER)

    with pytest.raises(WithdrawalRefusedError) as refused:
        carry_out(deps, exporting(), PARTNER)

    message = str(refused.value)
    assert message.startswith(
        f"{PARTNER}'s readings were counted in released people-counts days: {DAY} (spent ε = 2 "
        "of 2); publishing one again is a second release at ε = 2"
    )
    assert message.endswith("nothing was deleted")
    clean = [i.key for i in deps.store.list(deps.names.bucket(Zone.CLEAN))]
    assert [k for k in clean if "/wifi-counters/" in k]
    # its intake stays stopped: the withdrawal is recorded
    assert withdrawn_sources(deps) == frozenset({"wifi-counters"})


def test_a_day_only_the_partner_fed_keeps_its_last_files_a_known_gap(memory_deps: Deps) -> None:
    # (docs/partners.md, "What is not done": the city deletes them by hand)
    partner_day(memory_deps, city=False)
    withdraw(memory_deps, PARTNER)
    carry_out(memory_deps, exporting(), PARTNER)
    opened = memory_deps.store.list(
        memory_deps.names.bucket(Zone.OPEN), memory_deps.names.open_day_prefix("traffic-flow", DAY)
    )
    assert list(opened)


def test_the_hourly_job_carries_out_every_recorded_withdrawal(memory_deps: Deps) -> None:
    # the cloud's way: the withdrawal recorded (by the operator), the hourly job does the rest
    partner_day(memory_deps)
    withdraw(memory_deps, PARTNER)
    fired = datetime.fromisoformat(f"{DAY}T12:00:00+00:00")

    done = hourly(dataclasses.replace(memory_deps, clock=FixedClock(fired)), exporting(), fired)

    assert done.withdrawals == {PARTNER: f"published again: {DAY}"}
    partials = [i.key for i in memory_deps.store.list(memory_deps.names.bucket(Zone.AGGREGATES))]
    assert not [k for k in partials if "/operator-counters/" in k]
