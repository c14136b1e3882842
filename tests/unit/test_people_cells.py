"""A people cell's edges (issue 25: survivors of mutation testing of ``core.people``): a
cap of one cell a day is a cap, not a refusal; the reasons a cell is not published are the
machine-readable words the open data says; and what a release draws is pinned — the cells a
device counts in, the release's id and its noise are functions of the noise key that a new
version of citypipe must compute as the last one did, or a release recomputed after an
upgrade (a retry, a race) would be another release: new noise, charged again."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from unit_support import DAY, T10, clean, reading

from citypipe.core.noise import Noise
from citypipe.core.people import (
    PeopleRelease,
    capped_counts,
    choice_key,
    contributions,
    release_id,
)

PEOPLE = ["people.presence"]


def seen_in(windows: int, device: str = "me") -> list[dict[str, object]]:
    return [reading(15 * w, device=device) for w in range(windows)]


@pytest.mark.parametrize("cap", [1, 2])
def test_a_cap_of_one_or_two_cells_counts_a_device_in_that_many(cap: int) -> None:
    found = contributions(clean(*seen_in(5)), PEOPLE)
    counts = capped_counts([found], cap, b"k")
    assert sorted(counts.values()) == [1] * cap
    assert all(zone == "centrum" and start.date() == T10.date() for start, zone, _ in counts)


@pytest.mark.parametrize("cap", [0, -1])
def test_a_cap_of_no_cell_is_refused(cap: int) -> None:
    found = contributions(clean(*seen_in(5)), PEOPLE)
    with pytest.raises(ValueError, match="one cell at least"):
        capped_counts([found], cap, b"k")


def release(count: int, ceiling: int, k: int = 2) -> PeopleRelease:
    """A release of one cell holding ``count`` devices, with noise so small that a draw
    is 0 (a Laplace scale of 1/100: P[Z != 0] < 1e-43)."""
    noise = Noise("laplace", 100.0, cap=1)  # no city file may say it: a test's instrument
    counts = {(T10, "centrum", "people.presence"): count}
    return PeopleRelease(counts, noise, b"key", "r", k, {("centrum", "people.presence"): ceiling})


@pytest.mark.parametrize(
    ("count", "ceiling", "k", "figure"),
    [
        (5, 5, 2, (5, "")),
        (6, 5, 2, (None, "above_device_ceiling")),
        (2, 5, 2, (2, "")),
        (1, 5, 2, (None, "fewer_than_k_devices")),
    ],
    ids=["at-the-ceiling", "past-the-ceiling", "at-k", "below-k"],
)
def test_a_cell_is_published_at_k_and_at_its_ceiling_and_says_why_not_otherwise(
    count: int, ceiling: int, k: int, figure: tuple[int | None, str]
) -> None:
    found = release(count, ceiling, k).figure(T10, "centrum", "people.presence")
    assert (found.devices, found.reason) == figure


def test_an_empty_cell_has_no_device_before_noise() -> None:
    found = release(0, 5, k=0).figure(T10 + timedelta(minutes=15), "centrum", "people.presence")
    assert (found.devices, found.reason) == (0, "")


# --- pinned: what a release draws, from its key ------------------------------------------------


def test_a_device_counts_in_the_cells_of_lowest_keyed_rank() -> None:
    found = contributions(clean(*seen_in(8)), PEOPLE)
    counted = capped_counts([found], 3, b"k")
    assert sorted(start.strftime("%H:%M") for start, _, _ in counted) == ["10:00", "10:30", "11:30"]

    def rank(start: int) -> bytes:  # the window's start in epoch milliseconds
        return hmac.digest(
            b"k", f"day:me\x1f{start}\x1fcentrum\x1fpeople.presence".encode(), "sha256"
        )

    epoch_ms = [int((T10 + timedelta(minutes=15 * w)).timestamp() * 1000) for w in range(8)]
    lowest = sorted(epoch_ms, key=rank)[:3]
    assert sorted(int(start.timestamp() * 1000) for start, _, _ in counted) == sorted(lowest)


def test_the_choice_key_is_the_hmac_of_its_label_under_the_noise_key() -> None:
    expected = hmac.digest(b"noise", b"citypipe/v1/people/choice", hashlib.sha256)
    assert choice_key(b"noise") == expected
    assert expected.hex().startswith("435bcbf67840523a")


def test_a_release_id_is_pinned() -> None:
    noise = Noise("laplace", 2.0, None, 10)
    counts = {(T10, "centrum", "people.presence"): 12}
    found = release_id(b"noise", "people-counts", DAY, noise, counts)
    assert found == "9a458a2e22a392a8fe1a9f681c4107d119919e982a751e6bb3d093316b458c9f"


def test_a_releases_noise_is_pinned_cell_by_cell() -> None:
    noise = Noise("laplace", 2.0, None, 10)  # scale 5
    counts = {(T10, "centrum", "people.presence"): 40}
    found = PeopleRelease(counts, noise, b"noise", "r1", -1000, {})
    windows = [T10 + timedelta(minutes=15 * w) for w in range(6)]
    figures = [found.figure(w, "centrum", "people.presence").devices for w in windows]
    assert figures == [56, 1, 2, 0, 3, -9]
