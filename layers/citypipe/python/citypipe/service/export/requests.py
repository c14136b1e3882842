"""An export request from export's queue (an operator's ``request-export``, a replay's end):
the day it names, or every day with partials."""

from __future__ import annotations

from citypipe.domain.model import Message, Zone
from citypipe.domain.naming import day_of
from citypipe.service.export.day import ExportPorts, export_day
from citypipe.service.export.metadata import publish_metadata
from citypipe.service.export.retry import retried
from citypipe.service.kernel import Deps


def days_with_partials(deps: Deps) -> list[str]:
    """Every day that has partials: what an on-demand 'export everything' publishes."""
    bucket = deps.names.bucket(Zone.AGGREGATES)
    prefix = deps.names.aggregates_prefix()
    return sorted({day_of(i.key, prefix) for i in deps.store.list(bucket, prefix)})


def export_request(deps: Deps, ports: ExportPorts, message: Message) -> str:
    """Every day the request names is attempted; the metadata is rebuilt once; the first
    failure is raised (the request comes again, the days done are duplicates)."""
    days = [message.window] if message.window else days_with_partials(deps)
    results, failures = [], []
    for day in days:
        try:
            results.append(export_day(deps, ports, day, trace_id=message.trace_id, metadata=False))
        except Exception as exc:  # a day's failure must not block the other days
            results.append("failed")
            failures.append(exc)
    retried(lambda: publish_metadata(deps, ports.scratch))
    if failures:
        raise failures[0]
    return ",".join(results)
