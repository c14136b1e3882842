"""What the sensors measure: air quality near roads, vehicles by the hour's traffic, and
the exact hundredths every value is kept in.

Values are integer hundredths (``CENTI``): the truth's sums are exact, and a body spells a
value with two decimals (``dec``) that read back to the same hundredths. One seeded stream
(``Values``) draws every measured value, in the order the hubs send.
"""

from __future__ import annotations

import math
import random

from citypipe_local.simulate.clock import TRAFFIC_PROFILE, level
from citypipe_local.simulate.world import Sensor

CENTI = 100  # every value is kept as integer hundredths: sums are exact


def dec(centi: int) -> str:
    """Hundredths as a JSON number with two decimals ("-0.05", "12.30")."""
    sign = "-" if centi < 0 else ""
    whole, frac = divmod(abs(centi), CENTI)
    return f"{sign}{whole}.{frac:02d}"


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count (Knuth's product of uniforms; a rounded normal for a large mean)."""
    if lam <= 0:
        return 0
    if lam > 12:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class Values:
    """The measured values, drawn from one seeded stream."""

    def __init__(self, rng: random.Random, sites: dict[str, tuple[float, float, float]]) -> None:
        self._rng = rng
        self._sites = sites  # sensor -> (background NO2, road NO2, dust): its place's air

    def air(self, dev: Sensor, at: int) -> dict[str, int]:
        """NO2, PM10 and PM2.5 (ug/m3, hundredths): the site's background, plus its road's
        share by the hour's traffic, plus noise."""
        background, road, dust = self._sites[dev.name]
        traffic = level(TRAFFIC_PROFILE, at)
        gauss = self._rng.gauss
        no2 = max(0, round((background + road * traffic + gauss(0, 3)) * CENTI))
        pm10 = max(0, round((dust + 10 * traffic + gauss(0, 2.5)) * CENTI))
        pm25 = max(0, min(pm10, round((0.55 * dust + 5 * traffic + gauss(0, 1.5)) * CENTI)))
        return {"no2": no2, "pm10": pm10, "pm25": pm25}

    def vehicles(self, dev: Sensor, at: int, minutes: float = 1) -> int:
        """Vehicles past a counter in ``minutes`` from ``at`` (whole vehicles)."""
        return poisson(self._rng, 30 * minutes * dev.level * level(TRAFFIC_PROFILE, at))

    def uniform(self, low: float, high: float) -> float:
        """A value between ``low`` and ``high`` (humidity, pressure, a camera's uptime)."""
        return self._rng.uniform(low, high)
