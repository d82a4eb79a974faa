"""What a running server holds: its settings and the services built from them (one per process)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .config import Settings
from .cursor import CursorCodec
from .errors import MissingApiKey
from .journal import Journal
from .preview import PreviewTokens
from .runloop import RunloopClient


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
