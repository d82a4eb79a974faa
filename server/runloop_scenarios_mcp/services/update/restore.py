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
from runloop_scenarios_mcp.services.way_back import changes_back


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
    return changes_back(saved["before"], saved["fields"], current)
