"""Which handler serves which tool, and with which input contract.

Imported on the first tool call (see ``tools/server.py``), so the services load then, not at start-up.
"""

from __future__ import annotations

from mcp_types import CallToolResult, InputRequiredResult

from runloop_scenarios_mcp.services.contracts import (
    GetScenarioInput,
    ListScenariosInput,
    ToolInput,
    UpdateScenarioInput,
)
from runloop_scenarios_mcp.tools.calls import Handler, ToolContext, run_call
from runloop_scenarios_mcp.tools.read import get_scenario, list_scenarios
from runloop_scenarios_mcp.tools.update import update_scenario

HANDLERS: dict[str, tuple[type[ToolInput], Handler]] = {
    "list_scenarios": (ListScenariosInput, list_scenarios),
    "get_scenario": (GetScenarioInput, get_scenario),
    "update_scenario": (UpdateScenarioInput, update_scenario),
}
"""Tool name -> (its input model, its handler); the same names as ``catalog.TOOLS`` and ``TOOL_CONTRACTS``."""


async def call(name: str, arguments: dict[str, object], ctx: ToolContext) -> CallToolResult | InputRequiredResult:
    """Run tool ``name`` (one of :data:`HANDLERS`) through the call boundary."""
    input_model, handler = HANDLERS[name]
    return await run_call(name, input_model, handler, dict(arguments), ctx)
