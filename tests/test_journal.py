"""The undo journal: committed before each write, truthful about outcomes, and undoable.

The undo path is tested end to end: the apply result's hint names the journal entry to pass as
``restore``, and one more guarded update (dry run, then apply) restores the previous version; the
real console script's ``journal undo`` prints the same way back for people.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.journal import open_store
from runloop_scenarios_mcp.services.journal.sqlite import SqliteStore
from runloop_scenarios_mcp.services.journal.store import NewEntry
from tests.support.common import (
    Session,
    active_scenario,
    apply_update,
    canonical_json,
    error_text,
    make_settings,
    preview_update,
    small_scenario,
)
from tests.support.journal import database_path, journal_entries

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"


def _run(command: str, env_journal: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "runloop-scenarios-mcp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    if env_journal is not None:
        env["RUNLOOP_MCP_JOURNAL"] = str(env_journal)
    return subprocess.run([str(SCRIPT), *argv[1:]], capture_output=True, text=True, env=env, timeout=60, check=False)


async def test_previous_version_is_committed_to_the_journal_before_the_post(tmp_path: Path, emulator: Emulator) -> None:
    events: list[str] = []

    def network(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # read by another connection, as another process would
            rows = journal_entries(tmp_path)
            assert [(row.outcome, row.finished_at) for row in rows] == [("unknown", None)]
            assert rows[0].before == emulator.get(scenario["id"])
            events.append("POST")
        return emulator.handle(request)

    scenario = active_scenario(emulator, small_scenario)
    server = build_server(make_settings(tmp_path), transport=httpx.MockTransport(network))
    changes = {"metadata": {"reviewer": "ann"}}
    async with Client(server) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, scenario["id"], changes)
        result = await apply_update(session, scenario["id"], changes, preview["preview_token"])
    assert not result.is_error, error_text(result)
    assert events == ["POST"]
    [row] = journal_entries(tmp_path)
    assert row.outcome == "applied" and row.finished_at is not None
    assert row.entry == (result.structured_content or {})["journal_entry"]
    assert row.before == scenario and row.body == preview["upstream_body"]
    assert row.after == emulator.get(scenario["id"])
    assert row.changes == ["metadata.reviewer"] and row.fields == ["metadata"]
    assert row.audit.client_name == "mcp" and row.audit.transport == "stdio" and row.audit.http_token_id is None
    assert oct(database_path(tmp_path).stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "journal.jsonl").exists()


async def test_unwritable_journal_blocks_the_write(tmp_path: Path, emulator: Emulator) -> None:
    database_path(tmp_path).mkdir()  # the database path is a directory: SQLite cannot open it
    sid = active_scenario(emulator, small_scenario)["id"]
    async with Client(build_server(make_settings(tmp_path), transport=emulator.transport())) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, sid, {"name": "never-written"})
        result = await apply_update(session, sid, {"name": "never-written"}, preview["preview_token"])
    assert result.is_error
    message = error_text(result)
    assert "Cannot write the undo journal" in message and "nothing was written" in message
    assert "RUNLOOP_MCP_DATABASE_URL" in message
    assert emulator.posts() == []


async def test_a_full_disk_refuses_the_write_and_leaves_no_entry(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own 'database or disk is full' (its page limit reached): the entry is not committed, so no POST."""
    real_write = SqliteStore._write

    @contextlib.contextmanager
    def full_disk(self: SqliteStore, pool: Any = None) -> Iterator[sqlite3.Connection]:
        with real_write(self, pool) as connection:
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
            yield connection
            connection.execute("PRAGMA max_page_count = 1073741823")

    sid = active_scenario(emulator, lambda s: len(json.dumps(s)) > 8000)["id"]  # a big entry needs new pages
    async with Client(build_server(make_settings(tmp_path), transport=emulator.transport())) as client:
        session = Session(client, "modern")
        changes = {"metadata": {"reviewer": "full-disk"}}
        preview = await preview_update(session, sid, changes)
        monkeypatch.setattr(SqliteStore, "_write", full_disk)
        result = await apply_update(session, sid, changes, preview["preview_token"])
        assert result.is_error
        assert "Cannot write the undo journal" in error_text(result) and "full" in error_text(result)
        assert emulator.posts() == []
        monkeypatch.undo()  # room again: the same token still applies (nothing claimed it)
        again = await apply_update(session, sid, changes, preview["preview_token"])
    assert not again.is_error, error_text(again)
    assert [row.outcome for row in journal_entries(tmp_path)] == ["applied"]
    assert len(emulator.posts()) == 1


