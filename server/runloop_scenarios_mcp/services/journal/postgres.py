"""The journal in PostgreSQL (``RUNLOOP_MCP_DATABASE_URL=postgresql://...``), shared by every replica.

psycopg 3 is imported here only, and this module only when the URL names PostgreSQL (the optional
extra ``runloop-scenarios-mcp[postgres]``). Connections are autocommit; writes run in explicit
transactions. JSON columns are ``json`` (the text as written, so ``1.0`` and key order survive).

The per-scenario write lock is a session-level advisory lock on a connection set aside for the apply:
``pg_try_advisory_lock`` (polled by the service, so a waiting apply holds no connection and can be
cancelled) and ``pg_advisory_unlock`` after the write. When a replica dies, PostgreSQL ends its
connections and so releases its locks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, cast

import psycopg
from psycopg.types.json import Json

from runloop_scenarios_mcp.config import DatabaseUrl
from runloop_scenarios_mcp.services.journal.migrations import LATEST, MIGRATIONS, SCHEMA_TABLE
from runloop_scenarios_mcp.services.journal.store import (
    FULL_COLUMNS,
    AuditContext,
    EntryFilter,
    EntryRow,
    ImportedEntry,
    JournalStore,
    NewEntry,
    Outcome,
    Pool,
    SchemaTooNew,
    TokenAlreadyClaimed,
    entries_query,
    used_outcome,
    used_token_query,
)
from runloop_scenarios_mcp.services.sendable import sendable

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
MIGRATION_LOCK = 0x726C6D6A6F75726E  # "rlmjourn": the transaction-level advisory lock of migrations and imports
INSERT = (
    "INSERT INTO journal_entries (entry, created_at, finished_at, scenario_id, outcome, token_id, fields, changes, "
    "before, body, expected, after, detail, client_name, client_version, transport, http_token_id, server, source) "
    f"VALUES ({', '.join(['%s'] * 19)})"
)


def _json(value: Any) -> Json | None:
    if value is None:
        return None
    # jsonb refuses a lone surrogate even as an escape: such text from the API is stored as U+FFFD (an undo
    # of that entry restores U+FFFD there; SQLite keeps the escape).
    return Json(value, dumps=lambda v: json.dumps(sendable(v), ensure_ascii=False, separators=(",", ":")))


def lock_key(scenario_id: str) -> int:
    """The advisory lock key of a scenario: 64 bits of SHA-256, signed as PostgreSQL's bigint."""
    digest = hashlib.sha256(b"runloop-scenarios-mcp/scenario/" + scenario_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore(JournalStore):
    def __init__(self, database: DatabaseUrl) -> None:
        self.database = database
        self._pool: Pool[psycopg.Connection[Any]] = Pool(self._connect, lambda connection: connection.close())

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.database.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="runloop-scenarios-mcp",
        )

    # --- schema --------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self._pool.borrow() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute(SCHEMA_TABLE["postgresql"])
            row = connection.execute("SELECT coalesce(max(version), 0) FROM journal_schema").fetchone()
            current = int(row[0]) if row else 0
            if current > LATEST:
                raise SchemaTooNew(current, LATEST)
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in migration.postgresql:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO journal_schema (version, name) VALUES (%s, %s)", (migration.version, migration.name)
                )
                logger.info("journal_migrated backend=postgresql version=%d name=%s", migration.version, migration.name)
            return LATEST

    # --- entries -------------------------------------------------------------------------------

    def insert_entry(self, new: NewEntry) -> None:
        row = (
            new.entry,
            new.created_at,
            None,
            new.scenario_id,
            "unknown",
            new.token_id,
            _json(new.fields),
            _json(new.changes),
            _json(new.before),
            _json(new.body),
            _json(new.expected),
            None,
            "",
            new.audit.client_name,
            new.audit.client_version,
            new.audit.transport,
            new.audit.http_token_id,
            new.server,
            "server",
        )
        try:
            with self._pool.borrow() as connection, connection.transaction():
                connection.execute(INSERT, row)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "journal_entries_token_once":
                raise TokenAlreadyClaimed(new.token_id) from None
            raise

    def finish_entry(
        self, entry: str, outcome: Outcome, finished_at: datetime, after: dict[str, Any] | None, detail: str
    ) -> bool:
        with self._pool.borrow() as connection, connection.transaction():
            # The entry was flushed before its POST; its outcome need not wait for the WAL flush (lost only in a
            # server crash, which leaves the entry unknown: still undoable, its token still claimed).
            connection.execute("SET LOCAL synchronous_commit = off")
            cursor = connection.execute(
                "UPDATE journal_entries SET outcome = %s, finished_at = %s, after = %s, detail = %s WHERE entry = %s",
                (outcome, finished_at, _json(after), detail, entry),
            )
            return cursor.rowcount == 1

    def used_token(self, scenario_id: str, token_id: str) -> Outcome | None:
        with self._pool.borrow() as connection:
            rows = connection.execute(used_token_query("%s"), (token_id, scenario_id)).fetchall()
        return used_outcome(row[0] for row in rows)

    def get_entry(self, entry: str) -> EntryRow | None:
        with self._pool.borrow() as connection:
            row = connection.execute(
                f"SELECT {FULL_COLUMNS} FROM journal_entries WHERE entry = %s",
                (entry,),
            ).fetchone()
        return None if row is None else _row(row, full=True)

    def list_entries(self, where: EntryFilter, *, full: bool = False) -> Iterator[EntryRow]:
        query, params = entries_query(where, full=full, mark="%s", moment=lambda moment: moment)
        with (
            self._pool.borrow() as connection,
            connection.transaction(),
            connection.cursor(name="journal_entries") as cursor,  # server-side: streamed in batches
        ):
            cursor.itersize = 200
            cursor.execute(query, params)  # columns and clauses are ours
            for row in cursor:
                yield _row(row, full=full)

    def import_entries(
        self, source: str, entries: Iterable[ImportedEntry], skipped: Callable[[], int] = lambda: 0
    ) -> int | None:
        with self._pool.borrow() as connection, connection.transaction():
            claimed = connection.execute(
                "INSERT INTO journal_imports (source, imported_at, entries, skipped) VALUES (%s, now(), 0, 0) "
                "ON CONFLICT (source) DO NOTHING RETURNING source",
                (source,),
            ).fetchone()
            if claimed is None:  # imported before (or by a replica that started at the same time)
                return None
            count = 0
            iterator = iter(entries)
            with connection.cursor() as cursor:
                while batch := list(islice(iterator, 500)):
                    cursor.executemany(
                        INSERT + " ON CONFLICT (entry) DO NOTHING", [_imported_row(item, source) for item in batch]
                    )
                    count += len(batch)
            connection.execute(
                "UPDATE journal_imports SET entries = %s, skipped = %s WHERE source = %s", (count, skipped(), source)
            )
            return count

    # --- the per-scenario write lock -------------------------------------------------------------

    def try_lock(self, scenario_id: str) -> object | None:
        connection = self._pool.take()
        key = lock_key(scenario_id)
        try:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        except BaseException:
            self._pool.give(connection, healthy=False)
            raise
        if not (row and row[0]):
            self._pool.give(connection)
            return None
        return (connection, key)

    def unlock(self, handle: object) -> None:
        connection, key = cast(tuple[psycopg.Connection[Any], int], handle)
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except BaseException:
            self._pool.give(connection, healthy=False)  # closing the connection releases the lock
            raise
        self._pool.give(connection)

    def close(self) -> None:
        self._pool.close()


def _row(row: tuple[Any, ...], *, full: bool) -> EntryRow:
    extra: dict[str, Any] = {}
    if full:
        extra = {"before": row[15], "body": row[16], "expected": row[17], "after": row[18]}
    return EntryRow(
        entry=row[0],
        created_at=row[1],
        finished_at=row[2],
        scenario_id=row[3],
        outcome=row[4],
        token_id=row[5],
        fields=row[6] or [],
        changes=row[7] or [],
        detail=row[8] or "",
        audit=AuditContext(client_name=row[9], client_version=row[10], transport=row[11], http_token_id=row[12]),
        server=row[13] or "",
        source=row[14],
        **extra,
    )


def _imported_row(item: ImportedEntry, source: str) -> tuple[Any, ...]:
    return (
        item.entry,
        item.created_at,
        item.finished_at,
        item.scenario_id,
        item.outcome,
        item.token_id,
        _json(item.fields),
        _json(item.fields),
        _json(item.before),
        _json(item.body),
        None,
        _json(item.after),
        item.detail,
        None,
        None,
        None,
        None,
        "",
        source,
    )
