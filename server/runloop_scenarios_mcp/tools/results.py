"""Tool results every part of the tool layer gives the same way, always sendable as UTF-8."""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent

from runloop_scenarios_mcp.services.sendable import sendable


def error_result(message: str) -> CallToolResult:
    """A tool error: ``message`` (what was wrong and what to send instead) as the result's only text."""
    return CallToolResult(content=[TextContent(type="text", text=sendable(message))], is_error=True)
