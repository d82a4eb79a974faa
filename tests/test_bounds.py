"""Bounded in bytes and time: no upstream answer and no tool argument can exhaust the server (issue 15).

The upstream is the loopback emulator on a real socket, injecting what an attacker or a broken network
would send: bodies larger than the byte cap (with and without a Content-Length, compressed), bodies that
never end, bodies that trickle, silence, answers that retrying cannot fix, deep nesting, echoes of the API
key. Every call goes through the MCP client to the real server (``build_server``) and must end in a clear
tool error (or a clean result), after the number of upstream requests the rule says, with the server still
answering afterwards. Time is never asserted: each call runs under a generous hang guard only
(``bench/faults.py`` measures call times and memory).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator
from runloop_scenarios_mcp.errors import MAX_TOOL_MESSAGE
from runloop_scenarios_mcp.upstream import client as upstream_client
from tests.support.campaign import INTERNAL_ERROR, result_text
from tests.support.common import CANARY_KEY, make_settings

pytestmark = pytest.mark.anyio

HANG_GUARD = 60.0
"""Seconds after which a call counts as hung: far above what any call here needs."""
CAP = 1024 * 1024
"""The byte cap these tests run with (1 MiB, the emulator's largest page is well under it)."""


class Server:
    """The MCP server on the loopback emulator, with small limits, and the client talking to it."""

    def __init__(self, client: Client, loopback: LoopbackEmulator) -> None:
        self.client = client
        self.loopback = loopback
        self.progress: list[str] = []

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        async def record(progress: float, total: float | None, message: str | None) -> None:
            self.progress.append(message or "")

        with anyio.fail_after(HANG_GUARD):
            return await self.client.call_tool(tool, arguments, progress_callback=record)

    async def error(self, tool: str, arguments: dict[str, Any]) -> str:
        result = await self.call(tool, arguments)
        text = result_text(result)
        assert result.is_error, f"{tool} succeeded: {text[:300]}"
        assert INTERNAL_ERROR not in text and "Traceback" not in text, text
        assert len(text) <= MAX_TOOL_MESSAGE, len(text)
        assert CANARY_KEY not in text
        return text

    def requests(self) -> int:
        """Upstream requests that reached the emulator (faulted or served)."""
        return len(self.loopback.faults.injected) + sum(1 for r in self.loopback.emulator.requests if r.status == 200)

    async def still_answers(self) -> None:
        self.loopback.faults.clear()
        result = await self.call("list_scenarios", {"limit": 2, "max_tokens": 1000})
        assert not result.is_error, result_text(result)


@pytest.fixture
async def server(tmp_path: Path, emulator: Emulator) -> AsyncIterator[Server]:
    with LoopbackEmulator(emulator) as loopback:
        settings = make_settings(
            tmp_path,
            base_url=loopback.base_url,
            max_retries=3,
            retry_initial_delay=0.01,
            timeout=2.0,
            call_timeout=4.0,
            max_response_bytes=CAP,
        )
        async with Client(build_server(settings), mode="legacy") as client:
            yield Server(client, loopback)


def active_id(emulator: Emulator) -> str:
    return next(sid for sid, s in emulator.snapshot().items() if s.get("status") == "active")


def upstream_requests(server: Server) -> int:
    return len(server.loopback.faults.injected)


# --- bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("huge_body", size=5 * CAP),
        Fault("huge_body", size=5 * CAP, declared=True),
        Fault("endless_body"),
        Fault("gzip_bomb", size=64 * CAP),
    ],
    ids=["huge", "huge-declared", "endless", "gzip-bomb"],
)
async def test_a_body_above_the_cap_is_one_clear_error_not_retried(server: Server, fault: Fault) -> None:
    server.loopback.faults.queue(*[fault] * 5)
    message = await server.error("get_scenario", {"scenario_id": active_id(server.loopback.emulator)})
    assert "too large" in message and "1 MiB" in message and "--max-response-bytes" in message
    assert "not retried" in message
    assert upstream_requests(server) == 1
    await server.still_answers()


async def test_a_page_at_the_cap_is_refused_for_list_too(server: Server) -> None:
    server.loopback.faults.queue(Fault("huge_body", size=2 * CAP))
    message = await server.error("list_scenarios", {"max_tokens": 1000})
    assert "--max-response-bytes" in message and "limit" in message
    await server.still_answers()


# --- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault("trickle_body", delay=0.2), Fault("silent")], ids=["trickle", "silent"])
async def test_an_upstream_that_never_finishes_ends_at_the_call_deadline(
    server: Server, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream_client, "PROGRESS_INTERVAL", 0.5)
    server.loopback.faults.queue(*[fault] * 10)
    message = await server.error("get_scenario", {"scenario_id": active_id(server.loopback.emulator)})
    assert "--call-timeout" in message or "--timeout" in message
    assert "Try again later" in message
    # Retries happen within the one deadline (request timeout 2 s, call deadline 4 s): never all 4 attempts.
    assert 1 <= upstream_requests(server) < 4
    # Progress kept coming while the call waited for an answer that never came.
    assert any("waiting for the answer" in message for message in server.progress), server.progress
    await server.still_answers()


async def test_a_retry_that_cannot_finish_in_time_is_not_waited_for(server: Server) -> None:
    server.loopback.faults.queue(Fault("status", status=503, retry_after="10"))  # the call deadline is 4 s
    message = await server.error("get_scenario", {"scenario_id": active_id(server.loopback.emulator)})
    assert "--call-timeout" in message and "HTTP 503" in message
    assert upstream_requests(server) == 1


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault("not_json"), "not valid JSON"),
        (Fault("no_content"), "empty body"),
        (Fault("html_page", status=500), "HTML error page"),
        (Fault("html_page", status=404), "404"),
    ],
    ids=["200-text", "204", "html-500", "html-404"],
)
async def test_answers_that_retrying_cannot_fix_are_not_retried(server: Server, fault: Fault, words: str) -> None:
    server.loopback.faults.queue(*[fault] * 5)
    message = await server.error("get_scenario", {"scenario_id": active_id(server.loopback.emulator)})
    assert words in message
    assert "<" not in message  # no HTML in the message
    assert upstream_requests(server) == 1


