"""HTTP bounded in time and connections: no client can hold the server or flood its log (issue 15).

The server is the real streamable HTTP app under uvicorn (``tests/support/serving.py``, the same
configuration as ``--transport http``) on a real loopback socket, driven by raw sockets where a client
misbehaves: headers or a body sent too slowly, more connections than the cap, a body dropped halfway, a
request without the bearer token. One test runs the console script with a low file-descriptor limit, as
an operator would. Sockets carry timeouts as hang guards only; no duration is asserted.
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.logs import RateLimitedHandler, RedactingFormatter
from runloop_scenarios_mcp.transport import connections
from runloop_scenarios_mcp.transport.connections import connection_cap, quiet_accept_errors
from tests.support.common import make_settings
from tests.support.raw_stdio import initialize as initialize_request
from tests.support.serving import serving

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
TOKEN = "http-bounds-token-4f1c9a"
GUARD = 20.0
"""Socket timeout: far above any wait here, so only a hang trips it."""
INITIALIZE = initialize_request(client="bounds")
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        emulator=True,
        transport="http",
        api_key=None,
        http_read_timeout=0.5,
        http_max_connections=8,
    )


@pytest.fixture
def url(settings: Settings) -> Iterator[str]:
    with serving(settings) as address:
        yield address


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def raw(url: str, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=GUARD)
    sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    sock.close()
    return b"".join(chunks)


def initialize(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | headers, timeout=GUARD)


HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def test_headers_sent_too_slowly_get_408_and_the_connection_closes(url: str) -> None:
    sock = raw(url, HEAD)  # and nothing more: the headers never end
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert initialize(url).status_code == 200


def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(url: str) -> None:
    body = httpx.Request("POST", url, json=INITIALIZE).read()
    request = HEAD + b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
    request += b"Content-Length: %d\r\n\r\n" % len(body) + body
    sock = raw(url, request)
    first = b""
    while not first.endswith(b"\r\n0\r\n\r\n"):  # the whole first answer (a chunked event stream)
        chunk = sock.recv(65536)
        assert chunk, first
        first += chunk
    assert first.startswith(b"HTTP/1.1 200"), first[:100]
    sock.sendall(b"POST /mcp HTTP/1.1\r\n")  # the next request starts, and stalls
    rest = read_all(sock)
    assert b"HTTP/1.1 408" in rest


def test_a_body_sent_too_slowly_gets_408(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sock = raw(url, HEAD + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert any("http_slow_client closed=body" in r.getMessage() for r in caplog.records)


def test_a_client_that_drops_mid_body_is_one_info_line(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sock = raw(url, HEAD + b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":')
    time.sleep(0.1)  # let the server start reading the body before the client goes
    sock.close()
    assert initialize(url).status_code == 200  # the server carries on
    deadline = time.monotonic() + GUARD
    while not any("http_client_disconnected" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
    dropped = [r for r in caplog.records if "http_client_disconnected" in r.getMessage()]
    assert [r.levelno for r in dropped] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


def test_past_the_connection_cap_the_slowest_clients_make_room(url: str) -> None:
    slow = [raw(url, HEAD) for _ in range(20)]  # more than the cap of 8, none sends a whole request
    for _ in range(5):
        assert initialize(url).status_code == 200  # a client that sends at once is served
    answers = [read_all(sock) for sock in slow]
    closed_for_room = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    assert len(closed_for_room) >= 20 - 8, [a[:40] for a in answers]


def test_the_bearer_token_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, emulator=True, transport="http", api_key=None, http_token=SecretStr(TOKEN))
    with serving(settings) as url:
        # A body of 100 MB is announced and never sent: the answer comes at once, and the connection closes.
        sock = raw(url, HEAD + b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
        assert initialize(url, Authorization=f"Bearer {TOKEN}").status_code == 200


def test_legacy_sessions_are_capped_and_expire_when_idle(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, emulator=True, transport="http", api_key=None, http_max_sessions=3, http_session_idle=1.0
    )
    with serving(settings) as url:
        sessions = []
        for _ in range(3):
            response = initialize(url)
            assert response.status_code == 200
            sessions.append(response.headers["mcp-session-id"])
        assert initialize(url).status_code == 503  # the cap of 3 open sessions
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = MCP_HEADERS | {"mcp-session-id": sessions[0], "mcp-protocol-version": "2025-11-25"}
        deadline = time.monotonic() + GUARD
        while True:  # each ping is a request (it keeps the session alive): look only after 3 idle seconds
            time.sleep(3.0)
            if httpx.post(url, json=ping, headers=headers, timeout=GUARD).status_code == 404:
                break
            assert time.monotonic() < deadline, "an idle session never expired"
        assert initialize(url).status_code == 200  # room again


# --- the log cannot be flooded ------------------------------------------------------------------


def test_the_log_handler_holds_back_floods_and_says_so() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = RateLimitedHandler(stream, per_kind=3, in_total=10, window=10.0, clock=lambda: now[0])
    handler.setFormatter(RedactingFormatter(()))
    log = logging.getLogger("tests.flood")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            for number in range(1000):
                log.error("client %d dropped", number, exc_info=True)
        for number in range(20):
            log.warning("session %s refused", f"{number:032x}")
        now[0] = 11.0
        log.warning("after the window")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 + 3 + 2, lines  # 3 of each kind, the summary, the new window's first line
    assert sum("Traceback" in line for line in lines) == 1  # the first line of a kind only
    assert "log_suppressed lines=1014" in lines[-2] and "client %d dropped" in lines[-2]
    assert lines[-1].endswith("after the window")


def test_accept_failures_are_one_short_warning(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        error = OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        quiet_accept_errors(loop, {"message": "socket.accept() out of system resource", "exception": error})
    finally:
        loop.close()
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "http_accept_failed error=EMFILE" in record.getMessage()


def test_the_connection_cap_stays_below_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (1024, 1024))
    assert connection_cap(256) == 256
    assert connection_cap(5000) == 1024 - connections.RESERVED_DESCRIPTORS


# --- the console script at a low descriptor limit -------------------------------------------------


def test_slow_clients_at_a_low_descriptor_limit_do_not_lock_others_out(tmp_path: Path) -> None:
    """256 descriptors, 300 clients that never finish their headers: requests that come whole are answered."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env["RUNLOOP_MCP_JOURNAL"] = str(tmp_path / "journal.jsonl")
    command = [str(SCRIPT), "--emulator", "--transport", "http", "--port", str(port), "--max-connections", "1000"]
    stderr = tmp_path / "stderr.txt"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink, env=env, preexec_fn=low_limit
        )
    url = f"http://127.0.0.1:{port}/mcp"
    slow: list[socket.socket] = []
    try:
        deadline = time.monotonic() + GUARD
        while True:
            try:
                assert initialize(url).status_code == 200
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.1)
        for _ in range(300):
            try:
                slow.append(raw(url, HEAD))
            except OSError:
                break
        answered = [initialize(url).status_code for _ in range(10)]
        assert answered == [200] * 10
        assert process.poll() is None
    finally:
        for sock in slow:
            sock.close()
        process.terminate()
        process.wait(timeout=GUARD)
    log = stderr.read_text()
    assert "http_connection_cap lowered=128 wanted=1000 open_files_limit=256" in log
    assert "Traceback" not in log and "out of system resource" not in log
    assert len(log.splitlines()) < 100, log[-2000:]
