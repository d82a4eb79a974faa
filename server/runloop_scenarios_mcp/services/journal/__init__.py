"""The undo journal and audit trail, in a database shared by every server process and replica.

- ``backends.py``: which store a database URL opens.
- ``store.py``: what the services need from a database (:class:`JournalStore`), the rows, the connection pool.
- ``sqlite.py`` (the default, a file in the user's state directory) and ``postgres.py`` (psycopg, imported
  only there): the two backends, each with its cross-process per-scenario write lock.
- ``migrations.py``: the schema as numbered migrations, run at start-up.
- ``jsonl_import.py``: the one-time import of the JSON Lines journal earlier versions wrote.
- ``service.py``: :class:`Journal`, what apply, preview and restore call (async, off the event loop).
- ``cli.py``: ``runloop-scenarios-mcp journal list|show|undo|export``.
"""

from runloop_scenarios_mcp.errors import JournalError
from runloop_scenarios_mcp.services.journal.backends import open_store
from runloop_scenarios_mcp.services.journal.service import Journal, undo_changes
from runloop_scenarios_mcp.services.journal.store import (
    AuditContext,
    EntryFilter,
    EntryRow,
    JournalStore,
    Outcome,
)

__all__ = [
    "AuditContext",
    "EntryFilter",
    "EntryRow",
    "Journal",
    "JournalError",
    "JournalStore",
    "Outcome",
    "open_store",
    "undo_changes",
]