async def test_a_gateway_html_page_is_still_retried(server: Server) -> None:
    server.loopback.faults.queue(Fault("html_page", status=502))
    result = await server.call("get_scenario", {"scenario_id": active_id(server.loopback.emulator)})
    assert not result.is_error, result_text(result)
    assert upstream_requests(server) == 1  # the 502 (the retry was served normally)


# --- depth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 300, 100_000])
async def test_deep_json_from_the_upstream_is_a_clear_error(server: Server, depth: int) -> None:
    server.loopback.faults.queue(Fault("deep_json", size=depth))
    message = await server.error("get_scenario", {"scenario_id": "scn_deep"})
    assert "nested more than 64 levels" in message
    assert upstream_requests(server) == 1
    await server.still_answers()


async def test_json_as_deep_as_allowed_is_read(server: Server) -> None:
    server.loopback.faults.queue(Fault("deep_json", size=60))
    result = await server.call("get_scenario", {"scenario_id": "scn_deep", "max_tokens": 4000})
    assert not result.is_error, result_text(result)


@pytest.mark.parametrize("argument", ["changes", "fields"])
async def test_deep_arguments_are_a_clear_error(server: Server, argument: str) -> None:
    value: Any = "leaf"
    for _ in range(150):
        value = [value] if argument == "fields" else {"a": value}
    tool = "update_scenario" if argument == "changes" else "list_scenarios"
    arguments = {argument: {"metadata": value} if argument == "changes" else value}
    if tool == "update_scenario":
        arguments["scenario_id"] = active_id(server.loopback.emulator)
    message = await server.error(tool, arguments)
    assert f"{argument} is nested more than 64 levels deep" in message
    assert upstream_requests(server) == 0


# --- echoes -----------------------------------------------------------------------------------


async def test_a_huge_field_is_not_echoed_back(server: Server) -> None:
    field = "input_context." + "x" * 10_000_000
    message = await server.error("get_scenario", {"scenario_id": active_id(server.loopback.emulator), "field": field})
    assert "does not exist" in message and "10,000,014 characters" in message
    assert len(message) < 600


async def test_huge_unknown_argument_names_are_not_echoed_back(server: Server) -> None:
    arguments: dict[str, Any] = {"x" * 1_000_000: 1, **{f"extra{i}": i for i in range(100)}}
    message = await server.error("list_scenarios", arguments)
    assert "unknown argument" in message and "more unknown arguments" in message
    assert len(message) < 1000


async def test_a_huge_unknown_tool_name_is_not_echoed_back(server: Server) -> None:
    message = await server.error("y" * 5_000_000, {})
    assert message.startswith('Unknown tool "yyy') and "5,000,000 characters" in message
    assert "list_scenarios, get_scenario, update_scenario" in message
    assert len(message) < 300


async def test_the_api_key_echoed_by_the_upstream_never_reaches_a_result(server: Server) -> None:
    scenario_id = active_id(server.loopback.emulator)
    server.loopback.faults.queue(Fault("echo_key"), Fault("echo_key"), Fault("echo_key"))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_scenarios", {"limit": 3, "fields": ["*"], "max_tokens": 20000}),
        ("get_scenario", {"scenario_id": scenario_id}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"metadata": {"team": "bounds"}}}),
    ]
    for tool, arguments in calls:
        result = await server.call(tool, arguments)
        everything = result_text(result) + json.dumps(result.structured_content)
        assert CANARY_KEY not in everything
        assert "[redacted]" in everything
        if tool == "update_scenario":
            # the echo landed in metadata: writing it back would store the marker in place of the secret
            assert result.is_error and "metadata holds a secret value" in everything, everything
        else:
            assert not result.is_error, result_text(result)
    assert server.loopback.faults.injected and {kind for _, _, kind in server.loopback.faults.injected} == {"echo_key"}


# --- strict argument types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "where"),
    [
        ("list_scenarios", {"limit": "5"}, "limit"),
        ("list_scenarios", {"limit": True}, "limit"),
        ("list_scenarios", {"max_tokens": "4000"}, "max_tokens"),
        ("list_scenarios", {"include_total_count": "yes"}, "include_total_count"),
        ("list_scenarios", {"include_total_count": 1}, "include_total_count"),
        ("get_scenario", {"scenario_id": "scn_x", "offset": "3", "field": "name"}, "offset"),
        ("get_scenario", {"scenario_id": "scn_x", "offset": False, "field": "name"}, "offset"),
        ("update_scenario", {"scenario_id": "scn_x", "changes": {}, "dry_run": "false"}, "dry_run"),
        ("update_scenario", {"scenario_id": "scn_x", "changes": {}, "dry_run": 0}, "dry_run"),
    ],
)
async def test_no_coercion_into_integers_or_booleans(
    server: Server, tool: str, arguments: dict[str, Any], where: str
) -> None:
    message = await server.error(tool, arguments)
    assert message.startswith(f"Invalid arguments for {tool}: {where}:"), message
    assert upstream_requests(server) == 0


async def test_whole_numbers_are_integers(server: Server) -> None:
    result = await server.call("list_scenarios", {"limit": 2.0, "max_tokens": 1000})
    assert not result.is_error, result_text(result)
    assert result.structured_content is not None and result.structured_content["returned"] == 2
    message = await server.error("list_scenarios", {"limit": 2.5})
    assert "limit" in message
