"""The MCP server class: read-only filtering and argument checks in front of the SDK's tool calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, InputRequiredResult, Tool

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.errors import shown
from runloop_scenarios_mcp.services.contracts import TOOL_CONTRACTS
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.tools.registry import error_result, input_schema


class ScenariosServer(MCPServer[AppState]):
    """MCPServer that hides and refuses non-read-only tools when the server runs read-only.

    ``after_first_list`` runs in a thread shortly after the first tools/list is answered: the moment a host
    has finished starting the server, so slow preparations (tokenizers) never delay ``initialize``.
    """

    def __init__(
        self, settings: Settings, *, after_first_list: Callable[[], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.read_only = settings.read_only
        self._after_first_list = after_first_list

    def _allowed(self, tool: Tool) -> bool:
        return not self.read_only or bool(tool.annotations and tool.annotations.read_only_hint)

    async def list_tools(self) -> list[Tool]:
        if self._after_first_list is not None:
            timer = threading.Timer(_AFTER_LIST_DELAY, self._after_first_list)
            timer.daemon = True
            timer.start()
            self._after_first_list = None
        return [_published(tool) for tool in await super().list_tools() if self._allowed(tool)]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tools = await super().list_tools()
        tool = next((t for t in tools if t.name == name), None)
        if tool is None:  # answered here: the SDK's answer would repeat the name whole, however long
            names = ", ".join(t.name for t in tools if self._allowed(t))
            return error_result(f"Unknown tool {shown(name)}. This server's tools: {names}.")
        if not self._allowed(tool):
            return error_result(
                f"{name} is disabled: this server runs read-only (--read-only or RUNLOOP_MCP_READ_ONLY=1). "
                "Restart it without read-only mode to make changes."
            )
        # The SDK drops arguments its signature does not know; a misspelled filter must not widen a query.
        # A missing required one would surface as the SDK's raw pydantic dump: say it plainly instead.
        known = tool.input_schema.get("properties", {})
        unknown = sorted(set(arguments or {}) - set(known))
        problems = [f"{_name(key)}: unknown argument" for key in unknown[:5]]
        problems += [f"{len(unknown) - 5} more unknown arguments"] if len(unknown) > 5 else []
        problems += [f"{key}: missing" for key in tool.input_schema.get("required", []) if key not in arguments]
        if problems:
            return error_result(
                f"Invalid arguments for {name}: {'; '.join(problems)}. Known arguments: {', '.join(known)}."
            )
        return await super().call_tool(name, arguments, context)


_AFTER_LIST_DELAY = 0.05
"""Seconds after the first tools/list before ``after_first_list`` runs: time to write the answer first."""


def _name(key: str) -> str:
    """An argument name for a message: as it is when short and plain, else quoted and bounded."""
    return key if len(key) <= 40 and key.isidentifier() else shown(key)


def _published(tool: Tool) -> Tool:
    """The tool with its contract's own input schema (as in schemas/), not the SDK's regenerated one, which
    re-adds a title and ``default: null`` to every argument and drops ``additionalProperties: false``."""
    contract = TOOL_CONTRACTS.get(tool.name)
    return tool if contract is None else tool.model_copy(update={"input_schema": input_schema(contract[0])})
