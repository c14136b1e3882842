"""``citypipe api``'s server and store: the open zone of a run's folder, nothing outside
it; GET only, no body, a bounded number of requests at once (docs/cli.md)."""

from __future__ import annotations

import http.client
import inspect
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from open_support import every_theme_city

from citypipe.domain.errors import NotFoundError
from citypipe.domain.naming import StackNames
from citypipe.service.api import OpenData
from citypipe_local.api_server import ApiServer, OpenZoneDirectory


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A run's output: its open zone, and a raw zone beside it."""
    (tmp_path / "open" / "velden" / "noise").mkdir(parents=True)
    (tmp_path / "open" / "velden" / "noise" / "a.csv").write_text("published")
    (tmp_path / "raw" / "velden").mkdir(parents=True)
    (tmp_path / "raw" / "velden" / "x.json").write_text("raw")
    return tmp_path


def test_the_store_holds_the_open_zone_and_nothing_beside_it(folder: Path) -> None:
    store = OpenZoneDirectory(folder / "open")
    assert store.get("b", "open/velden/noise/a.csv").body == b"published"
    assert [i.key for i in store.list("b", "open/velden/")] == ["open/velden/noise/a.csv"]
    for key in ("raw/velden/x.json", "open/../raw/velden/x.json", "open/velden/../../raw"):
        with pytest.raises(NotFoundError):
            store.get("b", key)
        assert store.head("b", key) is None
    assert list(store.list("b", "raw/")) == list(store.list("b", "open/../raw/")) == []
    with pytest.raises(PermissionError):
        store.put("b", "open/velden/noise/b.csv", b"x")
    with pytest.raises(PermissionError):
        store.delete("b", "open/velden/noise/a.csv")


@pytest.fixture
def server(folder: Path) -> Iterator[ApiServer]:
    data = OpenData(every_theme_city(), StackNames("velden"), OpenZoneDirectory(folder / "open"))
    running = ApiServer(data, port=0, max_connections=1)
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield running
    running.shutdown()
    running.server_close()


def ask(
    server: ApiServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=30)
    connection.request(method, path, body)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def test_get_only_without_a_body(server: ApiServer) -> None:
    assert ask(server, "GET", "/features/conformance")[0] == 200
    status, refusal = ask(server, "POST", "/features/", b"{}")
    assert (status, refusal["code"]) == (405, "MethodNotAllowed")
    # the first GET's thread frees its one slot after its answer was read: wait for it
    assert server.slots.acquire(timeout=10)
    server.slots.release()
    status, refusal = ask(server, "GET", "/features/", b"a body")
    assert (status, refusal["code"]) == (413, "PayloadTooLarge")


def test_requests_beyond_the_bound_are_turned_away(server: ApiServer) -> None:
    assert inspect.signature(ApiServer).parameters["max_connections"].default == 32
    assert server.slots.acquire(blocking=False)  # the one request it serves at once
    try:
        status, refusal = ask(server, "GET", "/features/")
    finally:
        server.slots.release()
    assert (status, refusal["code"]) == (503, "ServiceUnavailable")
    assert ask(server, "GET", "/features/")[0] == 200
