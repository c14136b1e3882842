"""A withdrawn partner's readings purged and its days published again (docs/partners.md):
run by ``citypipe partner withdraw`` on a laptop and by export's hourly job on every cloud,
for every withdrawal recorded (``service.partners``).

A run deletes the partner's objects from the clean and aggregate zones and exports every
day that held them again: its datasets' files are then what a city that never had the
partner publishes, each day a new version. Each run is recorded
(``WithdrawalCarriedOut``): what it deleted, the readings the deleted partials aggregated
(the books say where they went), the days published again.

A people dataset's day is released once (decision 0078): a partner whose readings a
released people day counted cannot have that day published again without a second
release, which the day's privacy budget must pay for. Such a run is refused whole, before
anything is deleted, and says which days, what they spent and what a release costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from citypipe.domain.books import AggregateCounts, Lineage
from citypipe.domain.export_books import WithdrawalCarriedOut
from citypipe.domain.model import Function, Zone
from citypipe.domain.naming import day_of, source_of
from citypipe.service.export.day import ExportPorts, export_day
from citypipe.service.export.ledger import entries
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.export.retry import retried
from citypipe.service.kernel import Deps, log
from citypipe.service.partners import WithdrawalRefusedError, withdrawn_partners


@dataclass(frozen=True)
class _Purge:
    clean: list[str]
    aggregates: list[str]
    days: list[str]


def _objects(deps: Deps, zone: Zone, sources: set[str]) -> list[str]:
    prefix = f"{zone.value}/{deps.city.slug}/date="
    found = deps.store.list(deps.names.bucket(zone), prefix)
    return sorted(i.key for i in found if source_of(i.key) in sources)


def _plan(deps: Deps, partner: str) -> _Purge:
    sources = set(deps.city.partners[partner].sources)
    found = {zone: _objects(deps, zone, sources) for zone in (Zone.CLEAN, Zone.AGGREGATES)}
    days = {
        day_of(key, f"{zone.value}/{deps.city.slug}/date=")
        for zone, keys in found.items()
        for key in keys
    }
    return _Purge(found[Zone.CLEAN], found[Zone.AGGREGATES], sorted(days))


def people_refusal(deps: Deps, partner: str, days: list[str]) -> str:
    """Why the days cannot be published again, if a released people dataset counted the
    partner's readings (its ledger entry names their clean objects): a second release of
    the day, at ε (a day is released once, decision 0078)."""
    sources = set(deps.city.partners[partner].sources)
    noise = deps.city.disclosure.noise
    refused, people = [], set()
    for day in days:
        charges = [e for _, e in entries(deps, day)]
        counted = [
            e.dataset
            for e in charges
            if any(source_of(i.rsplit("@", 1)[0]) in sources for i in e.inputs)
        ]
        if counted:
            people |= set(counted)
            spent = sum(e.epsilon for e in charges)
            refused.append(f"{day} (spent ε = {spent:g} of {noise.budget:g})")
    if not refused:
        return ""
    return (
        f"{partner}'s readings were counted in released {', '.join(sorted(people))} days: "
        f"{', '.join(refused)}; publishing one again is a second release at ε = "
        f"{noise.epsilon:g}, and a people day is released once within its budget "
        "(docs/privacy.md): nothing was deleted"
    )


def _readings(deps: Deps, partials: set[str]) -> int:
    """The readings the partials aggregated, as their aggregate lineage says."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = [i.key for i in deps.store.list(audit, deps.names.lineage_prefix(Function.AGGREGATE))]
    total = 0
    for found in deps.store.get_many(audit, keys):
        lineage = Lineage.model_validate_json(found.body)
        if any(o.key in partials for o in lineage.outputs):
            assert isinstance(lineage.counts, AggregateCounts)
            total += lineage.counts.aggregated
    return total


