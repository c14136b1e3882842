"""The embedded backend's moto server: ``python -m citypipe_local.backends.moto_server
[--clock OFFSET_FILE] -H HOST -p PORT``. Laptop tooling only, as is moto.

moto's application, served by waitress; three changes to moto and one to waitress, none to
what the backend answers for citypipe's calls:

- **served by waitress**, not werkzeug's development server (``moto.server``'s), which
  closes every connection after its response, so that each request opened a TCP
  connection and a server thread, and then waits 10 ms on it for a body nobody sends.
  waitress keeps connections alive and serves from a pool of threads: a fifth less CPU
  on each side of a request (decision 0108). It answers an ``Expect: 100-continue``
  without a body at once (``no_continue_without_a_body``); unlike moto's werkzeug
  handler, it does not keep S3 user metadata's underscored or mixed-case header names,
  which citypipe never sends.
- **no directory walk per request**: moto looks up every request's host among its own
  package folders (``list_of_moto_modules``: a ``listdir`` and ~150 ``stat`` calls); the
  folders don't change while it runs, so the list is read once.
- **a queue's attributes read one at a time**: moto builds every attribute of a queue,
  its three message counts among them (a scan of the queue each), whenever it reads one:
  on every ``SendMessage`` (is the queue content-deduplicated?) and, in a receive, for
  every message it looks at (its retention period). A receive was quadratic in the
  queue's length: a buffered webhook's queue of a few thousand requests took seconds a
  call, where SQS takes milliseconds (decision 102). The queue's ``attributes`` are now a
  mapping that computes the one asked for; ``GetQueueAttributes`` answers the same
  (``tests/integration/test_moto_server.py`` compares it with moto's own).
- **a simulated clock**, with ``--clock``: moto reads the time through
  ``moto.core.utils.utcnow`` (objects' ``LastModified``, queue timers: every module calls
  it, or imports it before its first request), so replacing that one function before the
  server loads a service puts the whole backend on the replay's clock
  (``citypipe_local.clock``).

And one setting: moto serves a region AWS does not have (Scaleway's fr-par, nl-ams,
pl-waw: a Scaleway city's stack is kept in its own region here too).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moto import backends
from moto.core import utils

from citypipe_local.clock import Offset

SERVER_THREADS = 16  # requests served at once: the functions', the runner's and the hubs'
# open (kept-alive) connections, every client's pool: 16 workers of each of 5 functions,
# each pool filled to ~17 by claims and the metadata's writes, is ~1,300
SERVER_CONNECTIONS = 10_000
IDLE_S = 30  # a kept-alive connection closed after this long unused
LARGEST_BODY = 5 * 2**30  # S3's largest single PUT


def on_clock(offset_file: Path) -> None:
    offset = Offset(offset_file)
    real = utils.utcnow

    def utcnow() -> datetime:
        return real() + timedelta(seconds=offset.seconds())

    utils.utcnow = utcnow  # before moto.server loads any service's models


class QueueAttributes(Mapping[str, Any]):
    """``moto.sqs.models.Queue.attributes``, each computed when read: the same keys and
    values (booleans as ``"true"``/``"false"``), without counting the queue's messages
    for a question about its retention period."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:  # without computing it
        return name in self._names()

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        value = getattr(self._queue, utils.camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            value = json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value


def attributes_one_at_a_time() -> None:
    from moto.sqs import models

    get_queue_attributes = models.SQSBackend.get_queue_attributes

    def answered(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        return dict(get_queue_attributes(self, queue_name, attribute_names))  # a plain dict

    models.Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]
    models.SQSBackend.get_queue_attributes = answered  # type: ignore[method-assign]


def no_continue_without_a_body() -> None:
    """waitress answers ``Expect: 100-continue`` with ``100 Continue`` and then waits for
    the body, even when ``Content-Length: 0`` announced none: the request never completes
    (botocore sends the header on every ``PutObject``, an empty object's too). A request
    without a body expects nothing to continue."""
    from waitress.parser import HTTPRequestParser

    parse_header = HTTPRequestParser.parse_header

    def parsed(self: Any, header_plus: bytes) -> None:
        parse_header(self, header_plus)
        if self.content_length == 0 and not self.chunked:
            self.expect_continue = False

    HTTPRequestParser.parse_header = parsed


def serve(host: str, port: int) -> None:
    """moto's application on waitress rather than werkzeug's development server, which
    closes every connection after its response (each request a TCP connection and a server
    thread) and waits 10 ms on each for a body nobody sends: waitress keeps connections
    alive and serves from a pool of threads. ``make bench``'s history has what it saved."""
    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    no_continue_without_a_body()
    os.environ.setdefault("MOTO_PORT", str(port))  # moto writes it into queue URLs
    app = DomainDispatcherApplication(create_backend_app)
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=SERVER_THREADS,
        connection_limit=SERVER_CONNECTIONS,
        channel_timeout=IDLE_S,
        max_request_body_size=LARGEST_BODY,
        backlog=1_024,
        asyncore_use_poll=True,  # no select(): its 1,024 descriptors
        _quiet=True,
    )


def main(argv: list[str]) -> None:
    os.environ["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
    if argv[:1] == ["--clock"]:
        on_clock(Path(argv[1]))
        argv = argv[2:]
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = functools.wraps(backends.list_of_moto_modules)(
        list_of_moto_modules
    )
    attributes_one_at_a_time()
    parser = argparse.ArgumentParser(prog="citypipe_local.backends.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
