"""The journal in a SQLite file (the default): WAL, entries synced, one file shared by local processes.

An entry is synced to disk when committed (before its POST is sent). Its outcome and the lock rows are
committed without a sync of their own (``synchronous = NORMAL``): they reach the disk with the next synced
commit or checkpoint. A power cut before then leaves the entry as committed, outcome ``unknown``, which
still holds the previous version for undo and still claims the preview token (the safe reading).

Writes run in ``BEGIN IMMEDIATE`` transactions (the database's write lock, waited for up to
``BUSY_TIMEOUT``); readers never block in WAL mode. The file and its directory are private to the user.

The per-scenario write lock is a row of ``scenario_locks`` with a lease: taken in a short transaction,
renewed every ``RENEW`` seconds by one heartbeat thread while any lock is held, and deleted on release, so
other scenarios' applies and every read go on while it is held. A lock whose holder died is taken over at
once when the holder was a process of this host that no longer runs, else when its lease ran out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, cast

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
    WouldBlock,
    entries_query,
    iso,
    parse_iso,
    used_outcome,
    used_token_query,
)
from runloop_scenarios_mcp.services.sendable import has_lone_surrogate

logger = logging.getLogger(__name__)

BUSY_TIMEOUT = 30.0
MIGRATE_ATTEMPTS = 20
"""Tries of the start-up migration when another process holds the new database (about 10 s in all)."""
"""Seconds a statement waits for another connection's write transaction before failing."""
LEASE = 30.0
"""Seconds a write lock row stays valid without renewal (the wait after a holder on another host died)."""
RENEW = 10.0
"""Seconds between renewals of the held locks' leases."""
HOST = socket.gethostname()

INSERT_COLUMNS = (
    "entry, created_at, finished_at, scenario_id, outcome, token_id, fields, changes, before, body, expected, after, "
    "detail, client_name, client_version, transport, http_token_id, server, source"
)
INSERT = f"INSERT INTO journal_entries ({INSERT_COLUMNS}) VALUES ({', '.join('?' * 19)})"
FINISH = "UPDATE journal_entries SET outcome = ?, finished_at = ?, after = ?, detail = ? WHERE entry = ?"
UNLOCK = "DELETE FROM scenario_locks WHERE scenario_id = ? AND owner = ?"


