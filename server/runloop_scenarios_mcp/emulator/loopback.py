"""The emulator on loopback HTTP, with fault injection: the upstream as tests meet it on a real socket.

:class:`LoopbackEmulator` serves an :class:`~runloop_scenarios_mcp.emulator.handler.Emulator` on a real
HTTP/1.1 socket on 127.0.0.1 and injects faults from a :class:`FaultPlan` (latency, error statuses
with Retry-After, malformed or truncated bodies, dropped connections; and, as an attacker or a broken
network would: huge, endless, trickling, compressed-bomb or deeply nested bodies, silence, echoes of
the API key) for integration tests and ``bench/faults.py``.
:func:`serve` runs one until interrupted (``runloop-scenarios-mcp emulator``).
"""

from __future__ import annotations

import contextlib
import functools
import http
import json
import logging
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast

import httpx

from runloop_scenarios_mcp.emulator.data import SCENARIO_COUNT_DEFAULT
from runloop_scenarios_mcp.emulator.handler import Emulator, _json_response, _raw_path

__all__ = [
    "Fault",
    "FaultKind",
    "FaultPlan",
    "LoopbackEmulator",
    "prepare",
    "serve",
]

logger = logging.getLogger(__name__)

_MAX_BODY = 32 * 1024 * 1024

# --- faults ----------------------------------------------------------------------------------

FaultKind = Literal[
    "latency",
    "status",
    "malformed_json",
    "html_error",
    "truncated_body",
    "drop_connection",
    "slow_body",
    "empty_body",
    # hostile or broken upstreams (tests/test_bounds.py, bench/faults.py)
    "huge_body",
    "endless_body",
    "trickle_body",
    "silent",
    "not_json",
    "no_content",
    "html_page",
    "gzip_bomb",
    "deep_json",
    "echo_key",
]


@dataclass
class Fault:
    """One injected failure (loopback only). See `LoopbackEmulator` for what each kind does."""

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    retry_after_ms: str | None = None
    should_retry: bool | None = None
    delay: float = 0.0
    methods: frozenset[str] = frozenset({"GET", "POST"})
    size: int = 0
    """``huge_body`` and ``gzip_bomb``: bytes of the body (decoded); ``deep_json``: levels of nesting."""
    declared: bool = False
    """``huge_body``: send a Content-Length (else the body ends when the connection closes)."""


