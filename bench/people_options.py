"""How to bound one device's day: the options of decision 0078, measured on the example day.

Plays the example city's day (the simulator's seed 7, the same day ``make demo`` plays),
takes every phone's cells from the simulator's truth, and for each way of bounding a
device's contribution to a day — a cap of C cells chosen by a keyed rank, keyed
subsampling of C windows, coarser (hourly) cells with a cap — adds discrete Laplace noise
of scale C / ε, publishes a cell at k or more, and prints the median and 90th-percentile
relative error of the published cells against the truth. A measurement for the decision
record, not a test:

    python bench/people_options.py [--epsilon 1.0] [--k 10]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from citypipe.domain.city import load_city
from citypipe_local.simulate import run as simulation

CITY = Path(__file__).resolve().parents[1] / "infra" / "cities" / "velden.yaml"
Cell = tuple[int, str]  # (window index of the day, or hour; zone)
Phones = dict[int, set[tuple[int, str, str]]]  # phone -> (window start, zone, quantity)


def phones_of_the_day() -> Phones:
    """Every phone the example day's counters heard, with the cells it was seen in."""
    played: dict[str, simulation.Day] = {}

    class Kept(simulation.Day):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            played["day"] = self

    simulation.Day = Kept  # type: ignore[misc]
    with tempfile.TemporaryDirectory() as out:
        simulation.simulate(load_city(CITY), Path(out))
    return played["day"].truth.cells.phones


def rank(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def cells_of(seen: set[tuple[int, str, str]], hours: bool) -> set[Cell]:
    size = 3600 if hours else 900
    return {(start // size, zone) for start, zone, _ in seen}


def capped(phones: Phones, cap: int, hours: bool = False) -> dict[Cell, float]:
    counts: dict[Cell, float] = {}
    for phone, seen in phones.items():
        for cell in sorted(cells_of(seen, hours), key=lambda c: rank(phone, c))[:cap]:
            counts[cell] = counts.get(cell, 0) + 1
    return counts


def subsampled(phones: Phones, cap: int) -> dict[Cell, float]:
    counts: dict[Cell, float] = {}
    for phone, seen in phones.items():
        offset = int.from_bytes(rank(phone)[:4], "big")
        chosen = {(offset + j * 96 // cap) % 96 for j in range(cap)}
        for cell in cells_of(seen, False):
            if cell[0] % 96 in chosen:
                counts[cell] = counts.get(cell, 0) + 96 / cap  # scaled up to the whole day
    return counts


def errors(
    counts: dict[Cell, float], truth: dict[Cell, int], scale: float, k: int
) -> tuple[float, float, int]:
    """Median and p90 relative error of the published cells, and how many were published."""
    rng = random.Random(1)
    stop = math.exp(-1 / scale)

    def geometric() -> int:
        return int(math.log(1 - rng.random()) / math.log(stop))

    found = []
    for cell, true in truth.items():
        noisy = counts.get(cell, 0) + geometric() - geometric()
        if noisy >= k:
            found.append(abs(noisy - true) / true)
    return statistics.median(found), statistics.quantiles(found, n=10)[-1], len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    phones = phones_of_the_day()
    truth = {False: capped(phones, 10**6), True: capped(phones, 10**6, hours=True)}
    seen = sorted(len(cells_of(s, False)) for s in phones.values())
    print(f"{len(phones):,} phones, {len(truth[False])} cells, median "
          f"{statistics.median(truth[False].values()):g} devices a cell; a phone in median "
          f"{statistics.median(seen):g}, at most {seen[-1]} zone-windows")  # fmt: skip
    options: list[tuple[str, list[int], Callable[[int], dict[Cell, float]], bool]] = [
        ("cap, keyed choice", [6, 8, 10, 12, 16], lambda c: capped(phones, c), False),
        ("keyed subsampling", [8, 16, 24], lambda c: subsampled(phones, c), False),
        ("hourly cells, cap", [6, 8], lambda c: capped(phones, c, hours=True), True),
    ]
    for name, caps, bound, hours in options:
        for cap in caps:
            true = {c: int(n) for c, n in truth[hours].items()}
            median, p90, published = errors(bound(cap), true, cap / args.epsilon, args.k)
            print(f"{name:20} C={cap:2}: median {median:6.1%}  p90 {p90:6.1%}  "
                  f"published {published}/{len(true)}")  # fmt: skip


if __name__ == "__main__":
    main()
