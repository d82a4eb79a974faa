"""The read tools' handlers, list_scenarios and get_scenario (their descriptions are in ``tools/catalog.py``)."""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.services.contracts import (
    GetScenarioInput,
    ListScenariosInput,
)
from runloop_scenarios_mcp.services.listing import ListRequest, list_page, normalize_fields
from runloop_scenarios_mcp.services.reading import get_page
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.tools.calls import max_tokens_of
from runloop_scenarios_mcp.upstream.client import OnWait
from runloop_scenarios_mcp.upstream.models import LIST_FILTERS

# --- list_scenarios ------------------------------------------------------------------------


async def list_scenarios(
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


# --- get_scenario --------------------------------------------------------------------------


async def get_scenario(state: AppState, args: GetScenarioInput, on_wait: OnWait, _ctx: object = None) -> dict[str, Any]:
    return await get_page(
        state.require_client(),
        args.scenario_id,
        max_tokens=max_tokens_of(state, args.max_tokens),
        field=args.field,
        offset=args.offset,
        on_wait=on_wait,
    )
