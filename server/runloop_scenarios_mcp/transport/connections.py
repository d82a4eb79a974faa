"""HTTP connections bounded in time and number, so no client can hold the server (``--transport http``).

uvicorn times out idle keep-alive connections but not a client that sends its request slowly, and it
accepts connections until the process runs out of file descriptors. Here:

* :func:`bounded_protocol` is uvicorn's own h11 protocol with two additions. A client has
  ``read_timeout`` seconds to send a request's headers (from its first byte, or from the connection);
  then it gets a 408 and the connection is closed. At most ``max_connections`` connections are open:
  a new one past that closes the connection that has waited longest for a whole request (headers or
  body still arriving, or idle between requests), so clients that send slowly make room for clients that
  send at once; when every connection is busy with a request the new one gets a 503.
* :class:`ReadBodyInTime` reads a request's body before the app sees it, within ``read_timeout``
  seconds and the SDK's body size limit (408 or 413 otherwise). A client that disconnects while
  sending is one INFO line, not the SDK's ERROR with a traceback.
* :func:`connection_cap` keeps the cap below the process's file-descriptor limit, and
  :func:`quiet_accept_errors` turns asyncio's "socket.accept() out of system resource" (logged with a
  traceback on every attempt) into one rate-limited warning.

Log lines here are events (``http_slow_client``, ``http_connection_closed``, ...); the stderr handler
rate-limits them (``logs.py``), so a flood of clients cannot flood the log.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Any

import anyio
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 128
"""File descriptors kept out of the connection cap: upstream connections, the journal database, logs."""
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _raw_response(status: int, reason: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        f"content-length: {len(reason)}\r\n\r\n{reason}"
    ).encode()


_TOO_SLOW = _raw_response(408, "Request Timeout")
_BUSY = _raw_response(503, "Service Unavailable")


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered (with a warning) to what the process's file-descriptor limit leaves for clients."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - no getrlimit (Windows)
        return wanted
    if soft == resource.RLIM_INFINITY or soft - RESERVED_DESCRIPTORS >= wanted:
        return wanted
    cap = max(8, soft - RESERVED_DESCRIPTORS)
    logger.warning(
        "http_connection_cap lowered=%d wanted=%d open_files_limit=%d (raise it with ulimit -n)", cap, wanted, soft
    )
    return cap


class _BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and a cap on open connections."""

    read_timeout: float = 10.0
    max_connections: int = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_timer: asyncio.TimerHandle | None = None
        self._waiting_since = self.loop.time()
        self._arm()
        self._enforce_cap()

    def data_received(self, data: bytes) -> None:
        if self._headers_timer is None and self._between_requests():  # a new request starts on a kept connection
            self._waiting_since = self.loop.time()
            self._arm()
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # the request's headers are complete
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _evictable(self) -> bool:
        """Waiting for a whole request: headers or body still arriving, or idle between requests."""
        if self.transport.is_closing():
            return False
        cycle = self.cycle
        return self._between_requests() or (cycle.more_body and not cycle.response_started)

    def _arm(self) -> None:
        self._disarm()
        self._headers_timer = self.loop.call_later(self.read_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_too_slow(self) -> None:
        self._headers_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        logger.info("http_slow_client closed=headers after_s=%g", self.read_timeout)
        self.transport.write(_TOO_SLOW)
        self.transport.close()

    def _enforce_cap(self) -> None:
        open_now = [c for c in self.connections if isinstance(c, _BoundedH11Protocol)]
        if len(open_now) <= self.max_connections:
            return
        waiting = [c for c in open_now if c is not self and c._evictable()]
        if waiting:
            oldest = min(waiting, key=lambda c: c._waiting_since)
            logger.info("http_connection_closed reason=cap open=%d cap=%d", len(open_now), self.max_connections)
            oldest._disarm()
            oldest.transport.write(_BUSY)
            oldest.transport.close()
            return
        logger.warning(
            "http_connection_refused open=%d cap=%d (every connection is busy)", len(open_now), self.max_connections
        )
        self._disarm()
        self.transport.write(_BUSY)
        self.transport.close()


def bounded_protocol(read_timeout: float, max_connections: int) -> type[H11Protocol]:
    """The uvicorn protocol class (``uvicorn.Config(http=...)``) with these bounds."""
    return type(
        "BoundedH11Protocol",
        (_BoundedH11Protocol,),
        {"read_timeout": read_timeout, "max_connections": max_connections},
    )


class ReadBodyInTime:
    """Reads each request body within ``timeout`` seconds and ``max_bytes`` before the app runs (408 / 413)."""

    def __init__(self, app: ASGIApp, timeout: float, max_bytes: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> None:
        self._app = app
        self._timeout = timeout
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self._max_bytes:
            await _refuse(send, 413, "the request body is too large")
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self._timeout) as waited:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    logger.info("http_client_disconnected during=body method=%s bytes=%d", scope["method"], size)
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > self._max_bytes:
                    await _refuse(send, 413, "the request body is too large")
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    break
        if waited.cancelled_caught:
            logger.info("http_slow_client closed=body after_s=%g bytes=%d", self._timeout, size)
            await _refuse(send, 408, "the request body did not arrive in time")
            return
        await self._app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, message: str) -> None:
    body = f'{{"error": "{message}"}}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: accept() failures are one short warning each (rate-limited), no traceback."""
    message = str(context.get("message", ""))
    if message.startswith("socket.accept() out of system resource"):
        exc = context.get("exception")
        code = errno.errorcode.get(getattr(exc, "errno", 0) or 0, "unknown")
        logger.warning(
            "http_accept_failed error=%s (%s): new connections wait until descriptors are free",
            code,
            os.strerror(getattr(exc, "errno", 0) or 0),
        )
        return
    loop.default_exception_handler(context)
