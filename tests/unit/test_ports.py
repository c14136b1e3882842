"""What the ports write once for every backend: a warm container's memory of answers."""

from __future__ import annotations

from datetime import date

from citypipe.ports import Expiring
from citypipe_local.fakes import InMemoryKeyStore


def test_a_remembered_answer_is_not_asked_again_while_fresh() -> None:
    asked: list[str] = []
    memory: Expiring[str, int] = Expiring(60)

    first = memory.get("k", lambda: asked.append("k") or 1)
    second = memory.get("k", lambda: asked.append("k") or 2)

    assert (first, second, asked) == (1, 1, ["k"])


def test_a_memory_of_zero_seconds_always_asks() -> None:
    memory: Expiring[str, int] = Expiring(0)
    answers = iter([1, 2])

    assert [memory.get("k", lambda: next(answers)) for _ in range(2)] == [1, 2]


class CountingKeyStore(InMemoryKeyStore):
    CACHE_S = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def _secret(self, day: date) -> bytes:
        self.reads += 1
        return super()._secret(day)


def test_a_remembered_secret_is_forgotten_when_its_day_is_destroyed() -> None:
    # Given a container that remembers the secrets it read
    keys = CountingKeyStore()
    keys.daily_secret(date(2026, 6, 1))
    keys.daily_secret(date(2026, 6, 1))
    assert keys.reads == 1
    # When its day is destroyed, then asking for it again is refused at once
    keys.destroy_before(date(2026, 6, 2))
    try:
        keys.daily_secret(date(2026, 6, 1))
    except Exception as exc:
        assert type(exc).__name__ == "KeyDestroyedError"
    else:
        raise AssertionError("a destroyed day's secret was still handed out")
