"""The server's state (:class:`~runloop_scenarios_mcp.services.state.AppState`), built once, after start-up.

Building it imports the services, httpx and the journal's database driver and opens the journal: about a
tenth of a second that a host would otherwise wait for before ``initialize``. The MCP lifespan hands a
:class:`LazyState` to every request instead; the warm-up builds the state in a thread after the first
``tools/list`` (see ``app.WarmUp``), and a tool call that comes first builds it itself, off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from runloop_scenarios_mcp.services.state import AppState


class LazyState:
    """``build()`` run at most once, by whichever comes first: the warm-up thread or a tool call."""

    def __init__(self, build: Callable[[], AppState]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._state: AppState | None = None

    def build(self) -> AppState:
        """The state, built now if nobody has (blocks: call from a thread, not the event loop)."""
        with self._lock:
            if self._state is None:
                self._state = self._build()
            return self._state

    async def ready(self) -> AppState:
        """The state, waiting in a worker thread while it is built, so the event loop keeps serving."""
        state = self._state
        return state if state is not None else await anyio.to_thread.run_sync(self.build)

    async def built(self) -> AppState | None:
        """The state if it was built (waiting for a build under way to finish), without building it."""
        if self._lock.locked():  # a build is under way: let it finish, so whatever it opened gets closed
            await anyio.to_thread.run_sync(self._wait)
        return self._state

    def _wait(self) -> None:
        with self._lock:
            pass
