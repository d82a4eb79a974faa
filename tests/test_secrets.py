"""The API key never leaves the process: not in a tool result, an error, a log line, or a repr.

Faulty sessions call every tool (with good and invalid arguments) while the upstream fails at
random, once as a real stdio subprocess logging at DEBUG (every stdout and stderr byte is
searched) and once in memory in both protocol modes (every result and every log record is
searched, before any redaction). A hostile upstream that reflects the Authorization header in its
error bodies must not get the key through either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import Fault, FaultPlan, LoopbackEmulator
from runloop_scenarios_mcp.upstream.client import RunloopClient
from tests.support.common import CANARY_KEY, TEST_SECRET, make_settings
from tests.support.raw_stdio import RawSession, base_env, call, check_json_rpc_lines

HTTP_TOKEN = "http_token_canary_5b8d1e"


def random_faults(plan: FaultPlan, rate: float) -> None:
    """Every kind of fault, at random; waits stay short (Retry-After in ms, small delays)."""
    plan.random(
        rate,
        [
            Fault("status", status=429, retry_after_ms="20"),
            Fault("status", status=500, retry_after_ms="20"),
            Fault("status", status=502, retry_after="0.02"),
            Fault("status", status=503, should_retry=False),
            Fault("status", status=401),
            Fault("status", status=404),
            Fault("malformed_json"),
            Fault("html_error"),
            Fault("empty_body"),
            Fault("truncated_body"),
            Fault("drop_connection"),
            Fault("latency", delay=0.05),
            Fault("slow_body", delay=0.01),
        ],
    )


def tool_calls(scenario_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every tool, with valid and invalid arguments."""
    return [
        ("list_scenarios", {}),
        ("list_scenarios", {"fields": ["*"], "limit": 3, "include_total_count": True}),
        ("list_scenarios", {"search": "a", "max_tokens": 600}),
        ("list_scenarios", {"cursor": "not-a-cursor"}),
        ("list_scenarios", {"max_tokens": 10}),
        ("list_scenarios", {"fields": ["no_such_field"]}),
        ("list_scenarios", {"unknown_argument": CANARY_KEY[:6]}),
        ("get_scenario", {"scenario_id": scenario_id}),
        ("get_scenario", {"scenario_id": scenario_id, "field": "input_context.problem_statement", "offset": 5}),
        ("get_scenario", {"scenario_id": "scn_does_not_exist"}),
        ("get_scenario", {"scenario_id": ".."}),
        ("get_scenario", {}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"metadata": {"owner": "secrets-test"}}}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"id": "scn_other"}}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"name": "x"}, "dry_run": False}),
        (
            "update_scenario",
            {"scenario_id": scenario_id, "changes": {"name": "x"}, "dry_run": False, "preview_token": "forged"},
        ),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {}}),
    ]


def active_id(emulator: Emulator) -> str:
    return next(sid for sid, s in emulator.snapshot().items() if s.get("status") == "active")


def assert_clean(text: str, where: str) -> None:
    for secret in (CANARY_KEY, TEST_SECRET, HTTP_TOKEN):
        assert secret not in text, f"a secret appeared in {where}"


# --- a real subprocess, every byte ------------------------------------------------------------


def test_faulty_stdio_session_never_shows_the_key(tmp_path: Path, loopback: LoopbackEmulator) -> None:
    random_faults(loopback.faults, 0.35)
    env = base_env(
        tmp_path,
        RUNLOOP_API_KEY=CANARY_KEY,
        RUNLOOP_BASE_URL=loopback.base_url,
        RUNLOOP_MCP_SECRET=TEST_SECRET,
        RUNLOOP_MCP_HTTP_TOKEN=HTTP_TOKEN,
    )
    session = RawSession(["--log-level", "DEBUG", "--max-retries", "1", "--timeout", "2"], env)
    try:
        session.handshake()
        session.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        outcomes: list[bool] = []
        sid = active_id(loopback.emulator)
        for number, (tool, arguments) in enumerate(tool_calls(sid), start=2):
            response = session.request(call(number, tool, arguments))
            outcomes.append(bool(response.get("result", {}).get("isError")))
        preview = session.request(call(99, "update_scenario", {"scenario_id": sid, "changes": {"name": "renamed"}}))
        token = (preview.get("result", {}).get("structuredContent") or {}).get("preview_token")
        if token:
            apply = {"scenario_id": sid, "changes": {"name": "renamed"}, "dry_run": False, "preview_token": token}
            session.request(call(100, "update_scenario", apply))
    finally:
        code = session.close()
    assert code == 0
    check_json_rpc_lines(session.stdout_lines)
    stdout = b"".join(session.stdout_lines)
    assert (
        CANARY_KEY.encode() not in stdout and TEST_SECRET.encode() not in stdout and HTTP_TOKEN.encode() not in stdout
    )
    assert CANARY_KEY.encode() not in session.stderr and TEST_SECRET.encode() not in session.stderr
    assert HTTP_TOKEN.encode() not in session.stderr
    # The session really was faulty, really reached upstream with the key, and really logged at DEBUG.
    assert loopback.faults.injected, "no fault was injected"
    assert any(r.authorized for r in loopback.emulator.requests), "the key never reached the emulator"
    assert b" DEBUG " in session.stderr and b"upstream" in session.stderr
    assert any(outcomes) and not all(outcomes)


