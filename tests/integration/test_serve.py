"""``citypipe serve``: the cloud's webhook on a real socket, writing to the embedded moto
server. The checks and answers are the library's (``service.webhook``); what the socket
adds — lengths announced and bounded before reading, TLS — is tested here, and so is the
command itself, in a process of its own, stopped as a container is (SIGTERM).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from repo import ROOT

from citypipe.domain.limits import MAX_BODY_BYTES
from citypipe.domain.model import Function, Zone
from citypipe.service.kernel import Deps
from citypipe_local import serve
from citypipe_local.fakes import InMemoryKeyStore, InMemoryWebhookTokens
from citypipe_local.serve import ServerOptions, WebhookServer

# an hour ago, to the minute: the server judges a reading's age on the real clock (a day
# whose key is gone is too old)
T0 = int(time.time()) // 60 * 60 - 3_600
SENML = json.dumps(
    [{"bn": "urn:dev:mac:0024befffe800001/", "bt": T0, "bu": "count"}, {"n": "vehicles", "v": 7}]
).encode()
PATH = "/ingest/traffic-counters/senml"


def request(
    server: WebhookServer,
    body: bytes = SENML,
    token: str | None = None,
    path: str = PATH,
    method: str = "POST",
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if token is not None:
        sent["X-Citypipe-Token"] = token
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, answer


def lineage(deps: Deps) -> list[str]:
    audit = deps.names.bucket(Zone.AUDIT)
    prefix = deps.names.lineage_prefix(Function.INGEST)
    return [i.key for i in deps.store.list(audit, prefix)]


def raw_keys(deps: Deps) -> list[str]:
    return [i.key for i in deps.store.list(deps.names.bucket(Zone.RAW))]


# --- authentication: nothing written ----------------------------------------------------------


def test_a_post_without_a_token_is_refused_with_401_and_writes_nothing(
    server: WebhookServer, deps: Deps
) -> None:
    status, answer = request(server)

    assert (status, answer["error"]) == (401, "unauthorized")
    assert (lineage(deps), raw_keys(deps)) == ([], [])


def test_a_forged_token_is_refused_with_the_same_401_and_writes_nothing(
    server: WebhookServer, deps: Deps
) -> None:
    status, answer = request(server, token="cpt-forged-0123456789")

    assert (status, answer["error"]) == (401, "unauthorized")
    assert (lineage(deps), raw_keys(deps)) == ([], [])


def test_another_sources_token_is_refused_with_the_same_401(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    status, _ = request(server, token=tokens.minted["wifi-counters"])

    assert status == 401


# --- bodies -----------------------------------------------------------------------------------


def test_an_authenticated_hub_payload_is_accepted_once_it_is_written(
    server: WebhookServer, deps: Deps, tokens: InMemoryWebhookTokens
) -> None:
    status, answer = request(server, token=tokens.minted["traffic-counters"])

    # the answer comes after the write: the raw object and the lineage are there already
    assert (status, answer["accepted"]) == (202, 1)
    assert len(lineage(deps)) == 1
    assert len(raw_keys(deps)) == 1


def test_a_body_that_is_not_json_is_a_400_with_the_reason_and_quarantined(
    server: WebhookServer, deps: Deps, tokens: InMemoryWebhookTokens
) -> None:
    status, answer = request(server, b"{not json", token=tokens.minted["traffic-counters"])

    assert (status, answer["error"], answer["reasons"]) == (
        400,
        "no_usable_reading",
        {"invalid_json": 1},
    )
    assert len(list(deps.store.list(deps.names.bucket(Zone.QUARANTINE), "quarantine/"))) == 1


def test_a_gzip_body_that_does_not_inflate_is_a_400(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    broken = gzip.compress(SENML)[:-8]
    status, answer = request(
        server, broken, token=tokens.minted["traffic-counters"], Content_Encoding="gzip"
    )

    assert (status, answer["error"]) == (400, "invalid_gzip")


def test_a_gzip_body_is_read_as_the_cloud_reads_it(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    status, answer = request(
        server,
        gzip.compress(SENML),
        token=tokens.minted["traffic-counters"],
        Content_Encoding="gzip",
    )

    assert (status, answer["accepted"]) == (202, 1)


def test_the_same_body_posted_again_is_answered_as_resent_and_written_once(
    server: WebhookServer, deps: Deps, tokens: InMemoryWebhookTokens
) -> None:
    token = tokens.minted["traffic-counters"]
    request(server, token=token)
    status, answer = request(server, token=token)

    assert (status, answer["resent"], answer["accepted"], answer["duplicates"]) == (202, True, 0, 1)
    assert len(lineage(deps)) == 1
    assert server.resent == 1  # what the run report counts as resent


def test_an_iot_rules_topic_header_names_its_device(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    status, answer = request(
        server,
        b'{"vehicles": 4}',
        token=tokens.minted["traffic-counters"],
        path="/ingest/traffic-counters/aws-iot",
        X_Citypipe_Topic="velden/traffic/loop-5a00e8cd/counts",
    )

    assert (status, answer["accepted"]) == (202, 1)


# --- what only the socket can do ------------------------------------------------------------------


def raw_exchange(server: WebhookServer, head: bytes, timeout_s: float = 5) -> bytes:
    """Send ``head`` (and no more) on a raw socket; what the server answers."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout_s) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_announced_over_the_bound_is_refused_before_it_is_read(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    token = tokens.minted["traffic-counters"]
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Citypipe-Token: {token}\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    # no body is sent: an answer at all means it was not waited for
    answer = raw_exchange(server, head)

    assert answer.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in answer.lower()


