"""The books: what each stage records of one input, and what the run report reads back.

One typed model per stage, shared by the writer (``service.stage``) and every reader (the
run report, export's duplicate check): a renamed or missing field fails validation
instead of reading as zero. Every field is required when read back. The books only the
export function writes (the open zone's and its jobs' records) are ``domain.export_books``.

Units: readings, except ``IngestCounts.payloads`` (hub payloads) and the export's
``partials`` and ``cells``. A message quarantined or dead-lettered whole counts the
``records`` it announced.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from citypipe.domain.model import Function

# The books' reason for the detections of devices residents opted out (``service.optout``):
# counted in ``quarantined`` (how many, never which) though no quarantine row is kept — a
# row would be a trace of the device; not a fault of the data (the metrics leave it out)
OPTED_OUT = "opted_out"


class Book(BaseModel):
    # built on first use, not at import: a function uses a few of the books (ingest: its
    # counts and the lineage), and each model built costs ~0.5 ms of every cold start
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class StageCounts(Book):
    """Counts of one input at one stage. ``quarantined``: readings by reason."""

    quarantined: dict[str, int]

    @classmethod
    def zero(cls) -> Self:
        values: dict[str, object] = {}
        for name, info in cls.model_fields.items():
            if name == "stage":
                continue
            values[name] = {} if info.annotation == dict[str, int] else 0
        return cls.model_validate(values)

    @classmethod
    def whole_input_quarantined(cls, records: int, reason: str) -> Self:
        """An input that could not be read at all: what it announced, quarantined."""
        raise NotImplementedError

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        values: dict[str, object] = {}
        for name in type(self).model_fields:
            if name == "stage":
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, dict):
                values[name] = dict(sorted((Counter(mine) + Counter(theirs)).items()))
            else:
                values[name] = mine + theirs
        return type(self).model_validate(values)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def readings_in(self) -> int:
        """What the input held, in the stage's unit (the quarantine rate's denominator)."""
        raise NotImplementedError


class IngestCounts(StageCounts):
    stage: Literal["ingest"] = "ingest"
    payloads: int  # hub payloads read (lines of a drop, documents of a webhook request)
    received: int  # readings in them (an unreadable payload counts as one)
    accepted: int  # readings written to raw
    duplicates: int  # readings seen before — in the same batch, or written by an earlier one
    # (service.claims): same device, quantity and time
    resent: int = 0  # payloads of webhook requests whose very content was received before
    # (service.buffer): not read again, as a resend the webhook answers "resent" is not

    @property
    def readings_in(self) -> int:
        return self.received

    @classmethod
    def whole_input_quarantined(cls, records: int, reason: str) -> Self:
        # a drop's payloads were never read: one reading each, a lower bound
        return cls(
            payloads=records, received=records, accepted=0, duplicates=0,
            quarantined={reason: records},
        )  # fmt: skip


class AnonymizeCounts(StageCounts):
    stage: Literal["anonymize"] = "anonymize"
    input: int  # readings in the raw object
    anonymized: int  # readings written to clean
    refused: dict[str, int]  # readings refused by the source's policy, by reason

    @property
    def readings_in(self) -> int:
        return self.input

    @classmethod
    def whole_input_quarantined(cls, records: int, reason: str) -> Self:
        return cls(input=records, anonymized=0, refused={}, quarantined={reason: records})


class AggregateCounts(StageCounts):
    stage: Literal["aggregate"] = "aggregate"
    input: int  # readings in the clean object
    aggregated: int  # readings in the partial's cells

    @property
    def readings_in(self) -> int:
        return self.input

    @classmethod
    def whole_input_quarantined(cls, records: int, reason: str) -> Self:
        return cls(input=records, aggregated=0, quarantined={reason: records})


class ExportCounts(StageCounts):
    """One theme's day (``Lineage.dataset``): every cell is published, suppressed or flagged."""

    stage: Literal["export"] = "export"
    partials: int  # partial objects merged (each theme reads all the day's: the report's sum
    # over themes counts a partial once per theme)
    cells: int  # zone x quantity x window cells of the theme's day
    readings: int  # readings in those cells
    published: int  # cells published
    suppressed: int  # cells suppressed by disclosure control
    flagged: int  # cells whose figures are not plausible: marked, never summed into a figure
    refused: dict[str, int]  # cells of a release refused whole, by reason (the ε budget of
    # a day spent, or its pseudonyms gone: the version published before stays)

    @property
    def readings_in(self) -> int:
        return self.readings

    @classmethod
    def whole_input_quarantined(cls, records: int, reason: str) -> Self:
        return cls(
            partials=records, cells=0, readings=0, published=0, suppressed=0, flagged=0,
            refused={}, quarantined={reason: records},
        )  # fmt: skip

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


