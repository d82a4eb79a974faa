"""MCP tool registration: names, descriptions, annotations, and thin handlers.

Each tool's input and output schema come from its contract models (:mod:`contracts`). The SDK
receives the contract's JSON Schema per argument but no validation of its own, so the contract
validates here and every bad argument becomes one clear tool error instead of a pydantic dump.
Handlers only translate: arguments to a service call, its result or error to a tool result.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError, WithJsonSchema

from .budget import to_json
from .contracts import (
    GetScenarioInput,
    GetScenarioResult,
    ListScenariosInput,
    ListScenariosResult,
    ToolInput,
    ToolResult,
)
from .errors import InvalidArgument, RunloopMcpError, to_tool_message
from .paging import ListRequest, list_page, normalize_fields
from .reading import get_page
from .runloop import OnWait
from .state import AppState

logger = logging.getLogger(__name__)

InputT = TypeVar("InputT", bound=ToolInput)
Handler = Callable[..., Awaitable[dict[str, Any]]]
"""``handler(state, args, on_wait, **resolved)``: the service call behind a tool."""

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)


def _describe_validation_error(tool: str, exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        # (Unknown and missing top-level arguments are refused earlier, in ScenariosServer.call_tool.)
        shown = "" if error["type"] in ("missing", "extra_forbidden") else f" (got {_short(error.get('input'))})"
        problems.append(f"{where}: {error['msg']}{shown}")
    return f"Invalid arguments for {tool}: " + "; ".join(problems) + ". See the tool's input schema for what to send."


def _invalid_unicode(arguments: dict[str, Any]) -> str | None:
    """The path of the first string (key or value) that cannot be encoded as UTF-8, if any."""
    stack: list[tuple[str, Any]] = [("arguments", arguments)]
    while stack:
        where, value = stack.pop()
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, dict) else []
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return where.split(".")[0] if len(where) > 80 else where
        if isinstance(value, dict):
            stack.extend((f"{where}.{key}"[:200], item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}.{index}"[:200], item) for index, item in enumerate(value))
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def register(
    server: MCPServer[AppState],
    *,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    input_model: type[InputT],
    result_model: type[ToolResult],
    handler: Handler,
    resolved: dict[str, Any] | None = None,
) -> None:
    """Register ``handler`` as tool ``name`` with the schemas of its contract models.

    ``resolved`` maps extra handler parameters to ``Annotated[..., Resolve(fn)]`` types: the SDK fills
    them (e.g. a person's confirmation) and they never appear in the input schema.
    """
    schema = input_model.model_json_schema()
    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for field_name, field in input_model.model_fields.items():
        parameters.append(
            inspect.Parameter(
                field_name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if field.is_required() else field.default,
                annotation=Annotated[Any, WithJsonSchema(schema["properties"][field_name])],
            )
        )
    for extra_name, annotation in (resolved or {}).items():
        parameters.append(inspect.Parameter(extra_name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    returns = Annotated[CallToolResult, result_model]

    async def call(ctx: Context[AppState, Any], **arguments: Any) -> CallToolResult:
        state: AppState = ctx.request_context.lifespan_context
        extras = {key: arguments.pop(key) for key in resolved or {} if key in arguments}
        bad_text = _invalid_unicode(arguments)
        if bad_text is not None:
            return error_result(
                f"Invalid arguments for {name}: {bad_text} contains invalid Unicode (a lone surrogate such as "
                "\\ud800); send valid UTF-8 text."
            )
        try:
            args = input_model.model_validate(arguments)
        except ValidationError as exc:
            return error_result(_describe_validation_error(name, exc))

        async def on_wait(attempt: int, delay: float, reason: str) -> None:
            await ctx.report_progress(attempt, None, f"Runloop API: {reason}; retry {attempt} in {delay:.1f} s")

        try:
            result = await handler(state, args, on_wait, **extras)
        except RunloopMcpError as exc:
            logger.info("tool_error tool=%s error=%s", name, type(exc).__name__)
            return error_result(to_tool_message(exc, state.settings.secret_values))
        except Exception as exc:  # the boundary: nothing unexpected reaches the client as a crash
            logger.error(
                "tool_crash tool=%s error=%s", name, type(exc).__name__, exc_info=state.settings.log_level == "DEBUG"
            )
            return error_result(to_tool_message(exc))
        return CallToolResult(content=[TextContent(type="text", text=to_json(result))], structured_content=result)

    call.__name__ = name
    call.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    server.add_tool(
        call, name=name, title=title, description=description, annotations=annotations, structured_output=True
    )


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def max_tokens_of(state: AppState, requested: int | None) -> int:
    cap = state.settings.max_tokens_cap
    if requested is None:
        return state.settings.default_max_tokens
    if requested > cap:
        raise InvalidArgument(f"max_tokens={requested} is above this server's cap; send a number from 500 to {cap}")
    return requested


# --- list_scenarios ------------------------------------------------------------------------


async def _list_scenarios(state: AppState, args: ListScenariosInput, on_wait: OnWait) -> dict[str, Any]:
    filters = {
        key: value
        for key in ("name", "benchmark_id", "validation_type", "search")
        if (value := getattr(args, key)) is not None
    }
    request = ListRequest(
        filters=filters,
        fields=normalize_fields(args.fields),
        max_tokens=max_tokens_of(state, args.max_tokens),
        limit=args.limit,
        include_total_count=args.include_total_count,
        cursor=args.cursor,
    )
    return await list_page(state.require_client(), request, state.cursors, on_wait=on_wait)


LIST_DESCRIPTION = """Find Runloop scenarios: returns one page that always fits max_tokens, with a lean summary of each.

Use it to browse or search; filter with name (exact), search (id or name), benchmark_id or validation_type.
Continue with cursor=next_cursor until next_cursor is null. Choose fields to get more of each scenario
(["*"] for everything); get_scenario returns one scenario in full."""


# --- get_scenario --------------------------------------------------------------------------


async def _get_scenario(state: AppState, args: GetScenarioInput, on_wait: OnWait) -> dict[str, Any]:
    return await get_page(
        state.require_client(),
        args.scenario_id,
        max_tokens=max_tokens_of(state, args.max_tokens),
        field=args.field,
        offset=args.offset,
        on_wait=on_wait,
    )


GET_DESCRIPTION = """Read one Runloop scenario by id with every field, within max_tokens.

Strings too long for the budget are clipped and listed in clipped; read them whole with field (the path)
and offset, following next_offset. Archived scenarios can be read too."""


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


__all__ = ["error_result", "max_tokens_of", "register", "register_read_tools"]
