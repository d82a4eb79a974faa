"""The write lock released with the outcome of its apply (one worker-thread hop, in SQLite one transaction).

An apply records its outcome as the last step under the scenario's write lock; ``Journal.finish(...,
release=scenario_id)`` releases the lock in the same hop. On each backend (the ``database_url`` fixture):
another process can take the lock as soon as the outcome is recorded, the ``scenario_lock`` block does not
unlock a second time, and an outcome that could not be recorded leaves the lock to the block's end.
In SQLite both the lock and that release run on the event loop's thread unless another writer holds the
database, when they go to a worker thread and wait there.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from runloop_scenarios_mcp.errors import JournalError
from runloop_scenarios_mcp.services.journal import Journal, open_store
from runloop_scenarios_mcp.services.journal.store import WouldBlock
from runloop_scenarios_mcp.services.update.plan import plan_update

SCENARIO = {"id": "scn_release", "name": "before", "metadata": {"a": "1"}, "status": "active"}

pytestmark = pytest.mark.anyio


def _counting_unlocks(journal: Journal) -> list[object]:
    unlocked: list[object] = []
    original = journal.store.unlock

    def unlock(handle: object) -> None:
        unlocked.append(handle)
        original(handle)

    journal.store.unlock = unlock  # type: ignore[method-assign]
    return unlocked


async def test_finish_with_release_frees_the_lock_for_other_processes_before_the_block_ends(database_url: str) -> None:
    first, other = Journal(open_store(database_url)), open_store(database_url)
    plan = plan_update(SCENARIO, {"name": "after"})
    try:
        async with first.scenario_lock("scn_release", "aaaaaaaaaaaa") as used:
            assert used is None
            assert other.try_lock("scn_release") is None  # held
            entry = await first.prepare(plan, "aaaaaaaaaaaa")
            unlocked = _counting_unlocks(first)
            await first.finish(entry, "applied", after={**SCENARIO, "name": "after"}, release="scn_release")
            # SQLite: the release is in the outcome's transaction; PostgreSQL: one unlock, in the same hop.
            assert len(unlocked) == (0 if database_url.startswith("sqlite") else 1)
            after_finish = len(unlocked)
            taken = other.try_lock("scn_release")  # free as soon as the outcome is recorded
            assert taken is not None
            other.unlock(taken)
        assert len(unlocked) == after_finish  # the block did not unlock it again
        assert await first.used_token("scn_release", "aaaaaaaaaaaa") == "applied"
        row = (await first.entries())[0]
        assert row.outcome == "applied" and row.finished_at is not None
        async with first.scenario_lock("scn_release"):  # and this process can take it again
            pass
    finally:
        await first.aclose()
        other.close()


async def test_an_outcome_that_cannot_be_recorded_keeps_the_lock_until_the_block_ends(database_url: str) -> None:
    first, other = Journal(open_store(database_url)), open_store(database_url)
    plan = plan_update(SCENARIO, {"name": "after"})

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise OSError("disk I/O error")

    try:
        async with first.scenario_lock("scn_release"):
            entry = await first.prepare(plan, "bbbbbbbbbbbb")
            first.store.finish_entry = broken  # type: ignore[method-assign]
            with pytest.raises(JournalError):
                await first.finish(entry, "applied", after=SCENARIO, release="scn_release")
            assert other.try_lock("scn_release") is None  # still held: the outcome and the release go together
        taken = other.try_lock("scn_release")  # released when the block ended
        assert taken is not None
        other.unlock(taken)
        [row] = await first.entries()
        assert row.outcome == "unknown" and row.finished_at is None
    finally:
        await first.aclose()
        other.close()


async def test_release_of_a_lock_this_task_does_not_hold_only_records_the_outcome(database_url: str) -> None:
    journal, other = Journal(open_store(database_url)), open_store(database_url)
    other.migrate()
    held = other.try_lock("scn_release")
    assert held is not None
    try:
        entry = await journal.prepare(plan_update(SCENARIO, {"name": "x"}), "cccccccccccc")
        await journal.finish(entry, "failed", release="scn_release")
        assert journal.store.try_lock("scn_release") is None  # the other holder's lock is untouched
        assert (await journal.entries())[0].outcome == "failed"
    finally:
        other.unlock(held)
        await journal.aclose()
        other.close()


# --- short writes on the event loop's thread ---------------------------------------------------


def _counting_hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    hops: list[object] = []
    original = anyio.to_thread.run_sync

    async def counting(function: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(function)
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return hops


async def test_taking_the_lock_and_releasing_it_with_the_outcome_need_no_thread_hop_in_sqlite(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(open_store(database_url))
    await journal.start()
    plan = plan_update(SCENARIO, {"name": "after"})
    sqlite = database_url.startswith("sqlite")  # PostgreSQL answers over the network: every call in a worker thread
    hops = _counting_hops(monkeypatch)
    async with journal.scenario_lock("scn_release", "dddddddddddd") as used:
        assert used is None and len(hops) == (0 if sqlite else 1)  # SQLite: taken on this thread
        entry = await journal.prepare(plan, "dddddddddddd")
        assert len(hops) == (1 if sqlite else 2)  # the entry, synced, always in a worker thread
        await journal.finish(entry, "applied", after=SCENARIO, release="scn_release")
    monkeypatch.undo()
    assert len(hops) == (1 if sqlite else 3)
    assert await journal.used_token("scn_release", "dddddddddddd") == "applied"
    async with journal.scenario_lock("scn_release", "dddddddddddd") as used:
        assert used == "applied"  # read in the transaction that takes the lock
    await journal.aclose()


async def test_a_busy_sqlite_database_sends_the_lock_to_a_worker_thread_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.sqlite3"
    journal = Journal(open_store(f"sqlite://{path}"))
    await journal.start()
    store = journal.store
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    with pytest.raises(WouldBlock):
        store.try_lock_unused_now("scn_busy", None)
    ticks = 0
    taken = anyio.Event()

    async def take() -> None:
        async with journal.scenario_lock("scn_busy"):
            taken.set()

    async def tick() -> None:
        nonlocal ticks
        while not taken.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        group.start_soon(take)
        await anyio.sleep(0.3)
        assert not taken.is_set()  # waiting in a worker thread for the writer
        assert ticks >= 10  # while the event loop went on
        writer.execute("ROLLBACK")
    assert taken.is_set()
    held = store.try_lock("scn_busy")  # released again at the block's end
    assert held is not None
    store.unlock(held)
    writer.close()
    await journal.aclose()


def test_a_busy_sqlite_database_refuses_a_finish_now_and_keeps_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    store = open_store(f"sqlite://{path}")
    store.migrate()
    handle, used = store.try_lock_unused_now("scn_busy", "eeeeeeeeeeee")
    assert handle is not None and used is None
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    with pytest.raises(WouldBlock):
        store.finish_and_unlock_now(handle, "j_none", "applied", datetime.now(UTC), None, "")
    writer.execute("ROLLBACK")
    writer.close()
    other = open_store(f"sqlite://{path}")
    assert other.try_lock("scn_busy") is None  # still held
    assert store.finish_and_unlock_now(handle, "j_none", "applied", datetime.now(UTC), None, "") == (False, True)
    taken = other.try_lock("scn_busy")
    assert taken is not None
    other.unlock(taken)
    other.close()
    store.close()
