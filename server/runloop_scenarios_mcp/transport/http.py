"""Streamable HTTP: the ASGI app at /mcp with Host/Origin checks and the bearer-token guard, and its runner.

Bounded so that no client can hold the server (``transport/connections.py``): request headers and bodies
must arrive within ``--http-read-timeout``, at most ``--max-connections`` connections are open, at most
``--max-sessions`` 2025-11-25 sessions, each closed after ``--session-idle-timeout`` without use. The
bearer token is checked first, before a body is read or a session is looked up.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runloop_scenarios_mcp.config import Settings, is_loopback
from runloop_scenarios_mcp.transport.connections import (
    ReadBodyInTime,
    bounded_protocol,
    connection_cap,
    quiet_accept_errors,
)

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)


class BearerTokenGuard:
    """Refuses HTTP requests without ``Authorization: Bearer <RUNLOOP_MCP_HTTP_TOKEN>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Request(scope).headers.get("authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
                response = JSONResponse(
                    {"error": "unauthorized", "message": "send Authorization: Bearer <RUNLOOP_MCP_HTTP_TOKEN>"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer", "Connection": "close"},  # its body is never read
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def http_app(server: MCPServer[Any], settings: Settings) -> ASGIApp:
    """The streamable HTTP app at /mcp, with Host/Origin checks and the bearer token guard.

    2026-07-28 requests are served statelessly whatever the mode; 2025-11-25 clients get a session
    (``Mcp-Session-Id``), so the server remembers that they can answer a confirmation (elicitation).
    Stateless legacy requests would lose the client's capabilities and skip the person's confirmation.

    DNS rebinding: on a loopback address only loopback Host and Origin values pass. On a specific
    non-loopback address only that address does. On a wildcard address (0.0.0.0, ::) the Host cannot
    be known in advance, so the bearer token (required there) is the guard and any browser Origin is refused.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if is_loopback(settings.host):
        names = ["127.0.0.1", "localhost", "[::1]"]
    elif settings.host in _WILDCARDS:
        names = []
    else:
        names = [f"[{settings.host}]" if ":" in settings.host else settings.host]
    hosts = [*names, *(f"{name}:*" for name in names)]
    origins = [f"{scheme}://{name}{port}" for name in names for scheme in ("http", "https") for port in ("", ":*")]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=settings.host not in _WILDCARDS,
        allowed_hosts=hosts,
        allowed_origins=origins,
    )
    app: ASGIApp = server.streamable_http_app(
        stateless_http=False,
        transport_security=security,
        host=settings.host,
        session_idle_timeout=settings.http_session_idle,
        max_sessions=settings.http_max_sessions,
    )
    if settings.host in _WILDCARDS:
        app = _RefuseBrowserOrigins(app)
    app = ReadBodyInTime(app, settings.http_read_timeout)
    if settings.http_token is not None:
        app = BearerTokenGuard(app, settings.http_token.get_secret_value())
    return app


_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class _RefuseBrowserOrigins:
    """On a wildcard bind: refuse any request that carries an Origin (a browser page), as DNS-rebinding defence."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Request(scope).headers.get("origin"):
            await JSONResponse({"error": "forbidden", "message": "browser origins are refused"}, status_code=403)(
                scope, receive, send
            )
            return
        await self._app(scope, receive, send)


def serve_http(server: MCPServer[Any], settings: Settings, sockets: list[socket.socket]) -> None:
    """Serve ``server`` over streamable HTTP on ``sockets`` (bound to the settings' address) until a signal stops it.

    The first SIGINT or SIGTERM ends the requests in flight (event streams included; a client may
    reconnect to another server) and runs uvicorn's graceful shutdown, then the process ends with exit
    code 0; a second signal cancels what is left.
    """
    import uvicorn

    from runloop_scenarios_mcp.transport.lifecycle import serve_until_signal

    url = f"http://{f'[{settings.host}]' if ':' in settings.host else settings.host}:{settings.port}/mcp"
    logger.info(
        "server_start transport=http url=%s emulator=%s read_only=%s token=%s",
        url,
        settings.emulator,
        settings.read_only,
        "required" if settings.http_token is not None else "none",
    )

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # serve_until_signal watches the signals: uvicorn's own handler would raise them again after
            # its shutdown, which ends the process with a KeyboardInterrupt traceback or status -15.
            if sys.platform == "win32":  # pragma: no cover - no serve_until_signal there; the CLI catches Ctrl-C
                with super().capture_signals():
                    yield
                return
            yield

    app = EndOnStop(http_app(server, settings))
    uvicorn_server = Server(uvicorn_config(app, settings, timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN))

    def stop() -> None:
        uvicorn_server.should_exit = True
        app.stop()

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(quiet_accept_errors)
        await uvicorn_server.serve(sockets=sockets)

    anyio.run(serve_until_signal, serve, stop)


def uvicorn_config(app: ASGIApp, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app``: the bounded h11 protocol, and its log lines through this server's
    stderr handler (redacted, rate-limited) instead of uvicorn's own."""
    import uvicorn

    protocol = bounded_protocol(settings.http_read_timeout, connection_cap(settings.http_max_connections))
    return uvicorn.Config(app, http=protocol, ws="none", log_config=None, log_level="warning", **options)


_GRACEFUL_SHUTDOWN = 5
"""Seconds uvicorn waits for open connections after a stop, before it cancels them (a backstop: EndOnStop ends them)."""


class EndOnStop:
    """Ends every request in flight when the server stops, and answers 503 to any that arrive after.

    A 2025-11-25 client's GET event stream never ends on its own: uvicorn's graceful shutdown would
    wait for it until its timeout and then cancel it with a traceback. A response already started is
    ended with its last (empty) chunk, one not started yet is a 503.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._in_flight: set[anyio.CancelScope] = set()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        for scope in list(self._in_flight):
            scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._stopping:
            await _stopping_response(scope, receive, send)
            return
        started = complete = False

        async def tracked_send(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        with anyio.CancelScope() as cancel:
            self._in_flight.add(cancel)
            try:
                await self._app(scope, receive, tracked_send)
            finally:
                self._in_flight.discard(cancel)
        if cancel.cancelled_caught and not complete:
            if started:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await _stopping_response(scope, receive, send)


async def _stopping_response(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"error": "unavailable", "message": "the server is stopping"}, status_code=503, headers={"Connection": "close"}
    )
    await response(scope, receive, send)
