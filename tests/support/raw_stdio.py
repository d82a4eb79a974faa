"""Drive the installed console script by hand over stdio: raw JSON-RPC lines in, every stdout byte kept."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
EXIT_TIMEOUT = 30
"""Seconds to wait for an answer or for the process to exit: far above need, so only a hang trips it."""


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment without RUNLOOP_* settings, a private journal, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env["RUNLOOP_MCP_JOURNAL"] = str(tmp_path / "journal.jsonl")
    env.update(extra)
    return env


class RawSession:
    """The server as a subprocess driven by hand: one JSON-RPC line in, wait for the answer, next line.

    Every stdout line is kept for the final check. (Requests still in flight when stdin closes are
    dropped by the SDK's stdio loop, so each request is answered before the next is sent.)
    """

    def __init__(self, args: list[str], env: dict[str, str], *, command: list[str] | None = None) -> None:
        """``command``: what to run instead of the console script (``args`` follow it)."""
        self.process = subprocess.Popen(
            [*(command or [str(SCRIPT)]), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.stdout_lines: list[bytes] = []
        self.stderr = b""
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        """One line to the server: a message, or raw text or bytes (which need not be JSON at all)."""
        assert self.process.stdin is not None
        if isinstance(message, dict):
            message = json.dumps(message)
        line = message if isinstance(message, bytes) else message.encode()
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def wait_for(self, request_id: Any, timeout: float = EXIT_TIMEOUT) -> dict[str, Any]:
        """The response with ``request_id`` among everything stdout carried so far (waiting for it if needed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stdout_lines):
                parsed = json.loads(line)
                if isinstance(parsed, dict) and parsed.get("id") == request_id and "method" not in parsed:
                    return parsed
            assert self.process.poll() is None, f"server exited: {self.stderr.decode(errors='replace')[-2000:]}"
            time.sleep(0.02)
        raise AssertionError(f"no answer to request {request_id!r}")

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return the response with its id (notifications in between are skipped)."""
        self.send(message)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while True:
            line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            parsed = json.loads(line)
            if isinstance(parsed, dict) and parsed.get("id") == message["id"] and "method" not in parsed:
                return parsed

    def handshake(self, request_id: int = 0, client: str = "t") -> dict[str, Any]:
        """``initialize`` (its answer is returned), then ``notifications/initialized``."""
        answer = self.request(initialize(request_id, client))
        self.send(INITIALIZED)
        return answer

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=EXIT_TIMEOUT)
        for thread in self._threads:
            thread.join(timeout=EXIT_TIMEOUT)
        return code


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def initialize(request_id: int = 1, client: str = "t", version: str = "0") -> dict[str, Any]:
    """The ``initialize`` request of a 2025-11-25 client named ``client`` (over stdio or HTTP)."""
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": client, "version": version}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


def call(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def check_json_rpc_lines(lines: list[bytes]) -> None:
    """Every stdout line is one JSON-RPC 2.0 message: a response (result xor error) or a request/notification."""
    assert lines, "no output on stdout"
    for raw in lines:
        assert raw.endswith(b"\n")
        message = json.loads(raw)  # any stray byte on stdout fails here
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", raw[:200]
        if "method" in message:
            assert isinstance(message["method"], str), raw[:200]
        else:
            assert "id" in message and ("result" in message) != ("error" in message), raw[:200]
