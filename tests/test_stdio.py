"""The installed console script as a real subprocess: MCP over stdio, the command line, fail-closed start-up.

What an MCP host does: launch ``runloop-scenarios-mcp``, speak JSON-RPC on its stdin/stdout, read
its logs on stderr. stdout must carry nothing but protocol messages; a bad flag or environment
value must stop the process with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import TextContent

from runloop_scenarios_mcp import __version__
from runloop_scenarios_mcp.cli import build_parser, settings_from
from runloop_scenarios_mcp.emulator.handler import Emulator
from tests.support.common import CANARY_KEY
from tests.support.raw_stdio import EXIT_TIMEOUT, SCRIPT, RawSession, base_env, call, check_json_rpc_lines

TOOLS = {"list_scenarios", "get_scenario", "update_scenario"}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ ")


def first_active_id() -> str:
    """The emulator's data set is deterministic (seed 0), so the subprocess serves the same ids."""
    return next(sid for sid, s in Emulator().snapshot().items() if s.get("status") == "active")


def text_of(content: list[Any]) -> str:
    return " ".join(block.text for block in content if isinstance(block, TextContent))


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


# --- a real MCP session over stdio ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_session_with_the_sdk_client(tmp_path: Path, mode: str) -> None:
    params = StdioServerParameters(command=str(SCRIPT), args=["--emulator"], env=base_env(tmp_path))
    async with Client(params, mode=mode) as client:
        expected_version = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.session.protocol_version == expected_version
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        assert all(tool.input_schema and tool.output_schema for tool in tools.values())

        page = await client.call_tool("list_scenarios", {"limit": 3, "max_tokens": 3000})
        assert not page.is_error, text_of(page.content)
        assert page.structured_content is not None
        assert page.structured_content["returned"] == 3
        ids = [item["id"] for item in page.structured_content["scenarios"]]
        assert ids[0] == first_active_id()

        got = await client.call_tool("get_scenario", {"scenario_id": ids[1], "max_tokens": 20000})
        assert not got.is_error, text_of(got.content)
        assert got.structured_content is not None
        assert got.structured_content["scenario"]["id"] == ids[1]

        missing = await client.call_tool("get_scenario", {"scenario_id": "scn_missing"})
        assert missing.is_error and "404" in text_of(missing.content)


