"""What a running server holds: its settings and the services built from them (one per process)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.errors import MissingApiKey
from runloop_scenarios_mcp.services.cursor import CursorCodec
from runloop_scenarios_mcp.services.journal import Journal
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.upstream.client import RunloopClient


@dataclass
class AppState:
    settings: Settings
    client: RunloopClient | None
    cursors: CursorCodec
    previews: PreviewTokens
    journal: Journal
    _write_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def write_lock(self, scenario_id: str) -> asyncio.Lock:
        """One apply at a time per scenario in this process (read-check-write must not interleave)."""
        return self._write_locks.setdefault(scenario_id, asyncio.Lock())

    def require_client(self) -> RunloopClient:
        """The upstream client, or the error that tells the user how to configure one."""
        if self.client is None:
            raise MissingApiKey()
        return self.client
