"""The server through the real MCP client, in both protocol modes: tools listed, read tools answer."""

from __future__ import annotations

import pytest

from runloop_scenarios_mcp.emulator.handler import Emulator
from tests.support.common import Session

pytestmark = pytest.mark.anyio


async def test_tools_are_listed_with_schemas(mcp: Session) -> None:
    tools = {tool.name: tool for tool in (await mcp.client.list_tools()).tools}
    assert {"list_scenarios", "get_scenario"} <= set(tools)
    for tool in tools.values():
        assert tool.output_schema is not None
        assert tool.annotations is not None


async def test_list_returns_a_page_of_summaries(mcp: Session, emulator: Emulator) -> None:
    page = await mcp.ok("list_scenarios", {"max_tokens": 2000})
    assert page["returned"] == len(page["scenarios"]) > 0
    assert page["estimated_tokens"] <= 2000
    first = page["scenarios"][0]
    assert (
        {"id", "name"}
        <= set(first)
        <= {"id", "name", "validation_type", "problem_statement_excerpt", "scorers", "metadata"}
    )
    assert emulator.get(first["id"]) is not None


async def test_get_returns_the_scenario(mcp: Session, emulator: Emulator) -> None:
    scenario_id = next(iter(emulator.snapshot()))
    result = await mcp.ok("get_scenario", {"scenario_id": scenario_id, "max_tokens": 20000})
    if not result["clipped"]:
        assert result["scenario"] == emulator.get(scenario_id)


async def test_unknown_scenario_is_a_clear_error(mcp: Session) -> None:
    message = await mcp.error("get_scenario", {"scenario_id": "scn_does_not_exist"})
    assert "404" in message and "list_scenarios" in message