Counts = Annotated[
    IngestCounts | AnonymizeCounts | AggregateCounts | ExportCounts, Field(discriminator="stage")
]
COUNTS: dict[Function, type[StageCounts]] = {
    Function.INGEST: IngestCounts,
    Function.ANONYMIZE: AnonymizeCounts,
    Function.AGGREGATE: AggregateCounts,
    Function.EXPORT: ExportCounts,
}


class ObjectRef(Book):
    bucket: str
    key: str
    etag: str


class Written(ObjectRef):
    records: int


class Lineage(Book):
    """One input processed by one function: the idempotency marker and the run's ledger.

    Written once (conditional put) in the audit zone at ``naming.lineage_key``.
    """

    v: Literal[1] = 1
    function: Function
    input: ObjectRef
    input_id: str
    window: str | None
    dataset: str | None  # export: the theme the day was published for
    counts: Counts
    outputs: list[Written]
    trace_id: str
    at: datetime

    @model_validator(mode="after")
    def _counts_of_its_function(self) -> Lineage:
        if self.counts.stage != self.function.value:
            raise ValueError(f"{self.function.value} lineage holds {self.counts.stage} counts")
        return self


# --- a long-running edge's own books --------------------------------------------------------


class BridgeCounts(Book):
    """What one MQTT bridge process did with the messages its broker delivered (messages,
    not readings: ``readings`` holds what the edge made of those it wrote). Logged on
    shutdown and put in a replay's run report; the durable ledger stays the lineage.

    Every delivery is written, delivered again after it was written (``redelivered``), a
    retained value the broker replays on subscribing (``retained``: no reading), or left
    unacknowledged for the broker to deliver again (``discarded`` when its connection
    dropped, ``pending`` at shutdown)."""

    messages: int  # delivered by the broker, redeliveries included
    written: int  # in batches the edge wrote (or found written before)
    redelivered: int  # delivered again after being written: acknowledged, not written again
    retained: int  # retained values sent on subscribing: acknowledged, not readings
    discarded: int  # unwritten when their connection dropped
    pending: int  # unwritten at shutdown
    batches: int  # batches written
    recovered: int  # batches an earlier run began, completed at start-up from the journal
    readings: IngestCounts  # the edge's counts of the batches this process wrote

    @property
    def balanced(self) -> bool:
        accounted = self.written + self.redelivered + self.retained
        return self.messages == accounted + self.discarded + self.pending


class PollCounts(Book):
    """What one tick of a source's poll of a hub API did (requests and batches, not
    readings: ``readings`` holds what the edge made of the batches it wrote). Logged with
    the tick's metrics; the durable ledger of what was written stays the lineage.

    Every device due is fetched (``devices``), or left to a later tick (``deferred``: the
    tick's work or time ran out, the API asked to wait, or it kept failing); every request
    is answered (``answered``) or failed with a reason (``failed``: ``rate_limited``,
    ``server_error``, ``no_answer``, ``refused``, ``malformed``, ``no_api_key``). Every item
    of an answer is a batch the edge wrote (``written``) or found written before
    (``duplicates``)."""

    devices: int  # devices due at this tick
    deferred: int  # devices left to a later tick
    requests: int  # requests sent (a retry is a request)
    answered: int  # answers read (2xx, the documented shape)
    failed: dict[str, int]  # requests and answers that gave nothing, by reason
    written: int  # batches the edge wrote
    duplicates: int  # batches written before (the same row or measurement fetched again)
    readings: IngestCounts  # the edge's counts of the batches written

    @classmethod
    def zero(cls) -> PollCounts:
        return cls(
            devices=0, deferred=0, requests=0, answered=0, failed={}, written=0, duplicates=0,
            readings=IngestCounts.zero(),
        )  # fmt: skip

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class WithdrawalRequested(Book):
    """A partner withdrew its permission (``naming.withdrawal_key``): from ``at`` the edge
    refuses its sources' readings (``partner_withdrawn``), and export's job purges them
    from the clean and aggregate zones and publishes every day that held them again."""

    v: Literal[1] = 1
    partner: str
    sources: list[str]
    at: datetime
