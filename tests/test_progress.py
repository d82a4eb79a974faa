"""Progress while a call waits on upstream retries, and the server's log lines on stderr.

The upstream is the emulator on real loopback HTTP, answering 429 with ``Retry-After: 0.2`` for the
first request; the client passes a progress callback (so its request carries a progress token).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator
from tests.support.common import CANARY_KEY, make_settings
from tests.support.raw_stdio import initialize

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
RATE_LIMITED = Fault(kind="status", status=429, retry_after="0.2")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ \S")
OUR_EVENT = re.compile(r"^\S+ \S+ runloop_scenarios_mcp(\.\w+)+ [a-z_]+( \w+=('[^']*'|\S+))*$")
"""Our own events: ``<time> <level> <module> <event> key=value ...`` (third-party lines are free text)."""

Progress = list[tuple[float, float | None, str | None]]


def _recorder(into: Progress) -> Any:
    async def record(progress: float, total: float | None, message: str | None) -> None:
        into.append((progress, total, message))

    return record


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_reports_progress_while_waiting_on_a_429(
    tmp_path: Path, loopback: LoopbackEmulator, mode: str
) -> None:
    settings = make_settings(tmp_path, base_url=loopback.base_url)
    loopback.faults.queue(RATE_LIMITED)
    seen: Progress = []
    async with Client(build_server(settings), mode=mode) as client:
        result = await client.call_tool("list_scenarios", {"limit": 2}, progress_callback=_recorder(seen))
    assert not result.is_error, result.content
    assert result.structured_content is not None and result.structured_content["returned"] == 2
    assert loopback.faults.injected == [("GET", "/v1/scenarios", "status")]
    assert len(seen) == 1
    progress, total, message = seen[0]
    assert progress == 1 and total is None
    assert message is not None and "HTTP 429" in message and "retry 1 in 0.2 s" in message


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_apply_reports_progress_while_its_post_is_rate_limited(
    tmp_path: Path, loopback: LoopbackEmulator, mode: str
) -> None:
    settings = make_settings(tmp_path, base_url=loopback.base_url)
    async with Client(build_server(settings), mode=mode) as client:
        page = await client.call_tool("list_scenarios", {"limit": 1})
        assert page.structured_content is not None
        scenario_id = page.structured_content["scenarios"][0]["id"]
        changes = {"metadata": {"progress_test": mode}}
        preview = await client.call_tool("update_scenario", {"scenario_id": scenario_id, "changes": changes})
        assert preview.structured_content is not None, preview.content
        loopback.faults.queue(Fault(kind="status", status=429, retry_after="0.2", methods=frozenset({"POST"})))
        seen: Progress = []
        applied = await client.call_tool(
            "update_scenario",
            {
                "scenario_id": scenario_id,
                "changes": changes,
                "dry_run": False,
                "preview_token": preview.structured_content["preview_token"],
            },
            progress_callback=_recorder(seen),
        )
    assert not applied.is_error, applied.content
    assert applied.structured_content is not None and applied.structured_content["applied"] is True
    assert ("POST", f"/v1/scenarios/{scenario_id}", "status") in loopback.faults.injected
    assert [(p, m is not None and "rate limited" in m) for p, _, m in seen] == [(1, True)]
    assert loopback.emulator.get(scenario_id)["metadata"]["progress_test"] == mode  # type: ignore[index]


async def test_no_progress_token_means_no_progress_but_the_same_result(
    tmp_path: Path, loopback: LoopbackEmulator
) -> None:
    settings = make_settings(tmp_path, base_url=loopback.base_url)
    loopback.faults.queue(RATE_LIMITED)
    notifications: list[Any] = []

    async def on_message(message: Any) -> None:
        notifications.append(message)

    async with Client(build_server(settings), mode="legacy", message_handler=on_message) as client:
        result = await client.call_tool("list_scenarios", {"limit": 2})
    assert result.structured_content is not None and result.structured_content["returned"] == 2
    assert loopback.faults.injected, "the 429 was served"
    assert not [m for m in notifications if "progress" in type(getattr(m, "root", m)).__name__.lower()]


async def test_stderr_has_one_structured_line_per_event_and_stdout_only_protocol(
    tmp_path: Path, loopback: LoopbackEmulator
) -> None:
    """A real stdio subprocess at --log-level DEBUG: every stderr line is one event, the key never shows."""
    loopback.faults.queue(RATE_LIMITED)
    errlog = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env |= {"RUNLOOP_API_KEY": CANARY_KEY, "RUNLOOP_BASE_URL": loopback.base_url}
    params = StdioServerParameters(command=str(SCRIPT), args=["--log-level", "debug"], env=env)
    with errlog.open("w") as sink:
        async with Client(stdio_client(params, errlog=sink), mode="legacy") as client:
            await client.call_tool("list_scenarios", {"limit": 1})
            await client.call_tool("get_scenario", {"scenario_id": "scn_missing"})
    lines = errlog.read_text().splitlines()
    assert lines, "no log lines at DEBUG"
    bad = [line for line in lines if not LOG_LINE.match(line)]
    assert not bad, f"not one log record per line: {bad[:3]}"
    ours = [line for line in lines if " runloop_scenarios_mcp." in line]
    bad = [line for line in ours if not OUR_EVENT.match(line)]
    assert not bad, f"not '<event> key=value ...': {bad[:3]}"
    events = [line.split(" ")[3] for line in ours]
    assert "server_start" in events and "upstream_retry" in events and "tool_error" in events
    assert CANARY_KEY not in errlog.read_text()


def test_log_level_flag_filters_and_rejects_unknown_levels(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    stdin = json.dumps(initialize()) + "\n"

    def run(level: str) -> subprocess.CompletedProcess[str]:
        command = [str(SCRIPT), "--emulator", "--log-level", level]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    with ThreadPoolExecutor(max_workers=3) as pool:
        quiet, chatty, wrong = pool.map(run, ["warning", "INFO", "LOUD"])
    for done in (quiet, chatty):
        assert done.returncode == 0, done.stderr
        responses = [json.loads(line) for line in done.stdout.splitlines()]
        assert [r["id"] for r in responses] == [1], "stdout carries exactly the protocol response"
    assert "server_start" not in quiet.stderr
    assert "server_start" in chatty.stderr
    assert wrong.returncode == 2 and "--log-level" in wrong.stderr and wrong.stdout == ""
