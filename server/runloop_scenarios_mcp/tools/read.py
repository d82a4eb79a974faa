"""The read tools, list_scenarios and get_scenario: descriptions, annotations and thin handlers."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from runloop_scenarios_mcp.services.contracts import (
    GetScenarioInput,
    GetScenarioResult,
    ListScenariosInput,
    ListScenariosResult,
)
from runloop_scenarios_mcp.services.listing import ListRequest, list_page, normalize_fields
from runloop_scenarios_mcp.services.reading import get_page
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.tools.registry import max_tokens_of, register
from runloop_scenarios_mcp.upstream.client import OnWait
from runloop_scenarios_mcp.upstream.models import LIST_FILTERS

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)


# --- list_scenarios ------------------------------------------------------------------------


async def _list_scenarios(
    state: AppState, args: ListScenariosInput, on_wait: OnWait, _ctx: object = None
) -> dict[str, Any]:
    filters = {key: value for key in LIST_FILTERS if (value := getattr(args, key)) is not None}
    request = ListRequest(
        filters=filters,
        fields=normalize_fields(args.fields),
        max_tokens=max_tokens_of(state, args.max_tokens),
        limit=args.limit,
        include_total_count=args.include_total_count,
        cursor=args.cursor,
        text=args.text,
    )
    return await list_page(state.require_client(), request, state.cursors, on_wait=on_wait)


LIST_DESCRIPTION = """Find Runloop scenarios: returns one page that always fits max_tokens, with a lean summary of each.

Use it to browse or search; text finds words in names, problem statements and metadata (each match with a
snippet); filter with name (exact), search (part of an id or name), benchmark_id (an id such as bmd_..., not a
name) or validation_type. Continue with cursor=next_cursor until next_cursor is null. Choose fields to get more
of each scenario (["*"] for everything); get_scenario returns one scenario in full, archived ones too."""


# --- get_scenario --------------------------------------------------------------------------


async def _get_scenario(
    state: AppState, args: GetScenarioInput, on_wait: OnWait, _ctx: object = None
) -> dict[str, Any]:
    return await get_page(
        state.require_client(),
        args.scenario_id,
        max_tokens=max_tokens_of(state, args.max_tokens),
        field=args.field,
        offset=args.offset,
        on_wait=on_wait,
    )


GET_DESCRIPTION = """Read one Runloop scenario by id with every field, within max_tokens.

Strings too long for the budget are clipped, or whole values left out, and listed in clipped; read them whole
with field (the path) and offset, following next_offset. Archived scenarios can be read too."""


def register_read_tools(server: MCPServer[AppState]) -> None:
    register(
        server,
        name="list_scenarios",
        title="List Runloop scenarios",
        description=LIST_DESCRIPTION,
        annotations=READ_ONLY,
        input_model=ListScenariosInput,
        result_model=ListScenariosResult,
        handler=_list_scenarios,
    )
    register(
        server,
        name="get_scenario",
        title="Get one Runloop scenario",
        description=GET_DESCRIPTION,
        annotations=READ_ONLY,
        input_model=GetScenarioInput,
        result_model=GetScenarioResult,
        handler=_get_scenario,
    )