# --- in memory, both protocol modes, every result and log record --------------------------------


@pytest.fixture(params=["legacy", "auto"])
async def faulty_client(
    request: pytest.FixtureRequest, tmp_path: Path, loopback: LoopbackEmulator
) -> AsyncIterator[Client]:
    random_faults(loopback.faults, 0.35)
    settings = make_settings(
        tmp_path, base_url=loopback.base_url, max_retries=1, timeout=2.0, log_level="DEBUG", retry_initial_delay=0.01
    )
    async with Client(build_server(settings), mode=request.param) as client:
        yield client


def everything_in(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False)


@pytest.mark.anyio
async def test_faulty_in_memory_session_never_shows_the_key(
    faulty_client: Client, loopback: LoopbackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sid = active_id(loopback.emulator)
    results = [await faulty_client.call_tool(tool, arguments) for tool, arguments in tool_calls(sid)]
    for (tool, _), result in zip(tool_calls(sid), results, strict=True):
        assert_clean(everything_in(result), f"the result of {tool}")
    assert any(r.is_error for r in results) and not all(r.is_error for r in results)
    assert loopback.faults.injected
    # Raw records, before the redacting formatter: the key must not even be handed to the logger.
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")
        if record.exc_info:
            assert_clean(logging.Formatter().formatException(record.exc_info), f"traceback in {record.name}")
    assert any(record.levelno == logging.DEBUG for record in caplog.records)


# --- a hostile upstream that reflects the request headers ----------------------------------------


def reflecting_upstream(request: httpx.Request) -> httpx.Response:
    """Every answer echoes the Authorization header back, in a different place and shape."""
    auth = request.headers.get("authorization", "")
    kind = int(request.url.params.get("limit", "0") or 0) % 7 if request.url.path == "/v1/scenarios" else 7
    if request.method == "POST":
        kind = 8
    bodies: dict[int, httpx.Response] = {
        0: httpx.Response(400, json={"message": f"bad request with header {auth}"}),
        1: httpx.Response(401, json={"error": f"invalid {auth}"}),
        2: httpx.Response(422, json={"detail": f"rejected: {auth}"}),
        3: httpx.Response(500, text=f"Internal error; request headers: Authorization: {auth}"),
        4: httpx.Response(502, headers={"content-type": "text/html"}, text=f"<html><body>{auth}</body></html>"),
        5: httpx.Response(200, headers={"content-type": "text/plain"}, text=f"not json {auth}"),
        6: httpx.Response(301, headers={"location": f"https://elsewhere.test/?k={auth}"}),
        7: httpx.Response(404, json={"message": f"no scenario for {auth}"}),
        8: httpx.Response(409, json={"message": f"locked by {auth}"}),
    }
    return bodies[kind]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_reflecting_upstream_cannot_leak_the_key(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, max_retries=0, log_level="DEBUG")
    server = build_server(settings, transport=httpx.MockTransport(reflecting_upstream))
    async with Client(server, mode=mode) as client:
        results = [await client.call_tool("list_scenarios", {"limit": limit}) for limit in range(1, 8)]
        results.append(await client.call_tool("get_scenario", {"scenario_id": "scn_x"}))
        results.append(await client.call_tool("update_scenario", {"scenario_id": "scn_x", "changes": {"name": "n"}}))
    for result in results:
        assert result.is_error
        assert_clean(everything_in(result), "a tool error")
    messages = [everything_in(r) for r in results]
    assert any("[redacted]" in m for m in messages), "the reflected key should have been redacted, not dropped"
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")


# --- reprs ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_reprs_hide_secrets(tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = make_settings(tmp_path, http_token=SecretStr(HTTP_TOKEN))
    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert_clean(text, "the settings repr")
    assert "**" in repr(settings)  # masked, not missing
    client = RunloopClient(api_key=CANARY_KEY, base_url="http://runloop.test")
    try:
        for text in (repr(client), str(client)):
            assert_clean(text, "the client repr")
        assert "runloop.test" in repr(client)
    finally:
        await client.aclose()


def test_emulator_request_log_keeps_no_header_values() -> None:
    emulator = Emulator(api_key=CANARY_KEY, count=5)
    with httpx.Client(transport=emulator.transport(), base_url="http://emulator") as http:
        http.get("/v1/scenarios", headers={"Authorization": f"Bearer {CANARY_KEY}"})
        http.get("/v1/scenarios", headers={"Authorization": "Bearer wrong"})
    assert [r.authorized for r in emulator.requests] == [True, False]
    assert_clean(repr(emulator.requests), "the emulator's request log")
