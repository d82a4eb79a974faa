"""The journal database on both backends (a SQLite file, a real PostgreSQL): schema, single use, locks, import.

Every test runs on each backend (the ``database_url`` fixture). Stores opened on the same URL stand for
server processes; where it matters (migrations racing at start-up, a lock holder that dies) the other
side is a real process.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from runloop_scenarios_mcp.errors import JournalError, PreviewRefused
from runloop_scenarios_mcp.services.journal import Journal, open_store
from runloop_scenarios_mcp.services.journal.jsonl_import import import_jsonl
from runloop_scenarios_mcp.services.journal.migrations import LATEST
from runloop_scenarios_mcp.services.journal.store import EntryFilter, JournalStore, NewEntry, TokenAlreadyClaimed
from runloop_scenarios_mcp.services.update.plan import plan_update
from tests.support.raw_stdio import SCRIPT

SCENARIO = {"id": "scn_store", "name": "before", "metadata": {"a": "1"}, "status": "active"}


def entry(number: int, *, scenario_id: str = "scn_store", nonce: str = "", at: datetime | None = None) -> NewEntry:
    return NewEntry(
        entry=f"j_20260101T000000Z_{number:08x}",
        created_at=at or datetime.now(UTC),
        scenario_id=scenario_id,
        token_id=nonce or f"{number:012x}",
        fields=["name"],
        changes=["name"],
        before={"id": scenario_id, "name": "before", "n": 1.0},
        body={"name": f"after-{number}"},
        expected={"id": scenario_id, "name": f"after-{number}"},
    )


@pytest.fixture
def store(database_url: str) -> Any:
    opened = open_store(database_url)
    opened.migrate()
    yield opened
    opened.close()


def _schema_rows(url: str) -> list[tuple[Any, ...]]:
    store = open_store(url)
    try:
        if url.startswith("sqlite"):
            import sqlite3

            path = store.database.path
            assert path is not None
            with sqlite3.connect(path) as connection:
                return connection.execute("SELECT version FROM journal_schema ORDER BY version").fetchall()
        import psycopg

        with psycopg.connect(url) as connection:
            return connection.execute("SELECT version FROM journal_schema ORDER BY version").fetchall()
    finally:
        store.close()


# --- schema -----------------------------------------------------------------------------------


def test_migrations_run_once_when_several_processes_start_at_once(database_url: str, tmp_path: Path) -> None:
    """Five real processes open a new database at the same moment: each migration is applied exactly once."""
    env = {"PATH": "/usr/bin:/bin", "RUNLOOP_MCP_DATABASE_URL": database_url, "HOME": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [str(SCRIPT), "journal", "list"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(5)
    ]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "no entries yet" in err and out == ""
    assert _schema_rows(database_url) == [(version,) for version in range(1, LATEST + 1)]
    again = open_store(database_url)
    assert again.migrate() == LATEST  # idempotent
    again.close()


def test_a_database_migrated_by_a_newer_server_refuses_writes_with_a_clear_message(store: JournalStore) -> None:
    if store.database.kind == "sqlite":
        import sqlite3

        assert store.database.path is not None
        with sqlite3.connect(store.database.path) as connection:
            connection.execute("INSERT INTO journal_schema VALUES (99, 'from the future', 'now')")
    else:
        import psycopg

        with psycopg.connect(store.database.url, autocommit=True) as connection:
            connection.execute("INSERT INTO journal_schema (version, name) VALUES (99, 'from the future')")
    journal = Journal(open_store(store.database))
    with pytest.raises(JournalError, match=r"schema version 99.*upgrade this server"):
        anyio.run(journal.start)
    anyio.run(journal.aclose)


# --- entries and single use of a token ------------------------------------------------------------


def test_a_token_is_claimed_once_and_freed_only_by_a_failed_write(store: JournalStore, database_url: str) -> None:
    other = open_store(database_url)  # another process on the same database
    try:
        store.insert_entry(entry(1, nonce="aaaaaaaaaaaa"))
        assert other.used_token("scn_store", "aaaaaaaaaaaa") == "unknown"  # committed, outcome not yet known
        with pytest.raises(TokenAlreadyClaimed):
            other.insert_entry(entry(2, nonce="aaaaaaaaaaaa"))
        assert other.used_token("scn_other", "aaaaaaaaaaaa") is None  # a nonce belongs to its scenario
        store.finish_entry(entry(1).entry, "failed", datetime.now(UTC), None, "UpstreamStatusError")
        assert other.used_token("scn_store", "aaaaaaaaaaaa") is None  # a failed write leaves the token usable
        other.insert_entry(entry(3, nonce="aaaaaaaaaaaa"))
        other.finish_entry(entry(3).entry, "applied", datetime.now(UTC), {"id": "scn_store", "name": "x"}, "")
        assert store.used_token("scn_store", "aaaaaaaaaaaa") == "applied"
        with pytest.raises(TokenAlreadyClaimed):
            store.insert_entry(entry(4, nonce="aaaaaaaaaaaa"))
        full = store.get_entry(entry(3).entry)
        assert full is not None and full.outcome == "applied" and full.after == {"id": "scn_store", "name": "x"}
        assert full.before == {"id": "scn_store", "name": "before", "n": 1.0}
        assert isinstance(full.before["n"], float)  # the JSON as written: 1.0 stays 1.0
        assert store.get_entry("j_nope") is None
        assert store.finish_entry("j_nope", "applied", datetime.now(UTC), None, "") is False
    finally:
        other.close()


def test_concurrent_claims_of_one_token_from_many_threads_let_exactly_one_through(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(4)]
    stores[0].migrate()
    won: list[int] = []
    refused: list[int] = []

    def claim(number: int) -> None:
        try:
            stores[number % 4].insert_entry(entry(100 + number, nonce="bbbbbbbbbbbb"))
            won.append(number)
        except TokenAlreadyClaimed:
            refused.append(number)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert len(won) == 1 and len(refused) == 11


def test_listing_filters_by_scenario_and_time_and_streams_oldest_first(store: JournalStore) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(6):
        store.insert_entry(
            entry(number, scenario_id=f"scn_{number % 2}", at=start + timedelta(hours=number), nonce=f"{number:012x}")
        )
    every = list(store.list_entries(EntryFilter()))
    assert [row.entry for row in every] == [entry(n).entry for n in range(6)]
    assert every[0].before is None  # a listing never reads the scenario versions
    assert [row.entry[-1] for row in store.list_entries(EntryFilter(scenario_id="scn_1"))] == ["1", "3", "5"]
    window = EntryFilter(since=start + timedelta(hours=2), until=start + timedelta(hours=4))
    assert [row.entry[-1] for row in store.list_entries(window)] == ["2", "3"]
    assert [row.entry[-1] for row in store.list_entries(EntryFilter(limit=2))] == ["4", "5"]
    full = list(store.list_entries(EntryFilter(scenario_id="scn_0", limit=1), full=True))
    assert [row.entry[-1] for row in full] == ["4"] and full[0].body == {"name": "after-4"}


# --- the per-scenario write lock --------------------------------------------------------------


def test_the_scenario_lock_excludes_other_processes_for_that_scenario_only(database_url: str) -> None:
    first, second = open_store(database_url), open_store(database_url)
    first.migrate()
    try:
        held = first.try_lock("scn_a")
        assert held is not None
        assert second.try_lock("scn_a") is None
        other = second.try_lock("scn_b")  # other scenarios are not held up
        assert other is not None
        second.unlock(other)
        first.unlock(held)
        taken = second.try_lock("scn_a")
        assert taken is not None
        second.unlock(taken)
    finally:
        first.close()
        second.close()


HOLDER = """
import sys, time
from runloop_scenarios_mcp.services.journal import open_store
store = open_store(sys.argv[1])
store.migrate()
held = store.try_lock("scn_held")  # kept: the lock lives as long as its connection
assert held is not None
print("locked", flush=True)
time.sleep(120)
"""


def test_a_lock_holder_that_dies_does_not_block_the_scenario(database_url: str) -> None:
    """A process killed while it holds a scenario's lock: another takes the lock at once, not after a lease."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, database_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = open_store(database_url)
        assert store.try_lock("scn_held") is None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 5
        handle = None
        while handle is None and time.monotonic() < deadline:
            handle = store.try_lock("scn_held")
            time.sleep(0.05)
        assert handle is not None, "the dead holder's lock was not released"
        store.unlock(handle)
        store.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.anyio
