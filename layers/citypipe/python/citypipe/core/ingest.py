"""The one normalization path: hub payloads -> pseudonymous raw records, or rejections.

For every payload of a batch, whatever its format: bound its size, parse it (orjson),
let the format's adapter read it into readings, then for each reading alone: resolve the
device in the registry (never by a pattern; its registered zone, never a claimed
position), drop it if it is a detection of a device a resident opted out (``opted_out``:
counted, never quarantined, before anything else is judged or made of it, a pseudonym
above all), map the field to a controlled quantity, check the unit, the number, the
plausible range and the time (from the first day whose key lives when the payload
arrived — ``too_old`` before, 2000 at the earliest — to a few minutes ahead of the
clock), replace the data subject's identifier by its keyed pseudonym (one per device and
day) and drop every other identifier. A reading seen before in the batch (same sensor,
quantity and time) is a duplicate (one an earlier batch wrote: ``service.claims``). A
message on a hub's device topic whose payload is another device's is refused whole
(``topic_device_mismatch``).

Nothing is dropped silently and nothing crashes a batch: a payload or reading that cannot
be used is rejected with a machine-readable reason and its JSON path; the payload is kept
once, as its shape only (``core.shape``: names the format's schema or the city's registry
knows, types and lengths, never a value), in a quarantine row.

A quarantine row: ``{"line", "received_at", "source", "adapter", "payload" (its shape),
"rejected": {reason: readings}, "details": [{"reason", "detail", "path"}, ...]}``, each
path in the shape's names; the books count readings.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache, partial
from typing import Any, Literal, NamedTuple

import orjson

from citypipe.core.formats import Format
from citypipe.core.formats.common import Context, Reading, Rejection, Unreadable, number
from citypipe.core.images import IMAGE_HINT, IMAGE_HINT_TEXT, image_path
from citypipe.core.pseudonyms import KeyFor, OptOuts, pseudonyms
from citypipe.core.shape import body_shape, schema_path, shape
from citypipe.domain.books import OPTED_OUT
from citypipe.domain.city import Action, City
from citypipe.domain.errors import KeyDestroyedError
from citypipe.domain.limits import MAX_DETAILS, MAX_PAYLOAD_BYTES
from citypipe.domain.model import (
    EARLIEST_EPOCH,
    FUTURE_SLACK_S,
    RAW_FIELDS,
    RawRecord,
)
from citypipe.domain.personal import HUB_PERSONAL, OPT_OUT_FIELD, PERSONAL_FIELDS
from citypipe.domain.registry import Plan, Resolved, normalize_id
from citypipe.domain.topics import DEVICE_ID, topic_device

log = logging.getLogger("citypipe")

Partition = tuple[str, int]  # (source, day as epoch seconds): one raw object each
# A raw record as a tuple, its values in RAW_FIELDS order (``refused`` None unless set): the
# edge makes ~750,000 a city day and writes them as columns, so no dict per reading
RawRow = tuple[str, str, str, str, float, str, str, str | None, str | None]
# A reading's identity: (sensor, quantity, time in microseconds, pseudonym). The same
# identity twice is a duplicate: a hub's resend, never a second reading.
Identity = tuple[str, str, int, str | None]
NO_PRIOR: frozenset[Identity] = frozenset()
# a reading of a source whose partner withdrew its permission (service.partners)
WITHDRAWN = "partner_withdrawn"
_REFUSED = object()
_UNSEEN: Any = object()
_UNREAD: Any = object()  # the document of a payload refused before it was parsed
# An enum's member read from its class costs ~0.2 µs (Python 3.11): once here, not per field
_REFUSE, _DROP = Action.REFUSE, Action.DROP
_IMAGE_HINT = IMAGE_HINT.search


def as_record(row: RawRow) -> RawRecord:
    """A raw row as a record, ``refused`` only where set (as the JSON Lines held it)."""
    record: dict[str, Any] = dict(zip(RAW_FIELDS, row, strict=True))
    if record["refused"] is None:
        del record["refused"]
    return record  # type: ignore[return-value]


class Payload(NamedTuple):
    """One hub message as received: its body, and what the transport knew of it (a tuple:
    a replay makes hundreds of thousands, a frozen dataclass costs a microsecond each)."""

    body: bytes | str | Any  # bytes or text of JSON; a CSV row arrives already as a document
    ctx: Context
    line: int = 1
    parsed: bool = False  # body is a document already (CSV rows)
    rejection: Rejection | None = None  # refused before parsing (a CSV line that is no row)
    fmt: Format | None = None  # its hub format, where a batch mixes them (else the batch's)
    source: str | None = None  # the one source its transport vouches for (an MQTT topic's)


@dataclass
class Normalized:
    """The pure result of normalizing a batch of payloads."""

    by_partition: dict[Partition, list[RawRow]] = field(default_factory=lambda: defaultdict(list))
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # a row per payload
    reasons: Counter[str] = field(default_factory=Counter)  # rejected readings by reason
    received: int = 0
    payloads: int = 0
    duplicates: int = 0
    opted_out: int = 0  # detections of devices residents opted out (in ``reasons`` too)
    seen: set[Identity] = field(default_factory=set)  # the identities of the readings accepted
    # what was refused, as received: hashed into the batch's identity (two payloads of one
    # shape are two), never kept
    refused: hashlib._Hash = field(default_factory=hashlib.sha256)

    @property
    def accepted(self) -> int:
        return sum(len(rows) for rows in self.by_partition.values())

    def records(self) -> list[RawRecord]:
        """The raw records as the raw zone holds them, in partition order (tests, tools)."""
        return [as_record(row) for _, rows in sorted(self.by_partition.items()) for row in rows]

    def reject(
        self,
        row: dict[str, Any],
        rejections: list[Rejection],
        named: Callable[[str], str],
        content: bytes,
        *,
        counted: bool,
    ) -> None:
        """Quarantine a payload's rejected readings: one row (what ``_Batch._quarantine``
        keeps of the payload), the readings counted by reason, each detail's path as
        ``named`` names it; ``content``, the payload as received, only hashed."""
        counts = Counter(r.reason for r in rejections)
        if not counted:
            self.received += len(rejections)
        self.reasons.update(counts)
        row["rejected"] = dict(counts)
        row["details"] = _details(rejections, named)
        self.refused.update(len(content).to_bytes(8, "big"))
        self.refused.update(content)
        self.quarantine.append(row)


def _details(rejections: Iterable[Rejection], named: Callable[[str], str]) -> list[dict[str, str]]:
    """The first MAX_DETAILS distinct (reason, detail, path), and the first of any other
    reason; each path named as the payload's shape names it."""
    details: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    reasons: set[str] = set()
    for rejection in rejections:
        triple = (rejection.reason, rejection.detail, rejection.path)
        if triple in seen or (len(details) >= MAX_DETAILS and rejection.reason in reasons):
            continue
        seen.add(triple)
        reasons.add(rejection.reason)
        path = named(rejection.path)
        details.append({"reason": rejection.reason, "detail": rejection.detail, "path": path})
    return details


