"""Undo through update_scenario: the changes that put back the version a journal entry saved.

The restore is computed against the scenario as it is now, for the fields that entry's write sent,
so it also undoes later edits of those fields (the preview shows them). Fields the Runloop API
cannot put back (absent or null before, and not clearable) are named in warnings, never silently
skipped.
"""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.errors import InvalidChanges
from runloop_scenarios_mcp.services.journal import Journal
from runloop_scenarios_mcp.services.merge_patch import make_merge_patch
from runloop_scenarios_mcp.upstream.models import CLEAR_VALUES


async def restore_changes(journal: Journal, entry: str, current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The changes that make ``current`` hold the fields saved in ``entry`` again, and warnings for the rest."""
    saved = await journal.saved_version(entry)
    if saved["scenario_id"] != current.get("id"):
        raise InvalidChanges(
            f"Journal entry {entry} saved scenario {saved['scenario_id']}, not {current.get('id')}: pass that "
            "scenario_id with this restore, or the entry of this scenario."
        )
    if saved["outcome"] == "failed":
        raise InvalidChanges(
            f"Journal entry {entry} records a write that failed, so the scenario was not changed by it and there is "
            "nothing to restore. Nothing was written."
        )
    before: dict[str, Any] = saved["before"]
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    for name in saved["fields"]:
        now = current.get(name)
        if name not in before or before[name] is None:
            if name in CLEAR_VALUES:
                if now not in (None, CLEAR_VALUES[name]):
                    changes[name] = None  # cleared to the API's empty value
            else:
                warnings.append(
                    f"{name} was {'absent' if name not in before else 'null'} in the saved version and the Runloop "
                    "API cannot remove it, so it cannot be restored and is left as it is."
                )
            continue
        previous = before[name]
        if isinstance(previous, dict) and isinstance(now, dict):
            patch = make_merge_patch(now, previous)
            if patch != {}:
                changes[name] = patch  # a key that was null before comes back absent, which reads the same
        elif previous != now:
            changes[name] = previous
    return changes, warnings
