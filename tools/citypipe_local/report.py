"""The run report: every stage's books, read back from the audit zone's lineage records.

Lineage records are written once per input (conditional put), so duplicated deliveries
are never double-counted. Dead-lettered messages are counted from the DLQs. The counts
are the typed books of ``citypipe.domain.books``: the same models the stages write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citypipe.core.disclosure import treatment
from citypipe.domain.books import (
    AggregateCounts,
    AnonymizeCounts,
    BridgeCounts,
    ExportCounts,
    IngestCounts,
    Lineage,
    StageCounts,
)
from citypipe.domain.errors import BackendRefusedError, TerminalError
from citypipe.domain.model import Function, Message, Zone, is_piece
from citypipe.domain.naming import (
    input_id,
)
from citypipe.domain.themes import quantities_of, themes_of
from citypipe.entrypoints.events import parse_messages
from citypipe.entrypoints.iot import failure_reason
from citypipe.service.buffer import Piece, written_requests
from citypipe.service.export.ledger import RELEASE_REFUSED, entries
from citypipe.service.export.withdrawal import withdrawal_runs
from citypipe.service.kernel import Deps
from citypipe_local.stack import NO_QUEUE


@dataclass(frozen=True)
class Check:
    name: str
    left: int
    right: int

    @property
    def ok(self) -> bool:
        return self.left == self.right

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "left": self.left, "right": self.right, "ok": self.ok}


def lineage_records(deps: Deps) -> Iterator[Lineage]:
    bucket = deps.names.bucket(Zone.AUDIT)
    for info in deps.store.list(bucket, deps.names.lineage_prefix()):
        yield Lineage.model_validate_json(deps.store.get(bucket, info.key).body)


def dead_letters(deps: Deps, function: Function) -> list[Message]:
    """Read a DLQ without consuming it (messages come back after the visibility timeout).

    A dead-lettered claim check whose input has a lineage record was processed after all
    (it failed after its outputs were written, e.g. while acknowledging): it is counted
    by its lineage, not again here; so is a buffered webhook request (``service.buffer``)
    a batch's manifest names.
    """
    seen: dict[str, Message] = {}
    queue = deps.names.dlq(function)
    audit = deps.names.bucket(Zone.AUDIT)
    written: set[str] | None = None  # buffered requests a batch wrote (read when needed)
    while batch := deps.queue.receive(queue, 10):
        for message in batch:
            if is_piece(message.body):
                written = written_requests(deps) if written is None else written
                piece = _dead_piece(deps, message.body, written)
                if piece is not None:
                    seen.setdefault(message.message_id, piece)
                continue
            try:
                parsed = parse_messages(message.body, deps.city.slug)
            except TerminalError:
                parsed = [Message(city="?", stage="?", bucket="", key="")]
            for claim in parsed:
                done = deps.names.lineage_key(
                    function, input_id(claim.bucket, claim.key, claim.etag)
                )
                if not deps.store.exists(audit, done):
                    seen.setdefault(message.message_id, claim)
    return list(seen.values())


def _dead_piece(deps: Deps, body: str, written: set[str]) -> Message | None:
    """A dead-lettered buffered request (``service.buffer``) as what it announced: its
    payloads; None when a batch wrote it after all."""
    try:
        piece = Piece.of_body(body, deps.city.slug)
    except TerminalError:
        return Message(city="?", stage="?", bucket="", key="")
    if piece.request in written:
        return None
    return Message(
        city=piece.city, stage="buffer", bucket="", key=piece.request,
        records=piece.counts.payloads,
    )  # fmt: skip


def iot_failures(deps: Deps) -> Counter[str]:
    """The IoT rules' events ingest failed on (the IoT failures queue, AWS only), by
    ``failure_reason``: one payload each, dead-lettered at ingest. Read without consuming."""
    reasons: Counter[str] = Counter()
    seen: set[str] = set()
    try:
        while batch := deps.queue.receive(deps.names.iot_failures(), 10):
            for message in batch:
                if message.message_id not in seen:
                    seen.add(message.message_id)
                    reasons[failure_reason(message.body)] += 1
    except BackendRefusedError as exc:
        if exc.code not in NO_QUEUE:  # a stack of a cloud without IoT rules has none
            raise
    return reasons


def quarantined_messages(deps: Deps, function: Function) -> int:
    """Queue messages a function quarantined because they were no claim check at all."""
    prefix = deps.names.quarantined_messages_prefix(function)
    return sum(1 for _ in deps.store.list(deps.names.bucket(Zone.QUARANTINE), prefix))


def _newer(record: Lineage, than: Lineage, withdrawals: Sequence[tuple[str, datetime]]) -> bool:
    """A day's partials only grow — but for a partner's withdrawal, which deletes its
    partials and exports the day again — so the export after more withdrawals of its day,
    then of more partials, is the later one; the clock breaks ties (containers' clocks may
    disagree, partial counts cannot)."""
    assert isinstance(record.counts, ExportCounts) and isinstance(than.counts, ExportCounts)

    def rank(export: Lineage) -> int:
        return sum(1 for day, at in withdrawals if day == export.window and at <= export.at)

    return (rank(record), record.counts.partials, record.at) > (
        rank(than),
        than.counts.partials,
        than.at,
    )


@dataclass(frozen=True)
class BridgeRun:
    """An MQTT bridge's part of a run: what the hubs published, the bridge's typed books."""

    published: int | None  # None: not known (a bridge in front of a live broker)
    books: BridgeCounts

    def checks(self) -> list[Check]:
        books = self.books
        checks = [
            Check(
                "bridge: delivered = written + redelivered + retained + discarded + pending",
                books.messages,
                books.written + books.redelivered + books.retained + books.discarded
                + books.pending,
            ),
        ]  # fmt: skip
        if self.published is not None:
            checks.append(
                Check(
                    "messages published = messages the bridge wrote", self.published, books.written
                )
            )
        return checks


@dataclass
class Books:
    """Every stage's counts summed over its lineage records; export's latest per day."""

    ingest: IngestCounts
    anonymize: AnonymizeCounts
    aggregate: AggregateCounts
    export: ExportCounts
    days: list[str]
    datasets: list[str]
    # export lineage of people datasets published with noise: the ε ledger entries each names
    noised_releases: list[list[str]]

    @classmethod
    def read(
        cls,
        records: Iterator[Lineage],
        noised_datasets: Collection[str] | None = None,
        withdrawals: Sequence[tuple[str, datetime]] = (),
    ) -> Books:
        """``noised_datasets``: the datasets published with noise (their releases are
        charged to the ε ledger); ``withdrawals``: (day, time) of each partner's withdrawal
        run that exported the day again."""
        ingest, anonymize = IngestCounts.zero(), AnonymizeCounts.zero()
        aggregate = AggregateCounts.zero()
        exports: list[Lineage] = []
        for record in records:
            counts = record.counts
            if isinstance(counts, IngestCounts):
                ingest += counts
            elif isinstance(counts, AnonymizeCounts):
                anonymize += counts
            elif isinstance(counts, AggregateCounts):
                aggregate += counts
            elif record.window is not None:
                exports.append(record)
        latest = _latest(exports, withdrawals)
        export = ExportCounts.zero()
        for record in latest.values():
            assert isinstance(record.counts, ExportCounts)
            export += record.counts
        noised = [
            _charges(r) for r in exports if r.dataset in (noised_datasets or ()) and not _refused(r)
        ]
        days = sorted({day for day, _ in latest})
        # a theme whose export had no cell that day (no sensor of it reported) is no dataset
        datasets = sorted({dataset for (_, dataset), r in latest.items() if _has_cells(r)})
        return cls(ingest, anonymize, aggregate, export, days, datasets, noised)

    def of(self, function: Function) -> StageCounts:
        return {
            Function.INGEST: self.ingest,
            Function.ANONYMIZE: self.anonymize,
            Function.AGGREGATE: self.aggregate,
            Function.EXPORT: self.export,
        }[function]


def _has_cells(export: Lineage) -> bool:
    """The export published its theme's day: cells published, suppressed or flagged (a
    release refused over budget published nothing)."""
    counts = export.counts
    return isinstance(counts, ExportCounts) and (
        counts.published + counts.suppressed + counts.flagged > 0
    )


def _refused(export: Lineage) -> bool:
    """A release refused (over its ε budget, its key dead, …): it charged nothing. (Cells
    refused off the grid belong to a release that was published, and charged.)"""
    counts = export.counts
    return isinstance(counts, ExportCounts) and not RELEASE_REFUSED.isdisjoint(counts.refused)


def _charges(export: Lineage) -> list[str]:
    """The ε ledger entries an export's lineage names."""
    return [o.key for o in export.outputs if o.key.startswith("epsilon/")]