class FaultPlan:
    """Decides, thread-safely, which fault (if any) each request gets: queued ones first, then random."""

    def __init__(self, *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._queue: list[Fault] = []
        self._rate = 0.0
        self._random: list[Fault] = []
        self.injected: list[tuple[str, str, str]] = []

    def queue(self, *faults: Fault) -> None:
        """The next requests whose method a fault allows get these faults, in order, one each."""
        with self._lock:
            self._queue.extend(faults)

    def random(self, rate: float, faults: list[Fault]) -> None:
        """From now on, each request gets a fault with probability `rate`, chosen uniformly (seeded)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rate, self._random = rate, list(faults)

    def clear(self) -> None:
        """Drop queued and random faults (the `injected` log is kept)."""
        with self._lock:
            self._queue.clear()
            self._rate, self._random = 0.0, []

    def next_fault(self, method: str, path: str = "") -> Fault | None:
        """The fault for this request, or None; a returned fault is logged in `injected`."""
        method = method.upper()
        with self._lock:
            fault = next((f for f in self._queue if method in f.methods), None)
            if fault is not None:
                self._queue.remove(fault)
            elif self._random and self._rng.random() < self._rate:
                candidates = [f for f in self._random if method in f.methods]
                fault = self._rng.choice(candidates) if candidates else None
            if fault is not None:
                self.injected.append((method, path, fault.kind))
            return fault


_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)
_MALFORMED = b'{"scenarios": [{"id": "scn_'


def prepare(fault: Fault) -> None:
    """Build ahead of time what ``fault`` sends (a gzip bomb's body takes seconds), so no request waits for it."""
    if fault.kind == "gzip_bomb":
        _gzip_bomb(fault.size)


@functools.lru_cache(maxsize=4)
def _gzip_bomb(size: int) -> bytes:
    """A small gzip body (about 1/1000 of ``size``) that inflates to ``size`` bytes of a scenario name."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"id": "scn_bomb", "name": "')]
    block = b"x" * (1024 * 1024)
    for _ in range(size // len(block)):
        parts.append(compressor.compress(block))
    parts += [compressor.compress(b'"}'), compressor.flush()]
    return b"".join(parts)


def _json_bytes_response(text: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "application/json"}, content=text)


def _deep_scenario(depth: int) -> bytes:
    """A scenario whose input_context.additional_context holds arrays nested ``depth`` levels deep."""
    nested = b"[" * depth + b"1" + b"]" * depth
    return (
        b'{"id": "scn_deep", "name": "deep", "metadata": {}, "status": "active", '
        b'"scoring_contract": {"scoring_function_parameters": []}, '
        b'"input_context": {"problem_statement": "deep", "additional_context": {"nested": ' + nested + b"}}}"
    )


def _echo_key(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """The real answer with the caller's bearer token echoed into string fields of every scenario in it."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    try:
        body = json.loads(response.content)
    except ValueError:
        return response
    scenarios = body.get("scenarios", []) if isinstance(body, dict) and "scenarios" in body else [body]
    for scenario in scenarios:
        if isinstance(scenario, dict):
            scenario["name"] = f"echo {token}"
            scenario.setdefault("metadata", {})
            if isinstance(scenario["metadata"], dict):
                scenario["metadata"]["echo"] = token
                scenario["metadata"][f"key {token}"] = "the key as a metadata key"
    return _json_response(response.status_code, body)


def _status_fault_response(fault: Fault) -> httpx.Response:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = fault.retry_after
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = fault.retry_after_ms
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    try:
        phrase = http.HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Error"
    return _json_response(fault.status, {"message": f"{phrase} (injected fault)"}, headers)


# --- loopback HTTP server --------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LoopbackEmulator) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        logger.debug("emulator connection error from %s", client_address, exc_info=True)


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runloop-emulator"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("emulator: " + format, *args)

    def setup(self) -> None:
        super().setup()
        self._owner().track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._owner().track(self.connection, add=False)

    def _owner(self) -> LoopbackEmulator:
        return cast(_Server, self.server).owner

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > _MAX_BODY:
                    raise _BadRequest("body too large")
        length = self.headers.get("content-length")
        if not length:
            return b""
        if not length.strip().isdigit() or int(length) > _MAX_BODY:
            raise _BadRequest("bad Content-Length")
        return self.rfile.read(int(length))

    def _serve(self) -> None:
        owner = self._owner()
        try:
            body = self._read_body()
            target = self.path if self.path.startswith(("http://", "https://")) else owner.base_url + self.path
            headers = [
                (k, v) for k, v in self.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
            ]
            request = httpx.Request(self.command, target, headers=headers, content=body)
        except (_BadRequest, ValueError, httpx.InvalidURL):
            self._send(_json_response(400, {"message": "Malformed HTTP request"}), close=True)
            return
        try:
            self._serve_request(owner, request)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:  # an emulator bug: say so on stderr instead of a silent dropped connection
            logger.exception("emulator failed on %s %s", request.method, _raw_path(request))
            self.close_connection = True

    def _serve_request(self, owner: LoopbackEmulator, request: httpx.Request) -> None:
        emulator, method = owner.emulator, request.method.upper()
        fault = owner.faults.next_fault(method, _raw_path(request))
        if fault is None:
            self._send(emulator.handle(request))
        elif fault.kind == "latency":
            time.sleep(fault.delay)
            self._send(emulator.handle(request))
        elif fault.kind == "slow_body":
            self._send(emulator.handle(request), chunks=8, delay=fault.delay)
        elif fault.kind == "status":
            response = _status_fault_response(fault)
            emulator._record(request, response.status_code)
            self._send(response)
        elif fault.kind == "malformed_json":
            emulator._record(request, 200)
            self._send(httpx.Response(200, headers={"content-type": "application/json"}, content=_MALFORMED))
        elif fault.kind == "html_error":
            emulator._record(request, 502)
            self._send(httpx.Response(502, headers={"content-type": "text/html"}, content=_HTML_502))
        elif fault.kind == "empty_body":
            emulator._record(request, 200)
            self._send(httpx.Response(200, headers={"content-type": "application/json"}, content=b""))
        elif fault.kind == "truncated_body":  # the real response, but a POST's write is not applied
            self._send(emulator._handle(request, apply=method != "POST"), truncate=True)
        elif fault.kind == "drop_connection":  # the request was read; close without a byte of response
            emulator._record(request, 0)
            self.close_connection = True
        else:
            self._hostile(owner, request, fault)

    def _hostile(self, owner: LoopbackEmulator, request: httpx.Request, fault: Fault) -> None:
        """The faults of a hostile or broken upstream (none of them applies a write)."""
        emulator, kind = owner.emulator, fault.kind
        if kind != "echo_key":  # echo_key serves the real answer, which records itself
            emulator._record(request, 0 if kind in ("silent", "trickle_body", "endless_body") else 200)
        if kind == "not_json":
            self._send(httpx.Response(200, headers={"content-type": "text/plain"}, content=b"OK"))
        elif kind == "no_content":
            self._send(httpx.Response(204))
        elif kind == "html_page":
            page = _HTML_502.replace(b"502 Bad Gateway", f"{fault.status} Error".encode())
            self._send(httpx.Response(fault.status, headers={"content-type": "text/html"}, content=page))
        elif kind == "deep_json":
            self._send(_json_bytes_response(_deep_scenario(fault.size)))
        elif kind == "echo_key":
            self._send(_echo_key(emulator._handle(request, apply=False), request))
        elif kind == "gzip_bomb":
            self._send_gzip_bomb(fault.size)
        elif kind == "silent":  # read the request, then say nothing until the delay passes or the emulator stops
            owner.stopping.wait(fault.delay or None)
            self.close_connection = True
        else:  # huge_body, endless_body, trickle_body
            self._send_stream(owner, fault)

    def _send_stream(self, owner: LoopbackEmulator, fault: Fault) -> None:
        """A 200 JSON body that is huge (``size`` bytes), endless, or endless and trickling (a byte per ``delay``)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if fault.kind == "huge_body" and fault.declared:
            self.send_header("Content-Length", str(fault.size))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        head = b'{"id": "scn_huge", "name": "'
        chunk = b"x" * (64 * 1024)
        remaining = fault.size - len(head) if fault.kind == "huge_body" else -1
        self.wfile.write(head)
        while remaining != 0 and not owner.stopping.is_set():
            if fault.kind == "trickle_body":
                self.wfile.write(b"x")
                self.wfile.flush()
                owner.stopping.wait(fault.delay or 0.5)
                continue
            piece = chunk if remaining < 0 else chunk[:remaining]
            self.wfile.write(piece)
            remaining = -1 if remaining < 0 else remaining - len(piece)
        self.wfile.flush()

    def _send_gzip_bomb(self, size: int) -> None:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        self._send(httpx.Response(200, headers=headers), raw_body=_gzip_bomb(size))

    def _send(
        self,
        response: httpx.Response,
        *,
        chunks: int = 1,
        delay: float = 0.0,
        truncate: bool = False,
        close: bool = False,
        raw_body: bytes | None = None,
    ) -> None:
        body = response.content if raw_body is None else raw_body
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        step = max(1, -(-len(body) // chunks))
        for i, offset in enumerate(range(0, len(body), step)):
            if i and delay:
                time.sleep(delay)
            self.wfile.write(body[offset : offset + step])
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class LoopbackEmulator:
    """The emulator on a real HTTP/1.1 socket (a background thread), with fault injection.

    Fault semantics: ``latency`` sleeps then serves normally; ``slow_body`` serves normally with the
    body in 8 chunks, ``delay`` apart; ``status`` answers that status (plus any Retry-After,
    retry-after-ms, x-should-retry) without applying the request; ``malformed_json``,
    ``html_error`` (nginx-style 502 page) and ``empty_body`` answer without applying it;
    ``truncated_body`` computes the real response (a POST's write is not applied), declares its
    full length, sends half and closes; ``drop_connection`` closes without a response.

    Hostile or broken upstreams (nothing is applied): ``huge_body`` sends a 200 JSON-looking body of
    ``size`` bytes (with a Content-Length only when ``declared``), ``endless_body`` one that never ends,
    ``trickle_body`` one that never ends, a byte per ``delay`` seconds; ``silent`` reads the request and
    answers nothing (until ``delay`` passes, if set, or the emulator stops); ``not_json`` is a 200 with
    ``OK`` as text, ``no_content`` a 204, ``html_page`` an HTML error page with ``status``; ``gzip_bomb``
    a small gzip body inflating to ``size`` bytes; ``deep_json`` a scenario nested ``size`` levels deep;
    ``echo_key`` the real answer with the request's bearer token echoed into names and metadata.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self.emulator = emulator if emulator is not None else Emulator()
        self.faults = faults if faults is not None else FaultPlan()
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.stopping = threading.Event()
        """Set by :meth:`stop`: ends silent, endless and trickling answers."""

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("LoopbackEmulator is not started")
        return self._base_url

    def start(self) -> LoopbackEmulator:
        if self._server is not None:
            raise RuntimeError("LoopbackEmulator is already started")
        server = _Server(self._address, self)
        self.stopping.clear()
        host = server.server_name
        self._base_url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="runloop-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # wake handler threads blocked on idle keep-alive sockets
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def __enter__(self) -> LoopbackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = 0,
    count: int = SCENARIO_COUNT_DEFAULT,
    api_key: str | None = None,
) -> None:
    """Run a loopback emulator until KeyboardInterrupt or SIGTERM. Logs to stderr, never stdout."""
    loopback = LoopbackEmulator(Emulator(seed=seed, count=count, api_key=api_key), host=host, port=port)
    stopping = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    if in_main:
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    loopback.start()
    try:
        key = "<your --api-key>" if api_key is not None else "any"
        sys.stderr.write(
            f"Runloop emulator listening on {loopback.base_url}\n"
            f"Point the MCP server at it: RUNLOOP_BASE_URL={loopback.base_url} RUNLOOP_API_KEY={key} "
            "runloop-scenarios-mcp\n"
        )
        sys.stderr.flush()
        while not stopping.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        loopback.stop()
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
