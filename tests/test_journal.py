"""The undo journal: written and fsync'd before each write, truthful about outcomes, and undoable.

The undo path is tested end to end: the apply result's hint names the journal entry to pass as
``restore``, and one more guarded update (dry run, then apply) restores the previous version; the
real console script's ``journal undo`` prints the same way back for people.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.journal import Journal
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

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _run(command: str, env_journal: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "runloop-scenarios-mcp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    if env_journal is not None:
        env["RUNLOOP_MCP_JOURNAL"] = str(env_journal)
    return subprocess.run([str(SCRIPT), *argv[1:]], capture_output=True, text=True, env=env, timeout=60, check=False)


async def test_previous_version_is_fsynced_to_the_journal_before_the_post(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal_path = tmp_path / "journal.jsonl"
    events: list[str] = []
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == str(journal_path):
            events.append("fsync")
        real_fsync(fd)

    def network(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            records = _records(journal_path)
            assert records[-1]["event"] == "prepared"
            assert records[-1]["before"] == emulator.get(scenario["id"])
            events.append("POST")
        return emulator.handle(request)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    scenario = active_scenario(emulator, small_scenario)
    server = build_server(make_settings(tmp_path), transport=httpx.MockTransport(network))
    changes = {"metadata": {"reviewer": "ann"}}
    async with Client(server) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, scenario["id"], changes)
        result = await apply_update(session, scenario["id"], changes, preview["preview_token"])
    assert not result.is_error, error_text(result)
    assert events == ["fsync", "POST", "fsync"]
    prepared, applied = _records(journal_path)
    assert prepared["event"] == "prepared" and applied["event"] == "applied"
    assert prepared["entry"] == applied["entry"] == (result.structured_content or {})["journal_entry"]
    assert prepared["before"] == scenario and prepared["body"] == preview["upstream_body"]
    assert applied["after"] == emulator.get(scenario["id"])
    assert oct(journal_path.stat().st_mode & 0o777) == "0o600"


async def test_unwritable_journal_blocks_the_write(mcp: Session, tmp_path: Path, emulator: Emulator) -> None:
    (tmp_path / "journal.jsonl").mkdir()  # the journal path is a directory: appending fails
    sid = active_scenario(emulator, small_scenario)["id"]
    preview = await preview_update(mcp, sid, {"name": "never-written"})
    result = await apply_update(mcp, sid, {"name": "never-written"}, preview["preview_token"])
    assert result.is_error
    message = error_text(result)
    assert "Cannot write the undo journal" in message and "nothing was written" in message
    assert "RUNLOOP_MCP_JOURNAL" in message
    assert emulator.posts() == []


async def test_journal_failing_after_the_write_does_not_deny_the_write(tmp_path: Path, emulator: Emulator) -> None:
    journal_path = tmp_path / "journal.jsonl"

    def network(request: httpx.Request) -> httpx.Response:
        response = emulator.handle(request)
        if request.method == "POST":  # the disk goes away while the API applies the write
            journal_path.rename(tmp_path / "moved.jsonl")
            journal_path.mkdir()
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
    assert [r["event"] for r in _records(tmp_path / "moved.jsonl")] == ["prepared"]
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
    failed = Journal(journal_path)
    failed_entry = failed.prepare(sid, {"id": sid}, {"name": "x"}, "nonce-of-a-failed-write")
    failed.finish(failed_entry, "failed", after={"id": sid})
    with journal_path.open("a", encoding="utf-8") as handle:
        handle.write('{"entry": "j_torn", "event": "prepa')  # a crash mid-append
    listed = _run("runloop-scenarios-mcp journal list", env_journal=journal_path)
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[0] for line in lines] == [entry, failed_entry]
    assert lines[0][2:] == [sid, "applied", "environment,name"]
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


def test_used_token_index_reads_appends_from_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    reader, writer = Journal(path), Journal(path)
    assert reader.used_token("n1") is None
    entry = writer.prepare("scn_1", {"id": "scn_1"}, {"name": "a"}, "n1")
    assert reader.used_token("n1") is None  # prepared only: the write has not happened
    writer.finish(entry, "failed")
    assert reader.used_token("n1") is None
    entry = writer.prepare("scn_1", {"id": "scn_1"}, {"name": "a"}, "n1")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"entry": "' + entry + '", "event": "appl')  # half-written line: not read yet
    assert reader.used_token("n1") is None
    with path.open("a", encoding="utf-8") as handle:
        handle.write('ied"}\n')
    assert reader.used_token("n1") == "applied"
    path.write_text("")  # journal replaced: the index starts over
    assert reader.used_token("n1") is None
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"entry": "j_torn", "ev')  # a crash mid-append; the next append must not be lost
    entry = writer.prepare("scn_1", {"id": "scn_1"}, {"name": "b"}, "n2")
    writer.finish(entry, "applied")
    assert reader.used_token("n2") == "applied"
    assert [r["event"] for r in writer.records()] == ["prepared", "applied"]