async def test_the_service_lock_serializes_applies_and_a_cancelled_wait_leaves_nothing_held(database_url: str) -> None:
    journals = [Journal(open_store(database_url)) for _ in range(3)]
    inside: list[int] = []
    most = 0

    async def apply(number: int) -> None:
        nonlocal most
        async with journals[number % 3].scenario_lock("scn_serial"):
            inside.append(number)
            most = max(most, len(inside))
            await anyio.sleep(0.01)
            inside.remove(number)

    async with anyio.create_task_group() as group:
        for number in range(9):
            group.start_soon(apply, number)
    assert most == 1
    async with journals[0].scenario_lock("scn_cancel"):
        with anyio.move_on_after(0.2) as waited:
            async with journals[1].scenario_lock("scn_cancel"):
                raise AssertionError("got a lock another journal holds")
        assert waited.cancelled_caught
    async with journals[1].scenario_lock("scn_cancel"):  # free again: nothing was left behind
        pass
    for journal in journals:
        await journal.aclose()


@pytest.mark.anyio
async def test_prepare_refuses_a_claimed_token_as_used(database_url: str) -> None:
    first, second = Journal(open_store(database_url)), Journal(open_store(database_url))
    plan = plan_update(SCENARIO, {"name": "after"})
    entry_id = await first.prepare(plan, "cccccccccccc")
    with pytest.raises(PreviewRefused) as refused:
        await second.prepare(plan, "cccccccccccc")
    assert refused.value.reason == "used" and "already used" in str(refused.value)
    assert await second.used_token("scn_store", "cccccccccccc") == "unknown"
    await first.finish(entry_id, "applied", after={**SCENARIO, "name": "after"})
    assert await second.used_token("scn_store", "cccccccccccc") == "applied"
    assert (await second.saved_version(entry_id))["before"] == SCENARIO
    for journal in (first, second):
        await journal.aclose()


