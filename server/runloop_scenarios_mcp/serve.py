"""Run the server on a transport: stdio (what MCP hosts launch) or streamable HTTP."""

from __future__ import annotations

import hmac
import logging

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .app import build_server
from .config import Settings, is_loopback

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
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def http_app(settings: Settings) -> ASGIApp:
    """The streamable HTTP app at /mcp, with Host/Origin checks and the bearer token guard."""
    from mcp.server.transport_security import TransportSecuritySettings

    server = build_server(settings)
    hosts = [f"{settings.host}:*", settings.host]
    if is_loopback(settings.host):
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    origins = [f"http://{h.removesuffix(':*')}:*" for h in hosts if h.endswith(":*")]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    app: ASGIApp = server.streamable_http_app(stateless_http=True, transport_security=security, host=settings.host)
    if settings.http_token is not None:
        app = BearerTokenGuard(app, settings.http_token.get_secret_value())
    return app


def serve_mcp(settings: Settings) -> None:
    """Serve until the client disconnects (stdio) or the process is stopped (HTTP)."""
    if settings.transport == "stdio":
        server = build_server(settings)
        logger.info("serving MCP over stdio (emulator=%s read_only=%s)", settings.emulator, settings.read_only)
        anyio.run(server.run_stdio_async)
        return
    import uvicorn

    logger.info("serving MCP over streamable HTTP on http://%s:%d/mcp", settings.host, settings.port)
    config = uvicorn.Config(http_app(settings), host=settings.host, port=settings.port, log_level="warning")
    anyio.run(uvicorn.Server(config).serve)
