"""People counts with a per-person-day guarantee: each device's day bounded, then noised.

The unit of privacy is one device over one UTC day, across every sensor, zone, window,
people quantity and release of that day (decision 0078). The edge gives a device one
pseudonym per day (``core.pseudonyms``), so the day's clean rows show every cell a device
was seen in, while the day's key lives. From them:

1. **contributions** (``contributions``): the distinct (pseudonym, window, zone, quantity)
   of the day's people rows: a device seen twice in a cell is in it once;
2. **bounded** (``capped_counts``): a device that was seen in more than ``cap`` cells counts
   in ``cap`` of them only, chosen by a keyed pseudorandom rank of (pseudonym, cell) — spread
   over the day, unpredictable without the key, and a function of that device's own cells
   alone. Adding or removing one device therefore changes at most ``cap`` cells, each by
   one: the L1 sensitivity of the day's counts is ``cap``, their L2 sensitivity √cap;
3. **noised** (``PeopleRelease.disclosed``): each cell's count plus discrete Laplace noise of
   scale cap / ε (or a discrete Gaussian for (ε, δ)), so one release costs one device at
   most ε; then every decision is taken on the noisy figure alone — published when it
   reaches k, suppressed below, flagged above the zone's device ceiling — so the decision
   is post-processing, covered by the same ε (no δ is spent on it).

A release is what it discloses: its counts under the city's noise key. ``release_id`` is
an HMAC of the counts and the mechanism under that key, so an export of unchanged counts
is the same release (same noise, same bytes, charged once), and a new release secret is a
new release, charged again (``service.export.ledger``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from citypipe.core.noise import Noise, cell_seed
from citypipe.domain.model import WINDOW_MINUTES

CellKey = tuple[datetime, str, str]  # (window start, zone, quantity)
CONTRIBUTION = ["pseudonym", "window_start", "zone", "quantity"]
CONTRIBUTED_FROM = ["pseudonym", "observed_at", "zone", "quantity"]  # what it reads of a row

# Machine-readable reasons of a people cell that is not published.
FEWER_THAN_K = "fewer_than_k_devices"  # its noisy figure is below k
ABOVE_CEILING = "above_device_ceiling"  # its noisy figure exceeds what its sensors can hear


def contributions(clean: pa.Table, quantities: Iterable[str]) -> pa.Table:
    """The distinct (pseudonym, window start, zone, quantity) of a clean table's rows of
    ``quantities`` that hold a pseudonym, in no particular order. Of the table, only its
    columns ``CONTRIBUTED_FROM`` are read."""
    wanted = pa.array(sorted(quantities), pa.string())
    rows = clean.filter(
        pc.and_(pc.is_in(clean["quantity"], value_set=wanted), pc.is_valid(clean["pseudonym"]))
    )
    windows = pc.floor_temporal(rows["observed_at"], multiple=WINDOW_MINUTES, unit="minute")
    table = pa.table(
        {
            "pseudonym": rows["pseudonym"],
            "window_start": windows,
            "zone": rows["zone"],
            "quantity": rows["quantity"],
        }
    )
    return table.group_by(CONTRIBUTION, use_threads=False).aggregate([])


def capped_counts(contributed: Sequence[pa.Table], cap: int, key: bytes) -> dict[CellKey, int]:
    """Distinct devices per cell, each device counted in at most ``cap`` cells: where it
    was seen in more, in the ``cap`` whose keyed rank is lowest. ``contributed``: tables of
    ``contributions`` (duplicates across them count once)."""
    if cap < 1:
        raise ValueError("a device must be able to count in one cell at least")
    if not contributed:
        return {}
    table = pa.concat_tables(contributed).group_by(CONTRIBUTION, use_threads=False).aggregate([])
    starts = table["window_start"]
    when = dict(zip(starts.cast(pa.int64()).to_pylist(), starts.to_pylist(), strict=True))
    by_device: dict[str, list[tuple[int, str, str]]] = {}
    for device, start, zone, quantity in zip(
        table["pseudonym"].to_pylist(), starts.cast(pa.int64()).to_pylist(),
        table["zone"].to_pylist(), table["quantity"].to_pylist(), strict=True,
    ):  # fmt: skip
        by_device.setdefault(device, []).append((start, zone, quantity))
    counts: dict[tuple[int, str, str], int] = {}
    for device, seen in by_device.items():
        for place in seen if len(seen) <= cap else _chosen(key, device, seen, cap):
            counts[place] = counts.get(place, 0) + 1
    return {(when[start], zone, quantity): n for (start, zone, quantity), n in counts.items()}


def _chosen(
    key: bytes, device: str, seen: list[tuple[int, str, str]], cap: int
) -> list[tuple[int, str, str]]:
    """The ``cap`` cells a device counts in: those of lowest keyed rank."""

    def rank(cell: tuple[int, str, str]) -> bytes:
        start, zone, quantity = cell
        return hmac.digest(key, f"{device}\x1f{start}\x1f{zone}\x1f{quantity}".encode(), "sha256")

    return sorted(seen, key=rank)[:cap]


def choice_key(noise_key: bytes) -> bytes:
    """The key of the rank that chooses a device's counted cells, from the noise key."""
    return hmac.digest(noise_key, b"citypipe/v1/people/choice", hashlib.sha256)


def release_id(
    key: bytes, dataset: str, day: str, noise: Noise, counts: Mapping[CellKey, int]
) -> str:
    """What a release discloses, as an id: an HMAC under the noise key of the dataset, the
    day, the mechanism and every cell's bounded count. The same counts under the same key
    are the same release; nobody without the key can test a guess of the counts."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(f"release\x1f{dataset}\x1f{day}\x1f{noise.describe()}\x1f{noise.cap}".encode())
    for (start, zone, quantity), count in sorted(counts.items()):
        mac.update(f"\x1e{start.isoformat()}\x1f{zone}\x1f{quantity}\x1f{count}".encode())
    return mac.hexdigest()


@dataclass(frozen=True)
class Figure:
    """What a people cell may show: its noisy count when published, else why not."""

    devices: int | None
    reason: str  # "" when published


@dataclass(frozen=True)
class PeopleRelease:
    """One release of a day's people counts: the bounded counts, the noise and the rule.
    ``release``: its id ("" when the day's pseudonyms are gone: nothing of it may be
    published). ``ceilings``: the most distinct devices a zone's sensors can hear in a window, by
    (zone, quantity), from the registry profiles (``City.device_ceiling``)."""

    counts: Mapping[CellKey, int]
    noise: Noise
    key: bytes
    release: str
    k: int
    ceilings: Mapping[tuple[str, str], int]

    def figure(self, start: datetime, zone: str, quantity: str) -> Figure:
        """The cell's figure: its bounded count plus noise drawn for this release and
        cell; published at k or more, flagged above the zone's ceiling, else suppressed.
        Only the noisy figure decides."""
        seed = cell_seed(self.key, "cell", self.release, start.isoformat(), zone, quantity)
        noisy = self.counts.get((start, zone, quantity), 0) + self.noise.sample(seed)
        ceiling = self.ceilings.get((zone, quantity))
        if ceiling is not None and noisy > ceiling:
            return Figure(None, ABOVE_CEILING)
        if noisy < self.k:
            return Figure(None, FEWER_THAN_K)
        return Figure(noisy, "")
