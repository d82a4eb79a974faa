"""``runloop-scenarios-mcp journal list|show|undo|export``: the audit trail and the way back, for people.

Works on either backend (the same database the servers use: ``--database-url`` or RUNLOOP_MCP_DATABASE_URL),
from any process, while servers write to it. Exit codes: 0, 1 (nothing to undo), 2 (no such entry, a bad
argument, or a database that cannot be read).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from runloop_scenarios_mcp.config import DatabaseUrl
from runloop_scenarios_mcp.errors import JournalError
from runloop_scenarios_mcp.services.journal.backends import open_store
from runloop_scenarios_mcp.services.journal.jsonl_import import import_jsonl
from runloop_scenarios_mcp.services.journal.service import undo_changes, unusable
from runloop_scenarios_mcp.services.journal.store import EntryFilter, EntryRow, JournalStore, parse_iso

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or a span back from now: 30m, 12h, 7d, 2w."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        span = timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return (now or datetime.now(UTC)) - span
    try:
        return parse_iso(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use an ISO 8601 date or time (2026-11-30, 2026-11-30T12:00:00Z) or a span back "
            "from now (30m, 12h, 7d)"
        ) from None


@dataclass(frozen=True)
class JournalCommand:
    action: str
    """list, show, undo or export."""
    entry: str | None = None
    scenario_id: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None
    output: Path | None = None


def journal_command(
    command: JournalCommand, database: DatabaseUrl, import_from: Path | None, out: TextIO, err: TextIO
) -> int:
    """Run one ``journal`` subcommand against ``database`` (after importing ``import_from`` once, as servers do)."""
    prog = "runloop-scenarios-mcp journal"
    try:
        where = EntryFilter(
            scenario_id=command.scenario_id,
            since=parse_time(command.since) if command.since else None,
            until=parse_time(command.until) if command.until else None,
            limit=command.limit,
        )
    except ValueError as exc:
        err.write(f"{prog}: error: {exc}\n")
        return 2
    if command.limit is not None and command.limit < 1:
        err.write(f"{prog}: error: --limit must be at least 1\n")
        return 2
    store = open_store(database)
    try:
        try:
            store.migrate()
            if import_from is not None:
                import_jsonl(store, import_from)
            if command.action == "list":
                return _list(store, where, database, out, err)
            if command.action == "export":
                return _export(store, where, command.output, out, err)
            row = store.get_entry(str(command.entry))
        except Exception as exc:
            err.write(f"{prog}: {_reading_error(database, exc)}\n")
            return 2
        if row is None:
            err.write(
                f"{prog}: No journal entry {str(command.entry)[:80]!r} in {database.shown}; list entries with "
                "`journal list`.\n"
            )
            return 2
        if command.action == "show":
            out.write(json.dumps(row.document(), ensure_ascii=False, indent=2) + "\n")
            return 0
        return _undo(row, out, err)
    finally:
        store.close()


def _reading_error(database: DatabaseUrl, exc: Exception) -> str:
    message = str(unusable(database.shown, exc))
    return message.replace("Cannot write the undo journal", "Cannot read the undo journal").split(", so nothing")[0] + (
        ". Pass --database-url (or set RUNLOOP_MCP_DATABASE_URL) to the database the servers use."
    )


def _cell(value: str | None) -> str:
    return "-" if not value else value.replace("\t", " ").replace("\n", " ")


def list_line(row: EntryRow) -> str:
    """entry, time, scenario, outcome, fields, client, transport, HTTP token id, preview token id (tab-separated)."""
    client = row.audit.client_name
    if client and row.audit.client_version:
        client = f"{client}/{row.audit.client_version}"
    cells = [
        row.entry,
        row.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        row.scenario_id,
        row.outcome,
        ",".join(row.fields),
        client,
        row.audit.transport,
        row.audit.http_token_id,
        row.token_id,
    ]
    return "\t".join(_cell(cell) for cell in cells)


def _list(store: JournalStore, where: EntryFilter, database: DatabaseUrl, out: TextIO, err: TextIO) -> int:
    count = 0
    for row in store.list_entries(where):
        out.write(list_line(row) + "\n")
        count += 1
    if not count:
        narrowed = where != EntryFilter()
        err.write(f"The undo journal {database.shown} has no entries{' that match' if narrowed else ' yet'}.\n")
    return 0


def _export(store: JournalStore, where: EntryFilter, output: Path | None, out: TextIO, err: TextIO) -> int:
    count = 0
    handle = output.open("w", encoding="utf-8") if output is not None else out
    try:
        for row in store.list_entries(where, full=True):
            handle.write(json.dumps(row.document(), ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    finally:
        if output is not None:
            handle.close()
    if output is not None:
        err.write(f"Exported {count} journal entries to {output}.\n")
    return 0


def _undo(row: EntryRow, out: TextIO, err: TextIO) -> int:
    try:
        undo = undo_changes(row)
    except JournalError as exc:
        err.write(f"runloop-scenarios-mcp journal: {exc}\n")
        return 1
    for note in undo["notes"]:
        err.write(f"note: {note}\n")
    if not undo["changes"]:
        err.write(f"Nothing to undo: entry {row.entry} changed nothing that can be restored.\n")
        return 1
    err.write(
        f"To undo {row.entry}, call update_scenario with these arguments (a dry run), check its diff, then call it "
        "again with dry_run=false and the preview_token it returns:\n"
    )
    arguments = {"scenario_id": undo["scenario_id"], "changes": undo["changes"], "dry_run": True}
    out.write(json.dumps(arguments, ensure_ascii=False, indent=2) + "\n")
    return 0
