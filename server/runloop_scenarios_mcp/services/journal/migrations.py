"""The journal database's schema, as numbered migrations, each in the SQL of both backends.

``journal_schema`` holds one row per applied migration. Each backend runs the pending ones at start-up in a
single transaction that first takes a database-wide lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL
transaction-level advisory lock), so processes that start at once apply each migration exactly once and
none of them sees a half-migrated schema. A migration is never edited once released: add a new one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


_ENTRY_COLUMNS = """
    entry TEXT PRIMARY KEY,
    created_at {time} NOT NULL,
    finished_at {time},
    scenario_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'failed', 'unknown')),
    token_id TEXT,
    fields {json} NOT NULL,
    changes {json} NOT NULL,
    before {json} NOT NULL,
    body {json} NOT NULL,
    expected {json},
    after {json},
    detail TEXT NOT NULL DEFAULT '',
    client_name TEXT,
    client_version TEXT,
    transport TEXT,
    http_token_id TEXT,
    server TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'server'
"""

_INDEXES = (
    # single use of a preview token: one live (not failed) entry per nonce among the entries servers write
    "CREATE UNIQUE INDEX journal_entries_token_once ON journal_entries (scenario_id, token_id) "
    "WHERE outcome <> 'failed' AND source = 'server'",
    "CREATE INDEX journal_entries_token ON journal_entries (token_id)",
    "CREATE INDEX journal_entries_scenario ON journal_entries (scenario_id, created_at)",
    "CREATE INDEX journal_entries_created ON journal_entries (created_at)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "journal entries, token single use, imports, SQLite lock rows",
        sqlite=(
            "CREATE TABLE journal_entries (" + _ENTRY_COLUMNS.format(time="TEXT", json="TEXT") + ")",
            *_INDEXES,
            "CREATE TABLE journal_imports (source TEXT PRIMARY KEY, imported_at TEXT NOT NULL, "
            "entries INTEGER NOT NULL, skipped INTEGER NOT NULL)",
            "CREATE TABLE scenario_locks (scenario_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, "
            "pid INTEGER NOT NULL, expires_at REAL NOT NULL)",
        ),
        postgresql=(
            "CREATE TABLE journal_entries (" + _ENTRY_COLUMNS.format(time="TIMESTAMPTZ", json="JSON") + ")",
            *_INDEXES,
            "CREATE TABLE journal_imports (source TEXT PRIMARY KEY, imported_at TIMESTAMPTZ NOT NULL, "
            "entries INTEGER NOT NULL, skipped INTEGER NOT NULL)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

SCHEMA_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS journal_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "applied_at TEXT NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS journal_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
}
