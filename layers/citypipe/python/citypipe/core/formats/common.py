"""What every hub format adapter shares: what it yields, and the small readers it uses.

An adapter turns one parsed payload into ``Reading``s still in the hub's vocabulary (the
hub's device id, the decoded field's name, the value as sent) or ``Rejection``s with a
machine-readable reason and the JSON path they concern. Resolving the device, mapping
fields to quantities, checking ranges and times, pseudonymizing: that is the one
normalization path (``core.ingest``) every format shares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple


class Reading:
    """One value a hub sent for one device. ``at``: epoch seconds (UTC)."""

    __slots__ = ("at", "device", "field", "hub", "path", "personal", "subject", "unit", "value")

    def __init__(
        self,
        hub: str,
        device: str,
        field: str,
        value: Any,
        at: float,
        path: str,
        unit: str | None = None,
        subject: Any = None,
        personal: dict[str, Any] | None = None,
    ) -> None:
        self.hub = hub
        self.device = device
        self.field = field
        self.value = value
        self.at = at
        self.path = path
        self.unit = unit
        self.subject = subject  # the data subject's identifier (a MAC), where the hub sends one
        self.personal = personal  # personal fields carried (canonical: as sent; others: names)

    def __repr__(self) -> str:  # no value, no name or path as received: it may be logged
        return f"Reading({self.hub})"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reading (or a whole payload) that cannot be used. ``reason`` is machine-readable;
    ``detail`` never quotes a value or a name as received (a key may be an identifier);
    ``path`` is the JSON path it concerns, as received (``core.shape.schema_path`` makes
    it one that may be kept and answered)."""

    reason: str
    detail: str = ""
    path: str = ""


class Context(NamedTuple):
    """What the transport knew of a payload: when it arrived, on which MQTT topic, with which
    HTTP headers (names lower-cased)."""

    received_at: float
    topic: str | None = None
    headers: Mapping[str, str] = MappingProxyType({})


Parse = Callable[[Any, Context], list["Reading | Rejection"]]


@dataclass(frozen=True)
class Format:
    """A hub format adapter, versioned: a change in what it reads bumps ``version``."""

    name: str
    version: int
    hub: str  # the registry's namespace of the device ids it yields
    parse: Parse
    schema: frozenset[str]  # the field names its public schema defines (core.shape keeps them)
    doc: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class Unreadable(ValueError):
    """A payload whose shape the adapter cannot read at all: rejected whole."""

    def __init__(self, reason: str, detail: str, path: str = "") -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail, path)


# --- small readers ---------------------------------------------------------------------------


def obj(value: Any, what: str, path: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unreadable("invalid_payload", f"{what} is not a JSON object", path)
    return value


def iso_epoch(text: Any) -> float:
    """RFC 3339 with an offset (nanoseconds allowed) -> epoch seconds. ValueError else."""
    if type(text) is not str or len(text) > 64:
        raise ValueError("not a time")
    at = _EPOCHS.get(text)
    if at is None:
        at = _iso_epoch(text) if _COMMON(text) is None else _from_iso(text).timestamp()
        if len(_EPOCHS) >= _EPOCHS_KEPT:
            _EPOCHS.clear()
        _EPOCHS[text] = at
    return at


# The times read, kept until there are this many (a payload's readings share theirs; a
# day's hub messages hold tens of thousands of distinct times, which an evicting cache
# only missed)
_EPOCHS: dict[str, float] = {}
_EPOCHS_KEPT = 16_384
# The common spelling (a fraction of at most six digits, ``Z`` or an offset), which Python
# (3.11 on) reads as ``_iso_epoch`` does, without the text rewritten first
_COMMON = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII
).fullmatch
_from_iso = datetime.fromisoformat


def _iso_epoch(text: str) -> float:
    cut = text.replace("Z", "+00:00").replace("z", "+00:00")
    dot = cut.find(".")
    if dot != -1:  # Python reads at most 6 fractional digits: drop the rest
        end = dot + 1
        while end < len(cut) and cut[end].isdigit():
            end += 1
        cut = cut[: min(end, dot + 7)] + cut[end:]
    at = datetime.fromisoformat(cut)
    if at.tzinfo is None:
        raise ValueError("a time needs a UTC offset")
    return at.timestamp()


def hub_time(
    absent: float | Rejection, *candidates: tuple[str, Any], within: str = ""
) -> float | Rejection:
    """When a hub says its readings were observed: the first of the times it sent, each a
    ``(path, value)`` (absent or null: not sent; the path within the object at ``within``,
    joined only where it is told), RFC 3339 with a UTC offset; ``absent`` where it sent
    none. A time it sent that cannot be read — any of them — is ``invalid_time`` at its
    path: never the arrival time in its place (decision 0083)."""
    found: float | None = None
    for path, value in candidates:
        if value is None:
            continue
        at = _EPOCHS.get(value) if type(value) is str else None  # read before: no call
        if at is None:
            try:
                at = iso_epoch(value)
            except (ValueError, OverflowError):
                where = f"{within}.{path}" if within else path
                return Rejection("invalid_time", "not RFC 3339 with a UTC offset", where)
        if found is None:
            found = at
    return absent if found is None else found


def number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string (hubs send both); None else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        try:
            result = float(value)
        except OverflowError:
            return None
        return result
    if isinstance(value, str) and 0 < len(value) <= 40:
        try:
            result = float(value)
        except ValueError:
            return None
        return result if math.isfinite(result) else None
    return None


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A decoded payload's fields as (name, value): nested objects joined with ``.``
    (``wind.velocity``), list items by index, and SenseCAP-style measurement lists
    (``{"type": " Peak Wind Gust", "measurementValue": 7.7}``) by their stripped type."""
    if isinstance(value, dict):
        if "measurementValue" in value and isinstance(value.get("type"), str):
            yield value["type"].strip(), value["measurementValue"]
            return
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, value


_NESTED = (dict, list)  # what ``flatten`` walks into


def decoded_readings(
    hub: str, device: str, decoded: Any, at: float, path: str
) -> list[Reading | Rejection]:
    """The readings of a network server's decoded payload (one per flattened field)."""
    if not isinstance(decoded, dict) or not decoded:
        return [Rejection("not_decoded", "no decoded payload: set up the device's codec", path)]
    prefix = f"{path}." if path else ""
    if "measurementValue" not in decoded:  # most are flat: their fields read without a walk
        out: list[Reading | Rejection] = []
        for name, value in decoded.items():
            if type(name) is not str or isinstance(value, _NESTED):
                break
            out.append(Reading(hub, device, name, value, at, prefix + name))
        else:
            return out
    return [
        Reading(hub, device, name, value, at, prefix + name) for name, value in flatten(decoded)
    ]


def header(ctx: Context, name: str) -> str | None:
    return ctx.headers.get(name.lower())
