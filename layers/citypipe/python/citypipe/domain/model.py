"""Domain types shared by the four functions: quantities, zones, observations, the claim
check. No cloud code here."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, NamedTuple, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Quantity(NamedTuple):
    """A controlled quantity: its UCUM unit and the range a city sensor can plausibly report
    in that unit (a device's registry entry may narrow it, never widen it); and whether a
    reading of it is a person (or a person's device) counted, which makes it personal data
    whatever a source's policy says (``City.personal_quantities``)."""

    unit: str
    low: float
    high: float
    counts_people: bool = False
    # the most one sensor can count in a 15-minute window (counts published as totals): a
    # sensor's window above it is flagged, never published; a profile may set its own
    window_ceiling: float | None = None


# Controlled quantity names (Smart Data Models' vocabulary where one exists), their UCUM
# unit and plausible range. A reading outside the range is quarantined (``out_of_range``):
# 1e308 would overflow a day's sums, -1000 vehicles would be published as a count. The
# people family counts people: each reading is one person's device seen, so a source
# measuring it pseudonymizes that device, is kept at 5 minutes at the finest, and its cells
# are published under the k rule. (traffic.pedestrians is a number per interval from a
# counter that sees no one's identifier, as vehicles are.) A count has a ceiling per sensor
# and window besides (``window_ceiling``): 100,000 vehicles is a plausible reading of a
# motorway's day, not of one counter's 15 minutes (lanes carry ~2,000 vehicles an hour).
QUANTITIES: dict[str, Quantity] = {
    "air.no2": Quantity("ug/m3", 0, 2000),
    "air.pm10": Quantity("ug/m3", 0, 2000),
    "air.pm25": Quantity("ug/m3", 0, 1500),
    "air.o3": Quantity("ug/m3", 0, 1000),
    "noise.laeq": Quantity("dB", 0, 200),
    "traffic.vehicles": Quantity("{vehicle}", 0, 100_000, window_ceiling=3_000),
    "traffic.heavy_vehicles": Quantity("{vehicle}", 0, 100_000, window_ceiling=3_000),
    "traffic.bicycles": Quantity("{bicycle}", 0, 100_000, window_ceiling=3_000),
    "traffic.pedestrians": Quantity("{pedestrian}", 0, 100_000, window_ceiling=10_000),
    "people.presence": Quantity("{device}", 0, 1_000_000, counts_people=True),
    "parking.occupancy": Quantity("%", 0, 100),
    "energy.active": Quantity("kW.h", -1e9, 1e9),  # energy fed back may count negative
    "energy.voltage": Quantity("V", 0, 1000),
    "energy.current": Quantity("A", 0, 10_000),
    "weather.temperature": Quantity("Cel", -60, 70),
    "weather.humidity": Quantity("%", 0, 100),
    "weather.pressure": Quantity("Pa", 30_000, 110_000),
    "weather.wind_speed": Quantity("m/s", 0, 100),
    "weather.wind_direction": Quantity("deg", 0, 360),
    "weather.precipitation": Quantity("mm", 0, 500),
    "weather.illuminance": Quantity("lx", 0, 200_000),
    "weather.uv_index": Quantity("{index}", 0, 20),
    "soil.moisture": Quantity("%", 0, 100),
    "soil.temperature": Quantity("Cel", -40, 80),
    "soil.conductivity": Quantity("uS/cm", 0, 20_000),
    "waste.filling": Quantity("1", 0, 1),
}
QUANTITY_UNITS: dict[str, str] = {name: q.unit for name, q in QUANTITIES.items()}


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

# The aggregation window: cells are zone x quantity x 15 minutes, and a data subject's
# pseudonym is keyed per sensor and window, so nothing kept links two windows.
WINDOW_MINUTES = 15
WINDOW_SECONDS = WINDOW_MINUTES * 60


# Observation times before EARLIEST are implausible for a city sensor (a clock reset to
# 1970, a year typed as 999); times more than FUTURE_SLACK ahead of the clock that receives
# them are too (a clock set to 2099 would give every future day a key and a partition).
EARLIEST_OBSERVATION = datetime(2000, 1, 1, tzinfo=UTC)
EARLIEST_EPOCH = EARLIEST_OBSERVATION.timestamp()
FUTURE_SLACK_S = 300.0


class RawRecord(TypedDict):
    """One reading as the edge writes it to the raw zone (JSON Lines): pseudonymous.

    ``pseudonym`` is the keyed HMAC of the data subject's identifier under the sensor's key
    for the reading's 15-minute window (``core.pseudonyms``; sources with a subject only,
    else None); ``refused`` names a field the source's policy refuses (its
    value never written), so anonymize refuses the reading. No hub identifier, no claimed
    position: the zone is the registered device's.
    """

    source: str
    sensor: str
    quantity: str
    unit: str
    value: float
    observed_at: str  # ISO 8601 in UTC, microseconds, "Z"
    zone: str
    pseudonym: str | None
    refused: NotRequired[str]


RAW_FIELDS = tuple(RawRecord.__annotations__)  # the raw zone's columns, in this order
RAW_EXTENSION = "columns.json.gz"  # a raw object: a batch's (source, hour) as columns


# --- the claim check ----------------------------------------------------------------------

# ingest's queue also carries the webhook's buffered requests (``service.buffer``): a JSON
# object with this key, near its start (its keys are sorted)
PIECE_MARK = "citypipe-piece"


def is_piece(body: str) -> bool:
    """Whether a queue message is a buffered webhook request (else a claim check, or poison)."""
    return body.startswith("{") and f'"{PIECE_MARK}":' in body[:400]


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
