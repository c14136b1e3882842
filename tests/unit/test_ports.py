"""What the ports write once for every backend: a warm container's memory of answers."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest

from citypipe.ports import Expiring, in_parallel
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


# --- work that waits on a backend, done a few at a time ---------------------------------------


def test_work_in_parallel_keeps_the_order_and_its_limit() -> None:
    # Given work that holds each call until four are in flight at once
    lock, running, most = threading.Lock(), [0], [0]
    four = threading.Barrier(4, timeout=10)

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        four.wait()
        with lock:
            running[0] -= 1
        return item * item

    # When 12 items are worked 4 at a time, then the results come in the order given
    assert in_parallel(work, list(range(12)), 4) == [i * i for i in range(12)]
    assert most[0] == 4


@pytest.mark.parametrize(("items", "limit"), [([7], 16), ([1, 2, 3], 1), ([], 4)])
def test_one_item_or_a_limit_of_one_is_worked_in_line(items: list[int], limit: int) -> None:
    threads: set[str] = set()
    assert (
        in_parallel(lambda i: threads.add(threading.current_thread().name) or i, items, limit)
        == items
    )
    assert threads <= {threading.current_thread().name}


def test_a_failure_is_raised_and_the_work_not_started_is_not_done() -> None:
    # Given work whose first call fails, each other call taking a while (200 of them, two
    # at a time: ~2 s if all were done)
    started: list[int] = []
    failing = threading.Event()

    def work(item: int) -> int:
        started.append(item)
        if item == 0:
            failing.set()
            raise TimeoutError("backend")
        failing.wait(10)
        time.sleep(0.02)
        return item

    # When they are worked, then the failure is raised once the calls in flight are done,
    # and the queued ones are cancelled, not worked
    with pytest.raises(TimeoutError):
        in_parallel(work, list(range(201)), 2)
    assert len(started) < 50
