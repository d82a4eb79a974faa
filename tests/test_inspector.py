"""Black-box protocol check with a client no one here wrote: the official MCP Inspector CLI.

The Inspector (node 22, both from the npm registry into tools/node by ``make node``; this test runs
that target, a no-op once installed) launches the installed console script over stdio, exactly as an
MCP host does, and every tool is called with valid and invalid arguments. Its output is checked, not
only its exit code: a tool error is an ``isError`` result the host shows the agent.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.common import ROOT, TEST_SECRET

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
NODE_DIR = ROOT / "tools" / "node"
ARCH = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
NODE = NODE_DIR / "node_modules" / f"node-linux-{ARCH}" / "bin" / "node"
INSPECTOR = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        parsed = json.loads(self.stdout)
        assert isinstance(parsed, dict)
        return parsed

    def tool_text(self) -> str:
        return " ".join(block["text"] for block in self.json()["content"] if block["type"] == "text")


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``inspector(*cli_args, server_args=[...])`` runs the Inspector CLI against the console script."""
    made = subprocess.run(["make", "-s", "node"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, f"`make node` failed:\n{made.stdout}\n{made.stderr}"
    assert NODE.is_file() and (INSPECTOR / "index.js").is_file()
    home = tmp_path_factory.mktemp("inspector-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLOOP_", "MCP_"))} | {"HOME": str(home)}

    def run(*args: str, server_args: tuple[str, ...] = ("--emulator",)) -> Run:
        command = [
            str(NODE),
            str(INSPECTOR / "index.js"),
            "--cli",
            "-e",
            f"RUNLOOP_MCP_SECRET={TEST_SECRET}",
            "-e",
            f"RUNLOOP_MCP_JOURNAL={home / 'journal.jsonl'}",
            *args,
            "--",
            str(SCRIPT),
            *server_args,
            "--log-level",
            "WARNING",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        return Run(done.returncode, done.stdout, done.stderr)

    return run


def call(tool: str, **arguments: Any) -> tuple[str, ...]:
    pairs = [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in arguments.items()]
    return ("--method", "tools/call", "--tool-name", tool, *(("--tool-arg", *pairs) if pairs else ()))


def test_tools_list_and_every_tool_valid_and_invalid(inspector: Any) -> None:
    wave = {
        "tools": ("--method", "tools/list"),
        "list": call("list_scenarios", limit=3, max_tokens=1500, include_total_count=True, fields=["id", "name"]),
        "list_unknown_arg": call("list_scenarios", query="retry"),
        "list_bad_limit": call("list_scenarios", limit=0),
        "get_missing": call("get_scenario", scenario_id="scn_does_not_exist"),
        "get_no_id": call("get_scenario"),
        "update_no_token": call("update_scenario", scenario_id="scn_x", changes={"name": "renamed"}, dry_run=False),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(wave, pool.map(lambda args: inspector(*args), wave.values()), strict=True))

    tools = {tool["name"]: tool for tool in runs["tools"].json()["tools"]}
    assert runs["tools"].code == 0
    assert set(tools) == {"list_scenarios", "get_scenario", "update_scenario"}
    for tool in tools.values():
        assert tool["description"] and tool["inputSchema"]["type"] == "object" and "outputSchema" in tool
        for name, prop in tool["inputSchema"]["properties"].items():
            assert prop.get("description"), f"{tool['name']}.{name} has no description"
    assert tools["update_scenario"]["annotations"]["destructiveHint"] is True
    assert tools["list_scenarios"]["annotations"]["readOnlyHint"] is True

    page = runs["list"].json()
    assert runs["list"].code == 0 and page["isError"] is False
    assert page["structuredContent"]["returned"] == 3
    assert page["structuredContent"]["total_count"] > 3
    assert page["structuredContent"]["estimated_tokens"] <= 1500
    assert json.loads(page["content"][0]["text"]) == page["structuredContent"]
    assert all(set(s) == {"id", "name"} for s in page["structuredContent"]["scenarios"])

    expected_errors = {
        "list_unknown_arg": "query: unknown argument",
        "list_bad_limit": "limit: Input should be greater than or equal to 1",
        "get_missing": "404",
        "get_no_id": "scenario_id: missing",
        "update_no_token": "preview_token",
    }
    for name, needle in expected_errors.items():
        run = runs[name]
        result = run.json()
        assert result["isError"] is True, f"{name}: {run.stdout}"
        assert needle in run.tool_text(), f"{name}: {run.tool_text()}"
        assert "Traceback" not in run.stdout + run.stderr and "pydantic.dev" not in run.stdout


def test_read_get_preview_apply_across_processes(inspector: Any) -> None:
    """A dry run in one server process, the apply in another: a shared RUNLOOP_MCP_SECRET makes the token portable."""
    listed = inspector(*call("list_scenarios", limit=1, fields=["id", "name"])).json()
    scenario = listed["structuredContent"]["scenarios"][0]
    changes = {"metadata": {"inspected": "yes"}}
    with ThreadPoolExecutor(max_workers=2) as pool:
        got_run, preview_run = pool.map(
            lambda args: inspector(*args),
            [
                call("get_scenario", scenario_id=scenario["id"], max_tokens=20000),
                call("update_scenario", scenario_id=scenario["id"], changes=changes),
            ],
        )
    got = got_run.json()["structuredContent"]
    assert got["scenario"]["id"] == scenario["id"] and got["scenario"]["name"] == scenario["name"]
    preview = preview_run.json()["structuredContent"]
    assert preview["dry_run"] is True and preview["applied"] is False
    assert preview["diff"] == [{"path": "metadata.inspected", "before": None, "after": "yes"}]

    apply_args = call(
        "update_scenario",
        scenario_id=scenario["id"],
        changes=changes,
        dry_run=False,
        preview_token=preview["preview_token"],
    )
    applied = inspector(*apply_args).json()
    assert applied["isError"] is False, applied
    assert applied["structuredContent"]["applied"] is True
    assert applied["structuredContent"]["verified"] is True  # the API's answer matched the preview
    assert applied["structuredContent"]["diff"] == [{"path": "metadata.inspected", "before": None, "after": "yes"}]
    assert applied["structuredContent"]["journal_entry"]


def test_read_only_server_lists_no_write_tool(inspector: Any) -> None:
    listed = inspector("--method", "tools/list", server_args=("--emulator", "--read-only"))
    assert {tool["name"] for tool in listed.json()["tools"]} == {"list_scenarios", "get_scenario"}
