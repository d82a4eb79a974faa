"""The MCP tool layer: registration, descriptions, annotations and thin handlers (the only layer that imports mcp,
besides the transports)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.tools.read import register_read_tools
from runloop_scenarios_mcp.tools.update import register_write_tools


def register_tools(server: MCPServer[AppState]) -> None:
    """Every tool of this server: list_scenarios, get_scenario and update_scenario."""
    register_read_tools(server)
    register_write_tools(server)
