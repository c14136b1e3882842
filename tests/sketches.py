"""Reading distinct-device sketches as an insider would: their coupons, and how many of them
two windows may share by hash collision alone."""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Hashable, Iterable


def coupons(sketch: bytes) -> list[int]:
    """The coupons of a DataSketches HLL in list or set mode (compact serialization): each
    one a hash of one value fed to it. HLL mode keeps registers, no coupons."""
    preamble_ints, mode = sketch[0], sketch[7] & 3
    assert mode in (0, 1), "these tests' sketches stay in list or set mode"
    body = sketch[preamble_ints * 4 :]
    return list(struct.unpack(f"<{len(body) // 4}i", body))


def chance_bound(coupons_per_sensor: Counter[str], tail: float = 1e-6) -> int:
    """How many coupons two windows of one sensor share by hash collision alone, at most,
    but with probability ``tail``. A coupon is 26 bits of slot and a geometric 6-bit value,
    so two coupons of different values match with probability ~1/(3 * 2**26); the matches
    are Poisson. A sketch fed with linkable values shares one coupon per device seen in two
    windows: hundreds in these tests, far above this bound."""
    expected = sum(n * (n - 1) / 2 for n in coupons_per_sensor.values()) / (3 * 2**26)
    bound, term = 0, math.exp(-expected)
    below = term
    while 1 - below > tail:
        bound += 1
        term *= expected / bound
        below += term
    return bound


def shared_windows(
    rows: Iterable[tuple[str, Hashable, bytes]],
) -> tuple[list[set[Hashable]], Counter[str]]:
    """For (sensor, window, sketch) rows: the window sets of every coupon found in more than
    one window of its sensor, and the coupons counted per sensor."""
    where: dict[tuple[str, int], set[Hashable]] = {}
    per_sensor: Counter[str] = Counter()
    for sensor, window, sketch in rows:
        for coupon in coupons(sketch):
            where.setdefault((sensor, coupon), set()).add(window)
            per_sensor[sensor] += 1
    return [w for w in where.values() if len(w) > 1], per_sensor