async def test_journal_failing_after_the_write_does_not_deny_the_write(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def network(request: httpx.Request) -> httpx.Response:
        response = emulator.handle(request)
        if request.method == "POST":  # the database goes away while the API applies the write

            def gone(*args: Any, **kwargs: Any) -> bool:
                raise sqlite3.OperationalError("disk I/O error")

            monkeypatch.setattr(SqliteStore, "finish_entry", gone)
        return response

    sid = active_scenario(emulator, small_scenario)["id"]
    async with Client(build_server(make_settings(tmp_path), transport=httpx.MockTransport(network))) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, sid, {"name": "written-anyway"})
        result = await apply_update(session, sid, {"name": "written-anyway"}, preview["preview_token"])
    assert not result.is_error, error_text(result)
    applied = result.structured_content
    assert applied is not None and applied["applied"] is True
    assert "could not be recorded in the undo journal" in applied["hint"]
    monkeypatch.undo()
    [row] = journal_entries(tmp_path)  # the entry the result names exists, its outcome unknown (never lost)
    assert row.entry == applied["journal_entry"] and row.outcome == "unknown" and row.finished_at is None
    stored = emulator.get(sid)
    assert stored is not None and stored["name"] == "written-anyway"


UNDO_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("metadata", lambda s: len(s["metadata"]) >= 2, {"metadata": {"team": None, "reviewer": "ann"}}),
    (
        "name and list",
        lambda s: bool(s.get("required_environment_variables")),
        {
            "name": "undo-me",
            "required_environment_variables": ["ONLY_ONE"],
        },
    ),
    (
        "environment",
        lambda s: isinstance(s.get("environment"), dict) and len(s["environment"]) >= 2,
        {"environment": {"working_directory": "/undo", "snapshot_id": None}},
    ),
    (
        "input_context",
        lambda s: "additional_context" in s["input_context"],
        {"input_context": {"problem_statement": "replaced", "additional_context": None}},
    ),
    (
        "scoring",
        lambda s: True,
        {
            "scoring_contract": {
                "scoring_function_parameters": [
                    {"name": "only", "scorer": {"type": "command_scorer", "command": "true"}, "weight": 1.0}
                ]
            }
        },
    ),
]


@pytest.mark.parametrize(("label", "predicate", "changes"), UNDO_CASES, ids=[c[0] for c in UNDO_CASES])
async def test_undo_from_the_journal_restores_the_previous_version(
    mcp: Session, tmp_path: Path, emulator: Emulator, label: str, predicate: Any, changes: dict[str, Any]
) -> None:
    scenario = active_scenario(emulator, lambda s: predicate(s) and small_scenario(s))
    sid = scenario["id"]
    preview = await preview_update(mcp, sid, changes)
    result = await apply_update(mcp, sid, changes, preview["preview_token"])
    assert not result.is_error, error_text(result)
    applied = result.structured_content
    assert applied is not None
    assert canonical_json(emulator.get(sid)) != canonical_json(scenario)
    # the hint names the MCP way back: restore=<journal entry>
    entry = applied["journal_entry"]
    assert f'restore="{entry}"' in applied["hint"], applied["hint"]
    # the shell command prints the same way back for people
    printed = _run(
        f"runloop-scenarios-mcp journal undo {entry} --journal {shlex.quote(str(tmp_path / 'journal.jsonl'))}"
    )
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["scenario_id"] == sid
    # one more guarded update through MCP: a restore dry run, then apply with its token
    undo_preview = await mcp.ok("update_scenario", {"scenario_id": sid, "restore": entry})
    assert {d["path"].split(".")[0] for d in undo_preview["diff"]} <= set(changes)
    assert len(emulator.posts()) == 1  # the dry run wrote nothing
    undone = await mcp.client.call_tool(
        "update_scenario",
        {"scenario_id": sid, "restore": entry, "dry_run": False, "preview_token": undo_preview["preview_token"]},
    )
    assert not undone.is_error, error_text(undone)
    assert canonical_json(emulator.get(sid)) == canonical_json(scenario)
    assert len(emulator.posts()) == 2
    # the restore is journaled too, and restoring again finds nothing left to do
    again = await mcp.client.call_tool("update_scenario", {"scenario_id": sid, "restore": entry})
    assert again.is_error and "nothing to restore" in error_text(again)


