"""Size of what an agent host loads from this server: tools/list (and the server instructions), in tokens.

Counts with the real tokenizers (o200k_base, cl100k_base) on the compact JSON of the listing. Baseline in
the same run: the same tools as the SDK would list them from the handler signatures alone (pydantic
titles and ``default: null`` on every argument), so the ratio shows what the published contract schemas save.

Usage: python bench/tools_size.py
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.services.budget import ENCODING_NAMES, load_encoding


def _tokens(value: Any, encoding: str) -> int:
    return len(load_encoding(encoding).encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False)))


async def _listing() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    server = build_server(Settings(emulator=True))
    async with Client(server, mode="legacy") as client:
        tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in (await client.list_tools()).tools]
        instructions = client.instructions or ""
    sdk = await MCPServer.list_tools(server)  # the SDK's listing, before this server's _published()
    baseline = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in sdk]
    return tools, baseline, instructions


def main() -> None:
    tools, baseline, instructions = anyio.run(_listing)
    for encoding in ENCODING_NAMES:
        ours, theirs = _tokens({"tools": tools}, encoding), _tokens({"tools": baseline}, encoding)
        print(f"tools/list {encoding}: {ours} tokens (SDK-generated baseline {theirs}; ratio {ours / theirs:.3f})")
        print(f"instructions {encoding}: {_tokens(instructions, encoding)} tokens")
    print("per tool (o200k_base): description / inputSchema / outputSchema")
    for tool in tools:
        parts = [_tokens(tool.get(key), "o200k_base") for key in ("description", "inputSchema", "outputSchema")]
        print(f"  {tool['name']}: {parts[0]} / {parts[1]} / {parts[2]}")


if __name__ == "__main__":
    main()
