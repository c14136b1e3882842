"""The local runner's back-off ends when it is told its queues have messages (``wake``):
an edge batch's messages, the end of the hubs' play, wait for no poll interval."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from citypipe.domain.model import Function
from citypipe.domain.naming import StackNames
from citypipe_local import runner as runner_module
from citypipe_local.fakes import InMemoryQueue
from citypipe_local.runner import LocalRunner

HANG_GUARD_S = 120  # the back-off below is an hour: a runner deaf to wake() hangs that long


def test_a_woken_runner_takes_what_came_and_ends_when_the_player_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a runner whose empty queues would be asked again only after an hour
    monkeypatch.setattr(runner_module, "POLL_MIN_S", 3600.0)
    monkeypatch.setattr(runner_module, "POLL_MAX_S", 3600.0)
    names, queue = StackNames("velden"), InMemoryQueue()
    queue.create(names.queue(Function.ANONYMIZE))
    delivered: list[str] = []

    def anonymize(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.extend(record["body"] for record in event["Records"])
        return {"batchItemFailures": []}

    runner = LocalRunner(names, queue, handlers={Function.ANONYMIZE: anonymize})
    played, polled = threading.Event(), threading.Event()
    real_receive = queue.receive

    def receive(*args: Any, **kwargs: Any) -> Any:
        polled.set()
        return real_receive(*args, **kwargs)

    monkeypatch.setattr(queue, "receive", receive)
    draining = threading.Thread(
        target=runner.drain, args=([Function.ANONYMIZE],), kwargs={"until": played.is_set}
    )
    draining.start()
    # When, once the runner found the queue empty, a bridge writes a batch and says so,
    # then the hubs' play ends
    assert polled.wait(HANG_GUARD_S)
    queue.send(names.queue(Function.ANONYMIZE), ["claim-check"])
    runner.wake(Function.ANONYMIZE)
    played.set()
    runner.wake()
    draining.join(HANG_GUARD_S)
    # Then the batch was delivered and the drain ended, without the hour's back-off
    assert not draining.is_alive()
    assert delivered == ["claim-check"]
