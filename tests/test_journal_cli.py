"""The database URL at start-up (fail closed, password never shown) and ``journal list|show|export`` filters."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from runloop_scenarios_mcp.cli import build_parser, settings_from
from runloop_scenarios_mcp.config import parse_database_url
from runloop_scenarios_mcp.errors import ConfigurationError, JournalError
from runloop_scenarios_mcp.services.journal import Journal, open_store
from runloop_scenarios_mcp.services.journal.cli import parse_time
from runloop_scenarios_mcp.services.journal.store import NewEntry
from tests.support.common import make_settings
from tests.support.raw_stdio import EXIT_TIMEOUT, SCRIPT

PASSWORD = "hunter2-never-shown"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env={**base, **(env or {})}, timeout=EXIT_TIMEOUT
    )


@pytest.mark.parametrize(
    "url",
    ["mysql://db/x", "sqlite://host/x.db", "sqlite:///:memory:", "postgresql:nohost", f"ftp://u:{PASSWORD}@h/x"],
)
def test_a_bad_database_url_is_one_line_and_exit_code_2(url: str) -> None:
    for args, env in ((["--database-url", url], {}), ([], {"RUNLOOP_MCP_DATABASE_URL": url})):
        result = _run(*args, "--emulator", env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "RUNLOOP_MCP_DATABASE_URL" in result.stderr
        assert PASSWORD not in result.stderr and "Traceback" not in result.stderr


def test_database_urls_and_defaults() -> None:
    assert parse_database_url("sqlite:///var/lib/j.sqlite3").path == Path("/var/lib/j.sqlite3")
    assert parse_database_url("sqlite:////var/lib/j.sqlite3").path == Path("/var/lib/j.sqlite3")
    pg = parse_database_url(f"postgresql://mcp:{PASSWORD}@db:5432/journal")
    assert pg.kind == "postgresql" and pg.shown == "postgresql://mcp:***@db:5432/journal"
    assert PASSWORD not in repr(pg)
    parser = build_parser()
    env = {"XDG_STATE_HOME": "/state"}
    assert settings_from(parser.parse_args([]), env).database.path == Path(
        "/state/runloop-scenarios-mcp/journal.sqlite3"
    )
    practice = settings_from(parser.parse_args(["--emulator"]), env).database.path
    assert practice == Path("/state/runloop-scenarios-mcp/emulator-journal.sqlite3")
    own = settings_from(parser.parse_args(["--journal", "/p/team.jsonl"]), env).database.path
    assert own == Path("/p/team.sqlite3")  # a journal named on its own keeps a database of its own
    flagged = settings_from(parser.parse_args(["--database-url", pg.url]), {"RUNLOOP_MCP_DATABASE_URL": "sqlite:///x"})
    assert flagged.database.kind == "postgresql" and PASSWORD in flagged.secret_values
    assert PASSWORD not in repr(flagged)
    with pytest.raises(ConfigurationError):
        make_settings(Path("/tmp"), database_url=SecretStr("oracle://x"))


def test_an_unreachable_postgresql_refuses_writes_without_showing_its_password() -> None:
    journal = Journal(open_store(f"postgresql://mcp:{PASSWORD}@127.0.0.1:1/journal"))
    with pytest.raises(JournalError) as refused:
        anyio.run(journal.start)
    message = str(refused.value)
    assert "Cannot write the undo journal at postgresql://mcp:***@127.0.0.1:1/journal" in message
    assert "nothing was written to Runloop" in message and PASSWORD not in message
    anyio.run(journal.aclose)


def test_relative_and_absolute_times() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_time("90m", now) == now - timedelta(minutes=90)
    assert parse_time("7d", now) == now - timedelta(days=7)
    assert parse_time("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_time("2026-11-30T10:00:00+02:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday")


def test_list_show_and_export_filter_by_scenario_and_time(database_url: str, tmp_path: Path) -> None:
    store = open_store(database_url)
    store.migrate()
    now = datetime.now(UTC)
    for number, (sid, age) in enumerate([("scn_a", 30), ("scn_b", 3), ("scn_a", 1)]):
        store.insert_entry(
            NewEntry(f"j_20260101T000000Z_{number:08x}", now - timedelta(days=age), sid, f"{number:012x}", ["name"],
                     ["name"], {"id": sid, "name": "before"}, {"name": f"n{number}"}, None)
        )  # fmt: skip
    store.finish_entry("j_20260101T000000Z_00000000", "applied", now, {"id": "scn_a", "name": "n0"}, "")
    store.close()
    env = {"RUNLOOP_MCP_DATABASE_URL": database_url}

    def entries(*args: str) -> list[str]:
        result = _run("journal", "list", *args, env=env)
        assert result.returncode == 0, result.stderr
        return [line.split("\t")[0][-1] for line in result.stdout.splitlines()]

    assert entries() == ["0", "1", "2"]
    assert entries("--scenario", "scn_a") == ["0", "2"]
    assert entries("--since", "7d") == ["1", "2"]
    assert entries("--until", "2d") == ["0", "1"]
    assert entries("--scenario", "scn_a", "--since", "7d") == ["2"]
    assert entries("--limit", "1") == ["2"]
    none = _run("journal", "list", "--scenario", "scn_none", env=env)
    assert none.returncode == 0 and "no entries that match" in none.stderr
    bad = _run("journal", "list", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "not a time" in bad.stderr
    shown = _run("journal", "show", "j_20260101T000000Z_00000000", env=env)
    document = json.loads(shown.stdout)
    assert document["outcome"] == "applied" and document["after"] == {"id": "scn_a", "name": "n0"}
    assert document["before"] == {"id": "scn_a", "name": "before"} and document["preview_token_id"] == "0" * 12
    missing = _run("journal", "show", "j_nope", env=env)
    assert missing.returncode == 2 and "No journal entry 'j_nope'" in missing.stderr
    output = tmp_path / "export.jsonl"
    exported = _run("journal", "export", "--scenario", "scn_a", "--output", str(output), env=env)
    assert exported.returncode == 0 and "Exported 2 journal entries" in exported.stderr
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["entry"][-1] for line in lines] == ["0", "2"] and lines[1]["outcome"] == "unknown"
    assert lines[1]["finished_at"] is None and lines[1]["body"] == {"name": "n2"}
