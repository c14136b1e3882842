"""Faults on demand: what ``--faults`` asks for."""

from __future__ import annotations

import pytest

from citypipe_local.faults import Faults


def test_the_faults_asked_for_are_read_whatever_their_order() -> None:
    faults = Faults.parse("poison=3, crash=0.05,duplicate=1.0,throttle=0.05")
    assert faults == Faults(duplicate=1.0, crash=0.05, throttle=0.05, poison=3)
    assert faults.any


def test_no_faults_is_a_clean_run() -> None:
    assert not Faults.parse("").any


def test_faults_print_as_they_are_asked_for() -> None:
    assert Faults.parse(str(Faults(lost=0.02, poison=4))) == Faults(lost=0.02, poison=4)


@pytest.mark.parametrize(
    "text",
    ["crash", "crash=", "explode=0.1", "throttle=1.5", "duplicate=-1", "poison=two"],
    ids=["no-value", "empty-value", "unknown-fault", "share-above-1", "negative", "not-a-count"],
)
def test_a_fault_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Faults.parse(text)
