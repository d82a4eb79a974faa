"""Several real server processes on one journal database, and a round-robin proxy in front of HTTP replicas.

- ``server_env``: the environment of a server process: the loopback emulator as the Runloop API, the shared
  database and the shared ``RUNLOOP_MCP_SECRET`` (so any replica opens any other's cursors and tokens).
- ``stdio_server``: ``StdioServerParameters`` for the console script, for the SDK's ``Client``.
- ``http_replica``: ``runloop-scenarios-mcp --transport http`` as a subprocess on a free loopback port.
- ``RoundRobinProxy``: a load balancer on loopback that sends each HTTP request to the next replica in turn
  (or, ``sticky=True``, keeps a 2025-11-25 session on the replica that created it); it logs which replica
  served which JSON-RPC call, so a test can check that a preview and its apply landed on different replicas.
- ``journal_cli``: ``runloop-scenarios-mcp journal ...`` as a third process.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tests.support.common import CANARY_KEY
from tests.support.raw_stdio import EXIT_TIMEOUT, SCRIPT

SHARED_SECRET = "replicas-share-this-secret-0123456789"
HTTP_TOKEN = "replica-bearer-token-abcdef0123456789"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def server_env(tmp_path: Path, database_url: str, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env.update(
        {
            "RUNLOOP_API_KEY": CANARY_KEY,
            "RUNLOOP_BASE_URL": base_url,
            "RUNLOOP_MCP_SECRET": SHARED_SECRET,
            "RUNLOOP_MCP_DATABASE_URL": database_url,
            "RUNLOOP_MCP_JOURNAL": str(tmp_path / "no-legacy-journal.jsonl"),
            "RUNLOOP_MCP_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def stdio_server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=str(SCRIPT), args=[], env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_replica(env: dict[str, str]) -> Iterator[str]:
    """One replica on a free loopback port, once it answers; yields its /mcp URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "--transport", "http", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    headers = dict(MCP_HEADERS)
    if "RUNLOOP_MCP_HTTP_TOKEN" in env:
        headers["Authorization"] = f"Bearer {env['RUNLOOP_MCP_HTTP_TOKEN']}"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while True:
            try:
                httpx.post(url, json=ping, headers=headers, timeout=5)
                break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the HTTP replica did not answer"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert "Traceback" not in stderr, stderr


@dataclass
class Route:
    replica: int
    rpc: str
    """The JSON-RPC method, and the tool for tools/call (``tools/call update_scenario``)."""
    arguments: dict[str, Any] = field(default_factory=dict)


class RoundRobinProxy:
    """A load balancer on 127.0.0.1: each request to the next replica, streaming the answer back."""

    def __init__(self, replicas: list[str], *, sticky: bool = False) -> None:
        self.replicas = replicas
        self.sticky = sticky
        self.routes: list[Route] = []
        self._turn = itertools.count()
        self._sessions: dict[str, int] = {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0))
        self.url = ""

    def _pick(self, request: Request) -> int:
        session = request.headers.get("mcp-session-id")
        if self.sticky and session in self._sessions:
            return self._sessions[session]
        return next(self._turn) % len(self.replicas)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        replica = self._pick(request)
        self.routes.append(_route(replica, body))
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in ("host", "content-length")]
        upstream = self._client.build_request(
            request.method, self.replicas[replica], headers=headers, content=body, params=request.query_params
        )
        answer = await self._client.send(upstream, stream=True)
        session = answer.headers.get("mcp-session-id")
        if self.sticky and session:
            self._sessions[session] = replica
        out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "connection")}
        if "text/event-stream" in answer.headers.get("content-type", ""):
            response: Response = StreamingResponse(
                answer.aiter_raw(), status_code=answer.status_code, headers=out_headers, background=None
            )
        else:
            content = await answer.aread()
            await answer.aclose()
            response = Response(content, status_code=answer.status_code, headers=out_headers)
        await response(scope, receive, send)

    def replicas_of(self, tool: str, **arguments: Any) -> list[int]:
        """Which replica served each call of ``tool`` whose arguments include ``arguments``, in order."""
        return [
            route.replica
            for route in self.routes
            if route.rpc == f"tools/call {tool}" and all(route.arguments.get(k) == v for k, v in arguments.items())
        ]

    @contextmanager
    def running(self) -> Iterator[str]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(self, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        try:
            yield self.url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def _route(replica: int, body: bytes) -> Route:
    try:
        message = json.loads(body) if body else {}
    except ValueError:
        return Route(replica, "?")
    if not isinstance(message, dict):
        return Route(replica, "?")
    method = str(message.get("method", "response"))
    params = message.get("params") or {}
    if method == "tools/call" and isinstance(params, dict):
        return Route(replica, f"tools/call {params.get('name')}", dict(params.get("arguments") or {}))
    return Route(replica, method)


@asynccontextmanager
async def http_client(url: str, *, mode: str = "auto", token: str | None = HTTP_TOKEN) -> AsyncIterator[Client]:
    """The SDK client over streamable HTTP at ``url``, sending the bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http = create_mcp_http_client(headers=headers)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


def journal_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``runloop-scenarios-mcp journal ARGS`` as a third process on the shared database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env["RUNLOOP_MCP_DATABASE_URL"] = database_url
    return subprocess.run(
        [str(SCRIPT), "journal", *args], capture_output=True, text=True, env=env, timeout=EXIT_TIMEOUT, check=False
    )
