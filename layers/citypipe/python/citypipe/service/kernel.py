"""The shared kernel of the services: what a function works on (``Deps``), what a stage's
core returns (``Outcome`` of ``Output``s) and the logger. Types only: the machinery that
writes an outcome exactly once is ``service.stage``'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from citypipe.domain.books import StageCounts
from citypipe.domain.city import City
from citypipe.domain.model import Function, Message, Zone
from citypipe.domain.naming import StackNames
from citypipe.ports import Body, Clock, ObjectStore, Queue, StoredObject

log = logging.getLogger("citypipe")


@dataclass(frozen=True)
class Deps:
    """What every stage touches, passed in by its function's composition root. A stage
    that needs more (the edge's key store, export's scratch space) gets it from its root
    as well."""

    city: City
    names: StackNames
    store: ObjectStore
    queue: Queue
    clock: Clock


@dataclass
class Output:
    zone: Zone
    key: str
    body: Body  # bytes, or a local file put from the file (export's open files)
    records: int
    format: str
    content_type: str = "application/octet-stream"
    notify: Function | None = None  # the function whose queue is told about this object
    replace: bool = False  # a stable public key recomputed from all inputs (export)


@dataclass
class Outcome:
    """What a core returns: objects to write and the counts for the run ledger."""

    outputs: list[Output]
    counts: StageCounts
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    window: str | None = None
    dataset: str | None = None  # export: the theme published
    consume_input: bool = False  # set by run_stage when the core succeeded


# A stage's core: the object a claim check names, the claim check, the stack, the input's
# identity -> what to write.
Core = Callable[[StoredObject, Message, Deps, str], Outcome]
