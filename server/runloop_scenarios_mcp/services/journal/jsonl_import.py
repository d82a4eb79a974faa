"""The one-time import of a JSON Lines journal (what versions before the database wrote) into the database.

The file is read twice, streamed, and never held in memory: the first pass notes where the last outcome
record of each entry starts, the second pairs each ``prepared`` record with that outcome and hands the
entries to the store, which imports them in one transaction, once per file (by its absolute path), also
when several processes start at once. The file is left in place. A ``prepared`` record with no outcome
is imported as ``unknown`` (the write may have happened). Lines that are not JSON records (a line torn by
a crash) and outcomes with no ``prepared`` record cannot be imported; they are counted and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runloop_scenarios_mcp.services.journal.store import OUTCOMES, ImportedEntry, JournalStore, Outcome, parse_iso
from runloop_scenarios_mcp.upstream.models import UPDATE_FIELD_NAMES

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    source: str
    entries: int
    skipped: int


def read_name(request_name: str) -> str:
    """The get_scenario name of an update body field (the body says environment_parameters)."""
    return next((read for read, request in UPDATE_FIELD_NAMES.items() if request == request_name), request_name)


def import_jsonl(store: JournalStore, path: Path) -> ImportReport | None:
    """Import ``path`` into ``store`` unless it was imported before; None when there was nothing to do."""
    if not path.is_file():
        return None
    source = f"import:{path.resolve()}"
    reader = _Reader(path)
    count = store.import_entries(source, reader.entries(), lambda: reader.skipped)
    if count is None:
        return None
    report = ImportReport(source, count, reader.skipped)
    logger.info("journal_imported path=%s entries=%d skipped_lines=%d", path, count, reader.skipped)
    if reader.skipped:
        logger.warning(
            "journal_import_skipped path=%s lines=%d (torn lines, or outcomes without their prepared record; the "
            "file is left in place)",
            path,
            reader.skipped,
        )
    return report


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0

    def entries(self) -> Iterator[ImportedEntry]:
        outcome_at: dict[str, int] = {}  # entry -> offset of its last outcome record
        prepared: set[str] = set()
        with self.path.open("rb") as handle:
            offset = 0
            for line in handle:
                start, offset = offset, offset + len(line)
                if b'"event":"prepared"' in line[:160]:  # written by the old journal: parsed in the second pass
                    continue
                record = _parse(line)
                if record is None:
                    self.skipped += bool(line.strip())
                elif record.get("event") in OUTCOMES and isinstance(record.get("entry"), str):
                    outcome_at[record["entry"]] = start
                elif record.get("event") != "prepared":
                    self.skipped += 1
        with self.path.open("rb") as handle, self.path.open("rb") as outcomes:
            for line in handle:
                if b'"event":"prepared"' not in line[:160] and b'"prepared"' not in line:
                    continue
                record = _parse(line)
                if record is None or record.get("event") != "prepared":
                    continue
                entry, before = record.get("entry"), record.get("before")
                if not isinstance(entry, str) or not isinstance(before, dict) or entry in prepared:
                    self.skipped += 1
                    continue
                prepared.add(entry)
                outcome: dict[str, Any] | None = None
                if entry in outcome_at:
                    outcomes.seek(outcome_at[entry])
                    outcome = _parse(outcomes.readline())
                yield _entry(entry, record, before, outcome)
        self.skipped += len(set(outcome_at) - prepared)


def _entry(
    entry: str, prepared: dict[str, Any], before: dict[str, Any], outcome: dict[str, Any] | None
) -> ImportedEntry:
    body = prepared.get("body") if isinstance(prepared.get("body"), dict) else {}
    assert isinstance(body, dict)
    event: Outcome = outcome["event"] if outcome is not None else "unknown"
    after = outcome.get("after") if outcome is not None else None
    detail = str(outcome.get("detail") or "") if outcome is not None else "imported: no outcome was recorded"
    return ImportedEntry(
        entry=entry,
        created_at=_time(prepared.get("at")),
        scenario_id=str(prepared.get("scenario_id") or before.get("id") or ""),
        token_id=prepared.get("token") if isinstance(prepared.get("token"), str) else None,
        fields=sorted(read_name(name) for name in body),
        before=before,
        body=body,
        outcome=event,
        finished_at=_time(outcome.get("at")) if outcome is not None else None,
        after=after if isinstance(after, dict) else None,
        detail=detail,
    )


def _time(value: Any) -> datetime:
    try:
        return parse_iso(str(value))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