def test_a_body_without_a_length_is_refused_with_411(server: WebhookServer) -> None:
    answer = raw_exchange(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert answer.startswith(b"HTTP/1.1 411")


def test_a_chunked_upload_is_refused_with_411(server: WebhookServer) -> None:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()

    assert raw_exchange(server, head).startswith(b"HTTP/1.1 411")


def test_an_oversized_body_that_expects_100_continue_is_refused_before_it_is_sent(
    server: WebhookServer,
) -> None:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {MAX_BODY_BYTES * 4}\r\n\r\n"
    ).encode()
    answer = raw_exchange(server, head)

    assert answer.startswith(b"HTTP/1.1 413")
    assert b"100 Continue" not in answer


def test_a_client_that_stalls_is_dropped(server: WebhookServer) -> None:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode()
    started = time.monotonic()
    answer = raw_exchange(server, head, timeout_s=20)

    assert time.monotonic() - started < 15  # the server's timeout (5 s here), not ours
    assert not answer.startswith(b"HTTP/1.1 2")


def test_another_path_is_a_404_and_the_health_check_a_200(server: WebhookServer) -> None:
    assert request(server, path="/ingest/air-quality")[0] == 404
    assert request(server, path="/healthz", method="GET", body=b"") == (200, {"status": "ok"})


