"""``citypipe serve``: the hubs' webhook on a laptop or a LAN, the very one the cloud runs.

A threading HTTP/1.1 server maps each request to a ``WebhookRequest`` and answers what
``citypipe.service.webhook.answer`` answers — the same routes (``POST
/ingest/{source}/{format}``), per-source authentication, bounds, statuses and bodies as API
Gateway or Scaleway in front of the ingest function; 2xx only once the edge has written
the batch (raw objects, quarantine rows, claim checks, lineage). What only a socket can do
is done here, before anything is read: a body must announce its length (411 otherwise,
chunked uploads included) and at most ``MAX_BODY_BYTES`` (413, the body left unread and
the connection closed); a client that stalls is dropped after ``timeout_s``.

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
import json
import re
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from citypipe.domain.errors import TransientError
from citypipe.domain.limits import MAX_BODY_BYTES
from citypipe.ports import KeyStore, WebhookTokens
from citypipe.service.kernel import Deps, log
from citypipe.service.webhook import WebhookRequest, WebhookResponse, answer, webhook_formats

ROUTE = re.compile(r"^/ingest/([^/]+)/([^/]+)/?$")
RECEIVED_AT_HEADER = "x-citypipe-received-at"  # honoured only by a server started for a replay


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port
    timeout_s: float = 30.0  # a client that sends nothing for this long is dropped
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trust_received_at: bool = False  # a replay's recorded arrival, never a hub's word


class WebhookServer(ThreadingHTTPServer):
    """Serves one city stack's webhook; ``serve_forever`` in a thread of its own."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, deps: Deps, tokens: WebhookTokens, keys: KeyStore, options: ServerOptions
    ) -> None:
        self.deps = deps
        self.tokens = tokens
        self.keys = keys
        self.options = options
        self.resent = 0  # bodies answered "resent": posted before, written nothing again
        self._count = threading.Lock()
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

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="webhook", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"  # keep-alive: hubs reuse their connections
    server_version = "citypipe"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.server.options.timeout_s)  # a stalled client is dropped
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

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
        match = ROUTE.match(urlsplit(self.path).path)
        if match is None:
            self._send(WebhookResponse(404, {"error": "not_found", "detail": _ROUTE_HELP}))
            return
        source, fmt = unquote(match.group(1)), unquote(match.group(2))
        received_at = time.time()
        body = self._body()
        if isinstance(body, WebhookResponse):
            self._send(body)
            return
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
            request_id=str(uuid.uuid4()),
            received_at=received_at,
        )
        try:
            response = answer(self.server.deps, self.server.tokens, self.server.keys, request)
        except TransientError:
            log.warning("webhook: the backend is unavailable", extra={"source": source})
            response = _refusal(503, "try_again", "the backend is unavailable", retry_after="5")
        except Exception as exc:
            failure = {"source": source, "error": type(exc).__name__}
            log.error("webhook: the request failed", extra=failure)
            response = _refusal(500, "internal_error", "see the server's log")
        self._send(response)
        if response.body.get("resent"):
            with self.server._count:
                self.server.resent += 1
        log.info(
            "webhook request",
            extra={
                "source": source,
                "format": fmt,
                "status": response.status,
                "request_id": request.request_id,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _length(self) -> int | WebhookResponse:
        """The body's announced length, or the refusal of a body that cannot be read (its
        connection is then closed: the body is never read)."""
        refusal = None
        length_header = self.headers.get("content-length")
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            refusal = _refusal(411, "length_required", "send Content-Length, not chunks")
        elif length_header is None:
            if self.command in ("GET", "DELETE"):
                return 0
            refusal = _refusal(411, "length_required", "send the body's Content-Length")
        elif not length_header.strip().isdigit():
            refusal = _refusal(400, "invalid_content_length", "Content-Length is no length")
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
        body = self.rfile.read(length)
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


_ROUTE_HELP = "POST /ingest/{source}/{format}"


def _landing(deps: Deps) -> dict[str, Any]:
    """``GET /``: what this server takes (a health check a person can read)."""
    return {
        "status": "ok",
        "city": deps.city.slug,
        "post": "POST /ingest/{source}/{format}",
        "token": "the source's token, as the source's webhook takes it (docs/hubs.md)",
        "formats": webhook_formats(),
    }


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
