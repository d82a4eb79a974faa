"""The undo journal: a local JSON Lines file holding the version of each scenario before each write.

Two records per write: ``prepared`` (the previous version and the body, fsync'd before the POST)
and then ``applied``, ``failed`` or ``unknown``. A write that fails leaves no record claiming
success. ``undo_changes`` turns an entry back into the changes that restore the previous version.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Literal

from .errors import RunloopMcpError
from .preview import make_merge_patch

Outcome = Literal["applied", "failed", "unknown"]


class JournalError(RunloopMcpError):
    """The journal cannot be written or read."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise JournalError(
                f"Cannot write the undo journal at {self.path} ({exc.strerror or type(exc).__name__}), so nothing was "
                "written to Runloop. Set RUNLOOP_MCP_JOURNAL (or --journal) to a writable file."
            ) from None

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
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out.append(record)
        return out

    def used_token(self, nonce: str) -> bool:
        """True when a write with this preview token was applied (or may have been)."""
        records = self.records()
        entries = {r["entry"] for r in records if r.get("event") == "prepared" and r.get("token") == nonce}
        return any(r.get("entry") in entries and r.get("event") in ("applied", "unknown") for r in records)

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
                    "fields": sorted(record.get("body") or {}),
                    "outcome": "prepared",
                }
            elif entry in by_entry:
                by_entry[entry]["outcome"] = record.get("event")
        return list(by_entry.values())

    def undo_changes(self, entry: str) -> dict[str, Any]:
        """``{"scenario_id", "changes"}`` that restore the version recorded before ``entry``'s write."""
        prepared = next((r for r in self.records() if r.get("entry") == entry and r.get("event") == "prepared"), None)
        if prepared is None:
            raise JournalError(f"No journal entry {entry!r} in {self.path}; list entries with `journal list`.")
        outcome = next((r for r in self.records() if r.get("entry") == entry and r.get("event") != "prepared"), None)
        before: dict[str, Any] = prepared["before"]
        after: dict[str, Any] = (outcome or {}).get("after") or {}
        changes: dict[str, Any] = {}
        for request_name in prepared.get("body") or {}:
            field = "environment" if request_name == "environment_parameters" else request_name
            if after and field in after:
                patch = make_merge_patch(after[field], before.get(field))
                if patch != {}:
                    changes[field] = patch if field in after and isinstance(patch, dict) else before.get(field)
            else:
                changes[field] = before.get(field)
        return {"scenario_id": prepared["scenario_id"], "changes": changes}
