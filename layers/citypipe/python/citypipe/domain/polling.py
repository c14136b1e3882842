"""Polled sources: hub APIs a city calls, since they never push (``sources.<s>.poll``).

A source declares which API it polls and how often; the devices polled are the source's
devices registered under the API's hub (``telraam``: road segments; ``sensor-community-api``:
the API id of each sensor, not the chip id a push carries). The API key, where one is
needed, is named here and kept in the stack's secret store — never in the city file.
The poller (``service.poll``) runs on a fixed tick (``POLL_TICK_MINUTES``); a poll runs at
the ticks its ``every_minutes`` divides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_address
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

POLL_TICK_MINUTES = 5  # the schedule that invokes the poller (serverless.yml, Scaleway CRON)
MAX_BACKFILL_HOURS = 24 * 90  # Telraam answers at most three months a request


class PollApi(StrEnum):
    TELRAAM = "telraam"
    SENSOR_COMMUNITY = "sensor-community"


@dataclass(frozen=True)
class ApiSpec:
    """What citypipe knows of a polled API: the registry hub of the ids it is asked for,
    the hub format of what it answers, its public address, and polite defaults."""

    hub: str
    format: str
    url: str
    key_required: bool
    every_minutes: int  # how often by default
    settle_minutes: int  # how long after an interval ends its data is taken as complete
    spacing_seconds: float  # between two requests with one key (the provider's limits)
    span_hours: int  # an interval asked for at most in one request (0: the API has no range)


SPECS: dict[PollApi, ApiSpec] = {
    # POST /v1/reports/traffic, X-Api-Key; hourly rows; a request spans at most 3 months
    PollApi.TELRAAM: ApiSpec(
        "telraam", "telraam", "https://telraam-api.net", True, 60, 120, 2.0, 24,
    ),
    # GET /airrohr/v1/sensor/{id}/: the sensor's measurements of the last 5 minutes
    PollApi.SENSOR_COMMUNITY: ApiSpec(
        "sensor-community-api", "sensor-community-api", "https://data.sensor.community", False,
        5, 0, 1.0, 0,
    ),
}  # fmt: skip

KEY_NAME = r"^[a-z][a-z0-9-]{0,62}$"  # the name of an API key's secret, never the key


class Poll(BaseModel):
    """One API a source polls. Unset fields take the API's defaults (``SPECS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: PollApi
    every_minutes: int | None = Field(
        default=None,
        ge=POLL_TICK_MINUTES,
        le=1440,
        description=f"how often, in minutes: a multiple of {POLL_TICK_MINUTES}",
    )
    api_key: str | None = Field(
        default=None,
        pattern=KEY_NAME,
        description="the NAME of the API key in the stack's secret store (citypipe api-key "
        "set), never the key",
    )
    url: str | None = Field(
        default=None, description="the API's base URL (default: its public one)"
    )
    settle_minutes: int | None = Field(
        default=None, ge=0, le=1440, description="an interval is fetched once this long over"
    )
    backfill_hours: int = Field(
        default=24,
        ge=1,
        le=MAX_BACKFILL_HOURS,
        description="how far back a device never polled before starts",
    )
    max_requests: int = Field(
        default=20, ge=1, le=500, description="requests at most per tick (bounded work)"
    )

    @field_validator("every_minutes")
    @classmethod
    def _on_the_tick(cls, value: int | None) -> int | None:
        if value is not None and value % POLL_TICK_MINUTES:
            raise ValueError(f"a multiple of {POLL_TICK_MINUTES} (the poller's tick)")
        return value

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not secure_url(value):
            raise ValueError("an https:// URL (http:// only to this machine, for tests)")
        return value.rstrip("/") if value is not None else None

    @model_validator(mode="after")
    def _key_where_needed(self) -> Self:
        if self.spec.key_required and self.api_key is None:
            raise ValueError(f"{self.api.value} needs api_key: the name of its key's secret")
        if not self.spec.key_required and self.api_key is not None:
            raise ValueError(f"{self.api.value} takes no API key")
        return self

    @property
    def spec(self) -> ApiSpec:
        return SPECS[self.api]

    @property
    def every(self) -> int:
        return self.every_minutes or self.spec.every_minutes

    @property
    def settle(self) -> int:
        return self.spec.settle_minutes if self.settle_minutes is None else self.settle_minutes

    @property
    def base_url(self) -> str:
        return self.url or self.spec.url


def secure_url(url: str) -> bool:
    """https, or http to the loopback interface (a test's local server)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
