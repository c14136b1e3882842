"""The run report: every stage's books, read back from the audit zone's lineage records.

Lineage records are written once per input (conditional put), so duplicated deliveries
are never double-counted. Dead-lettered messages are counted from the DLQs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from citypipe.domain import Function, Message, TerminalError, Zone
from citypipe.naming import input_id, lineage_key
from citypipe.runtime.events import parse_messages
from citypipe.stage import Deps


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


def _add(total: Counter[str], counts: dict[str, int] | None) -> None:
    total.update(counts or {})


def lineage_records(deps: Deps) -> Iterable[dict[str, Any]]:
    bucket = deps.names.bucket(Zone.AUDIT)
    for info in deps.store.list(bucket, f"lineage/{deps.city.city}/"):
        yield json.loads(deps.store.get(bucket, info.key).body)


def dead_letters(deps: Deps, function: Function) -> list[Message]:
    """Read a DLQ without consuming it (messages come back after the visibility timeout).

    A dead-lettered claim check whose input has a lineage record was processed after all
    (it failed after its outputs were written, e.g. while acknowledging): it is counted
    by its lineage, not again here.
    """
    seen: dict[str, Message] = {}
    queue = deps.names.dlq(function)
    audit = deps.names.bucket(Zone.AUDIT)
    while batch := deps.queue.receive(queue, 10):
        for message in batch:
            try:
                parsed = parse_messages(message.body, deps.city.city)
            except TerminalError:
                parsed = [Message(city="?", stage="?", bucket="", key="")]
            for claim in parsed:
                done = lineage_key(
                    deps.city.city, function, input_id(claim.bucket, claim.key, claim.etag)
                )
                if not deps.store.exists(audit, done):
                    seen.setdefault(message.message_id, claim)
    return list(seen.values())


def build_report(
    deps: Deps, payloads_sent: int, seconds: dict[Function, float] | None = None
) -> dict[str, Any]:
    stages: dict[Function, Counter[str]] = {f: Counter() for f in Function}
    quarantined: dict[Function, Counter[str]] = {f: Counter() for f in Function}
    refused: Counter[str] = Counter()
    exports: dict[str, dict[str, Any]] = {}
    for record in lineage_records(deps):
        function = Function(record["function"])
        counts = dict(record["counts"])
        _add(quarantined[function], counts.pop("quarantined", None))
        _add(refused, counts.pop("refused", None))
        if function is Function.EXPORT:
            previous = exports.get(record["window"])
            if previous is None or record["at"] > previous["at"]:
                exports[record["window"]] = record  # the latest publication of each day
            continue
        _add(stages[function], counts)
    for record in exports.values():
        _add(stages[Function.EXPORT], record["counts"])

    dead = {f: dead_letters(deps, f) for f in Function}
    dead_records = {f: sum(m.records for m in dead[f]) for f in Function}
    ingest, anonymize, aggregate, export = (stages[f] for f in Function)
    q = {f: sum(quarantined[f].values()) for f in Function}

    checks = [
        Check("payloads sent = ingested + dead-lettered at ingest", payloads_sent,
              ingest["payloads"] + dead_records[Function.INGEST]),
        Check("ingest: received = accepted + quarantined", ingest["received"],
              ingest["accepted"] + q[Function.INGEST]),
        Check("accepted = anonymize input + dead-lettered at anonymize", ingest["accepted"],
              anonymize["input"] + dead_records[Function.ANONYMIZE]),
        Check("anonymize: input = anonymized + refused + quarantined", anonymize["input"],
              anonymize["anonymized"] + sum(refused.values()) + q[Function.ANONYMIZE]),
        Check("anonymized = aggregate input + dead-lettered at aggregate", anonymize["anonymized"],
              aggregate["input"] + dead_records[Function.AGGREGATE]),
        Check("aggregate: input = aggregated + quarantined", aggregate["input"],
              aggregate["aggregated"] + q[Function.AGGREGATE]),
        Check("aggregated = readings in published and suppressed cells", aggregate["aggregated"],
              export["readings"]),
        Check("cells = published + suppressed", export["cells"],
              export["published"] + export["suppressed"]),
    ]  # fmt: skip
    all_quarantined = sum((quarantined[f] for f in Function), Counter())
    return {
        "city": deps.city.city,
        "received": ingest["received"] + dead_records[Function.INGEST],
        "accepted": ingest["accepted"],
        "quarantined": dict(sorted(all_quarantined.items())),
        "dead_lettered": sum(dead_records.values()),
        "refused": dict(sorted(refused.items())),
        "published_cells": export["published"],
        "suppressed_cells": export["suppressed"],
        "balanced": all(c.ok for c in checks),
        "checks": [c.as_dict() for c in checks],
        "stages": {
            f.value: {
                **dict(sorted(stages[f].items())),
                "quarantined": dict(sorted(quarantined[f].items())),
                "dead_lettered_messages": len(dead[f]),
                "dead_lettered_records": dead_records[f],
                "seconds": round((seconds or {}).get(f, 0.0), 3),
            }
            for f in Function
        },
        "days": sorted(exports),
    }
