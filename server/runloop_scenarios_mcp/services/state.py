"""What a running server holds: its settings and the services built from them (one per process).

The write lock of a scenario has two levels: an asyncio lock per scenario in this process (so one task
at a time asks the database), then the journal database's lock of that scenario, shared by every process
and replica on the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.errors import MissingApiKey
from runloop_scenarios_mcp.services.cursor import CursorCodec
from runloop_scenarios_mcp.services.journal import Journal, Outcome
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.upstream.client import RunloopClient


@dataclass
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    """Tasks holding the lock or waiting for it."""


class ScenarioLocks:
    """One lock per scenario id, kept only while someone holds it or waits for it.

    A lock that nobody holds or waits for is dropped, so the map holds at most the scenarios being
    written right now, however many scenarios the process writes over its lifetime.
    """

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    @asynccontextmanager
    async def hold(self, scenario_id: str) -> AsyncIterator[None]:
        if scenario_id not in self._held:
            self._held[scenario_id] = _Held()
        held = self._held[scenario_id]
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:  # the lock is released (or was never acquired, if cancelled while waiting) before this runs
            held.users -= 1
            if held.users == 0:
                del self._held[scenario_id]


@dataclass
class AppState:
    settings: Settings
    client: RunloopClient | None
    cursors: CursorCodec
    previews: PreviewTokens
    journal: Journal
    write_locks: ScenarioLocks = field(default_factory=ScenarioLocks)

    def write_lock(self, scenario_id: str, nonce: str | None = None) -> AbstractAsyncContextManager[Outcome | None]:
        """One apply at a time per scenario across every process sharing the journal (read-check-write).

        Yields whether the preview token ``nonce`` was used (``Journal.used_token``), read under the lock.
        """
        return self._write_lock(scenario_id, nonce)

    @asynccontextmanager
    async def _write_lock(self, scenario_id: str, nonce: str | None) -> AsyncIterator[Outcome | None]:
        async with self.write_locks.hold(scenario_id), self.journal.scenario_lock(scenario_id, nonce) as used:
            yield used

    def require_client(self) -> RunloopClient:
        """The upstream client, or the error that tells the user how to configure one."""
        if self.client is None:
            raise MissingApiKey()
        return self.client
