"""A plan's diff walks only what the merge patch touched (services/update/plan.py ``diff``).

merge_patch shares the parts of a scenario it leaves alone, and ``diff`` skips a value compared with itself,
so a one-field change to a large scenario compares a handful of values, and the entries are the same as a
walk of two separate copies finds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.update import plan as plan_module
from runloop_scenarios_mcp.services.update.plan import diff, plan_update


def _large_active(emulator: Emulator) -> dict[str, Any]:
    active = [s for s in emulator.snapshot().values() if s["status"] == "active"]
    return max(active, key=lambda scenario: len(str(scenario)))


def test_a_one_field_change_compares_only_that_field(monkeypatch: pytest.MonkeyPatch) -> None:
    current = _large_active(Emulator(api_key="rl_diff_key_0123456789"))
    calls = 0
    original = plan_module.diff

    def counting(before: Any, after: Any, path: str = "") -> Any:
        nonlocal calls
        calls += 1
        return original(before, after, path)

    monkeypatch.setattr(plan_module, "diff", counting)
    plan = plan_update(current, {"metadata": {"owner": "team-a"}})
    monkeypatch.undo()
    assert [entry.path for entry in plan.diff] == ["metadata.owner"]
    fields = len(current) + 1  # the top level, each of its fields
    assert calls <= fields + len(current.get("metadata") or {}) + 2, calls


def test_the_entries_are_those_of_a_walk_of_separate_copies() -> None:
    emulator = Emulator(api_key="rl_diff_key_0123456789")
    active = [s for s in emulator.snapshot().values() if s["status"] == "active"][:10]
    for current in active:
        for changes in (
            {"metadata": {"owner": "team-a"}},
            {"name": current["name"] + "-2", "metadata": None},
            {"input_context": {"problem_statement": "new statement"}},
        ):
            plan = plan_update(current, changes)
            assert plan.diff == diff(copy.deepcopy(plan.before), copy.deepcopy(plan.expected))


def test_a_value_compared_with_itself_has_no_differences_even_when_it_holds_nan() -> None:
    value = {"a": [1, {"b": float("nan")}], "c": "text"}
    assert diff(value, value) == []
    assert [entry.path for entry in diff(value, {**value, "c": "other"})] == ["c"]
