"""The naive baseline: an MCP server that passes Runloop's JSON straight through.

One tool, ``list_scenarios``, with the API's own query parameters, returning the raw upstream page as
JSON text: the shape of the tools Runloop's generated MCP server used to expose. It talks to the same
embedded emulator (same seed, same data) as ``runloop-scenarios-mcp --emulator``.

Run it over stdio: ``python bench/naive_server.py`` (used by bench/compare.py for the cold-start ratio).
"""

from __future__ import annotations

import httpx
from mcp.server.mcpserver import MCPServer

from runloop_scenarios_mcp.emulator.handler import Emulator


def build_naive_server(transport: httpx.AsyncBaseTransport | None = None) -> MCPServer:
    server = MCPServer(name="naive-runloop-passthrough")
    http = httpx.AsyncClient(
        base_url="http://emulator",
        transport=transport if transport is not None else Emulator().transport(),
        headers={"Authorization": "Bearer naive-baseline"},
    )

    @server.tool(structured_output=False)
    async def list_scenarios(
        limit: int | None = None,
        starting_after: str | None = None,
        name: str | None = None,
        benchmark_id: str | None = None,
        validation_type: str | None = None,
        search: str | None = None,
    ) -> str:
        """List scenarios (GET /v1/scenarios). Returns the API response as JSON."""
        given = {
            "limit": limit,
            "starting_after": starting_after,
            "name": name,
            "benchmark_id": benchmark_id,
            "validation_type": validation_type,
            "search": search,
        }
        params = {key: str(value) for key, value in given.items() if value is not None}
        response = await http.get("/v1/scenarios", params=params)
        return response.text

    return server


if __name__ == "__main__":
    build_naive_server().run()
