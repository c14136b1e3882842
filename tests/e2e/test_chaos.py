"""Nothing lost, nothing double-counted — with the backend failing under the functions.

The same small city is replayed twice on the embedded backend: once cleanly, once with
the functions' object store and queue failing at random — before a request reaches the
backend and, worse, after it succeeded (the write happened, the function never heard).
Every failed record is redelivered after its visibility timeout. The books must balance
with nothing dead-lettered, and the open data must be byte-identical to the clean run.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from citypipe.adapters.keys import FileKeyStore
from citypipe.bootstrap import deps_from
from citypipe.domain.city import City
from citypipe.domain.errors import TransientError
from citypipe.domain.model import Function
from citypipe.ports import ObjectInfo, ObjectStore, Queue, ReceivedMessage, StoredObject
from citypipe.settings import KeySettings, Settings, StackSettings
from citypipe_local import stack
from citypipe_local.backends import backend
from citypipe_local.replay import (
    PIPELINE,
    ReplayOptions,
    copy_zones,
    drop_csv,
    edge_batches,
    play_batch,
    replay,
    request_export,
)
from citypipe_local.report import build_report
from citypipe_local.runner import LocalRunner, in_process_handlers
from citypipe_local.simulate import simulate
from citypipe_local.stack import make_clients

pytestmark = pytest.mark.slow  # full replays: `make test-fast` skips them

CITY_FILE = Path(__file__).resolve().parents[2] / "infra" / "cities" / "velden.yaml"
FAILURE_RATE = 0.1


class Faults:
    """A seeded coin shared by the flaky adapters; counts what it injected."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.injected = 0
        self._lock = threading.Lock()

    def maybe(self, what: str) -> None:
        with self._lock:
            if self.rng.random() >= self.rate:
                return
            self.injected += 1
        raise TransientError(f"injected fault: {what}")


class FlakyStore(ObjectStore):
    def __init__(self, inner: ObjectStore, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, if_absent: bool) -> str:
        self.faults.maybe("put, before")
        etag = self.inner._put(bucket, key, body, content_type, if_absent)
        self.faults.maybe("put, after it was written")
        return etag

    def get(self, bucket: str, key: str) -> StoredObject:
        self.faults.maybe("get")
        return self.inner.get(bucket, key)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        self.faults.maybe("head")
        return self.inner.head(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self.faults.maybe("delete, before")
        self.inner.delete(bucket, key)
        self.faults.maybe("delete, after it was done")

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self.faults.maybe("list")
        return self.inner.list(bucket, prefix)


class FlakyQueue(Queue):
    """Sending fails (before or after the messages went out); the platform side — what
    the runner uses to receive and delete — is the real queue."""

    def __init__(self, inner: Queue, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    def _send_batch(self, queue: str, bodies: Sequence[str]) -> None:
        self.faults.maybe("send, before")
        self.inner._send_batch(queue, bodies)
        self.faults.maybe("send, after they went out")

    def receive(self, queue: str, max_messages: int = 10, wait_s: int = 0) -> list[ReceivedMessage]:
        return self.inner.receive(queue, max_messages, wait_s)

    def delete(self, queue: str, receipt_handles: Sequence[str]) -> None:
        self.inner.delete(queue, receipt_handles)

    def depth(self, queue: str) -> tuple[int, int]:
        return self.inner.depth(queue)

    def arn(self, queue: str) -> str:
        return self.inner.arn(queue)


def open_tree(out: Path) -> dict[str, bytes]:
    files = sorted((out / "open").rglob("*"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files if p.is_file()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, city: City) -> Path:
    directory = tmp_path_factory.mktemp("input")
    simulate(city, directory, hours=1.0, seed=5, scale=0.05)
    return directory


def test_failures_under_the_functions_lose_and_double_count_nothing(
    tmp_path: Path, recorded: Path
) -> None:
    keys = tmp_path / "keys"
    clean = replay(
        CITY_FILE, recorded, tmp_path / "clean", ReplayOptions(batch_payloads=200, keys_dir=keys)
    )
    faults = Faults(seed=11, rate=FAILURE_RATE)
    stack.reset_file_keys(keys / "velden")  # a new stack: the clean run destroyed its secrets

    with backend("embedded") as endpoint:
        settings = Settings(
            backend=endpoint.settings,
            stack=StackSettings(city_file=CITY_FILE, visibility_timeout_s=1, max_receive_count=50),
            keys=KeySettings(store="file", directory=keys),
        )
        deps = deps_from(settings)
        stack.up(deps.city, deps.names, make_clients(endpoint.settings), settings.stack)
        flaky = replace(
            deps, store=FlakyStore(deps.store, faults), queue=FlakyQueue(deps.queue, faults)
        )
        key_store = FileKeyStore(keys / deps.city.city)
        handlers = in_process_handlers(flaky, key_store)
        # the hubs' bridges, on the flaky store too, retry a batch until it is written
        sent = bridge_retries = 0
        for lines in edge_batches(recorded, 200):
            while True:
                try:
                    sent += play_batch(flaky, key_store, lines)
                    break
                except TransientError:
                    bridge_retries += 1
        sent += drop_csv(deps, recorded)
        runner = LocalRunner(deps.names, deps.queue, concurrency=2, handlers=handlers)
        runner.drain(PIPELINE, timeout_s=600)
        request_export(deps)
        runner.drain([Function.EXPORT], timeout_s=600)
        report = build_report(deps, sent)
        copy_zones(deps, tmp_path / "chaos")

    retried = sum(s.failures for s in runner.stats.values())
    assert faults.injected >= 10 and retried > 0, "the test must actually hurt the functions"
    assert bridge_retries > 0, "the test must actually hurt the edge"
    assert report["balanced"], [c for c in report["checks"] if not c["ok"]]
    assert report["dead_lettered"] == 0
    assert {k: report[k] for k in ("received", "accepted", "duplicates", "quarantined")} == {
        k: clean[k] for k in ("received", "accepted", "duplicates", "quarantined")
    }
    assert [p for p in (tmp_path / "chaos" / "raw").rglob("*") if p.is_file()] == []
    assert open_tree(tmp_path / "chaos") == open_tree(tmp_path / "clean")
