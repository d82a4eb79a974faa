"""Which store a database URL opens: SQLite (the standard library) or PostgreSQL (psycopg, imported only then)."""

from __future__ import annotations

from runloop_scenarios_mcp.config import DatabaseUrl, parse_database_url
from runloop_scenarios_mcp.services.journal.store import JournalStore


def open_store(database: DatabaseUrl | str) -> JournalStore:
    """The store for a checked URL; psycopg is imported only for PostgreSQL."""
    if isinstance(database, str):
        database = parse_database_url(database)
    if database.kind == "postgresql":
        from runloop_scenarios_mcp.services.journal.postgres import PostgresStore

        return PostgresStore(database)
    from runloop_scenarios_mcp.services.journal.sqlite import SqliteStore

    return SqliteStore(database)
