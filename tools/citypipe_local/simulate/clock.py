"""The simulated day's time: how busy each hour is, the aggregation window a reading falls
in, and timestamps as the hubs spell them.

Everything is integer epoch seconds, so that a seed gives the same day on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

WINDOW_SECONDS = 15 * 60  # aggregate.WINDOW_MINUTES
DAY_SECONDS = 86_400

# How busy the city is at each hour (0 to 1): roads, and people with a phone
TRAFFIC_PROFILE = (
    0.12, 0.08, 0.06, 0.06, 0.1, 0.25, 0.6, 0.95, 1.0, 0.8, 0.65, 0.62,
    0.66, 0.64, 0.66, 0.75, 0.92, 1.0, 0.85, 0.6, 0.45, 0.35, 0.26, 0.18,
)  # fmt: skip
PEOPLE_PROFILE = (
    0.3, 0.18, 0.1, 0.05, 0.05, 0.08, 0.2, 0.5, 0.8, 0.7, 0.65, 0.75,
    0.9, 0.85, 0.75, 0.75, 0.85, 1.0, 0.9, 0.75, 0.6, 0.5, 0.45, 0.38,
)  # fmt: skip


def iso(epoch: float) -> str:
    """RFC 3339 to the second, ``Z`` (most hubs' spelling)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(epoch: float) -> str:
    """RFC 3339 to the millisecond, ``+00:00`` (LoRaWAN network servers, NGSI-LD)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def window(at: int, resolution: int) -> int:
    """The start of the aggregation window of a reading at ``at``: the time first coarsened
    to the source's resolution in minutes (as anonymize does), then floored to the window."""
    midnight = at - at % DAY_SECONDS
    elapsed = (at - midnight) // 60
    floored = midnight + (elapsed - elapsed % max(resolution, 1)) * 60
    return floored - floored % WINDOW_SECONDS


def level(profile: Sequence[float], at: int) -> float:
    """The profile at ``at``, interpolated between its hours."""
    hour = (at % DAY_SECONDS) / 3600
    low = int(hour)
    frac = hour - low
    return profile[low] * (1 - frac) + profile[(low + 1) % 24] * frac
