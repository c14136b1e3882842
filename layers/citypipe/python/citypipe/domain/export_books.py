"""The books only the export function writes: the open zone's record of each day published
(what the catalogue, the data package and the portal are built from) and the audit zone's
records of export's jobs (secrets destroyed, pseudonyms scrubbed, ε charged, withdrawals
carried out).

Apart from ``domain.books`` (the books every stage keeps) so that ingest, anonymize and
aggregate never define them: a model costs its module's import the collection of its fields
even when its build is deferred (~1 M instructions each).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from citypipe.domain.books import Book, ObjectRef, Written

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
    course: list[DayCourse] = Field(default_factory=list)  # none in records written before it


# --- the audit zone's records of export's jobs ----------------------------------------------


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
