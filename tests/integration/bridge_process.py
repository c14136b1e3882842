"""A bridge process for the restart tests: ``citypipe_bridge.main.run`` with the settings of
the environment (CITYPIPE_*), as ``citypipe-bridge`` runs it, in a process of its own.

``--die-at PREFIX --nth N``: the process SIGKILLs itself at the N-th write of a key
starting with PREFIX — the store wrapped at the composition root, the test seam — so a
test can kill it at the worst moments (a batch written, its acknowledgements not sent).
It prints ``ready`` once the broker confirmed its subscriptions, and its books (JSON) when
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from citypipe.bootstrap import deps_from
from citypipe.bootstrap.keys import key_store_from
from citypipe.ports import Body, ObjectInfo, ObjectStore, StoredObject
from citypipe_bridge.main import Running, run
from citypipe_bridge.settings import BridgeSettings
from citypipe_local.logs import send_to


class DyingStore(ObjectStore):
    """Another store's objects; the process dies at the ``nth`` write under ``prefix``."""

    def __init__(self, inner: ObjectStore, prefix: str, nth: int) -> None:
        self.inner, self.prefix, self.left = inner, prefix, nth

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        if key.startswith(self.prefix):
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner._put(bucket, key, body, content_type, if_absent)

    def get(self, bucket: str, key: str) -> StoredObject:
        return self.inner.get(bucket, key)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        return self.inner.head(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self.inner.delete(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(bucket, prefix)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--die-at", default="")
    parser.add_argument("--nth", type=int, default=1)
    args = parser.parse_args(argv)
    settings = BridgeSettings()
    send_to(Path(os.environ.get("CITYPIPE_TEST_LOGS", os.devnull)))  # stdout is the harness's
    deps = deps_from(settings)
    if args.die_at:
        deps = dataclasses.replace(deps, store=DyingStore(deps.store, args.die_at, args.nth))
    keys = key_store_from(settings, deps)
    stop, running = threading.Event(), Running()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    books: list[str] = []
    worker = threading.Thread(
        target=lambda: books.append(run(settings, stop, deps, keys, running).model_dump_json())
    )
    worker.start()
    while not stop.is_set():
        client = running.client
        if client is not None and client.subscribed.wait(0.1):
            print("ready", flush=True)
            break
    worker.join()
    print(books[0] if books else "{}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
