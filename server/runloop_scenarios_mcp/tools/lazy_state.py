"""The server's state (:class:`~runloop_scenarios_mcp.services.state.AppState`), built once, after start-up.

Building it imports the services, httpx and the journal's database driver and opens the journal: about a
tenth of a second that a host would otherwise wait for before ``initialize``. Each run of the MCP lifespan
hands a :class:`LazyState` to its requests instead; the warm-up builds the state in a thread after the first
``tools/list`` (see ``app.WarmUp``), and a tool call that comes first builds it itself, off the event loop.
When the lifespan ends it closes the state, so nothing is built after that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from runloop_scenarios_mcp.errors import ServerStopping

if TYPE_CHECKING:
    from runloop_scenarios_mcp.services.state import AppState


class LazyState:
    """``build()`` run at most once, by whichever comes first: the warm-up thread or a tool call; never after
    :meth:`close`. A failed build is tried again by the next caller."""

    def __init__(self, build: Callable[[], AppState]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._state: AppState | None = None
        self._closed = False

    def build(self) -> AppState | None:
        """The state, built now if nobody has; None once closed (blocks: call from a thread, not the event loop)."""
        with self._lock:
            if self._state is None and not self._closed:
                self._state = self._build()
            return self._state

    async def ready(self) -> AppState:
        """The state, waiting in a worker thread while it is built, so the event loop keeps serving."""
        state = self._state
        if state is None:
            state = await anyio.to_thread.run_sync(self.build)
        if state is None:
            raise ServerStopping()
        return state

    async def close(self) -> AppState | None:
        """No build from now on; the state if one was built (after waiting for a build under way), to close."""
        await anyio.to_thread.run_sync(self._close)
        return self._state

    def _close(self) -> None:
        with self._lock:
            self._closed = True
