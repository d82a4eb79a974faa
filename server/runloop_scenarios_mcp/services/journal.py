"""The undo journal: a local JSON Lines file holding the version of each scenario before each write.

Two records per write: ``prepared`` (the previous version and the body, fsync'd before the POST)
and then ``applied``, ``failed`` or ``unknown``. A write that fails leaves no record claiming
success. ``undo_changes`` turns an entry back into the changes that restore the previous version.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import threading
import time
from pathlib import Path
from typing import Any, Literal, TextIO

from runloop_scenarios_mcp.errors import JournalError as JournalError  # (re-exported: services/update/apply.py)
from runloop_scenarios_mcp.services.update.plan import CLEAR_VALUES, make_merge_patch
from runloop_scenarios_mcp.upstream.models import UPDATE_FIELD_NAMES

Outcome = Literal["applied", "failed", "unknown"]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0  # bytes of the file indexed by used_token
        self._token_of: dict[str, str] = {}  # entry -> preview token nonce
        self._used: dict[str, Outcome] = {}  # nonce -> applied | unknown

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn line from a crash: end it first
                        line = "\n" + line
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _unusable(self.path, exc) from None

    def prepare(self, scenario_id: str, before: dict[str, Any], body: dict[str, Any], token_nonce: str) -> str:
        """Record the previous version before writing; returns the entry id."""
        entry = f"j_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{secrets.token_hex(4)}"
        self._append(
            {
                "entry": entry,
                "event": "prepared",
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "scenario_id": scenario_id,
                "token": token_nonce,
                "before": before,
                "body": body,
            }
        )
        return entry

    def finish(self, entry: str, outcome: Outcome, *, after: dict[str, Any] | None = None, detail: str = "") -> None:
        record: dict[str, Any] = {
            "entry": entry,
            "event": outcome,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if after is not None:
            record["after"] = after
        if detail:
            record["detail"] = detail
        self._append(record)

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first; a torn last line (crash mid-write) is skipped."""
        if not self.path.exists():
            return []
        out: list[dict[str, Any]] = []
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    record = _parse(line)
                    if record is not None:
                        out.append(record)
        except OSError as exc:
            raise _unusable(self.path, exc) from None
        return out

    def used_token(self, nonce: str) -> Outcome | None:
        """``"applied"`` or ``"unknown"`` when a write with this preview token happened or may have; else None.

        Reads only what was appended since the last call (by any process), so an apply stays cheap however
        long the journal grows.
        """
        with self._lock:
            try:
                size = self.path.stat().st_size if self.path.exists() else 0
                if size < self._offset:  # truncated or replaced: read it again from the start
                    self._offset, self._token_of, self._used = 0, {}, {}
                data = b""
                if size > self._offset:
                    with self.path.open("rb") as handle:
                        handle.seek(self._offset)
                        data = handle.read(size - self._offset)
            except OSError as exc:
                raise _unusable(self.path, exc) from None
            if data:
                complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
                self._offset += len(complete)
                for line in complete.decode("utf-8", "replace").splitlines():
                    self._index(_parse(line))
            return self._used.get(nonce)

    def _index(self, record: dict[str, Any] | None) -> None:
        if record is None:
            return
        entry, event = record.get("entry"), record.get("event")
        if event == "prepared" and isinstance(record.get("token"), str):
            self._token_of[str(entry)] = record["token"]
        elif event in ("applied", "unknown") and str(entry) in self._token_of:
            nonce = self._token_of[str(entry)]
            if self._used.get(nonce) != "unknown":
                self._used[nonce] = event

    def entries(self) -> list[dict[str, Any]]:
        """One summary per write: entry, time, scenario, outcome, fields changed."""
        by_entry: dict[str, dict[str, Any]] = {}
        for record in self.records():
            entry = record.get("entry")
            if not isinstance(entry, str):
                continue
            if record.get("event") == "prepared":
                by_entry[entry] = {
                    "entry": entry,
                    "at": record.get("at"),
                    "scenario_id": record.get("scenario_id"),
                    "fields": sorted(_read_name(name) for name in record.get("body") or {}),
                    "outcome": "prepared",
                }
            elif entry in by_entry:
                by_entry[entry]["outcome"] = record.get("event")
        return list(by_entry.values())

    def saved_version(self, entry: str) -> dict[str, Any]:
        """``{"scenario_id", "before", "fields", "outcome"}`` of ``entry``: the version it saved before its write.

        ``fields`` are the get_scenario names of the fields that write sent. Raises JournalError for an
        unknown entry.
        """
        records = [r for r in self.records() if r.get("entry") == entry]
        prepared = next((r for r in records if r.get("event") == "prepared"), None)
        if prepared is None or not isinstance(prepared.get("before"), dict):
            raise JournalError(
                f"No journal entry {entry[:80]!r} in this server's journal. Journal entry ids look like "
                "j_20261130T120000Z_1a2b3c4d and are named by each apply result (journal_entry)."
            )
        outcome = next((r for r in reversed(records) if r.get("event") != "prepared"), None)
        return {
            "scenario_id": prepared.get("scenario_id"),
            "before": prepared["before"],
            "fields": [_read_name(name) for name in prepared.get("body") or {}],
            "outcome": (outcome or {}).get("event", "prepared"),
        }

    def undo_command(self, entry: str) -> str:
        """The shell command that prints the changes undoing ``entry`` (what the apply hint tells users to run)."""
        return f"runloop-scenarios-mcp journal undo {entry} --journal {shlex.quote(str(self.path))}"

    def undo_changes(self, entry: str) -> dict[str, Any]:
        """``{"scenario_id", "changes", "outcome", "notes"}``: the changes that restore the version before ``entry``.

        ``changes`` are for update_scenario (a dry run first, as always): for each field the write sent, a merge
        patch from the value written back to the value before. Raises JournalError for an unknown entry or for
        a write that failed (nothing to undo).
        """
        records = [r for r in self.records() if r.get("entry") == entry]
        prepared = next((r for r in records if r.get("event") == "prepared"), None)
        if prepared is None:
            raise JournalError(f"No journal entry {entry!r} in {self.path}; list entries with `journal list`.")
        outcome = next((r for r in reversed(records) if r.get("event") != "prepared"), None)
        event = outcome.get("event") if outcome else "prepared"
        if event == "failed":
            raise JournalError(
                f"Journal entry {entry} records a write that failed: the scenario was not changed, so there is "
                "nothing to undo."
            )
        before: dict[str, Any] = prepared.get("before") or {}
        after: dict[str, Any] = (outcome or {}).get("after") or {}
        changes: dict[str, Any] = {}
        notes: list[str] = []
        if event != "applied":
            notes.append(
                f"The outcome of this write is {'unknown' if event == 'unknown' else 'not recorded'}: the dry run "
                "shows whether the scenario differs from its previous version at all."
            )
        for request_name, sent in (prepared.get("body") or {}).items():
            name = _read_name(request_name)
            written = after.get(name, sent)
            if name not in before:
                if name in CLEAR_VALUES:
                    changes[name] = None  # clears to the API's empty value
                    notes.append(f"{name} was absent before; undo sets it to {json.dumps(CLEAR_VALUES[name])}.")
                else:
                    notes.append(f"{name} was absent before and the Runloop API cannot remove it; it is left as is.")
                continue
            previous = before[name]
            if previous is None and name not in CLEAR_VALUES:
                notes.append(f"{name} was null before and the Runloop API cannot clear it; it is left as is.")
                continue
            if isinstance(previous, dict) and isinstance(written, dict):
                patch = make_merge_patch(written, previous)
                if patch != {}:
                    changes[name] = patch
            elif previous != written:
                changes[name] = previous
        return {"scenario_id": prepared.get("scenario_id"), "changes": changes, "outcome": event, "notes": notes}


