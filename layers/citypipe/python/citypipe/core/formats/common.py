"""What a parser yields: readings still in the hub's vocabulary, or rejections with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Reading:
    sensor: str
    measure: str  # the hub's name for what was measured (SenML n, canonical quantity)
    unit: str
    value: float
    observed_at: datetime
    location: tuple[float, float] | None = None
    zone: str | None = None
    personal: dict[str, str | float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """A reading (or a whole payload) that cannot be used. ``reason`` is machine-readable."""

    reason: str
    detail: str = ""