def carry_out(deps: Deps, ports: ExportPorts, partner: str) -> WithdrawalCarriedOut | None:
    """Delete a withdrawn partner's objects from the clean and aggregate zones and export
    every day that held them again; the run recorded in the audit zone. None when nothing
    of the partner is left. Refused whole (``WithdrawalRefusedError``, recorded too) when a
    released people day counted its readings. The run is planned (recorded) before it
    deletes anything: one that stopped half-way (a timeout, a crash) is finished by the
    next, from its plan."""
    run = _unfinished(deps, partner) or _planned(deps, partner)
    if run is None:
        return None
    for zone, keys in ((Zone.AGGREGATES, run.aggregates), (Zone.CLEAN, run.clean)):
        for key in keys:
            deps.store.delete(deps.names.bucket(zone), key)
    for day in run.days:
        export_day(deps, ports, day, metadata=False)
    retried(lambda: publish_metadata(deps, ports.scratch))
    _record(deps, run)
    return run


def _planned(deps: Deps, partner: str) -> WithdrawalCarriedOut | None:
    """A new run of the partner's withdrawal, recorded as planned; None: nothing left."""
    plan = _plan(deps, partner)
    if not plan.clean and not plan.aggregates:
        return None
    now = deps.clock.now()
    refusal = people_refusal(deps, partner, plan.days)
    if refusal:
        refused = WithdrawalCarriedOut(
            partner=partner, clean=[], aggregates=[], readings=0, days=[], refused=refusal, at=now
        )
        _record(deps, refused)
        raise WithdrawalRefusedError(refusal)
    run = WithdrawalCarriedOut(
        partner=partner, clean=plan.clean, aggregates=plan.aggregates,
        readings=_readings(deps, set(plan.aggregates)), days=plan.days, at=now,
    )  # fmt: skip
    key = deps.names.withdrawal_plan_key(partner, now)
    body = run.model_dump_json(indent=1).encode()
    deps.store.put(deps.names.bucket(Zone.AUDIT), key, body, "application/json")
    return run


def _unfinished(deps: Deps, partner: str) -> WithdrawalCarriedOut | None:
    """A planned run of the partner's withdrawal without its run record: it stopped."""
    audit, names = deps.names.bucket(Zone.AUDIT), deps.names
    done = {
        i.key.rsplit("/", 1)[-1]
        for i in deps.store.list(audit, names.withdrawal_runs_prefix(partner))
    }
    for info in deps.store.list(audit, names.withdrawal_plans_prefix(partner)):
        if info.key.rsplit("/", 1)[-1] not in done:
            body = deps.store.get(audit, info.key).body
            return WithdrawalCarriedOut.model_validate_json(body)
    return None


def _record(deps: Deps, run: WithdrawalCarriedOut) -> None:
    key = deps.names.withdrawal_run_key(run.partner, run.at)
    body = run.model_dump_json(indent=1).encode()
    deps.store.put(deps.names.bucket(Zone.AUDIT), key, body, "application/json")


def carry_out_withdrawals(deps: Deps, ports: ExportPorts) -> dict[str, str]:
    """Every recorded withdrawal carried out (export's hourly job): what each run did."""
    done = {}
    for partner in withdrawn_partners(deps):
        try:
            run = carry_out(deps, ports, partner)
        except WithdrawalRefusedError as exc:
            log.error("withdrawal refused", extra={"function": "export", "partner": partner})
            done[partner] = f"refused: {exc}"
            continue
        done[partner] = "nothing left" if run is None else f"published again: {', '.join(run.days)}"
    return done


def withdrawal_runs(deps: Deps) -> list[WithdrawalCarriedOut]:
    """Every withdrawal run recorded (the books: the readings each took out of the
    published cells, and the days it exported again, fewer partials than before)."""
    audit = deps.names.bucket(Zone.AUDIT)
    keys = [i.key for i in deps.store.list(audit, deps.names.withdrawal_runs_prefix())]
    return [
        WithdrawalCarriedOut.model_validate_json(o.body) for o in deps.store.get_many(audit, keys)
    ]
