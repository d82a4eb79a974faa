"""The write lock released with the outcome of its apply (one worker-thread hop, in SQLite one transaction).

An apply records its outcome as the last step under the scenario's write lock; ``Journal.finish(...,
release=scenario_id)`` releases the lock in the same hop. On each backend (the ``database_url`` fixture):
another process can take the lock as soon as the outcome is recorded, the ``scenario_lock`` block does not
unlock a second time, and an outcome that could not be recorded leaves the lock to the block's end.
"""

from __future__ import annotations

from typing import Any

import pytest

from runloop_scenarios_mcp.errors import JournalError
from runloop_scenarios_mcp.services.journal import Journal, open_store
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
