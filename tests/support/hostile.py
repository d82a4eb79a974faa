"""Hostile upstreams and slow HTTP clients against the installed console script, as black-box probes.

Used by ``bench/faults.py`` (issue 15). Each upstream fault kind gets a fresh server process (stdio,
default settings: ``--call-timeout``, ``--max-response-bytes``, retries as shipped) pointed at the
loopback emulator, which injects that fault into every upstream request. A few tool calls are timed;
the process's peak RSS (``VmHWM``), whether it is still alive and answering once the fault is gone,
the error each call ended in, the progress notifications it sent and whether the API key appeared
anywhere are reported.

The HTTP probes run ``--transport http`` with the process limited to 1,024 file descriptors, open
many clients that send their headers or body a byte at a time, and keep sending ordinary requests
meanwhile: how many are answered, the slowest, and how much the server wrote to stderr.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator, prepare
from tests.support.raw_stdio import initialize

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
CANARY = "rl_canary_hostile_5d0b7e21a9c34f86"
GIB = 1024**3
CALL_BOUND = 180.0
"""Seconds after which a call counts as hung (the server's own deadline is 40 s by default)."""
FD_LIMIT = 1024

UPSTREAM_KINDS: list[tuple[str, Fault | None]] = [
    ("baseline (no fault)", None),
    ("1 GB body, no length", Fault("huge_body", size=GIB)),
    ("1 GB body, length declared", Fault("huge_body", size=GIB, declared=True)),
    ("endless body", Fault("endless_body")),
    ("gzip bomb (1 GB inflated)", Fault("gzip_bomb", size=GIB)),
    ("endless trickle (1 B / 0.5 s)", Fault("trickle_body", delay=0.5)),
    ("silent upstream", Fault("silent")),
    ("200 with a text body", Fault("not_json")),
    ("204 no content", Fault("no_content")),
    ("HTML 500 page", Fault("html_page", status=500)),
    ("100,000 nested arrays", Fault("deep_json", size=100_000)),
    ("300 nested arrays", Fault("deep_json", size=300)),
    ("API key echoed in fields", Fault("echo_key")),
]


def peak_rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The peak resident set size of a process (``VmHWM``; ``VmRSS`` for the current one), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raise_own_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


class StdioServer:
    """The console script over stdio, driven by JSON-RPC lines; stderr collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(SCRIPT), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._next_id = 0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": _CLIENT})
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout += line
            self.lines.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.process.wait(timeout=10)
            tail = bytes(self.stderr[-2000:]).decode(errors="replace")
            raise RuntimeError(f"the server exited (code {self.process.returncode}): {tail}") from None

    def request(
        self, method: str, params: dict[str, Any], timeout: float = CALL_BOUND
    ) -> tuple[dict[str, Any] | None, int]:
        """The reply (None if none came within ``timeout``) and how many progress notifications came first."""
        self._next_id += 1
        rid = self._next_id
        self._send(
            {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": {"progressToken": rid}}}
        )
        deadline = time.monotonic() + timeout
        progress = 0
        while True:
            try:
                message = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None, progress
            if message.get("method") == "notifications/progress":
                progress += 1
            elif message.get("id") == rid:
                return message, progress

    def call(self, tool: str, arguments: dict[str, Any]) -> tuple[float, str, bool, int]:
        """(seconds, text, is_error, progress notifications) of one tool call; text "(no answer)" when hung."""
        started = time.perf_counter()
        reply, progress = self.request("tools/call", {"name": tool, "arguments": arguments})
        elapsed = time.perf_counter() - started
        if reply is None:
            return elapsed, "(no answer)", True, progress
        if "error" in reply:
            return elapsed, f"JSON-RPC error {reply['error'].get('message')}", True, progress
        result = reply["result"]
        text = " ".join(block.get("text", "") for block in result.get("content", []))
        return elapsed, text, bool(result.get("isError")), progress

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_CLIENT = {"name": "hostile-probe", "version": "0"}


@dataclass
class KindReport:
    kind: str
    worst_s: float = 0.0
    peak_rss_mib: float = 0.0
    rss_after_mib: float = 0.0
    """Resident memory once the fault is gone and one more call was answered."""
    alive: bool = True
    recovered: bool = True
    upstream_requests: int = 0
    progress: int = 0
    leaked: bool = False
    stderr_bytes: int = 0
    answers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def probe_upstream_kind(loopback: LoopbackEmulator, kind: str, fault: Fault | None, workdir: Path) -> KindReport:
    """One fresh server process; every upstream request it makes gets ``fault``; get and list, timed."""
    report = KindReport(kind)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env |= {
        "RUNLOOP_API_KEY": CANARY,
        "RUNLOOP_BASE_URL": loopback.base_url,
        "RUNLOOP_MCP_JOURNAL": str(workdir / f"journal-{abs(hash(kind))}.jsonl"),
    }
    scenario_id = next(sid for sid, s in loopback.emulator.snapshot().items() if s.get("status") == "active")
    if fault is not None:
        prepare(fault)
    server = StdioServer([], env)
    try:
        loopback.faults.clear()
        before = len(loopback.faults.injected)
        if fault is not None:
            loopback.faults.random(1.0, [fault])
        for tool, arguments in (
            ("get_scenario", {"scenario_id": scenario_id}),
            ("list_scenarios", {"max_tokens": 4000}),
        ):
            elapsed, text, is_error, progress = server.call(tool, arguments)
            report.worst_s = max(report.worst_s, elapsed)
            report.progress += progress
            report.answers.append(("error: " if is_error else "ok: ") + text[:160])
            if text == "(no answer)":
                report.problems.append(f"{tool}: no answer within {CALL_BOUND:.0f} s")
            if "Internal error" in text or "Traceback" in text:
                report.problems.append(f"{tool}: {text[:120]}")
            if fault is not None and fault.kind != "echo_key" and not is_error:
                report.problems.append(f"{tool}: succeeded on a broken answer")
        report.upstream_requests = len(loopback.faults.injected) - before
        loopback.faults.clear()
        report.alive = server.process.poll() is None
        report.peak_rss_mib = peak_rss_mib(server.process.pid) if report.alive else float("nan")
        _, text, is_error, _ = server.call("get_scenario", {"scenario_id": scenario_id})
        report.recovered = not is_error
        report.rss_after_mib = peak_rss_mib(server.process.pid, "VmRSS")
        if not report.recovered:
            report.problems.append(f"after the fault: {text[:120]}")
    finally:
        loopback.faults.clear()
        server.close()
    report.stderr_bytes = len(server.stderr)
    report.leaked = CANARY.encode() in server.stdout or CANARY.encode() in server.stderr
    if report.leaked:
        report.problems.append("the API key appeared in the output")
    if not report.alive:
        report.problems.append("the server died")
    return report


# --- HTTP: slow clients at a 1,024 descriptor limit ----------------------------------------------------


@dataclass
class SlowReport:
    label: str
    opened: int = 0
    answered: int = 0
    failed: int = 0
    worst_s: float = 0.0
    still_open: int = 0
    peak_rss_mib: float = 0.0
    stderr_bytes: int = 0
    stderr_lines: int = 0
    tracebacks: int = 0
    alive: bool = True
    sessions: int = 0


_INITIALIZE = initialize(client=_CLIENT["name"])
_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class HttpServer:
    """``--transport http --emulator`` on a free port, limited to :data:`FD_LIMIT` file descriptors."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
        env["RUNLOOP_MCP_JOURNAL"] = str(workdir / f"http-journal-{self.port}.jsonl")
        self.stderr_path = workdir / f"http-stderr-{self.port}.txt"
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        command = [str(SCRIPT), "--emulator", "--transport", "http", "--port", str(self.port)]
        with self.stderr_path.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink, env=env, preexec_fn=_limit
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.initialize().status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the HTTP server did not start: " + self.stderr_path.read_text()[-2000:])
            time.sleep(0.1)

    def initialize(self) -> httpx.Response:
        return httpx.post(self.url, json=_INITIALIZE, headers=_HEADERS, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def probe_slow_clients(mode: str, count: int, seconds: float, workdir: Path) -> SlowReport:
    """``count`` clients sending headers (``mode="headers"``) or a body (``"body"``) a byte a second."""
    report = SlowReport(f"{count} clients trickling {mode}")
    server = HttpServer(workdir)
    start = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if mode == "body":
        start += b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    slow: list[socket.socket] = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(start)
            sock.setblocking(False)
            slow.append(sock)
        except OSError:
            break
    report.opened = len(slow)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in list(slow):
                try:
                    sock.send(b"x" if mode == "headers" else b" ")
                except OSError:
                    slow.remove(sock)

    threading.Thread(target=trickle, daemon=True).start()
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                ok = server.initialize().status_code == 200
            except httpx.TransportError:
                ok = False
            report.worst_s = max(report.worst_s, time.perf_counter() - started)
            report.answered += ok
            report.failed += not ok
            time.sleep(0.5)
        report.alive = server.process.poll() is None
        report.peak_rss_mib = peak_rss_mib(server.process.pid)
    finally:
        stop.set()
        report.still_open = sum(1 for sock in slow if _open(sock))
        for sock in slow:
            sock.close()
        server.stop()
    _read_stderr(server, report)
    return report


def probe_legacy_sessions(count: int, workdir: Path) -> SlowReport:
    """Open ``count`` 2025-11-25 sessions and leave them: how many the server kept, and its memory."""
    report = SlowReport(f"{count} legacy sessions left open")
    server = HttpServer(workdir)
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(count):
                started = time.perf_counter()
                status = client.post(server.url, json=_INITIALIZE, headers=_HEADERS).status_code
                report.worst_s = max(report.worst_s, time.perf_counter() - started)
                report.sessions += status == 200
                report.failed += status != 200
        report.alive = server.process.poll() is None
        report.peak_rss_mib = peak_rss_mib(server.process.pid)
    finally:
        server.stop()
    _read_stderr(server, report)
    return report


def _open(sock: socket.socket) -> bool:
    """Whether the server still holds the connection (what it sent is read; its close shows as EOF)."""
    try:
        while sock.recv(65536):
            pass
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def _read_stderr(server: HttpServer, report: SlowReport) -> None:
    data = server.stderr_path.read_bytes()
    report.stderr_bytes = len(data)
    report.stderr_lines = len(data.splitlines())
    report.tracebacks = data.count(b"Traceback")