def dumps(value: Any) -> str:
    """Compact JSON for a TEXT column; a lone surrogate from the API (not UTF-8) is kept as its JSON escape."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, separators=(",", ":")) if has_lone_surrogate(text) else text


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SqliteStore(JournalStore):
    def __init__(self, database: DatabaseUrl) -> None:
        assert database.path is not None
        self.database = database
        self.path: Path = database.path
        self._owner = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self._pool: Pool[sqlite3.Connection] = Pool(self._connect, lambda connection: connection.close())
        # Lock rows and outcomes need no fsync: a lock row lost to a power cut is a lock nobody holds any more,
        # an outcome lost leaves its entry unknown (the safe reading).
        self._lock_pool: Pool[sqlite3.Connection] = Pool(
            lambda: self._connect(synchronous="NORMAL"), lambda connection: connection.close()
        )
        # The same on the event loop's thread (the ``_now`` calls): no busy wait (another writer means WouldBlock)
        # and no checkpoint, so a call never waits for another connection or a sync to disk.
        self._now_pool: Pool[sqlite3.Connection] = Pool(
            lambda: self._connect(synchronous="NORMAL", wait=0.0, checkpoint=False),
            lambda connection: connection.close(),
        )
        self._wal = True
        """Whether the database is in WAL mode, where a NORMAL commit does not sync (the ``_now`` calls need it)."""
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    # --- connections and transactions ----------------------------------------------------------

    def _connect(
        self, synchronous: str = "FULL", *, wait: float = BUSY_TIMEOUT, checkpoint: bool = True
    ) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):  # created private; SQLite gives -wal and -shm the same mode
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connection = sqlite3.connect(
            self.path, timeout=wait, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        try:
            connection.execute(f"PRAGMA synchronous = {synchronous}")  # FULL: a commit is on disk before the POST
            connection.execute("PRAGMA foreign_keys = ON")
            if not checkpoint:  # a checkpoint syncs the database file: left to the other connections
                connection.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            connection.close()
            raise
        return connection

    @contextlib.contextmanager
    def _write(self, pool: Pool[sqlite3.Connection] | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start (no upgrade deadlocks)."""
        with (pool or self._pool).borrow() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # --- schema --------------------------------------------------------------------------------

    def migrate(self) -> int:
        # Switching a new database to WAL while other processes open it can fail at once with "database is
        # locked" (no busy wait for that switch): try again for a few seconds, as servers starting together do.
        for attempt in range(MIGRATE_ATTEMPTS):
            try:
                return self._migrate()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == MIGRATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self) -> int:
        with self._pool.borrow() as connection:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("journal_sqlite_not_wal mode=%s path=%s", mode, self.path)
                self._wal = False  # without WAL every commit syncs: nothing runs on the event loop's thread
        with self._write() as connection:
            connection.execute(SCHEMA_TABLE["sqlite"])
            current = connection.execute("SELECT coalesce(max(version), 0) FROM journal_schema").fetchone()[0]
            if current > LATEST:
                raise SchemaTooNew(current, LATEST)
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in migration.sqlite:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO journal_schema (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, iso(datetime.now(UTC))),
                )
                logger.info("journal_migrated backend=sqlite version=%d name=%s", migration.version, migration.name)
            return LATEST

    # --- entries -------------------------------------------------------------------------------

    def insert_entry(self, new: NewEntry) -> None:
        row = (
            new.entry,
            iso(new.created_at),
            None,
            new.scenario_id,
            "unknown",
            new.token_id,
            dumps(new.fields),
            dumps(new.changes),
            dumps(new.before),
            dumps(new.body),
            None if new.expected is None else dumps(new.expected),
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
            with self._write() as connection:
                connection.execute(INSERT, row)
        except sqlite3.IntegrityError as exc:
            if "token_id" in str(exc):
                raise TokenAlreadyClaimed(new.token_id) from None
            raise

    def finish_entry(
        self,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
        *,
        within: sqlite3.Connection | None = None,
    ) -> bool:
        """``within``: inside that connection's open write transaction (else in one of its own)."""
        # No sync of its own (the module docstring says why that is safe): it saves one fsync per apply.
        row = (outcome, iso(finished_at), None if after is None else dumps(after), detail, entry)
        if within is not None:
            return within.execute(FINISH, row).rowcount == 1
        with self._write(self._lock_pool) as connection:
            return connection.execute(FINISH, row).rowcount == 1

    def finish_and_unlock(
        self,
        handle: object,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
    ) -> tuple[bool, bool]:
        return self._finish_and_unlock(self._lock_pool, handle, entry, outcome, finished_at, after, detail)

    def finish_and_unlock_now(
        self,
        handle: object,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
    ) -> tuple[bool, bool]:
        if not self._wal:
            raise WouldBlock
        with _would_block():
            return self._finish_and_unlock(self._now_pool, handle, entry, outcome, finished_at, after, detail)

    def _finish_and_unlock(
        self,
        pool: Pool[sqlite3.Connection],
        handle: object,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
    ) -> tuple[bool, bool]:
        # One transaction: the outcome and the release commit together (or neither, and the lock stays held).
        scenario_id, holder = cast(tuple[str, str], handle)
        with self._write(pool) as connection:
            found = self.finish_entry(entry, outcome, finished_at, after, detail, within=connection)
            connection.execute(UNLOCK, (scenario_id, holder))
        with self._held_lock:
            self._held.discard(holder)
        return found, True

    def used_token(self, scenario_id: str, token_id: str) -> Outcome | None:
        with self._pool.borrow() as connection:
            rows = connection.execute(used_token_query("?"), (token_id, scenario_id)).fetchall()
        return used_outcome(row[0] for row in rows)

    def get_entry(self, entry: str) -> EntryRow | None:
        with self._pool.borrow() as connection:
            row = connection.execute(f"SELECT {FULL_COLUMNS} FROM journal_entries WHERE entry = ?", (entry,)).fetchone()
        return None if row is None else _row(row, full=True)

    def list_entries(self, where: EntryFilter, *, full: bool = False) -> Iterator[EntryRow]:
        query, params = entries_query(where, full=full, mark="?", moment=iso)
        with self._pool.borrow() as connection:
            for row in connection.execute(query, params):
                yield _row(row, full=full)

    def import_entries(
        self, source: str, entries: Iterable[ImportedEntry], skipped: Callable[[], int] = lambda: 0
    ) -> int | None:
        with self._write() as connection:
            claimed = connection.execute(
                "INSERT INTO journal_imports (source, imported_at, entries, skipped) VALUES (?, ?, 0, 0) "
                "ON CONFLICT (source) DO NOTHING",
                (source, iso(datetime.now(UTC))),
            )
            if claimed.rowcount != 1:
                return None
            count = 0
            iterator = iter(entries)
            while batch := list(islice(iterator, 500)):
                connection.executemany(
                    INSERT + " ON CONFLICT (entry) DO NOTHING",
                    [_imported_row(item, source) for item in batch],
                )
                count += len(batch)
            connection.execute(
                "UPDATE journal_imports SET entries = ?, skipped = ? WHERE source = ?", (count, skipped(), source)
            )
            return count

    # --- the per-scenario write lock -------------------------------------------------------------

    def try_lock(self, scenario_id: str) -> object | None:
        return self._try_lock(self._lock_pool, scenario_id, None)[0]

    def try_lock_unused(self, scenario_id: str, token_id: str | None) -> tuple[object | None, Outcome | None]:
        return self._try_lock(self._lock_pool, scenario_id, token_id)

    def try_lock_unused_now(self, scenario_id: str, token_id: str | None) -> tuple[object | None, Outcome | None]:
        if not self._wal:
            raise WouldBlock
        with _would_block():
            return self._try_lock(self._now_pool, scenario_id, token_id)

    def _try_lock(
        self, pool: Pool[sqlite3.Connection], scenario_id: str, token_id: str | None
    ) -> tuple[object | None, Outcome | None]:
        """The lock row and (when taken) the token's outcomes, read in the transaction that takes the lock."""
        now = time.time()
        holder = f"{self._owner}/{secrets.token_hex(4)}"  # one per hold: two holds in one process exclude each other
        with self._write(pool) as connection:
            row = connection.execute(
                "SELECT owner, host, pid, expires_at FROM scenario_locks WHERE scenario_id = ?", (scenario_id,)
            ).fetchone()
            if row is not None:
                owner, host, pid, expires_at = row
                if expires_at > now and not (host == HOST and not _running(pid)):
                    return None, None
                logger.warning(
                    "journal_lock_taken_over scenario_id=%s from=%s reason=%s",
                    scenario_id,
                    owner,
                    "lease expired" if expires_at <= now else "holder process ended",
                )
            connection.execute(
                "INSERT INTO scenario_locks (scenario_id, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (scenario_id) DO UPDATE SET owner = excluded.owner, host = excluded.host, "
                "pid = excluded.pid, expires_at = excluded.expires_at",
                (scenario_id, holder, HOST, os.getpid(), now + LEASE),
            )
            used = None
            if token_id is not None:
                rows = connection.execute(used_token_query("?"), (token_id, scenario_id)).fetchall()
                used = used_outcome(row[0] for row in rows)
        with self._held_lock:
            self._held.add(holder)
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = threading.Thread(target=self._renew, name="journal-lock-lease", daemon=True)
                self._heartbeat.start()
        return (scenario_id, holder), used

    def unlock(self, handle: object) -> None:
        scenario_id, holder = cast(tuple[str, str], handle)
        with self._held_lock:
            self._held.discard(holder)
        with self._write(self._lock_pool) as connection:
            connection.execute(UNLOCK, (scenario_id, holder))

    def _renew(self) -> None:
        """Renew the leases of every lock this store holds, until none is held."""
        while not self._stop.wait(RENEW):
            with self._held_lock:
                if not self._held:
                    self._heartbeat = None
                    return
            try:
                with self._write(self._lock_pool) as connection:
                    connection.execute(
                        "UPDATE scenario_locks SET expires_at = ? WHERE owner LIKE ?",
                        (time.time() + LEASE, self._owner + "/%"),
                    )
            except sqlite3.Error as exc:
                logger.warning("journal_lock_renew_failed error=%s", type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        self._pool.close()
        self._lock_pool.close()
        self._now_pool.close()


@contextlib.contextmanager
def _would_block() -> Iterator[None]:
    """SQLite's "database is locked" (another writer; a ``_now`` connection does not wait) as WouldBlock."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(
            exc
        ):
            raise WouldBlock from None
        raise


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _row(row: tuple[Any, ...], *, full: bool) -> EntryRow:
    extra: dict[str, Any] = {}
    if full:
        extra = {
            "before": _loads(row[15]),
            "body": _loads(row[16]),
            "expected": _loads(row[17]),
            "after": _loads(row[18]),
        }
    return EntryRow(
        entry=row[0],
        created_at=parse_iso(row[1]),
        finished_at=parse_iso(row[2]) if row[2] else None,
        scenario_id=row[3],
        outcome=row[4],
        token_id=row[5],
        fields=_loads(row[6]) or [],
        changes=_loads(row[7]) or [],
        detail=row[8] or "",
        audit=AuditContext(client_name=row[9], client_version=row[10], transport=row[11], http_token_id=row[12]),
        server=row[13] or "",
        source=row[14],
        **extra,
    )


def _imported_row(item: ImportedEntry, source: str) -> tuple[Any, ...]:
    return (
        item.entry,
        iso(item.created_at),
        None if item.finished_at is None else iso(item.finished_at),
        item.scenario_id,
        item.outcome,
        item.token_id,
        dumps(item.fields),
        dumps(item.fields),
        dumps(item.before),
        dumps(item.body),
        None,
        None if item.after is None else dumps(item.after),
        item.detail,
        None,
        None,
        None,
        None,
        "",
        source,
    )
