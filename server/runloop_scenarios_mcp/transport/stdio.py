"""Serve an MCP server over stdio, answering lines that are not valid JSON-RPC instead of dropping them."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from runloop_scenarios_mcp.transport.stdio_guard import answer_bad_lines


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Run ``server`` on this process's stdin and stdout until the client closes stdin."""
    lowlevel = server._lowlevel_server  # the SDK's own run loop, given the guarded read stream
    async with (
        stdio_server() as (read_stream, write_stream),
        answer_bad_lines(read_stream, write_stream) as guarded,
    ):
        await lowlevel.run(guarded, write_stream, lowlevel.create_initialization_options())
