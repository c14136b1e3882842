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
CELL = CONTRIBUTION[1:]  # a cell of the counts: (window start, zone, quantity)
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
    return summed([capped_cells(contributed, cap, key)] if contributed else [])


def capped_cells(contributed: Sequence[pa.Table], cap: int, key: bytes) -> pa.Table:
    """``capped_counts`` as a table of its cells (``CELL``) and their ``devices``, for
    ``summed``; ``contributed``: one table at least, ``cap``: one at least.

    All in Arrow but the rank: a device seen in at most ``cap`` cells counts in each whole,
    and only the rows of the devices over the cap are ranked (``_chosen``)."""
    table = pa.concat_tables(contributed).group_by(CONTRIBUTION, use_threads=False).aggregate([])
    seen = table.group_by("pseudonym", use_threads=False).aggregate([([], "count_all")])
    over = seen.filter(pc.greater(seen["count_all"], cap))["pseudonym"]
    busy = pc.is_in(table["pseudonym"], value_set=over)
    counted = pa.concat_tables(
        [table.filter(pc.invert(busy)), _chosen(key, table.filter(busy), cap)]
    )
    cells = counted.group_by(CELL, use_threads=False).aggregate([([], "count_all")])
    return cells.rename_columns({"count_all": "devices"})


def summed(cells: Sequence[pa.Table]) -> dict[CellKey, int]:
    """Tables of ``capped_cells`` as one mapping of cell to devices: a cell in several, in
    the counts of different devices, counts their sum."""
    if not cells:
        return {}
    total = (
        pa.concat_tables(cells).group_by(CELL, use_threads=False).aggregate([("devices", "sum")])
    )
    return {
        (row["window_start"], row["zone"], row["quantity"]): row["devices_sum"]
        for row in total.to_pylist()
    }


def _chosen(key: bytes, busy: pa.Table, cap: int) -> pa.Table:
    """The rows of the ``cap`` cells each device of ``busy`` counts in: those of lowest
    keyed rank, HMAC-SHA256(key, "pseudonym␟start␟zone␟quantity") compared as bytes, the
    window's start in the column's integer epoch unit (milliseconds)."""
    starts = pc.cast(pc.cast(busy["window_start"], pa.int64()), pa.string())
    messages = pc.binary_join_element_wise(
        busy["pseudonym"], starts, busy["zone"], busy["quantity"], "\x1f"
    )
    ranks = pa.array(_hmacs(key, pc.cast(messages, pa.binary()).to_pylist()), pa.binary(32))
    # each device's cells from its highest rank down: its ``cap`` lowest are the last
    # ``cap`` rows of its run, those fewer than ``cap`` rows before its run's end
    ordered = busy.append_column("rank", ranks).sort_by(
        [("pseudonym", "ascending"), ("rank", "descending")]
    )
    ends = pc.run_end_encode(ordered["pseudonym"].combine_chunks()).run_ends
    end = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, ends))  # a row's run's
    place = pc.cumulative_sum(pa.repeat(pa.scalar(1, ends.type), len(ordered)))  # 1, 2, ...
    return ordered.filter(pc.less(pc.subtract(end, place), cap)).select(CONTRIBUTION)


def _hmacs(key: bytes, messages: Iterable[bytes]) -> list[bytes]:
    """HMAC-SHA256 of each message under ``key`` (RFC 2104: ``hmac.digest``'s), the hashes
    of the inner and outer padded key computed once and copied for each message (a third
    of the time of a one-shot HMAC a message)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    found = []
    for message in messages:
        one = inner.copy()
        one.update(message)
        two = outer.copy()
        two.update(one.digest())
        found.append(two.digest())
    return found


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
