"""The way back to a saved version, shared by restore (against the scenario as it is now) and by
``journal undo`` (against the value the write left): one merge patch per field, and what cannot go back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runloop_scenarios_mcp.services.merge_patch import make_merge_patch
from runloop_scenarios_mcp.upstream.models import CLEAR_VALUES


def changes_back(saved: dict[str, Any], fields: Iterable[str], now: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The update_scenario changes that make ``now`` hold ``saved``'s value of each of ``fields`` again, and a
    note for each field the Runloop API cannot put back (absent or null in ``saved``, and not clearable)."""
    changes: dict[str, Any] = {}
    notes: list[str] = []
    for name in fields:
        current = now.get(name)
        if name not in saved or saved[name] is None:
            if name in CLEAR_VALUES:
                if current not in (None, CLEAR_VALUES[name]):
                    changes[name] = None  # cleared to the API's empty value
            else:
                notes.append(
                    f"{name} was {'absent' if name not in saved else 'null'} in the saved version and the Runloop "
                    "API cannot remove it, so it cannot be restored and is left as it is."
                )
            continue
        previous = saved[name]
        if isinstance(previous, dict) and isinstance(current, dict):
            patch = make_merge_patch(current, previous)
            if patch != {}:
                changes[name] = patch  # a key that was null before comes back absent, which reads the same
        elif previous != current:
            changes[name] = previous
    return changes, notes
