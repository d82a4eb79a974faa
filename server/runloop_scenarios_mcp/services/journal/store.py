"""What the services need from the journal database, whatever the database is (``sqlite.py``, ``postgres.py``).

Every method is blocking; :class:`~runloop_scenarios_mcp.services.journal.service.Journal` runs them in
worker threads so the server's event loop never waits on the database. A store is shared by the threads
of one process; each call borrows a connection of its own from a small pool.

Rows:

- one **entry** per write (``journal_entries``): written with outcome ``unknown`` before the POST, in a
  committed transaction, and finished as ``applied``, ``failed`` or ``unknown`` after it. An entry that
  is never finished (the process died mid-write) stays ``unknown`` with no ``finished_at``.
- single use of a preview token: an entry carries the token's nonce, and a unique index over the
  nonces of entries that are not ``failed`` makes the claim atomic across every process.
- the per-scenario write lock that spans the re-read and the write: PostgreSQL advisory locks on a
  connection held for the apply; in SQLite a lock row with a lease that the holder renews.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from runloop_scenarios_mcp.config import DatabaseUrl

logger = logging.getLogger(__name__)

Outcome = Literal["applied", "failed", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "failed", "unknown")


@dataclass(frozen=True)
class AuditContext:
    """Who asked for a write, recorded with its entry. Never a secret: the HTTP bearer token only as an id."""

    client_name: str | None = None
    client_version: str | None = None
    transport: str | None = None
    """``stdio`` or ``http``."""
    http_token_id: str | None = None
    """``sha256:`` and the first 12 hex digits of SHA-256 of the bearer token the request carried (HTTP only)."""


@dataclass(frozen=True)
class NewEntry:
    """An entry as prepared before a write."""

    entry: str
    created_at: datetime
    scenario_id: str
    token_id: str | None
    """The preview token's nonce (what single use is recorded against)."""
    fields: list[str]
    """The get_scenario names of the top-level fields the write sends."""
    changes: list[str]
    """The diff summary: the path of every changed value."""
    before: dict[str, Any]
    body: dict[str, Any]
    expected: dict[str, Any] | None
    """The scenario as the preview expected it after the write."""
    audit: AuditContext = field(default_factory=AuditContext)
    server: str = ""
    """Which server process wrote it (host and pid)."""


@dataclass(frozen=True)
class ImportedEntry:
    """An entry of a JSON Lines journal of an earlier version, finished or not."""

    entry: str
    created_at: datetime
    scenario_id: str
    token_id: str | None
    fields: list[str]
    before: dict[str, Any]
    body: dict[str, Any]
    outcome: Outcome
    finished_at: datetime | None
    after: dict[str, Any] | None
    detail: str