def _unusable(path: Path, exc: OSError) -> JournalError:
    return JournalError(
        f"Cannot write the undo journal at {path} ({exc.strerror or type(exc).__name__}), so nothing was written to "
        "Runloop. Set RUNLOOP_MCP_JOURNAL (or --journal) to a writable file."
    )


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _read_name(request_name: str) -> str:
    """The get_scenario name of an update body field (the body says environment_parameters)."""
    return next((read for read, request in UPDATE_FIELD_NAMES.items() if request == request_name), request_name)


def journal_command(action: str, entry: str | None, path: Path, out: TextIO, err: TextIO) -> int:
    """``runloop-scenarios-mcp journal list|undo ENTRY``: exit code 0, 1 (nothing to undo) or 2 (no such entry)."""
    journal = Journal(path)
    if action == "list":
        rows = journal.entries()
        if not rows:
            err.write(f"The undo journal {path} has no entries yet.\n")
        for row in rows:
            out.write(
                f"{row['entry']}\t{row['at']}\t{row['scenario_id']}\t{row['outcome']}\t{','.join(row['fields'])}\n"
            )
        return 0
    try:
        undo = journal.undo_changes(str(entry))
    except JournalError as exc:
        err.write(f"runloop-scenarios-mcp journal: {exc}\n")
        return 2 if "No journal entry" in str(exc) else 1
    for note in undo["notes"]:
        err.write(f"note: {note}\n")
    if not undo["changes"]:
        err.write(f"Nothing to undo: entry {entry} changed nothing that can be restored.\n")
        return 1
    err.write(
        f"To undo {entry}, call update_scenario with these arguments (a dry run), check its diff, then call it again "
        "with dry_run=false and the preview_token it returns:\n"
    )
    arguments = {"scenario_id": undo["scenario_id"], "changes": undo["changes"], "dry_run": True}
    out.write(json.dumps(arguments, ensure_ascii=False, indent=2) + "\n")
    return 0
