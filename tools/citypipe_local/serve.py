"""``citypipe serve``: the hubs' webhook on a laptop or a LAN, the very one the cloud runs.

A threading HTTP/1.1 server maps each request to a ``WebhookRequest`` and answers what
``citypipe.service.webhook.answer`` answers — the same routes (``POST
/ingest/{source}/{format}``), per-source authentication, bounds, statuses and bodies as API
Gateway or Scaleway in front of the ingest function; 2xx only once the edge has written
the batch (raw objects, quarantine rows, claim checks, lineage). What only a socket can do
is done here, before anything is read: a body must announce its length (411 otherwise,
chunked uploads included) and at most ``MAX_BODY_BYTES`` (413, the body left unread and
the connection closed); ``Content-Length`` is ASCII digits, once (400 otherwise).

What a socket can do to a server is bounded (``ServerOptions``, decision 0085): a request
— its headers and its body — has ``request_deadline_s`` to arrive, however it trickles in
(408, the connection closed), and so has a TLS handshake; at most ``max_connections``
connections are served at once and at most ``max_writes`` requests write through the edge
at once: beyond either, 503 with ``Retry-After`` (a connection over the cap is answered
and closed by the thread that accepted it, so no thread is started for it; over TLS it is
closed unanswered, as its handshake would take a thread). The listen backlog is
``backlog``.

``POST /optout`` is a resident's opt-out (``citypipe.service.optout_http``), behind the
same bounds (the connection and write caps, the deadline, the length checks).

A body that is valid UTF-8 is handed over as text, any other (gzip) base64-encoded, as API
Gateway does. ``GET /healthz`` answers 200, ``GET /`` what the server takes (the city and
the formats hubs may post; never its sources: nobody lists them without a token), a
``GET`` on a route what the library answers (Meraki's validator, as text). A backend that
fails answers 503 (transient, with Retry-After) or 500, nothing half-counted: a hub's retry
of the same body writes it once. Logs hold the route, the status and the time taken; never
a body, a token or the client's address.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from citypipe.adapters.grouped_queue import GroupedSends
from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_BODY_BYTES
from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.buffer import Batcher
from citypipe.service.kernel import Deps, log
from citypipe.service.optout_http import OPTOUT_PATH, OptOutRate, answer_optout
from citypipe.service.webhook import WebhookRequest, WebhookResponse, answer, webhook_formats

ROUTE = re.compile(r"^/ingest/([^/]+)/([^/]+)/?$")
RECEIVED_AT_HEADER = "x-citypipe-received-at"  # honoured only by a server started for a replay
DIGITS = re.compile(r"[0-9]+")  # str.isdigit() would take "²", which int() then refuses


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port
    timeout_s: float = 30.0  # a client that sends nothing for this long is dropped
    request_deadline_s: float = 60.0  # a request's headers and body, however they trickle
    max_connections: int = 64  # served at once; beyond, 503 with Retry-After
    max_writes: int = 8  # requests writing through the edge at once; beyond, 503
    backlog: int = 128  # connections the kernel queues before they are accepted
    retry_after_s: int = 5  # what a 503 asks a hub to wait
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trust_received_at: bool = False  # a replay's recorded arrival, never a hub's word
    buffered: bool = False  # requests handed to ingest's queue (its consumer writes batches)


class WebhookServer(ThreadingHTTPServer):
    """Serves one city stack's webhook; ``serve_forever`` in a thread of its own."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, deps: Deps, tokens: WebhookTokens, keys: KeyStore, options: ServerOptions
    ) -> None:
        # buffered, the requests being served at once hand over to ingest's queue together
        self.sends = GroupedSends(deps.queue)
        self.deps = replace(deps, queue=self.sends) if options.buffered else deps
        self.batcher = Batcher(self.deps) if options.buffered else None
        self.tokens = tokens
        self.keys = keys
        self.options = options
        self.resent = 0  # bodies answered "resent": posted before, written nothing again
        self.cpu_s = 0.0  # CPU the requests took through the edge (what a function is billed)
        self._count = threading.Lock()
        self.connections = 0  # being served now
        self.writes = threading.BoundedSemaphore(options.max_writes)
        self.opt_out_rate = OptOutRate()  # residents' opt-outs (``POST /optout``)
        self.request_queue_size = options.backlog  # listen(); socketserver's default is 5
        super().__init__((options.host, options.port), _Handler)
        if options.tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(options.tls_cert, options.tls_key)
            # the handshake happens in the request's thread (``setup``), never in the one
            # that accepts connections: a slow client cannot stall the others
            self.socket = context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def url(self) -> str:
        scheme = "https" if self.options.tls_cert is not None else "http"
        host, port = self.server_address[:2]
        return f"{scheme}://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (a TLS handshake, a client gone): one line, no address."""
        log.warning(
            "webhook: a connection failed", extra={"error": type(sys.exc_info()[1]).__name__}
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to ``max_connections``; beyond, a 503 from here."""
        with self._count:
            full = self.connections >= self.options.max_connections
            if not full:
                self.connections += 1
        if full:
            self._turn_away(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._count:
            self.connections -= 1

    def _turn_away(self, request: socket.socket) -> None:
        """A connection over the cap: a 503 that fits any socket buffer, then closed (a
        TLS connection closed unanswered: its handshake is a client's to stall)."""
        log.warning("webhook: too many connections; one turned away")
        try:
            if not isinstance(request, ssl.SSLSocket):
                request.settimeout(1.0)
                body = json.dumps({"error": "busy", "detail": "too many connections"})
                request.sendall(
                    f"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nretry-after: {self.options.retry_after_s}"
                    f"\r\nconnection: close\r\n\r\n{body}".encode()
                )
                request.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client left: nothing to answer
        finally:
            super().shutdown_request(request)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="webhook", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    deadline: _Deadline
    protocol_version = "HTTP/1.1"  # keep-alive: hubs reuse their connections
    server_version = "citypipe"
    sys_version = ""

    def setup(self) -> None:
        options = self.server.options
        self.request.settimeout(options.timeout_s)  # a stalled client is dropped
        self.deadline = _Deadline(self.request, options.timeout_s, options.request_deadline_s)
        if isinstance(self.request, ssl.SSLSocket):  # a handshake within the deadline too
            watchdog = threading.Timer(options.request_deadline_s, _cut, (self.request,))
            watchdog.start()
            try:
                self.request.do_handshake()
            finally:
                watchdog.cancel()
        super().setup()
        self.rfile.close()  # the socket's own reader: it would hold the socket open
        self.rfile = io.BufferedReader(self.deadline)  # every read within the deadline

    def handle_one_request(self) -> None:
        self.deadline.restart()  # each request of a kept-alive connection has its own
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` with a body over the bound: 413 before it is sent."""
        refused = self._length()
        if isinstance(refused, WebhookResponse):
            self._send(refused)
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(WebhookResponse(200, {"status": "ok"}))
            return
        if path == "/":
            self._send(WebhookResponse(200, _landing(self.server.deps)))
            return
        self._handle()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _handle(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        match = ROUTE.match(path)
        if path == OPTOUT_PATH:
            source, fmt = "(opt-out)", ""
        elif match is None:
            self._send(WebhookResponse(404, {"error": "not_found", "detail": _ROUTE_HELP}))
            return
        else:
            source, fmt = unquote(match.group(1)), unquote(match.group(2))
        received_at = time.time()
        body = self._body()
        if isinstance(body, WebhookResponse):
            self._send(body)
            return
        if not self.server.writes.acquire(blocking=False):
            log.warning("webhook: too many writes at once; one turned away")
            retry_after = str(self.server.options.retry_after_s)
            self._send(_refusal(503, "busy", "too many requests at once", retry_after))
            return
        request_id = str(uuid.uuid4())
        cpu = time.thread_time()
        try:
            response = self._write(source, fmt, body, received_at, request_id)
        finally:
            self.server.writes.release()
        cpu = time.thread_time() - cpu
        self._send(response)
        with self.server._count:
            self.server.cpu_s += cpu
            self.server.resent += bool(response.body.get("resent"))
        log.info(
            "webhook request",
            extra={
                "source": source,
                "format": fmt,
                "status": response.status,
                "request_id": request_id,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _write(
        self, source: str, fmt: str, body: bytes, received_at: float, request_id: str
    ) -> WebhookResponse:
        """The request through the edge (one of ``max_writes`` at once)."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.server.options.trust_received_at:
            received_at = _float(headers.get(RECEIVED_AT_HEADER), received_at)
        text, encoded = _as_platform_body(body)
        request = WebhookRequest(
            method=self.command,
            source=source,
            format=fmt,
            headers=headers,
            body=text,
            base64_encoded=encoded,
            request_id=request_id,
            received_at=received_at,
        )
        try:
            server = self.server
            if fmt:
                response = answer(server.deps, server.tokens, server.keys, request, server.batcher)
            else:  # a resident's opt-out, behind the same bounds
                response = answer_optout(server.deps, server.keys, server.opt_out_rate, request)
        except TransientError:
            log.warning("webhook: the backend is unavailable", extra={"source": source})
            retry_after = str(self.server.options.retry_after_s)
            response = _refusal(503, "try_again", "the backend is unavailable", retry_after)
        except Exception as exc:
            failure = {"source": source, "error": type(exc).__name__}
            log.error("webhook: the request failed", extra=failure)
            response = _refusal(500, "internal_error", "see the server's log")
        return response

    def _length(self) -> int | WebhookResponse:
        """The body's announced length, or the refusal of a body that cannot be read (its
        connection is then closed: the body is never read)."""
        refusal = None
        lengths = {v.strip(" \t") for v in self.headers.get_all("content-length") or ()}
        length_header = next(iter(lengths)) if len(lengths) == 1 else None
        if len(lengths) > 1:
            refusal = _refusal(400, "invalid_content_length", "Content-Length given twice")
        elif "chunked" in self.headers.get("transfer-encoding", "").lower():
            refusal = _refusal(411, "length_required", "send Content-Length, not chunks")
        elif length_header is None:
            if self.command in ("GET", "DELETE"):
                return 0
            refusal = _refusal(411, "length_required", "send the body's Content-Length")
        elif DIGITS.fullmatch(length_header) is None:
            refusal = _refusal(400, "invalid_content_length", "Content-Length: ASCII digits only")
        elif int(length_header) > MAX_BODY_BYTES:
            refusal = _refusal(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes")
        if refusal is not None:
            self.close_connection = True
            return refusal
        return int(length_header or 0)

    def _body(self) -> bytes | WebhookResponse:
        """The request's body, if it says how long it is and that is within the bound."""
        length = self._length()
        if isinstance(length, WebhookResponse):
            return length
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            return _refusal(408, "request_timeout", "the request took too long to arrive")
        if len(body) < length:
            self.close_connection = True
            return _refusal(400, "incomplete_body", "the body ended before its Content-Length")
        return body

    def _send(self, response: WebhookResponse) -> None:
        if response.text is not None:  # Meraki's validator
            content_type, data = "text/plain; charset=utf-8", response.text.encode()
        else:
            content_type, data = "application/json", json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's own lines name the client's address: not logged."""


_ROUTE_HELP = "POST /ingest/{source}/{format}, or POST /optout (a resident's opt-out)"


def _landing(deps: Deps) -> dict[str, Any]:
    """``GET /``: what this server takes (a health check a person can read)."""
    return {
        "status": "ok",
        "city": deps.city.slug,
        "post": "POST /ingest/{source}/{format}",
        "token": "the source's token, as the source's webhook takes it (docs/hubs.md)",
        "formats": webhook_formats(),
    }


def _cut(sock: socket.socket) -> None:
    """End a connection whose TLS handshake outlived the deadline: its blocked read ends
    (the plain socket's shutdown: ``SSLSocket``'s would pull its state from under it)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Deadline(io.RawIOBase):
    """A connection's reads, each within ``idle_s`` and all of a request's within
    ``deadline_s`` of its start: a body trickled a byte at a time is cut at the deadline."""

    def __init__(self, sock: socket.socket, idle_s: float, deadline_s: float) -> None:
        self.sock, self.idle_s, self.deadline_s = sock, idle_s, deadline_s
        self.ends = time.monotonic() + deadline_s

    def restart(self) -> None:
        self.ends = time.monotonic() + self.deadline_s

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self.sock.settimeout(min(left, self.idle_s))
        return self.sock.recv_into(buffer)


def _refusal(status: int, error: str, detail: str, retry_after: str = "") -> WebhookResponse:
    headers = {"retry-after": retry_after} if retry_after else {}
    return WebhookResponse(status, {"error": error, "detail": detail}, headers)


def _as_platform_body(body: bytes) -> tuple[str, bool]:
    """As API Gateway hands a body over: text when it is UTF-8, else base64."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default
