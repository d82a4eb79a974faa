"""The journal as the services use it: async, never waiting on the event loop, every failure worded for the agent.

:class:`Journal` wraps a :class:`~runloop_scenarios_mcp.services.journal.store.JournalStore`. It migrates
the schema and imports the JSON Lines journal of earlier versions once at start-up (and retries on first
use if the database was not reachable then), runs each database call that may wait (for another writer,
the network, a sync to disk) in a worker thread, and holds the cross-process write lock of a scenario for
an apply. Taking that lock and recording an outcome with its release are first tried on the event loop's
thread where the store can do them without waiting (SQLite: no busy wait, no sync, no checkpoint), saving
a thread hop each; the entry committed before a POST always goes through a worker thread (it syncs).
:func:`undo_changes` turns an entry back into the changes that restore its previous version (``journal undo``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from runloop_scenarios_mcp.config import DEFAULT_WRITE_LOCK_WAIT
from runloop_scenarios_mcp.errors import JournalError, PreviewRefused
from runloop_scenarios_mcp.services.journal.jsonl_import import import_jsonl, read_name
from runloop_scenarios_mcp.services.journal.store import (
    AuditContext,
    EntryFilter,
    EntryRow,
    JournalStore,
    NewEntry,
    Outcome,
    SchemaTooNew,
    TokenAlreadyClaimed,
    WouldBlock,
)
from runloop_scenarios_mcp.services.way_back import changes_back


class _Changed(Protocol):
    path: str


class PlannedWrite(Protocol):
    """What the journal records of a write before it is sent (services/update/plan.py's Plan is one)."""

    scenario_id: str
    before: dict[str, Any]
    expected: dict[str, Any]
    body: dict[str, Any]

    @property
    def diff(self) -> Sequence[_Changed]: ...


logger = logging.getLogger(__name__)

T = TypeVar("T")
SERVER = f"{socket.gethostname()}:{os.getpid()}"

TOKEN_CLAIMED = (
    "This preview_token was already used by another apply (in this or another server process sharing the journal), "
    "so nothing was written. Run a new dry run: it shows the scenario as it is now and gives a new token."
)


def new_entry_id() -> str:
    return f"j_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{secrets.token_hex(4)}"


def unusable(where: str, exc: BaseException) -> JournalError:
    """The error for a database that cannot be used: nothing was written to Runloop, and how to fix it."""
    if isinstance(exc, SchemaTooNew):
        reason = (
            f"it was migrated by a newer runloop-scenarios-mcp (schema version {exc.found}; this one knows up to "
            f"{exc.known}): upgrade this server"
        )
    else:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return JournalError(
        f"Cannot write the undo journal at {where} ({reason}), so nothing was written to Runloop. Set "
        "RUNLOOP_MCP_DATABASE_URL (or --database-url) to a database this server can write."
    )


class Journal:
    """The undo journal and audit trail of one server process, shared with every process on the same database."""

    def __init__(
        self, store: JournalStore, *, import_from: Path | None = None, lock_wait: float = DEFAULT_WRITE_LOCK_WAIT
    ) -> None:
        self.store = store
        self.where = store.database.shown
        self._import_from = import_from
        self._lock_wait = lock_wait
        self._ready = False
        self._starting = anyio.Lock()
        self._background: threading.Thread | None = None
        self._locks: dict[str, object] = {}
        """The database lock handle of each scenario whose lock this process holds (for :meth:`finish`)."""

    def begin(self) -> None:
        """Start migrating and importing now, in a thread: the server answers its client meanwhile."""
        self._background = threading.Thread(target=self._start_in_background, name="journal-start", daemon=True)
        self._background.start()

    def _start_in_background(self) -> None:
        try:
            self._start()
        except JournalError as exc:  # retried on first use, where the apply is refused with this message
            logger.warning("journal_unavailable %s", exc)
        else:
            self._ready = True

    # --- start and calls -----------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate the schema and import the JSON Lines journal once; raises JournalError (retried on next use)."""
        if self._ready:
            return
        async with self._starting:
            if self._background is not None:
                await anyio.to_thread.run_sync(self._background.join)
                self._background = None
            if not self._ready:
                await anyio.to_thread.run_sync(self._start)
                self._ready = True

    def _start(self) -> None:
        try:
            self.store.migrate()
        except Exception as exc:
            raise unusable(self.where, exc) from None
        if self._import_from is not None:
            try:
                import_jsonl(self.store, self._import_from)
            except Exception as exc:  # the database works; the old file stays where it is for the next start
                logger.warning("journal_import_failed path=%s error=%s", self._import_from, type(exc).__name__)

    async def _call(self, function: Callable[[], T]) -> T:
        await self.start()
        try:
            return await anyio.to_thread.run_sync(function)
        except (TokenAlreadyClaimed, JournalError):
            raise
        except Exception as exc:
            raise unusable(self.where, exc) from None

    async def _call_now(self, now: Callable[[], T], later: Callable[[], T]) -> T:
        """``now()`` on this thread when it can run without waiting (a short write to a local file), else
        ``later()`` in a worker thread; the same errors as :meth:`_call`."""
        await self.start()
        try:
            return now()
        except WouldBlock:
            pass
        except (TokenAlreadyClaimed, JournalError):
            raise
        except Exception as exc:
            raise unusable(self.where, exc) from None
        return await self._call(later)

    async def aclose(self) -> None:
        if self._background is not None:  # let a start-up migration or import finish, not cut it
            await anyio.to_thread.run_sync(self._background.join)
        await anyio.to_thread.run_sync(self.store.close)

    # --- what an apply records -----------------------------------------------------------------

    async def used_token(self, scenario_id: str, nonce: str) -> Outcome | None:
        """``"applied"`` or ``"unknown"`` when a write with this preview token happened or may have; else None."""
        return await self._call(partial(self.store.used_token, scenario_id, nonce))

    async def prepare(self, plan: PlannedWrite, nonce: str, audit: AuditContext | None = None) -> str:
        """Commit the entry (previous version, body, who asked) before the write; its id.

        The commit also claims the preview token's nonce, atomically across every process: a token held by
        another entry that did not fail is refused. Raises JournalError when the entry is not surely
        committed: then the POST must not be sent.
        """
        entry = new_entry_id()
        new = NewEntry(
            entry=entry,
            created_at=datetime.now(UTC),
            scenario_id=plan.scenario_id,
            token_id=nonce,
            fields=sorted(read_name(name) for name in plan.body),
            changes=[item.path for item in plan.diff],
            before=plan.before,
            body=plan.body,
            expected=plan.expected,
            audit=audit or AuditContext(),
            server=SERVER,
        )
        try:
            await self._call(partial(self.store.insert_entry, new))
        except TokenAlreadyClaimed:
            raise PreviewRefused("used", TOKEN_CLAIMED) from None
        except JournalError:
            # A commit whose answer was lost may still have landed: mark it failed so it claims nothing.
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(
                        partial(
                            self.store.finish_entry,
                            entry,
                            "failed",
                            datetime.now(UTC),
                            None,
                            "the journal did not confirm this entry, so the write was not sent",
                        )
                    )
                except Exception:
                    logger.debug("journal_prepare_cleanup_failed entry=%s", entry, exc_info=True)
            raise
        return entry

    async def finish(
        self,
        entry: str,
        outcome: Outcome,
        *,
        after: dict[str, Any] | None = None,
        detail: str = "",
        release: str | None = None,
    ) -> None:
        """Record the outcome of ``entry``.

        ``release``: a scenario id whose :meth:`scenario_lock` this task holds and has no more use for; its lock
        is released with the outcome, in the same worker-thread hop (in SQLite, the same transaction), instead
        of in a hop of its own when the ``scenario_lock`` block ends.
        """
        handle = self._locks.get(release) if release is not None else None
        finished_at = datetime.now(UTC)
        with anyio.CancelScope(shield=True):  # the write happened or may have: its outcome is recorded regardless
            if handle is None or release is None:
                found = await self._call(partial(self.store.finish_entry, entry, outcome, finished_at, after, detail))
            else:
                arguments = (handle, entry, outcome, finished_at, after, detail)
                found, released = await self._call_now(
                    partial(self.store.finish_and_unlock_now, *arguments),
                    partial(self.store.finish_and_unlock, *arguments),
                )
                if released and self._locks.get(release) is handle:
                    del self._locks[release]
        if not found:
            raise JournalError(f"journal entry {entry} is missing from {self.where}")

    async def saved_version(self, entry: str) -> dict[str, Any]:
        """``{"scenario_id", "before", "fields", "outcome"}`` of ``entry``: the version it saved before its write.

        ``fields`` are the get_scenario names of the fields that write sent. Raises JournalError for an
        unknown entry.
        """
        row = await self._call(partial(self.store.get_entry, entry)) if _looks_like_entry(entry) else None
        if row is None or not isinstance(row.before, dict):
            raise JournalError(
                f"No journal entry {entry[:80]!r} in this server's journal. Journal entry ids look like "
                "j_20261130T120000Z_1a2b3c4d and are named by each apply result (journal_entry)."
            )
        return {"scenario_id": row.scenario_id, "before": row.before, "fields": row.fields, "outcome": row.outcome}

    async def entries(self, where: EntryFilter | None = None) -> list[EntryRow]:
        return await self._call(lambda: list(self.store.list_entries(where or EntryFilter())))

    # --- the cross-process write lock ------------------------------------------------------------

    @asynccontextmanager
    async def scenario_lock(self, scenario_id: str, nonce: str | None = None) -> AsyncIterator[Outcome | None]:
        """The scenario's write lock in the database: one apply of it at a time across every process.

        Yields :meth:`used_token` of ``nonce`` (None without one), read under the lock in the same worker-thread
        hop that takes it. Polled without holding a connection while waiting (so other scenarios' applies and
        every read go on, and a cancelled wait leaves nothing behind); raises JournalError after the lock wait.
        """
        deadline = time.monotonic() + self._lock_wait
        delay = 0.005
        handle: object | None = None
        used: Outcome | None = None
        try:
            while True:
                with anyio.CancelScope(shield=True):  # a lock taken must reach the finally below
                    handle, used = await self._call_now(
                        partial(self.store.try_lock_unused_now, scenario_id, nonce),
                        partial(self.store.try_lock_unused, scenario_id, nonce),
                    )
                if handle is not None:
                    self._locks[scenario_id] = handle
                    break
                if time.monotonic() >= deadline:
                    raise JournalError(
                        f"Another apply to scenario {scenario_id} has held its write lock for over "
                        f"{self._lock_wait:g} seconds (in this or another server process), so nothing was written. "
                        "Run a new dry run in a moment: it shows the scenario as that apply left it."
                    )
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.1)
            yield used
        finally:
            if handle is not None and self._locks.get(scenario_id) is handle:  # else released by finish()
                del self._locks[scenario_id]
                with anyio.CancelScope(shield=True):
                    try:
                        await anyio.to_thread.run_sync(partial(self.store.unlock, handle))
                    except Exception as exc:  # the lease (SQLite) or the closed connection (PostgreSQL) frees it
                        logger.warning("journal_unlock_failed scenario_id=%s error=%s", scenario_id, type(exc).__name__)


def _looks_like_entry(entry: str) -> bool:
    return entry.startswith("j_") and len(entry) <= 80


def undo_changes(row: EntryRow) -> dict[str, Any]:
    """``{"scenario_id", "changes", "outcome", "notes"}``: the changes that restore the version before ``row``.

    ``changes`` are for update_scenario (a dry run first, as always): for each field the write sent, a merge
    patch from the value written back to the value before. Raises JournalError for a write that failed.
    """
    if row.outcome == "failed":
        raise JournalError(
            f"Journal entry {row.entry} records a write that failed: the scenario was not changed, so there is "
            "nothing to undo."
        )
    after: dict[str, Any] = row.after or {}
    body = row.body or {}
    fields = [read_name(request_name) for request_name in body]
    written = {read_name(name): after.get(read_name(name), sent) for name, sent in body.items()}
    changes, notes = changes_back(row.before or {}, fields, written)
    if row.outcome != "applied":
        notes.insert(
            0,
            "The outcome of this write is unknown: the dry run shows whether the scenario differs from its previous "
            "version at all.",
        )
    return {"scenario_id": row.scenario_id, "changes": changes, "outcome": row.outcome, "notes": notes}