def test_stdout_is_only_json_rpc(tmp_path: Path) -> None:
    """Raw JSON-RPC lines in; every line out parses as a JSON-RPC 2.0 message; logs go to stderr."""
    session = RawSession(["--emulator", "--log-level", "DEBUG"], base_env(tmp_path, RUNLOOP_API_KEY=CANARY_KEY))
    try:
        init = session.handshake(1, client="raw")
        assert init["result"]["serverInfo"]["name"] == "runloop-scenarios-mcp"
        assert init["result"]["protocolVersion"] == "2025-11-25"
        tools = session.request({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert {tool["name"] for tool in tools["result"]["tools"]} == TOOLS
        page = session.request(call(3, "list_scenarios", {}))
        assert page["result"]["structuredContent"]["returned"] > 0
        got = session.request(call(4, "get_scenario", {"scenario_id": first_active_id()}))
        assert got["result"]["structuredContent"]["scenario"]["id"] == first_active_id()
        bad = session.request(call(5, "get_scenario", {}))
        assert bad["result"]["isError"] is True and "scenario_id" in bad["result"]["content"][0]["text"]
        unknown_tool = session.request(call(6, "no_such_tool", {}))
        assert "error" in unknown_tool or unknown_tool["result"]["isError"] is True
        unknown_method = session.request({"jsonrpc": "2.0", "id": 7, "method": "no/such/method"})
        assert unknown_method["error"]["code"] == -32601
        session.send("this line is not JSON")
        refused = session.request(call(8, "update_scenario", {"scenario_id": "..", "changes": {"name": "x"}}))
        assert refused["result"]["isError"] is True
    finally:
        code = session.close()
    assert code == 0, session.stderr.decode(errors="replace")[-2000:]
    check_json_rpc_lines(session.stdout_lines)

    stderr = session.stderr.decode("utf-8")
    log_lines = [line for line in stderr.splitlines() if line]
    assert any("runloop_scenarios_mcp" in line and "stdio" in line for line in log_lines), log_lines[:5]
    assert all(LOG_LINE.match(line) for line in log_lines), [x for x in log_lines if not LOG_LINE.match(x)][:3]
    assert CANARY_KEY not in stderr and all(CANARY_KEY.encode() not in line for line in session.stdout_lines)


# --- the command line -----------------------------------------------------------------------


def run(args: list[str], env: dict[str, str], *, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or [str(SCRIPT)]), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=EXIT_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize(
    "command", [[str(SCRIPT)], [sys.executable, "-m", "runloop_scenarios_mcp"]], ids=["script", "module"]
)
def test_version(tmp_path: Path, command: list[str]) -> None:
    done = run(["--version"], base_env(tmp_path), command=command)
    assert done.returncode == 0
    assert done.stdout == f"runloop-scenarios-mcp {__version__}\n"
    assert done.stderr == ""


def test_help(tmp_path: Path) -> None:
    done = run(["--help"], base_env(tmp_path))
    assert done.returncode == 0 and done.stderr == ""
    for needle in ("--emulator", "--read-only", "--transport", "--timeout", "--max-tokens-cap", "RUNLOOP_API_KEY"):
        assert needle in done.stdout


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--max-tokens-cap", "0"], {}, "--max-tokens-cap"),
        (["--max-tokens-cap", "2000000"], {}, "--max-tokens-cap"),
        (["--max-tokens-cap", "many"], {}, "--max-tokens-cap"),
        (["--default-max-tokens", "100"], {}, "--default-max-tokens"),
        (["--default-max-tokens", "9000", "--max-tokens-cap", "8000"], {}, "--default-max-tokens"),
        (["--timeout", "-1"], {}, "--timeout"),
        (["--timeout", "0"], {}, "--timeout"),
        (["--timeout", "nan"], {}, "--timeout"),
        (["--max-retries", "11"], {}, "--max-retries"),
        (["--port", "0"], {}, "--port"),
        (["--transport", "ftp"], {}, "--transport"),
        (["--log-level", "loud"], {}, "--log-level"),
        (["--bogus"], {}, "--bogus"),
        ([], {"RUNLOOP_BASE_URL": "ftp://x"}, "RUNLOOP_BASE_URL"),
        ([], {"RUNLOOP_BASE_URL": "api.runloop.ai"}, "RUNLOOP_BASE_URL"),
        ([], {"RUNLOOP_MCP_READ_ONLY": "maybe"}, "RUNLOOP_MCP_READ_ONLY"),
        ([], {"RUNLOOP_MCP_SECRET": "short"}, "RUNLOOP_MCP_SECRET"),
        ([], {"RUNLOOP_MCP_LOG_LEVEL": "chatty"}, "log level"),
        (["--transport", "http", "--host", "0.0.0.0"], {}, "RUNLOOP_MCP_HTTP_TOKEN"),
        (["--transport", "http", "--host", "example.com"], {"RUNLOOP_API_KEY": CANARY_KEY}, "RUNLOOP_MCP_HTTP_TOKEN"),
    ],
)
def test_bad_configuration_fails_closed(tmp_path: Path, args: list[str], env: dict[str, str], named: str) -> None:
    done = run(args, base_env(tmp_path, **env))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("runloop-scenarios-mcp: error: ")
    assert named in lines[0]
    assert CANARY_KEY not in done.stderr


def test_a_lower_cap_lowers_the_default_budget() -> None:
    settings = settings_from(build_parser().parse_args(["--max-tokens-cap", "1000"]), {})
    assert (settings.default_max_tokens, settings.max_tokens_cap) == (1000, 1000)
    settings = settings_from(build_parser().parse_args([]), {})
    assert (settings.default_max_tokens, settings.max_tokens_cap) == (4000, 20000)


def test_a_blank_key_counts_as_no_key_and_the_emulator_keeps_its_own_journal() -> None:
    parser = build_parser()
    for blank in ("", "  "):  # what a host passes for an unset ${env:RUNLOOP_API_KEY} or a dismissed prompt
        assert settings_from(parser.parse_args([]), {"RUNLOOP_API_KEY": blank}).api_key is None
    env = {"XDG_STATE_HOME": "/state"}
    real = settings_from(parser.parse_args([]), env).journal_path
    practice = settings_from(parser.parse_args(["--emulator"]), env).journal_path
    assert real == Path("/state/runloop-scenarios-mcp/journal.jsonl")
    assert practice.parent == real.parent and practice != real


@pytest.mark.anyio
@pytest.mark.parametrize("key", [None, ""])
async def test_without_a_key_every_tool_explains_how_to_configure(tmp_path: Path, key: str | None) -> None:
    env = base_env(tmp_path) if key is None else base_env(tmp_path, RUNLOOP_API_KEY=key)
    params = StdioServerParameters(command=str(SCRIPT), args=[], env=env)
    calls: dict[str, dict[str, Any]] = {
        "list_scenarios": {},
        "get_scenario": {"scenario_id": "scn_x"},
        "update_scenario": {"scenario_id": "scn_x", "changes": {"name": "n"}},
    }
    async with Client(params, mode="legacy") as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == set(calls)
        for name, arguments in calls.items():
            result = await client.call_tool(name, arguments)
            assert result.is_error, name
            message = text_of(result.content)
            assert "RUNLOOP_API_KEY" in message and "--emulator" in message, message
