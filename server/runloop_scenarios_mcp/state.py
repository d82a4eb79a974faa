"""What a running server holds: its settings and the services built from them (one per process)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .cursor import CursorCodec
from .errors import MissingApiKey
from .runloop import RunloopClient


@dataclass
class AppState:
    settings: Settings
    client: RunloopClient | None
    cursors: CursorCodec

    def require_client(self) -> RunloopClient:
        """The upstream client, or the error that tells the user how to configure one."""
        if self.client is None:
            raise MissingApiKey()
        return self.client
