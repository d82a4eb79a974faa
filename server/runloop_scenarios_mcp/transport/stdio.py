"""Serve an MCP server over stdio, answering lines that are not valid JSON-RPC instead of dropping them.

The server ends when the client closes stdin, or on SIGINT (Ctrl-C) or SIGTERM, with exit code 0
either way: a signal ends the lines read from stdin, and the SDK closes the session as on end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from runloop_scenarios_mcp.transport.lifecycle import serve_until_signal
from runloop_scenarios_mcp.transport.stdio_guard import answer_bad_lines


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Run ``server`` on this process's stdin and stdout until the client closes stdin or a signal stops it."""
    lowlevel = server._lowlevel_server  # the SDK's own run loop, given the guarded read stream
    stdin = ClientStdin.claim()

    async def serve() -> None:
        async with (
            stdio_server(stdin=cast(Any, stdin)) as (read_stream, write_stream),
            answer_bad_lines(read_stream, write_stream) as guarded,
        ):
            await lowlevel.run(guarded, write_stream, lowlevel.create_initialization_options())

    try:
        await serve_until_signal(serve, stdin.end)
    finally:
        stdin.release()


class ClientStdin:
    """The client's lines on stdin, as the SDK's stdio transport iterates them, read by a daemon thread.

    The SDK's own reader blocks an AnyIO worker thread in ``readline``: cancelling it waits for the
    read, and that thread is joined at exit, so a Ctrl-C while the client is quiet would hang until it
    wrote another line. A daemon thread holds up neither. :meth:`end` ends the lines as if the client
    had closed stdin. One line is read per line asked for, as the SDK does. Needs the asyncio backend
    (the one ``anyio.run`` uses by default).

    While serving, fd 0 reads the null device, as the SDK arranges it when it opens stdin itself, so
    tool code and child processes never read the protocol; :meth:`release` restores it.
    """

    def __init__(self, binary: BinaryIO, restore: Callable[[], object]) -> None:
        self._reader = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
        self._restore = restore
        self._wanted = threading.Semaphore(0)
        self._lines: asyncio.Queue[str] | None = None
        self._asked = False
        self._ended = False

    @classmethod
    def claim(cls) -> ClientStdin:
        """The process's stdin, read from a private duplicate of fd 0 while fd 0 points at the null device."""
        try:
            if sys.platform == "win32" or sys.stdin.buffer.fileno() != 0:
                raise OSError("stdin is read in place")
            import fcntl

            private = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)  # above 0-2, which the SDK claims and diverts
        except (AttributeError, OSError, ValueError):
            return cls(sys.stdin.buffer, lambda: None)
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            try:
                os.dup2(null, 0)
            finally:
                os.close(null)
        except OSError:
            return cls(sys.stdin.buffer, lambda: None)
        # closefd=False and never closed: the reading thread may still block on it after serving ends.
        return cls(os.fdopen(private, "rb", closefd=False), lambda: os.dup2(private, 0))

    def __aiter__(self) -> ClientStdin:
        return self

    async def __anext__(self) -> str:
        if self._ended:
            raise StopAsyncIteration
        if self._lines is None:
            self._lines = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, args=(loop, self._lines), name="stdin-reader", daemon=True).start()
        if not self._asked:
            self._asked = True
            self._wanted.release()
        line = await self._lines.get()
        self._asked = False
        if not line or self._ended:
            self._ended = True
            raise StopAsyncIteration
        return line

    def end(self) -> None:
        """End the lines now, as if the client had closed stdin (call it on the event loop's thread)."""
        self._ended = True
        if self._lines is not None:
            self._lines.put_nowait("")

    def release(self) -> None:
        """Point fd 0 back at the client's stdin."""
        with contextlib.suppress(OSError):
            self._restore()

    def _read(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
        while True:
            self._wanted.acquire()
            try:
                line = self._reader.readline()
            except (OSError, ValueError):
                line = ""
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the event loop is closed: nobody is reading any more
                return
            if not line:
                return
