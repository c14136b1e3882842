"""Domain types shared by the four functions: quantities, zones, observations, the claim
check. No cloud code here."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Controlled quantity names and the UCUM unit each is stored in.
QUANTITY_UNITS: dict[str, str] = {
    "air.no2": "ug/m3",
    "air.pm10": "ug/m3",
    "air.pm25": "ug/m3",
    "air.o3": "ug/m3",
    "noise.laeq": "dB",
    "traffic.vehicles": "{vehicle}",
    "traffic.bicycles": "{bicycle}",
    "people.presence": "{device}",
    "parking.occupancy": "%",
    "energy.active": "kW.h",
}

# What one reading of a quantity can plausibly be, in its unit. A value outside is a
# broken sensor or a typo (a negative count, 1e308 ug/m3): ingest quarantines it as
# ``implausible_value``, so it never reaches a sum. Bounds are generous; their point is
# that a day's sums stay finite (|value| <= 1e9 times at most 2**53 readings).
QUANTITY_RANGES: dict[str, tuple[float, float]] = {
    "air.no2": (0.0, 5_000.0),
    "air.pm10": (0.0, 10_000.0),
    "air.pm25": (0.0, 10_000.0),
    "air.o3": (0.0, 5_000.0),
    "noise.laeq": (0.0, 200.0),
    "traffic.vehicles": (0.0, 100_000.0),
    "traffic.bicycles": (0.0, 100_000.0),
    "people.presence": (0.0, 1_000_000.0),
    "parking.occupancy": (0.0, 100.0),
    "energy.active": (-1e9, 1e9),  # a meter may count energy fed back as negative
}
DEFAULT_RANGE = (-1e9, 1e9)  # a quantity declared without a range of its own


def plausible_value(quantity: str, value: float) -> bool:
    """Whether one reading's value is finite and within its quantity's plausible range."""
    low, high = QUANTITY_RANGES.get(quantity, DEFAULT_RANGE)
    return math.isfinite(value) and low <= value <= high


class Zone(StrEnum):
    """The six storage zones of a city stack, in flow order."""

    RAW = "raw"
    QUARANTINE = "quarantine"
    CLEAN = "clean"
    AGGREGATES = "aggregates"
    OPEN = "open"
    AUDIT = "audit"


class Function(StrEnum):
    INGEST = "ingest"
    ANONYMIZE = "anonymize"
    AGGREGATE = "aggregate"
    EXPORT = "export"


# --- observations -----------------------------------------------------------------------


# Observation times outside [EARLIEST, LATEST) are implausible for a city sensor (a clock
# reset to 1970, a year typed as 999): ingest quarantines them as ``implausible_time``.
EARLIEST_OBSERVATION = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_OBSERVATION = datetime(2100, 1, 1, tzinfo=UTC)


def plausible_time(at: datetime) -> bool:
    """Whether an aware time lies in [EARLIEST_OBSERVATION, LATEST_OBSERVATION).

    Compared, never converted: converting year 1 at +01:00 to UTC overflows.
    """
    return EARLIEST_OBSERVATION <= at < LATEST_OBSERVATION


def _observed_at(value: datetime) -> datetime:
    if not plausible_time(value):
        raise ValueError(
            f"observed_at must be in [{EARLIEST_OBSERVATION.date()}, "
            f"{LATEST_OBSERVATION.date()}) UTC"
        )
    return value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("value must be a finite number")
    return value


ObservedAt = Annotated[AwareDatetime, AfterValidator(_observed_at)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


class Observation(BaseModel):
    """One reading, normalized. What ingest writes to the raw zone.

    ``personal`` holds the fields the source declares personal (a device MAC, a plate);
    anonymize decides their fate from the source's policy before anything leaves raw.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, max_length=64)
    sensor: str = Field(min_length=1, max_length=128)
    quantity: str
    unit: str
    value: FiniteFloat
    observed_at: ObservedAt
    location: tuple[Longitude, Latitude] | None = None
    zone: str | None = None
    personal: dict[str, str | float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Observation:
        expected = QUANTITY_UNITS.get(self.quantity)
        if expected is None:
            raise ValueError(f"unknown quantity {self.quantity!r}")
        if self.unit != expected:
            raise ValueError(f"unit {self.unit!r} is not {expected!r} for {self.quantity}")
        if self.location is None and self.zone is None:
            raise ValueError("a location or a zone is required")
        return self

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict, the raw zone's line format."""
        return {
            "source": self.source,
            "sensor": self.sensor,
            "quantity": self.quantity,
            "unit": self.unit,
            "value": self.value,
            # ISO 8601 in UTC, microseconds always written (byte-stable), a 4-digit year
            "observed_at": self.observed_at.astimezone(UTC)
            .replace(tzinfo=None)
            .isoformat(timespec="microseconds")
            + "Z",
            "location": list(self.location) if self.location else None,
            "zone": self.zone,
            "personal": self.personal,
        }


# --- the claim check ----------------------------------------------------------------------


class Message(BaseModel):
    """The small message that names an object (claim check). Versioned by ``v``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    city: str
    stage: str  # the zone or prefix the object sits in: inbox, raw, clean, aggregates, export
    bucket: str
    key: str
    etag: str = ""
    records: int = Field(default=0, ge=0)
    format: str = ""
    window: str | None = None  # export requests: the date to publish (YYYY-MM-DD)
    trace_id: str = ""