def test_a_get_with_a_valid_token_is_a_405(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    status, _ = request(server, b"", tokens.minted["traffic-counters"], method="GET")

    assert status == 405


def test_the_server_speaks_https_with_the_certificate_it_is_given(
    deps: Deps, tokens: InMemoryWebhookTokens, tmp_path: Path
) -> None:
    from test_mosquitto import _certificates

    certs = _certificates(tmp_path)
    options = ServerOptions(
        port=0, tls_cert=certs["server.crt"], tls_key=certs["server.key"], timeout_s=5
    )
    server = WebhookServer(deps, tokens, InMemoryKeyStore(), options)
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(certs["ca.crt"]))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", int(server.server_address[1]), context=context, timeout=10
        )
        connection.request(
            "POST", PATH, SENML, {"X-Citypipe-Token": tokens.minted["traffic-counters"]}
        )
        status = connection.getresponse().status
        connection.close()
    finally:
        server.shutdown()
        server.server_close()

    assert status == 202
    assert server.url.startswith("https://")


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_citypipe_serve_takes_hubs_posts_and_reports_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = Path(sys.executable).with_name("citypipe")
    process = subprocess.Popen(
        [str(command), "serve", "--port", "0", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CITYPIPE_LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().split() for _ in range(4)]
        tokens = dict(lines[1:])
        port = int(lines[0][1].rsplit(":", 1)[1])
        statuses = []
        for token in (tokens["traffic-counters"], "forged"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", PATH, SENML, {"X-Citypipe-Token": token})
            statuses.append(connection.getresponse().status)
            connection.close()
        accepted, forged = statuses
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)

    report = json.loads((out / "report.json").read_text())
    assert (accepted, forged) == (202, 401)
    assert (report["balanced"], report["received"], report["accepted"]) == (True, 1, 1)


def test_get_slash_says_what_the_server_takes(server: WebhookServer) -> None:
    # When a person (or a health check) opens the server's root
    status, body = request(server, b"", path="/", method="GET")
    # Then it answers what it takes, without a token, and never which sources there are
    assert status == 200
    assert body["post"] == "POST /ingest/{source}/{format}"
    assert "senml" in body["formats"]
    assert "sources" not in body and "air-quality" not in json.dumps(body)


# --- what a socket can do to the server: bounded (decision 0085) ------------------------------


@pytest.fixture
def bounded(deps: Deps, tokens: InMemoryWebhookTokens) -> Iterator[WebhookServer]:
    """A server with small bounds: a second's deadline, two connections, one write."""
    options = ServerOptions(
        port=0, timeout_s=5, request_deadline_s=1, max_connections=2, max_writes=1
    )
    started = WebhookServer(deps, tokens, InMemoryKeyStore(), options)
    started.start()
    yield started
    started.shutdown()
    started.server_close()


def trickle(server: WebhookServer, head: bytes, rest: bytes) -> tuple[bytes, int]:
    """Send ``head``, then ``rest`` a byte every 0.1 s until the server answers or closes;
    what it answered and how many bytes of ``rest`` it took first."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), 10) as sock:
        sock.sendall(head)
        sent = 0
        for byte in rest:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                break
            sock.sendall(bytes([byte]))
            sent += 1
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, sent


def test_a_body_trickled_a_byte_at_a_time_is_cut_at_the_requests_deadline(
    bounded: WebhookServer,
) -> None:
    # each byte comes well within the idle timeout (5 s): only the whole request's deadline
    # (1 s) cuts it; without one, all 200 bytes would be taken and the request answered
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n".encode()
    answer, sent = trickle(bounded, head, b"x" * 200)

    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in answer
    assert sent < 200


def test_headers_trickled_a_byte_at_a_time_are_cut_at_the_requests_deadline(
    bounded: WebhookServer,
) -> None:
    headers = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n" + "X-Padding: y\r\n" * 20
    answer, sent = trickle(bounded, b"", headers.encode())

    assert answer == b""  # closed, as http.server closes a request line that never came
    assert sent < len(headers)


def hold(server: WebhookServer) -> socket.socket:
    """A connection that has begun a request and says no more: it holds its slot."""
    host, port = server.server_address[:2]
    sock = socket.create_connection((str(host), int(port)), 10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    return sock


def test_a_connection_beyond_the_cap_is_answered_503_with_retry_after(
    bounded: WebhookServer,
) -> None:
    held = [hold(bounded) for _ in range(2)]  # the cap: two
    try:
        answer = raw_exchange(bounded, b"")
    finally:
        for sock in held:
            sock.close()

    assert answer.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 5" in answer.lower()
    assert b'"busy"' in answer


def test_a_slot_is_free_again_once_its_connection_is_done(bounded: WebhookServer) -> None:
    for sock in [hold(bounded) for _ in range(2)]:
        sock.close()  # the server sees them go; their threads give their slots back
    statuses = []
    for _ in range(100):
        statuses.append(raw_exchange(bounded, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[:12])
        if statuses[-1] == b"HTTP/1.1 200":
            break
        time.sleep(0.05)

    assert statuses[-1] == b"HTTP/1.1 200"


def test_a_write_beyond_the_cap_is_answered_503_with_retry_after(
    bounded: WebhookServer, tokens: InMemoryWebhookTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real = serve.answer

    def slow(*args: Any) -> Any:
        entered.set()
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(serve, "answer", slow)
    token = tokens.minted["traffic-counters"]
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(request, bounded, SENML, token)
        assert entered.wait(10)
        host, port = bounded.server_address[:2]
        connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
        connection.request("POST", PATH, body=SENML, headers={"X-Citypipe-Token": token})
        second = connection.getresponse()
        body = json.loads(second.read())
        connection.close()
        release.set()

        assert (second.status, body["error"], second.getheader("retry-after")) == (
            503,
            "busy",
            "5",
        )
        assert first.result()[0] == 202  # the write under way was not disturbed


def test_a_tls_connection_beyond_the_cap_is_closed_unanswered(
    deps: Deps, tokens: InMemoryWebhookTokens, tmp_path: Path
) -> None:
    from test_mosquitto import _certificates

    certs = _certificates(tmp_path)
    options = ServerOptions(
        port=0, tls_cert=certs["server.crt"], tls_key=certs["server.key"], max_connections=1
    )
    server = WebhookServer(deps, tokens, InMemoryKeyStore(), options)
    server.start()
    context = ssl.create_default_context(cafile=str(certs["ca.crt"]))
    port = int(server.server_address[1])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), 10),  # holds the one slot
            pytest.raises((ssl.SSLError, ConnectionError)),
            socket.create_connection(("127.0.0.1", port), 10) as sock,
        ):
            context.wrap_socket(sock, server_hostname="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()


def test_a_tls_handshake_trickled_a_byte_at_a_time_is_cut_at_the_deadline(
    deps: Deps, tokens: InMemoryWebhookTokens, tmp_path: Path
) -> None:
    from test_mosquitto import _certificates

    certs = _certificates(tmp_path)
    options = ServerOptions(
        port=0, tls_cert=certs["server.crt"], tls_key=certs["server.key"], request_deadline_s=1
    )
    server = WebhookServer(deps, tokens, InMemoryKeyStore(), options)
    server.start()
    # a real ClientHello, to be sent a byte every 0.1 s (each well within the idle timeout)
    client = ssl.create_default_context(cafile=str(certs["ca.crt"]))
    outgoing = ssl.MemoryBIO()
    with contextlib.suppress(ssl.SSLWantReadError):
        client.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="127.0.0.1").do_handshake()
    hello = outgoing.read()
    try:
        _, sent = trickle(server, b"", hello)
    finally:
        server.shutdown()
        server.server_close()

    assert 0 < sent < len(hello)


@pytest.mark.parametrize(
    "lengths",
    [["²"], ["+5"], ["-1"], ["0x10"], ["5", "6"]],
    ids=["superscript-two", "plus", "minus", "hex", "two-that-disagree"],
)
def test_a_content_length_that_is_not_ascii_digits_once_is_a_400(
    server: WebhookServer, lengths: list[str]
) -> None:
    given = "".join(f"Content-Length: {n}\r\n" for n in lengths)
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{given}\r\n".encode()
    answer = raw_exchange(server, head)

    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"invalid_content_length"' in answer


def test_the_same_content_length_given_twice_is_taken(
    server: WebhookServer, tokens: InMemoryWebhookTokens
) -> None:
    token = tokens.minted["traffic-counters"]
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Citypipe-Token: {token}\r\nConnection: close\r\n"
        f"Content-Length: {len(SENML)}\r\nContent-Length: {len(SENML)}\r\n\r\n"
    ).encode()

    assert raw_exchange(server, head + SENML).startswith(b"HTTP/1.1 202")


def test_the_listen_backlog_is_the_servers_option(deps: Deps) -> None:
    options = ServerOptions(port=0, backlog=77)
    server = WebhookServer(deps, InMemoryWebhookTokens(), InMemoryKeyStore(), options)
    server.server_close()

    assert server.request_queue_size == 77  # socketserver listens with it (its default: 5)


def test_the_documented_defaults_are_the_servers() -> None:
    section = (ROOT / "docs/operations.md").read_text().split("## Server limits")[1]
    documented = {
        row.split("`")[1]: row.split("|")[3].strip()
        for row in section.splitlines()
        if row.startswith("| `")
    }
    defaults = ServerOptions()

    assert documented == {name: f"{getattr(defaults, name):g}" for name in documented}
    assert set(documented) == {
        "request_deadline_s", "timeout_s", "max_connections", "max_writes", "backlog",
        "retry_after_s",
    }  # fmt: skip
