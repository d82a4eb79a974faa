"""Reading the journal database a test's server wrote, from outside (the store, never the server's objects).

``make_settings(tmp_path)`` puts the database at ``tmp_path/journal.sqlite3`` (beside the JSON Lines path it
names, as the default does). ``journal_events`` gives the entries in the record shape of the JSON Lines
journal of earlier versions (``prepared``, then the outcome once finished), for tests written against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runloop_scenarios_mcp.services.journal import EntryFilter, EntryRow, open_store


def database_path(directory: Path) -> Path:
    return directory / "journal.sqlite3"


def journal_entries(directory_or_url: Path | str, where: EntryFilter | None = None) -> list[EntryRow]:
    """Every entry in full, oldest first; none when the database does not exist yet."""
    if isinstance(directory_or_url, Path):
        if not database_path(directory_or_url).exists():
            return []
        url = f"sqlite://{database_path(directory_or_url)}"
    else:
        url = directory_or_url
    store = open_store(url)
    try:
        return list(store.list_entries(where or EntryFilter(), full=True))
    finally:
        store.close()


def journal_events(directory: Path) -> list[dict[str, Any]]:
    """The entries as ``prepared`` records, each followed by its outcome record once the write finished."""
    events: list[dict[str, Any]] = []
    for row in journal_entries(directory):
        events.append(
            {
                "entry": row.entry,
                "event": "prepared",
                "scenario_id": row.scenario_id,
                "token": row.token_id,
                "before": row.before,
                "body": row.body,
            }
        )
        if row.finished_at is not None:
            events.append({"entry": row.entry, "event": row.outcome, "after": row.after, "detail": row.detail})
    return events
