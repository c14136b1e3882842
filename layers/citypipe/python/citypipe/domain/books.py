"""The books: what each stage records of one input, and what the run report reads back.

One typed model per stage, shared by the writer (``service.stage``) and every reader (the
run report, export's duplicate check): a renamed or missing field fails validation
instead of reading as zero. Every field is required when read back.

Units: readings, except ``IngestCounts.payloads`` (hub payloads) and the export's
``partials`` and ``cells``. A message quarantined or dead-lettered whole counts the
``records`` it announced.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
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


# --- the open zone's own books ---------------------------------------------------------------


class PublishedFile(Book):
    format: str
    key: str
    media_type: str
    bytes: int
    sha256: str


class VersionNote(Book):
    version: int
    note: str  # what changed against the version before
    # the partial objects it was made from: no longer stated (they counted the batches a
    # people counter sent, un-noised; decision 0078), read from records written before
    partials: int | None = None


class ZoneSummary(Book):
    """A zone's day of one quantity, over its published cells only: adding suppressed
    cells back would let anyone recover them by subtraction."""

    zone: str
    quantity: str
    unit: str
    statistic: Literal["mean", "total", "peak"]
    value: float | None  # None: no published cell that day
    minimum: float | None
    maximum: float | None
    windows: int
    published: int
    suppressed: int
    flagged: int
    latest_window: str | None  # the last published window's start, ISO 8601 UTC
    latest_value: float | None


class DayCourse(Book):
    """A quantity's course of the day over the whole city, an hour (UTC) at a time, from
    its published cells only (suppressed cells are never summed): per hour the mean of the
    readings, their total, or (people) the most distinct devices in one of its windows,
    summed over the zones. ``hours``: 24 values, None for an hour with no published cell."""

    quantity: str
    unit: str
    statistic: Literal["mean", "total", "peak"]
    hours: list[float | None]


class Publication(Book):
    """A theme's day as published, at ``naming.publication_key``: written by export next to
    the files, read back to build the catalogue, the data package and the portal.

    Open data, like the files it describes: counts, hashes and the version history.
    ``readings`` is None for a people dataset: nothing exact about people is public.
    """

    v: Literal[1] = 1
    city: str
    theme: str
    day: str
    version: int
    cells: int
    readings: int | None
    published: int
    suppressed: int
    flagged: int
    files: list[PublishedFile]
    summary: list[ZoneSummary]
    history: list[VersionNote]
    course: list[DayCourse] = []  # records written before the course was kept have none


class KeyDestruction(Book):
    """The hourly job destroyed daily secrets: every day before ``destroyed_before`` is gone
    for good. Written in the audit zone at ``naming.key_destruction_key``."""

    v: Literal[1] = 1
    destroyed_before: date
    destroyed: int  # secrets deleted by this run
    at: datetime


class EpsilonCharge(Book):
    """The one release of a people dataset's day, charged to the ε ledger of that day: it
    costs every device of the day ``epsilon`` (and ``delta``). Written once, by
    conditional put, at ``naming.epsilon_charge_key`` before the release's files; it names
    the clean objects the release was computed from (``inputs``, ``key@etag``), so the
    release can be recomputed exactly — never drawn anew. ``spent``: what the day has
    spent with it, never over ``budget`` (decision 0078)."""

    v: Literal[3] = 3
    city: str
    dataset: str
    day: str
    release: str  # HMAC of the release's counts under the noise key (core.people)
    inputs: list[str]  # the clean objects it counted, key@etag
    mechanism: str
    epsilon: float  # what this release costs one device's day
    delta: float | None
    contributions_per_day: int  # the most cells one device counts in (the sensitivity)
    spent: float  # ε the day has spent, this release included
    delta_spent: float | None  # δ likewise (gaussian)
    budget: float  # ε per person-day
    at: datetime


class CleanScrubbed(Book):
    """A clean object of a person-related source whose day's secret was destroyed, rewritten
    without its pseudonyms by the hourly job (``naming.scrub_record_key``): the input it
    replaced and the object written. The rows, their times, zones and values stay."""

    v: Literal[1] = 1
    input: ObjectRef
    output: Written
    day: str
    at: datetime


class CleanDaySettled(Book):
    """Every clean object of ``day`` holds no pseudonym, and no new one can come (the day's
    secret is long destroyed and raw objects live 24 hours): the hourly job skips the day
    from now on (``naming.scrub_day_key``)."""

    v: Literal[1] = 1
    day: str
    scrubbed: int  # objects this run rewrote
    at: datetime


class WithdrawalRequested(Book):
    """A partner withdrew its permission (``naming.withdrawal_key``): from ``at`` the edge
    refuses its sources' readings (``partner_withdrawn``), and export's job purges them
    from the clean and aggregate zones and publishes every day that held them again."""

    v: Literal[1] = 1
    partner: str
    sources: list[str]
    at: datetime


class WithdrawalCarriedOut(Book):
    """One run of a withdrawal (``naming.withdrawal_run_key``): the partner's objects it
    deleted from the clean and aggregate zones, the readings those partials aggregated (no
    published cell counts them any more: the books say where they went), the days
    published again, and the people releases refused (nothing purged then)."""

    v: Literal[1] = 1
    partner: str
    clean: list[str]  # keys deleted
    aggregates: list[str]  # keys deleted
    readings: int  # the readings the deleted partials aggregated
    days: list[str]  # exported again without them
    refused: str = ""  # why nothing was purged, if so
    at: datetime