async def test_journal_list_and_undo_errors(mcp: Session, tmp_path: Path, emulator: Emulator) -> None:
    journal_path = tmp_path / "journal.jsonl"
    empty = _run("runloop-scenarios-mcp journal list", env_journal=journal_path)
    assert empty.returncode == 0 and empty.stdout == "" and "no entries" in empty.stderr
    sid = active_scenario(emulator, small_scenario)["id"]
    preview = await preview_update(mcp, sid, {"name": "listed", "environment": {"working_directory": "/x"}})
    result = await apply_update(
        mcp, sid, {"name": "listed", "environment": {"working_directory": "/x"}}, preview["preview_token"]
    )
    entry = (result.structured_content or {})["journal_entry"]
    # a failed write: the journal says so, and there is nothing to undo
    failed = open_store(f"sqlite://{database_path(tmp_path)}")
    failed_entry = "j_20260101T000000Z_0badf00d"
    failed.insert_entry(
        NewEntry(
            failed_entry, datetime.now(UTC), sid, "0a0b0c0d0e0f", ["name"], ["name"], {"id": sid}, {"name": "x"}, None
        )
    )
    failed.finish_entry(failed_entry, "failed", datetime.now(UTC), {"id": sid}, "UpstreamStatusError")
    failed.close()
    listed = _run("runloop-scenarios-mcp journal list", env_journal=journal_path)
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[0] for line in lines] == [entry, failed_entry]
    assert lines[0][2:5] == [sid, "applied", "environment,name"]
    assert lines[0][5:8] == ["mcp/0.1.0", "stdio", "-"] and len(lines[0][8]) == 12  # client, transport, token ids
    assert lines[1][3] == "failed"
    nothing = _run(f"runloop-scenarios-mcp journal undo {failed_entry}", env_journal=journal_path)
    assert nothing.returncode == 1 and "nothing to undo" in nothing.stderr and nothing.stdout == ""
    missing = _run("runloop-scenarios-mcp journal undo j_nope", env_journal=journal_path)
    assert missing.returncode == 2 and "No journal entry 'j_nope'" in missing.stderr
    # --journal after the subcommand wins over the environment
    flag = _run(f"runloop-scenarios-mcp journal undo {entry} --journal {journal_path}", env_journal=tmp_path / "other")
    assert flag.returncode == 0 and json.loads(flag.stdout)["changes"]["environment"]["working_directory"] is None


async def test_used_token_is_remembered_across_restarts(tmp_path: Path, emulator: Emulator) -> None:
    """A second process with the same secret and journal refuses a token the first one used."""
    sid = active_scenario(emulator, small_scenario)["id"]
    changes = {"metadata": {"reviewer": "restart"}}
    async with Client(build_server(make_settings(tmp_path), transport=emulator.transport())) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, sid, changes)
        assert not (await apply_update(session, sid, changes, preview["preview_token"])).is_error
    current = emulator.get(sid)
    assert current is not None
    emulator.put(dict(current, name="moved-on"))  # so the fingerprint alone cannot tell
    async with Client(build_server(make_settings(tmp_path), transport=emulator.transport())) as client:
        reuse = await apply_update(Session(client, "modern"), sid, changes, preview["preview_token"])
    assert reuse.is_error and "already used" in error_text(reuse)
    assert len(emulator.posts()) == 1


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