def _latest(
    exports: list[Lineage], withdrawals: Sequence[tuple[str, datetime]] = ()
) -> dict[tuple[str, str], Lineage]:
    """The latest export of each (day, theme): what stands published."""
    latest: dict[tuple[str, str], Lineage] = {}
    for record in exports:
        unit = (record.window or "", record.dataset or "")
        previous = latest.get(unit)
        if previous is None or _newer(record, previous, withdrawals):
            latest[unit] = record
    return latest


def build_report(
    deps: Deps,
    payloads_sent: int | None,
    seconds: dict[Function, float] | None = None,
    bridge: BridgeRun | None = None,
    resent: int = 0,
) -> dict[str, Any]:
    """The run's books; ``payloads_sent``: what the hubs sent (None: unknown, e.g. a server
    that took what came — then what reached the edge); ``bridge``: the MQTT bridge's books,
    when the hubs' messages came through one; ``resent``: payloads a webhook recognized as
    received before (a request of the very same content: nothing written, no lineage);
    those the batcher of buffered requests recognized are in its lineage."""
    runs = withdrawal_runs(deps)  # a partner's readings, taken out of every published day
    withdrawals = [(day, run.at) for run in runs for day in run.days]
    books = Books.read(lineage_records(deps), noised_datasets(deps), withdrawals)
    dead = {f: dead_letters(deps, f) for f in Function}
    poison = {f: quarantined_messages(deps, f) for f in Function}
    dead_records = {f: sum(m.records for m in dead[f]) for f in Function}
    iot = iot_failures(deps)  # an IoT rule's event: one payload, dead-lettered at ingest
    dead_records[Function.INGEST] += iot.total()
    ingest, anonymize, aggregate, export = (
        books.ingest,
        books.anonymize,
        books.aggregate,
        books.export,
    )

    withdrawn = sum(run.readings for run in runs)
    resent += ingest.resent  # recognized by the batcher of buffered requests
    if payloads_sent is None:
        payloads_sent = ingest.payloads + resent + dead_records[Function.INGEST]
    checks = [
        Check("payloads sent = ingested + resent + dead-lettered at ingest", payloads_sent,
              ingest.payloads + resent + dead_records[Function.INGEST]),
        Check("ingest: received = accepted + duplicates + quarantined", ingest.received,
              ingest.accepted + ingest.duplicates + ingest.quarantined_total),
        Check("accepted = anonymize input + dead-lettered at anonymize", ingest.accepted,
              anonymize.input + dead_records[Function.ANONYMIZE]),
        Check("anonymize: input = anonymized + refused + quarantined", anonymize.input,
              anonymize.anonymized + sum(anonymize.refused.values())
              + anonymize.quarantined_total),
        Check("anonymized = aggregate input + dead-lettered at aggregate", anonymize.anonymized,
              aggregate.input + dead_records[Function.AGGREGATE]),
        Check("aggregate: input = aggregated + quarantined", aggregate.input,
              aggregate.aggregated + aggregate.quarantined_total),
        Check("aggregated = readings in published, suppressed and flagged cells + withdrawn",
              aggregate.aggregated, export.readings + withdrawn),
        Check("cells = published + suppressed + flagged + refused", export.cells,
              export.published + export.suppressed + export.flagged + export.refused_total),
        *epsilon_checks(deps, books.noised_releases),
    ]  # fmt: skip
    if bridge is not None:
        checks += bridge.checks()
    all_quarantined = sum((Counter(books.of(f).quarantined) for f in Function), Counter())
    return {  # the books first, in the order the summary reads them
        "city": deps.city.slug,
        "balanced": all(c.ok for c in checks),
        "received": ingest.received + dead_records[Function.INGEST],
        "resent": resent,
        "accepted": ingest.accepted,
        "duplicates": ingest.duplicates,
        "quarantined": dict(sorted(all_quarantined.items())),
        "dead_lettered": sum(dead_records.values()),
        # messages no function could use: quarantined (no claim check), dead-lettered
        "messages_quarantined": sum(poison.values()),
        "messages_dead_lettered": sum(len(d) for d in dead.values()) + iot.total(),
        "iot_failures": dict(sorted(iot.items())),
        "refused": anonymize.refused,
        "published_cells": export.published,
        "suppressed_cells": export.suppressed,
        "flagged_cells": export.flagged,
        "refused_cells": export.refused,
        "datasets": books.datasets,
        "days": books.days,
        "privacy_budget": privacy_budget(deps),
        "checks": [c.as_dict() for c in checks],
        "stages": {
            f.value: {
                **books.of(f).model_dump(exclude={"stage"}),
                "dead_lettered_messages": len(dead[f])
                + (iot.total() if f is Function.INGEST else 0),
                "dead_lettered_records": dead_records[f],
                "quarantined_messages": poison[f],
                "seconds": round((seconds or {}).get(f, 0.0), 3),
            }
            for f in Function
        },
        **({"bridge": bridge.books.model_dump()} if bridge is not None else {}),
    }


