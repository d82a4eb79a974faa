"""The MCP server class: the published tool list, read-only filtering and argument checks in front of the handlers.

``tools/list`` is answered from :mod:`tools.catalog` alone; the handlers, and with them the services, are
imported on the first tool call (or by the warm-up after the first ``tools/list``), so a host waits for
little more than the SDK itself before it can list the tools.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, InputRequiredResult, Tool

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.errors import shown
from runloop_scenarios_mcp.tools.catalog import find_tool, is_read_only, published_tools
from runloop_scenarios_mcp.tools.lazy_state import LazyState
from runloop_scenarios_mcp.tools.results import error_result


class ScenariosServer(MCPServer[LazyState]):
    """MCPServer that lists this server's published tools and calls their handlers; read-only mode hides and
    refuses the tools that write.

    ``after_first_list`` runs in a thread shortly after the first tools/list is answered: the moment a host
    has finished starting the server, so slow preparations (imports, tokenizers) never delay ``initialize``.
    """

    def __init__(
        self, settings: Settings, *, after_first_list: Callable[[], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.read_only = settings.read_only
        self._after_first_list = after_first_list

    def _allowed(self, tool: Tool) -> bool:
        return not self.read_only or is_read_only(tool)

    async def list_tools(self) -> list[Tool]:
        if self._after_first_list is not None:
            timer = threading.Timer(_AFTER_LIST_DELAY, self._after_first_list)
            timer.daemon = True
            timer.start()
            self._after_first_list = None
        return [tool for tool in published_tools() if self._allowed(tool)]

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """The schema the SDK checks ``Mcp-Param`` headers against (2026-07-28 over HTTP)."""
        tool = find_tool(name)
        return None if tool is None else tool.input_schema

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[LazyState, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = find_tool(name)
        if tool is None:  # answered here: the SDK's answer would repeat the name whole, however long
            names = ", ".join(t.name for t in published_tools() if self._allowed(t))
            return error_result(f"Unknown tool {shown(name)}. This server's tools: {names}.")
        if not self._allowed(tool):
            return error_result(
                f"{name} is disabled: this server runs read-only (--read-only or RUNLOOP_MCP_READ_ONLY=1). "
                "Restart it without read-only mode to make changes."
            )
        problems = _argument_problems(tool, arguments or {})
        if problems:
            known = ", ".join(tool.input_schema.get("properties", {}))
            return error_result(f"Invalid arguments for {name}: {'; '.join(problems)}. Known arguments: {known}.")
        if context is None:  # the SDK always passes one; a direct call without a request has no state to use
            return error_result(f"{name} needs a request context: call it through an MCP client.")
        from runloop_scenarios_mcp.tools.handlers import call  # the services load with the first call

        return await call(name, arguments or {}, context)


_AFTER_LIST_DELAY = 0.05
"""Seconds after the first tools/list before ``after_first_list`` runs: time to write the answer first."""


def _argument_problems(tool: Tool, arguments: Mapping[str, Any]) -> list[str]:
    """Unknown and missing top-level arguments: a misspelled filter must not widen a query unnoticed."""
    known = tool.input_schema.get("properties", {})
    unknown = sorted(set(arguments) - set(known))
    problems = [f"{_name(key)}: unknown argument" for key in unknown[:5]]
    problems += [f"{len(unknown) - 5} more unknown arguments"] if len(unknown) > 5 else []
    problems += [f"{key}: missing" for key in tool.input_schema.get("required", []) if key not in arguments]
    return problems


def _name(key: str) -> str:
    """An argument name for a message: as it is when short and plain, else quoted and bounded."""
    return key if len(key) <= 40 and key.isidentifier() else shown(key)