async def test_a_json_lines_journal_of_an_earlier_version_is_imported_once_and_left_in_place(
    tmp_path: Path, emulator: Emulator
) -> None:
    """What the old journal.jsonl held becomes entries of the database; nothing lost, the file untouched."""
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    old = tmp_path / "journal.jsonl"
    applied_after = dict(scenario, name="old-name")
    records = [
        {"entry": "j_20260101T000000Z_aaaaaaaa", "event": "prepared", "at": "2026-01-01T00:00:00Z",
         "scenario_id": sid, "token": "a1a1a1a1a1a1", "before": scenario, "body": {"name": "old-name"}},
        {"entry": "j_20260101T000000Z_aaaaaaaa", "event": "applied", "at": "2026-01-01T00:00:01Z",
         "after": applied_after},
        {"entry": "j_20260102T000000Z_bbbbbbbb", "event": "prepared", "at": "2026-01-02T00:00:00Z",
         "scenario_id": sid, "token": "b2b2b2b2b2b2", "before": applied_after, "body": {"name": "x"}},
        {"entry": "j_20260102T000000Z_bbbbbbbb", "event": "failed", "at": "2026-01-02T00:00:01Z",
         "after": applied_after, "detail": "UpstreamStatusError"},
        {"entry": "j_20260103T000000Z_cccccccc", "event": "prepared", "at": "2026-01-03T00:00:00Z",
         "scenario_id": sid, "token": "c3c3c3c3c3c3", "before": applied_after,
         "body": {"metadata": {**scenario["metadata"], "k": "v"}}},
    ]  # fmt: skip
    text = (
        "".join(_line(r) for r in records[:3])
        + '{"entry": "j_torn", "event": "prepa\n'
        + "".join(_line(r) for r in records[3:])
    )
    old.write_text(text, encoding="utf-8")
    for _ in range(2):  # a second start finds the file imported already
        async with Client(build_server(make_settings(tmp_path), transport=emulator.transport())) as client:
            restore = {"scenario_id": sid, "restore": "j_20260101T000000Z_aaaaaaaa"}  # waits for the import
            assert "nothing to restore" in error_text(await client.call_tool("update_scenario", restore))
    assert old.read_text(encoding="utf-8") == text  # left in place, unchanged
    rows = journal_entries(tmp_path)
    assert [(row.entry[-8:], row.outcome) for row in rows] == [
        ("aaaaaaaa", "applied"),
        ("bbbbbbbb", "failed"),
        ("cccccccc", "unknown"),  # no outcome recorded: the write may have happened
    ]
    assert rows[0].before == scenario and rows[0].after == applied_after and rows[0].token_id == "a1a1a1a1a1a1"
    assert rows[1].detail == "UpstreamStatusError" and rows[2].finished_at is None
    assert {row.source for row in rows} == {f"import:{old.resolve()}"}
    # the imported entries work as any other: listed, shown, undone
    listed = _run("runloop-scenarios-mcp journal list", env_journal=old)
    assert [line.split("\t")[3] for line in listed.stdout.splitlines()] == ["applied", "failed", "unknown"]
    undo = _run("runloop-scenarios-mcp journal undo j_20260101T000000Z_aaaaaaaa", env_journal=old)
    assert undo.returncode == 0 and json.loads(undo.stdout)["changes"] == {"name": scenario["name"]}
    with sqlite3.connect(database_path(tmp_path)) as db:
        imports = db.execute("SELECT source, entries, skipped FROM journal_imports").fetchall()
    assert imports == [(f"import:{old.resolve()}", 3, 1)]  # the torn line is counted, not silently dropped