@dataclass(frozen=True)
class EntryRow:
    """An entry as read back. ``before``, ``body``, ``expected`` and ``after`` are None unless read in full."""

    entry: str
    created_at: datetime
    finished_at: datetime | None
    scenario_id: str
    outcome: Outcome
    token_id: str | None
    fields: list[str]
    changes: list[str]
    detail: str
    audit: AuditContext
    server: str
    source: str
    """``server`` (written by a server) or ``import:<path>`` (imported from a JSON Lines journal)."""
    before: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Everything but the scenario versions, as JSON values."""
        return {
            "entry": self.entry,
            "at": iso(self.created_at),
            "finished_at": iso(self.finished_at) if self.finished_at is not None else None,
            "scenario_id": self.scenario_id,
            "outcome": self.outcome,
            "preview_token_id": self.token_id,
            "fields": self.fields,
            "changes": self.changes,
            "detail": self.detail,
            "client_name": self.audit.client_name,
            "client_version": self.audit.client_version,
            "transport": self.audit.transport,
            "http_token_id": self.audit.http_token_id,
            "server": self.server,
            "source": self.source,
        }

    def document(self) -> dict[str, Any]:
        """The whole entry as JSON values (``journal show`` and ``journal export``)."""
        return {
            **self.summary(),
            "before": self.before,
            "body": self.body,
            "expected": self.expected,
            "after": self.after,
        }


@dataclass(frozen=True)
class EntryFilter:
    scenario_id: str | None = None
    since: datetime | None = None
    """Entries created at or after this time."""
    until: datetime | None = None
    """Entries created before this time."""
    limit: int | None = None
    """At most this many, the newest (still listed oldest first)."""


SUMMARY_COLUMNS = (
    "entry, created_at, finished_at, scenario_id, outcome, token_id, fields, changes, detail, client_name, "
    "client_version, transport, http_token_id, server, source"
)
FULL_COLUMNS = SUMMARY_COLUMNS + ", before, body, expected, after"
"""The columns of a listed entry, and of a shown one (the versions too): both backends read rows in this order."""


def used_token_query(mark: str) -> str:
    """The outcomes of writes made with a preview token (``mark``: the driver's parameter placeholder)."""
    return (
        f"SELECT DISTINCT outcome FROM journal_entries WHERE token_id = {mark} AND scenario_id = {mark} "
        "AND outcome <> 'failed'"
    )


def used_outcome(outcomes: Iterable[Any]) -> Outcome | None:
    """What the outcomes of a token's writes say: unknown wins over applied; none means unused."""
    seen = set(outcomes)
    return "unknown" if "unknown" in seen else "applied" if seen else None


def entries_query(
    where: EntryFilter, *, full: bool, mark: str, moment: Callable[[datetime], Any]
) -> tuple[str, list[Any]]:
    """list_entries' SELECT, oldest first (the newest ``limit`` of them when limited), and its parameters.

    ``mark`` is the driver's placeholder; ``moment`` turns a filter time into what the database compares.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("scenario_id = ", where.scenario_id),
        ("created_at >= ", None if where.since is None else moment(where.since)),
        ("created_at < ", None if where.until is None else moment(where.until)),
    ):
        if value is not None:
            clauses.append(clause + mark)
            params.append(value)
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    columns = FULL_COLUMNS if full else SUMMARY_COLUMNS
    query = f"SELECT {columns} FROM journal_entries{condition} ORDER BY created_at, entry"
    if where.limit is not None:
        query = (
            f"SELECT * FROM (SELECT {columns} FROM journal_entries{condition} ORDER BY created_at DESC, entry DESC "
            f"LIMIT {int(where.limit)}) AS newest ORDER BY created_at, entry"
        )
    return query, params


class TokenAlreadyClaimed(Exception):
    """Another entry (not failed) already holds this preview token's nonce."""


class WouldBlock(Exception):
    """A call made on the event loop's thread (``..._now``) would have to wait: make it in a worker thread."""


class SchemaTooNew(Exception):
    """The database was migrated by a newer version of this server."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(f"schema version {found}, newer than this server knows ({known})")
        self.found, self.known = found, known


class JournalStore(ABC):
    """One journal database. Every method may raise the backend's own errors; the service words them."""

    database: DatabaseUrl

    @abstractmethod
    def migrate(self) -> int:
        """Bring the schema to the newest version (safe when several processes start at once); its version."""

    @abstractmethod
    def insert_entry(self, new: NewEntry) -> None:
        """Commit ``new`` with outcome ``unknown``; raises TokenAlreadyClaimed when its nonce is taken."""

    @abstractmethod
    def finish_entry(
        self, entry: str, outcome: Outcome, finished_at: datetime, after: dict[str, Any] | None, detail: str
    ) -> bool:
        """Record the outcome of ``entry``; False when there is no such entry."""

    @abstractmethod
    def used_token(self, scenario_id: str, token_id: str) -> Outcome | None:
        """``applied`` or ``unknown`` when an entry that is not failed holds this nonce, else None."""

    @abstractmethod
    def get_entry(self, entry: str) -> EntryRow | None:
        """One entry in full."""

    @abstractmethod
    def list_entries(self, where: EntryFilter, *, full: bool = False) -> Iterator[EntryRow]:
        """Matching entries, oldest first; streamed, so a large journal is never held in memory whole."""

    @abstractmethod
    def import_entries(
        self, source: str, entries: Iterable[ImportedEntry], skipped: Callable[[], int] = lambda: 0
    ) -> int | None:
        """Import once per ``source``, in one transaction: how many entries, or None when already imported."""

    @abstractmethod
    def try_lock(self, scenario_id: str) -> object | None:
        """The scenario's write lock if it is free (a handle for :meth:`unlock`), else None. Never waits."""

    @abstractmethod
    def unlock(self, handle: object) -> None:
        """Release a lock :meth:`try_lock` returned."""

    def try_lock_unused(self, scenario_id: str, token_id: str | None) -> tuple[object | None, Outcome | None]:
        """:meth:`try_lock`, then (only once the lock is held) :meth:`used_token`: one call, one worker-thread hop.

        ``(None, None)`` when the lock is taken; the lock is released again if the check fails.
        """
        handle = self.try_lock(scenario_id)
        if handle is None or token_id is None:
            return handle, None
        try:
            return handle, self.used_token(scenario_id, token_id)
        except BaseException:
            self.unlock(handle)
            raise

    def try_lock_unused_now(self, scenario_id: str, token_id: str | None) -> tuple[object | None, Outcome | None]:
        """:meth:`try_lock_unused` at once, on the calling (event loop) thread, or :class:`WouldBlock` when it would
        wait for anything: another writer, the network, a sync to disk. Nothing is held after WouldBlock."""
        del scenario_id, token_id  # a store that cannot tell (the default) always goes through a worker thread
        raise WouldBlock

    def finish_and_unlock_now(
        self,
        handle: object,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
    ) -> tuple[bool, bool]:
        """:meth:`finish_and_unlock` at once, or :class:`WouldBlock` (nothing recorded, the lock still held)."""
        del handle, entry, outcome, finished_at, after, detail
        raise WouldBlock

    def finish_and_unlock(
        self,
        handle: object,
        entry: str,
        outcome: Outcome,
        finished_at: datetime,
        after: dict[str, Any] | None,
        detail: str,
    ) -> tuple[bool, bool]:
        """:meth:`finish_entry`, then :meth:`unlock` of ``handle``: one call, one worker-thread hop.

        ``(found, released)``: an outcome recorded whose lock could not be released says so (``released``
        False, the caller releases it again) instead of failing; a failed finish leaves the lock held.
        """
        found = self.finish_entry(entry, outcome, finished_at, after, detail)
        try:
            self.unlock(handle)
        except Exception:
            return found, False
        return found, True

    @abstractmethod
    def close(self) -> None:
        """Close every connection (held locks are released by the database)."""


def iso(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: sorts as text in the order of time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso` (any ISO 8601 form with a zone or ``Z``; naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Connection = TypeVar("Connection")


class Pool(Generic[Connection]):
    """A few idle connections kept for reuse; one borrowed per call, so threads never share one at a time."""

    def __init__(
        self, connect: Callable[[], Connection], close: Callable[[Connection], None], *, max_idle: int = 4
    ) -> None:
        self._connect, self._close, self._max_idle = connect, close, max_idle
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def give(self, connection: Connection, *, healthy: bool = True) -> None:
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        with contextlib.suppress(Exception):
            self._close(connection)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Connection]:
        """A connection for one call; after an error it is closed rather than reused."""
        connection = self.take()
        healthy = False
        try:
            yield connection
            healthy = True
        finally:
            self.give(connection, healthy=healthy)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                self._close(connection)