# --- the JSON Lines import ----------------------------------------------------------------------


def test_two_processes_importing_one_file_at_once_import_it_once(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = []
    for number in range(300):
        name = f"j_20260101T000000Z_{number:08x}"
        lines.append({"entry": name, "event": "prepared", "at": "2026-01-01T00:00:00Z", "scenario_id": "scn_i",
                      "token": f"{number:012x}", "before": {"id": "scn_i"}, "body": {"name": str(number)}})  # fmt: skip
        lines.append({"entry": name, "event": "applied", "at": "2026-01-01T00:00:01Z"})
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines), encoding="utf-8")
    stores = [open_store(database_url) for _ in range(2)]
    stores[0].migrate()
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda s=s: reports.append(import_jsonl(s, path))) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is None for r in reports) == [False, True]  # one imported, the other found it done
    rows = list(stores[1].list_entries(EntryFilter()))
    assert len(rows) == 300 and {row.outcome for row in rows} == {"applied"}
    assert import_jsonl(stores[1], path) is None
    for opened in stores:
        opened.close()


def test_sqlite_lock_leases_are_renewed_while_held_and_taken_over_once_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder on another host cannot be seen to die: its lock is free once its lease runs out, not before."""
    import sqlite3

    from runloop_scenarios_mcp.services.journal import sqlite as backend

    monkeypatch.setattr(backend, "LEASE", 0.3)
    monkeypatch.setattr(backend, "RENEW", 0.05)
    url = f"sqlite://{tmp_path / 'leases.sqlite3'}"
    holder, other = open_store(url), open_store(url)
    holder.migrate()
    held = holder.try_lock("scn_lease")
    assert held is not None
    time.sleep(0.8)  # well past one lease: the heartbeat kept renewing it
    assert other.try_lock("scn_lease") is None
    holder.close()  # the heartbeat stops; pretend the holder was on another machine
    with sqlite3.connect(tmp_path / "leases.sqlite3") as connection:
        connection.execute("UPDATE scenario_locks SET host = 'another-host'")
    assert other.try_lock("scn_lease") is None  # its lease still runs
    time.sleep(0.4)
    taken = other.try_lock("scn_lease")
    assert taken is not None
    other.unlock(taken)
    other.close()


def test_an_entry_holding_a_lone_surrogate_from_the_api_is_stored(store: JournalStore, database_url: str) -> None:
    """JSON from the API may spell "\\ud800": SQLite keeps it (as its escape), PostgreSQL's jsonb cannot and keeps
    U+FFFD; either way the apply's journal entry is written instead of refusing the write."""
    lone = "half a pair: \ud800"
    new = dataclasses.replace(entry(1), before={"id": "scn_store", "name": lone, "metadata": {lone: lone}})
    store.insert_entry(new)
    stored = store.get_entry(new.entry)
    assert stored is not None
    kept = lone if database_url.startswith("sqlite") else "half a pair: \ufffd"
    assert stored.before == {"id": "scn_store", "name": kept, "metadata": {kept: kept}}
