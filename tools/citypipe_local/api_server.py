"""``citypipe api``: the open-data API on a laptop, the very one the cloud's api function
runs (``citypipe.service.api.reply``), over a replay's open zone on disk.

``OpenZoneDirectory`` is the ``ObjectStore`` port over a folder holding a city's open zone
as a replay writes it (``out/<run>/open/``: ``<city>/<theme>/date=<day>/...``), read only:
a key outside ``open/`` is not there, and nothing below the folder is reachable from a key.
``ApiServer`` answers ``GET /features/...`` on a threading HTTP/1.1 server: a request has
``timeout_s`` to arrive, at most ``max_connections`` are served at once (beyond, 503), a
request with a body is refused (413), and logs hold the route, the status and the time,
never the client's address.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from citypipe.domain.errors import NotFoundError
from citypipe.domain.model import Zone
from citypipe.ports import Body, ObjectInfo, ObjectStore, StoredObject
from citypipe.service.api import ApiRequest, ApiResponse, OpenData, reply

OPEN = f"{Zone.OPEN.value}/"


class OpenZoneDirectory(ObjectStore):
    """The open bucket's ``open/`` prefix as a folder; reads only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def _path(self, key: str) -> Path | None:
        if not key.startswith(OPEN):
            return None
        path = (self.folder / key[len(OPEN) :]).resolve()
        return path if path.is_relative_to(self.folder) and path.is_file() else None

    def _put(self, bucket: str, key: str, body: Body, content_type: str, if_absent: bool) -> str:
        raise PermissionError("the API reads the open zone; it writes nothing")

    def get(self, bucket: str, key: str) -> StoredObject:
        path = self._path(key)
        if path is None:
            raise NotFoundError(f"NoSuchKey {key}")
        return StoredObject(key, "", path.read_bytes())

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return None if path is None else ObjectInfo(key, "", path.stat().st_size)

    def delete(self, bucket: str, key: str) -> None:
        raise PermissionError("the API reads the open zone; it deletes nothing")

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        if not prefix.startswith(OPEN):
            return iter(())
        start = self.folder / prefix[len(OPEN) :].rsplit("/", 1)[0]
        if not start.resolve().is_relative_to(self.folder) or not start.is_dir():
            return iter(())
        keys = (
            (f"{OPEN}{p.relative_to(self.folder).as_posix()}", p)
            for p in start.rglob("*")
            if p.is_file()
        )
        found = sorted((k, p) for k, p in keys if k.startswith(prefix))
        return iter([ObjectInfo(k, "", p.stat().st_size) for k, p in found])


class ApiServer(ThreadingHTTPServer):
    """Serves the API over one city's open zone; ``serve_forever`` in a thread of its own."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        data: OpenData,
        host: str = "127.0.0.1",
        port: int = 8081,
        timeout_s: float = 30.0,
        max_connections: int = 32,
    ) -> None:
        self.data = data
        self.timeout_s = timeout_s
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "citypipe"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.server.timeout_s)  # a stalled client is dropped
        super().setup()

    def do_GET(self) -> None:
        if not self.server.slots.acquire(blocking=False):
            self._refuse(503, "ServiceUnavailable", "too many requests at once")
            return
        try:
            if self.headers.get("content-length", "0").strip() not in ("", "0"):
                self.close_connection = True
                self._refuse(413, "PayloadTooLarge", "a GET takes no body")
                return
            split = urlsplit(self.path)
            request = ApiRequest(
                "GET", split.path, split.query, self.headers.get("accept", ""), self.server.url
            )
            self._send(reply(self.server.data, request))
        finally:
            self.server.slots.release()

    def do_POST(self) -> None:
        self.close_connection = True  # its body is never read
        self._refuse(405, "MethodNotAllowed", "the API answers GET only")

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _refuse(self, status: int, code: str, description: str) -> None:
        body = json.dumps({"code": code, "description": description}).encode()
        self._send(ApiResponse(status, body, "application/json"))

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        self.send_header("content-type", response.content_type)
        self.send_header("content-length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's own lines name the client's address: not logged."""