@lru_cache(maxsize=64)
def _day(days: int) -> date:
    """The UTC date ``days`` after 1970-01-01."""
    return datetime.fromtimestamp(days * 86_400, UTC).date()


@lru_cache(maxsize=64)
def _day_text(days: int) -> str:
    return _day(days).isoformat()


# ``THH:MM:`` of each minute of a day, and ``SS`` of each second of a minute
_MINUTES = tuple(f"T{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1_440))
_SECONDS = tuple(f"{second:02d}" for second in range(60))


def _second(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of an epoch second (UTC): the day's text, cached, and the time
    of day looked up — a third of the cost of ``strftime`` for the many distinct seconds of
    a batch."""
    days, rest = divmod(second, 86_400)
    minutes, seconds = divmod(rest, 60)
    return _day_text(days) + _MINUTES[minutes] + _SECONDS[seconds]


def iso_utc(at: float) -> str:
    """Epoch seconds as ISO 8601 in UTC with microseconds (byte-stable, 4-digit year). Not
    cached beyond a batch (``_Batch.moments``): a cache kept across batches would hold
    tens of thousands of a batch's strings, each keeping the memory around it from being
    given back once the batch is written."""
    second, micro = divmod(round(at * 1_000_000), 1_000_000)
    days, rest = divmod(second, 86_400)  # as _second, without its call (a reading in two)
    minutes, seconds = divmod(rest, 60)
    text = _day_text(days) + _MINUTES[minutes] + _SECONDS[seconds]
    if not micro:  # most hubs send whole seconds: no format spec (a third of the cost)
        return text + ".000000Z"
    return f"{text}.{micro:06d}Z"


@dataclass(frozen=True)
class _Policy:
    subject: str | None
    actions: dict[str, Action]
    refuse: frozenset[str]  # the personal fields whose action is REFUSE

    @classmethod
    def of(cls, subject: str | None, personal: dict[str, Action]) -> _Policy:
        refuse = frozenset(name for name, action in personal.items() if action is _REFUSE)
        return cls(subject, personal, refuse)


def _measured(dev: Resolved, plan: Plan, r: Reading) -> float | Rejection:
    """A reading's value in its quantity's unit, within the plausible range; or why not."""
    quantity, ucum, hub_unit, scale, low, high = plan
    if r.unit is not None and r.unit != (hub_unit or ucum):
        return Rejection(
            "unit_mismatch", f"{dev.sensor}.{r.field} is in {hub_unit or ucum!r}", r.path
        )
    value = r.value
    if type(value) is not float:
        value = number(value)
        if value is None:
            return Rejection("invalid_value", "not a finite number", r.path)
    if scale is not None:
        value *= scale
    if not low <= value <= high:
        if not math.isfinite(value):
            return Rejection("invalid_value", "not a finite number", r.path)
        return Rejection(
            "out_of_range", f"{quantity} outside its plausible [{low:g}, {high:g}]", r.path
        )
    return value


def _mistimed(at: float, latest: float, path: str) -> Rejection:
    """Why a reading's time is refused: ahead of the clock, before 2000 (or no time), or
    of a day whose key was no longer kept when it arrived (``too_old``: its resends could
    not be told)."""
    if at > latest:
        return Rejection("future_time", "more than 5 minutes ahead of the clock", path)
    if not at >= EARLIEST_EPOCH:
        return Rejection("implausible_time", "before 2000-01-01 or not a time", path)
    return Rejection("too_old", "of a day before the first whose key is kept", path)


def _refused_field(dev: Resolved, policy: _Policy, r: Reading) -> str | Rejection | None:
    """The first personal field the reading carries that its source refuses (None: none);
    a rejection for one its source declares no rule for. (``_Batch._subject`` tells the
    common case, a reading with none of either, without it.)"""
    actions, refuse = policy.actions, policy.refuse
    refused = None
    for name in r.personal or ():
        if name not in actions:
            what = repr(name) if name in PERSONAL_FIELDS else "a personal field it carries"
            detail = f"{dev.source} declares no rule for {what}"  # a name citypipe knows only
            return Rejection("undeclared_personal_field", detail, r.path)
        if refused is None and name in refuse:
            refused = name
    return refused


def _no_subject(
    dev: Resolved, policy: _Policy, r: Reading, refused: str | None
) -> tuple[None, str | None] | Rejection:
    """A source without a data subject: a subject the hub still sends (a Meraki client's
    MAC) is refused or dropped as the policy says, never pseudonymized."""
    if r.subject is not None:
        action = policy.actions.get(HUB_PERSONAL.get(r.hub, ("",))[0])
        if action is _REFUSE:
            return None, refused or HUB_PERSONAL[r.hub][0]
        if action is not _DROP:
            return Rejection(
                "undeclared_personal_field", f"{dev.source} declares no data subject", r.path
            )
    return None, refused


class _Batch:
    """The per-batch state of the normalization path: caches and the duplicate index."""

    __slots__ = (
        "aliases", "arrivals", "batch_source", "city", "day_keys", "devices", "digests",
        "earliest", "first_moments", "fmt", "key_for", "known", "latest", "moments",
        "only_source", "opt_out_of", "opt_outs", "partitions", "payload_source", "policies",
        "prior", "result", "seen", "spellings", "topics", "withdrawn",
    )  # fmt: skip

    def __init__(
        self,
        city: City,
        fmt: Format | None,
        now: float,
        key_for: KeyFor | None,
        only_source: str | None = None,
        prior: Container[Identity] = NO_PRIOR,
        backfill: bool = False,
        opt_outs: OptOuts | None = None,
        withdrawn: Container[str] = frozenset(),
    ) -> None:
        self.city = city
        self.opt_outs = opt_outs
        # an opt-out's digest (``OptOuts.digest``), its key's HMAC begun once for the batch
        self.opt_out_of = None if opt_outs is None else opt_outs.digester()
        self.withdrawn = withdrawn  # sources whose partner withdrew: refused
        self.earliest = EARLIEST_EPOCH  # the payload's: its arrival's first living day
        # arrival day -> its first living moment (a backfill: none, 2000 is the bound)
        self.first_moments: dict[int, float] | None = None if backfill else {}
        # the arrivals [from, to) whose first living moment is ``earliest`` (a batch's
        # payloads arrive within a day or two: the moment is looked up once a day)
        self.arrivals = (math.inf, -math.inf)
        self.fmt = fmt
        self.batch_source = self.only_source = only_source
        self.payload_source = only_source  # the source a payload's readings belong to
        self.prior = prior
        self.latest = now + FUTURE_SLACK_S
        self.key_for = key_for
        self.devices: dict[tuple[str, Any], tuple[Resolved, _Policy] | None] = {}
        self.policies = {
            name: _Policy.of(s.policy.subject_field, dict(s.policy.personal))
            for name, s in city.sources.items()
        }
        # pseudonyms of this batch (a device is seen again and again), by (epoch day,
        # identifier), and the opt-out digests of its subjects, by identifier: kept no longer
        # than the batch, so no derived key outlives it in a warm container
        self.aliases: dict[tuple[int, str], str] = {}
        self.digests: dict[str, str] = {}
        # a reading's time -> (its microseconds, its ISO text, its day's first second)
        self.moments: dict[float, tuple[int, str, int]] = {}
        # the pseudonyms under the key of each UTC day (epoch days)
        self.day_keys: dict[int, Callable[[str], str]] = {}
        self.known: dict[str, frozenset[str]] = {}  # names a shape keeps, by format (if any)
        # (format, MQTT topic) -> the device it names (``_topic_wanted``); (hub, device id)
        # -> its registry spelling
        self.topics: dict[tuple[str, str], tuple[str, str] | None] = {}
        self.spellings: dict[tuple[str, Any], str | None] = {}
        self.result = Normalized()
        self.seen = self.result.seen
        self.partitions = self.result.by_partition

    def device(self, hub: str, ident: Any) -> tuple[Resolved, _Policy] | None:
        """A registered device and its source's policy (remembered for the batch)."""
        key = (hub, ident)
        found: tuple[Resolved, _Policy] | None = self.devices.get(key, _UNSEEN)
        if found is _UNSEEN:
            dev = self.city.device(hub, ident) if isinstance(ident, str) else None
            found = None if dev is None else (dev, self.policies[dev.source])
            self.devices[key] = found
        return found

    def reading(self, r: Reading) -> Literal[True] | Rejection | None:
        """A reading made a raw record (True: its row added to its partition's), rejected,
        or None when it is no reading (a field the device's profile ignores) or a
        duplicate."""
        found = self.devices.get((r.hub, r.device), _UNSEEN)
        if found is _UNSEEN:
            found = self.device(r.hub, r.device)
        if found is None:
            return Rejection(
                "unknown_device", f"no {r.hub} device of that id is registered", r.path
            )
        dev = found[0]
        if self.payload_source is None:
            self.payload_source = dev.source
        if (
            self.opt_outs is not None
            and (r.subject is not None or r.personal)  # else no device address to tell
            and self._opted_out(dev, r)
        ):
            return None  # first: nothing else is judged, or kept, of it
        plan = dev.plan.get(r.field)
        if plan is None and r.field in dev.ignored:
            return None  # a field the profile ignores by name (a third of them): no reading
        if (
            plan is None
            or (self.only_source is not None and dev.source != self.only_source)
            or dev.source in self.withdrawn
        ):
            return self._unread(dev, r)
        value = r.value
        kind = type(value)
        unit = r.unit
        if (  # the common case inline: a number in range, in the quantity's unit
            (unit is None or unit == (plan[2] or plan[1]))
            and plan[3] is None
            and (kind is float or kind is int)
            and plan[4] <= value <= plan[5]
        ):
            value = value if kind is float else float(value)  # an int: as a float
        else:
            value = _measured(dev, plan, r)
            if type(value) is Rejection:
                return value
        at = r.at
        if not self.earliest <= at <= self.latest:
            return _mistimed(at, self.latest, r.path)
        return self._kept(found, plan, value, r)

    def _unread(self, dev: Resolved, r: Reading) -> Rejection | None:
        """Why the device's profile does not read the reading's field: None for a field
        it ignores by a glob (``reading`` let those it ignores by name go already); a
        rejection for another source's device, a source whose partner withdrew, or a
        field it does not know."""
        name = r.field
        if name not in dev.plan and dev.ignore.match(name):
            return None
        if self.only_source is not None and dev.source != self.only_source:
            return Rejection(
                "wrong_source", f"{dev.sensor} is not a {self.only_source} device", r.path
            )
        if dev.source in self.withdrawn:
            return Rejection(WITHDRAWN, f"{dev.sensor}'s partner withdrew its permission", r.path)
        return Rejection("unknown_field", f"{dev.sensor}'s profile has no such field", r.path)

    def _kept(
        self, found: tuple[Resolved, _Policy], plan: Plan, value: float, r: Reading
    ) -> Literal[True] | Rejection | None:
        """The raw record of a valid reading, added to its partition's rows (True): its
        data subject pseudonymized, never a duplicate (None: counted as one)."""
        dev, policy = found
        at = r.at
        alias = refused = None
        if policy.subject is not None or r.personal or r.subject is not None:
            subject = self._subject(dev, policy, r, at)
            if type(subject) is Rejection:
                return subject
            alias, refused = subject  # type: ignore[misc]
        moment = self.moments.get(at)  # a payload's readings share their time
        if moment is None:
            moment = self.moments[at] = (
                round(at * 1_000_000),
                iso_utc(at),
                int(at // 86_400) * 86_400,
            )
        quantity = plan[0]
        identity = (dev.sensor, quantity, moment[0], alias)
        seen = self.seen
        known = len(seen)
        seen.add(identity)  # one lookup where it is new (most are): added, or seen before
        if len(seen) == known or (self.prior is not NO_PRIOR and self._prior(identity)):
            self.result.duplicates += 1
            return None
        source = dev.source
        row = (source, dev.sensor, quantity, plan[1], value, moment[1], dev.zone, alias, refused)
        self.partitions[source, moment[2]].append(row)
        return True

    def _prior(self, identity: Identity) -> bool:
        """Whether an identity new to the batch was written before it (then it is no
        longer counted as the batch's)."""
        if identity not in self.prior:
            return False
        self.seen.discard(identity)
        return True

    def _opted_out(self, dev: Resolved, r: Reading) -> bool:
        """Whether the reading is a detection of a device a resident opted out: then it is
        counted (``opted_out``) and hashed into the batch's identity (two such batches are
        two), never quarantined, and no pseudonym of it is made."""
        opt_outs, digest_of = self.opt_outs, self.opt_out_of
        assert opt_outs is not None and digest_of is not None
        ident = r.subject  # a hub's subject (Meraki's clientMac), else a device address
        if ident is None and r.personal:
            ident = r.personal.get(OPT_OUT_FIELD)
        if not isinstance(ident, str):
            return False
        digest = self.digests.get(ident)
        if digest is None:
            try:
                digest = self.digests[ident] = digest_of(ident)
            except UnicodeEncodeError:
                return False
        if digest not in opt_outs.digests:
            return False
        result = self.result
        result.opted_out += 1
        result.reasons[OPTED_OUT] += 1
        result.refused.update(f"{dev.sensor}\x1f{r.field}\x1f{r.at!r}\x1f{digest}".encode())
        return True

    def _subject(
        self, dev: Resolved, policy: _Policy, r: Reading, at: float
    ) -> tuple[str | None, str | None] | Rejection:
        """(pseudonym, refused field) of a reading: the data subject's identifier made a
        keyed pseudonym, personal fields checked against the policy; never their values."""
        personal, refused = r.personal, None
        if personal and not (  # the common case told without a step in Python per field
            policy.refuse.isdisjoint(personal) and policy.actions.keys() >= personal.keys()
        ):
            refused = _refused_field(dev, policy, r)
            if type(refused) is Rejection:
                return refused
        if policy.subject is None:
            return _no_subject(dev, policy, r, refused)  # type: ignore[arg-type]
        ident = r.subject
        if ident is None and personal:
            ident = personal.get(policy.subject)
        if type(ident) is str:  # most: a subject the batch made a pseudonym of that day
            alias = self.aliases.get((int(at // 86_400), ident))
            if alias is not None:
                return alias, refused  # type: ignore[return-value]
        if ident is None:
            return Rejection(
                "missing_personal_field", f"{dev.source} readings carry {policy.subject!r}", r.path
            )
        if not isinstance(ident, str) or not ident.strip() or self.key_for is None:
            return Rejection("invalid_identifier", f"{policy.subject} is not a string", r.path)
        try:
            alias = self._alias(ident, at)
        except KeyDestroyedError:
            return Rejection("key_destroyed", "the day's pseudonymization key is destroyed", r.path)
        except UnicodeEncodeError:
            return Rejection("invalid_identifier", f"{policy.subject} is not valid text", r.path)
        return alias, refused  # type: ignore[return-value]

    def _alias(self, ident: str, at: float) -> str:
        """The keyed pseudonym of a subject seen at ``at``: HMAC under the city's key for
        that UTC day (remembered for the batch only)."""
        days = int(at // 86_400)
        alias = self.aliases.get((days, ident))
        if alias is None:
            of = self.day_keys.get(days)
            if of is None:
                assert self.key_for is not None
                of = self.day_keys[days] = pseudonyms(self.key_for(_day(days)))
            alias = self.aliases[days, ident] = of(ident)
        return alias

    def _format(self, payload: Payload) -> Format:
        fmt = payload.fmt or self.fmt
        if fmt is None:
            raise ValueError("a payload of a mixed batch names its format")
        return fmt

    def _adapter(self, payload: Payload) -> str:
        """Who read the payload, for its quarantine row: refused before any format could
        (a message on a topic no source declares), ``none``."""
        fmt = payload.fmt or self.fmt
        if fmt is None and payload.rejection is not None:
            return "none"
        return self._format(payload).label

    def _document(self, payload: Payload) -> Any:
        """The payload parsed, or _REFUSED once it is quarantined whole."""
        body = payload.body
        if payload.rejection is not None:
            self._quarantine(payload, [payload.rejection], counted=False)
            return _REFUSED
        if payload.parsed:
            return body
        size = len(body)
        if size > MAX_PAYLOAD_BYTES:
            too_large = Rejection("payload_too_large", f"{size} bytes > {MAX_PAYLOAD_BYTES}")
            self._quarantine(payload, [too_large], counted=False)
            return _REFUSED
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self._quarantine(payload, [_unparsed(body, exc)], counted=False)
            return _REFUSED

    def _items(self, fmt: Format, document: Any, payload: Payload) -> list[Reading | Rejection]:
        try:
            return fmt.parse(document, payload.ctx)
        except Unreadable as exc:
            return [exc.rejection]
        except RecursionError:
            return [Rejection("invalid_payload", "nested too deep")]
        except Exception as exc:  # an input the adapter did not foresee: this payload alone
            log.error("adapter failed", extra={"adapter": fmt.label, "error": type(exc).__name__})
            return [Rejection("adapter_error", f"{fmt.label} failed: {type(exc).__name__}")]

    def payload(self, payload: Payload) -> None:
        result = self.result
        result.payloads += 1
        self.only_source = self.payload_source = (
            self.batch_source if payload.source is None else payload.source
        )
        ctx = payload.ctx
        if not self.arrivals[0] <= ctx.received_at < self.arrivals[1]:
            self.earliest = self._first_moment(ctx.received_at)
        document = self._document(payload)
        if document is _REFUSED:
            return
        body = payload.body  # bytes (most): no image unless its text hints at one
        if (type(body) is not bytes or _IMAGE_HINT(body)) and self._image(payload, document):
            return
        fmt = self._format(payload)
        items = self._items(fmt, document, payload)
        topic = ctx.topic
        if topic is not None and self.topics.get((fmt.name, topic), _UNSEEN) is not None:
            refusal = self._topic_refusal(fmt, topic, document, items)
            if refusal is not None:  # another device's topic: none of its readings
                self._quarantine(payload, [refusal], document, counted=False)
                return
        rejected: list[Rejection] = []
        read = 0
        dropped = result.duplicates + result.opted_out
        reading = self.reading
        for item in items:
            outcome = item if type(item) is Rejection else reading(item)  # type: ignore[arg-type]
            if outcome is True:
                read += 1
            elif outcome is not None:
                rejected.append(outcome)
        result.received += read + len(rejected) + result.duplicates + result.opted_out - dropped
        if not read and not rejected and not items:
            rejected.append(Rejection("no_readings", "the payload holds no reading"))
            result.received += 1
        if rejected:
            self._quarantine(payload, rejected, document, counted=True)

    def _topic_refusal(
        self, fmt: Format, topic: str, document: Any, items: list[Reading | Rejection]
    ) -> Rejection | None:
        """Why a message is refused for its topic: the topic names a device
        (``_topic_wanted``, remembered for the batch) and the payload is another's, or
        names none."""
        key = (fmt.name, topic)
        wanted = self.topics.get(key, _UNSEEN)
        if wanted is _UNSEEN:
            wanted = self.topics[key] = _topic_wanted(fmt, topic)
        if wanted is None:
            return None
        kind, device = wanted
        if kind == DEVICE_ID:
            ids = document.get("end_device_ids") if isinstance(document, dict) else None
            same = isinstance(ids, dict) and ids.get("device_id") == device
        else:
            devices = {r.device for r in items if type(r) is Reading}
            same = all(self._spelling(fmt.hub, d) == device for d in devices)
        if same:
            return None
        return Rejection("topic_device_mismatch", "the payload is not of the topic's device")

    def _spelling(self, hub: str, ident: Any) -> str | None:
        """The registry's spelling of a hub's device id (None: no string), remembered for
        the batch."""
        key = (hub, ident)
        spelled: str | None = self.spellings.get(key, _UNSEEN)
        if spelled is _UNSEEN:
            spelled = normalize_id(hub, ident) if isinstance(ident, str) else None
            self.spellings[key] = spelled
        return spelled

    def _first_moment(self, arrived: float) -> float:
        """The first moment of the first day whose key lives when a payload arrived
        (``City.first_living_day``; an arrival ahead of the clock is taken as now): a
        reading before it is ``too_old``. ``arrivals`` becomes the span of arrival times
        of the same first moment."""
        moments = self.first_moments
        if moments is None:
            self.arrivals = (-math.inf, math.inf)
            return EARLIEST_EPOCH
        if not arrived >= EARLIEST_EPOCH:
            self.arrivals = (-math.inf, EARLIEST_EPOCH)
            return EARLIEST_EPOCH
        latest = self.latest
        days = int((arrived if arrived <= latest else latest) // 86_400)  # min(), no call
        first = moments.get(days)
        if first is None:
            living = datetime.combine(self.city.first_living_day(_day(days)), time(), UTC)
            first = moments[days] = max(EARLIEST_EPOCH, living.timestamp())
        end = (days + 1) * 86_400  # the arrivals of the day; all after it, if now is in it
        self.arrivals = (max(days * 86_400, EARLIEST_EPOCH), end if end <= latest else math.inf)
        return first

    def _arrival_second(self, arrived: float) -> int:
        """A quarantine row's arrival: the one claimed (a replay's header, a bridge's
        property) where a clock could have read it — from 2000 to the batch's clock — else
        the batch's clock, never a crash of the whole batch."""
        now = self.latest - FUTURE_SLACK_S
        return int(arrived if EARLIEST_EPOCH <= arrived <= now else now)

    def _image(self, payload: Payload, document: Any) -> bool:
        """Refuse a payload a field of which holds an image (base64 or a data URI), whole:
        images are never processed, and quarantine keeps the payload without it. A cheap
        look at the body first; the document is walked only where it hints at one."""
        body = payload.body
        if isinstance(body, bytes):
            if IMAGE_HINT.search(body) is None:
                return False
        elif isinstance(body, str) and IMAGE_HINT_TEXT.search(body) is None:
            return False
        path = image_path(document)
        if path is None:
            return False
        refusal = Rejection("image_refused", "a field holds an image: never processed", path)
        self._quarantine(payload, [refusal], document, counted=False)
        return True

    def _known(self, payload: Payload) -> frozenset[str]:
        """The names a quarantined payload's shape keeps: its format's schema and the
        field names of the city's registry (a payload no format read: the registry's)."""
        fmt = payload.fmt or self.fmt
        name = "" if fmt is None else fmt.name
        known = self.known.get(name)
        if known is None:
            names = self.city.registry.field_names()
            known = self.known[name] = names if fmt is None else names | fmt.schema
        return known

    def _quarantine(
        self,
        payload: Payload,
        rejections: list[Rejection],
        document: Any = _UNREAD,
        *,
        counted: bool,
    ) -> None:
        """Quarantine a payload once: where it was (its line in the request, drop or
        capture), when it arrived, whose source it is (the one its route vouches for, else
        its devices'), who read it (the format and version), and its shape — of the parsed
        ``document``, else of its bytes — with its rejections' paths in the shape's names."""
        known = self._known(payload)
        kept = body_shape(payload.body) if document is _UNREAD else shape(document, known)
        row = {
            "line": payload.line,
            "received_at": f"{_second(self._arrival_second(payload.ctx.received_at))}Z",
            "source": self.payload_source or "",
            "adapter": self._adapter(payload),
            "payload": kept,
        }
        named = partial(schema_path, document=document, known=known)
        self.result.reject(row, rejections, named, _content(payload, document), counted=counted)


def _topic_wanted(fmt: Format, topic: str) -> tuple[str, str] | None:
    """The device a message's topic names where the hub's layout puts one there
    (``domain.topics.topic_device``): (what it is, the hub's device id — a DevEUI in the
    registry's spelling); None where it names none."""
    named = topic_device(fmt.name, topic)
    if named is None or named[0] == DEVICE_ID:
        return named
    return named[0], normalize_id(fmt.hub, named[1])


def _unparsed(body: bytes | str, exc: Exception) -> Rejection:
    """Why a payload did not parse: not UTF-8, else not JSON (orjson's words, before the
    position: they never quote the payload)."""
    reason = "invalid_json"
    if isinstance(body, bytes):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            reason = "invalid_encoding"
    return Rejection(reason, str(exc).split(":", 1)[0][:120])


def _content(payload: Payload, document: Any) -> bytes:
    """A refused payload's content for its batch's identity (hashed, never kept): the
    parsed document (a resend with other white space is the same), else the body as
    received."""
    if document is _UNREAD:
        body = payload.body
        return body if isinstance(body, bytes) else str(body).encode("utf-8", "surrogatepass")
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: its shape tells it
        return b""


def normalize(
    city: City,
    fmt: Format | None,
    payloads: Iterable[Payload],
    *,
    now: float,
    key_for: KeyFor | None,
    only_source: str | None = None,
    prior: Container[Identity] = NO_PRIOR,
    backfill: bool = False,
    opt_outs: OptOuts | None = None,
    withdrawn: Container[str] = frozenset(),
) -> Normalized:
    """Normalize a batch of payloads, of format ``fmt`` or each of its own (a bridge that
    batches several hubs' messages). ``now``: the receiving clock (epoch s); ``key_for``:
    the city's keys of the day (None where no source has a data subject); ``only_source``:
    the one source a sender was authenticated for (others' readings: ``wrong_source``; a
    payload's own ``source`` overrides it); ``prior``: identities of readings written
    before (a long-running edge's recent batches), counted as duplicates like those seen
    earlier in the batch. A reading of a day before the first whose key lives when its
    payload arrived (``Context.received_at``) is ``too_old``, unless the batch is a
    ``backfill`` (an inbox drop: the city's own system, not a hub's token). ``opt_outs``:
    the devices residents opted out (None: none), whose detections are dropped.
    ``withdrawn``: sources whose partner withdrew its permission (their readings:
    ``partner_withdrawn``)."""
    batch = _Batch(city, fmt, now, key_for, only_source, prior, backfill, opt_outs, withdrawn)
    take = batch.payload
    for payload in payloads:
        take(payload)
    return batch.result