def noised_datasets(deps: Deps) -> list[str]:
    """The datasets that count people: their releases add noise and are charged to the ε
    ledger."""
    return [
        theme.slug
        for theme in themes_of(deps.city)
        if treatment(deps.city, quantities_of(deps.city, theme)).personal
    ]


def _spent(deps: Deps) -> dict[str, float]:
    """ε spent per person-day (a day), over every release in the ledger."""
    spent: dict[str, float] = {}
    for _, entry in entries(deps):
        spent[entry.day] = spent.get(entry.day, 0.0) + entry.epsilon
    return spent


def epsilon_checks(deps: Deps, noised_releases: list[list[str]]) -> list[Check]:
    """The ε ledger balances: every release published with noise names its entry, which is
    there, and no person-day spent more than its budget."""
    noise = deps.city.disclosure.noise
    audit = deps.names.bucket(Zone.AUDIT)
    found = {i.key for i in deps.store.list(audit, deps.names.epsilon_prefix())}
    charged = sum(1 for keys in noised_releases if len(keys) == 1 and keys[0] in found)
    over = sum(1 for spent in _spent(deps).values() if spent > noise.budget + 1e-9)
    return [
        Check("ε ledger: releases published with noise = releases charged",
              len(noised_releases), charged),
        Check("ε ledger: person-days over budget = 0", over, 0),
    ]  # fmt: skip


def privacy_budget(deps: Deps) -> dict[str, Any]:
    """What the ε ledger says: releases, days charged, the most a person-day spent."""
    noise = deps.city.disclosure.noise
    spent = _spent(deps)
    return {
        "mechanism": noise.mechanism,
        "epsilon_per_release": noise.epsilon,
        "budget_per_person_day": noise.budget,
        "contributions_per_day": noise.contributions_per_day,
        "releases": len(entries(deps)),
        "days": len(spent),
        "most_spent": round(max(spent.values(), default=0.0), 9),
    }
