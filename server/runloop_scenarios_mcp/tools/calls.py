"""One tool call: the contract's argument check, the call deadline, and the error boundary.

Imported on the first tool call, not at start-up (see ``tools/server.py``): with it come the services.
Each tool's input model (:mod:`services.contracts`) validates its arguments here, so every bad argument
becomes one clear tool error instead of a pydantic dump. Handlers only translate: arguments to a service
call, its result or error to a tool result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from pydantic import ValidationError

from runloop_scenarios_mcp.config import MIN_MAX_TOKENS
from runloop_scenarios_mcp.errors import InvalidArgument, RunloopMcpError, to_tool_message
from runloop_scenarios_mcp.services.budget import count_json, json_of, to_json
from runloop_scenarios_mcp.services.contracts import ToolInput
from runloop_scenarios_mcp.services.sendable import has_lone_surrogate, sendable
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.tools.lazy_state import LazyState
from runloop_scenarios_mcp.tools.results import error_result
from runloop_scenarios_mcp.upstream.client import REDACTED, call_deadline

logger = logging.getLogger(__name__)

MAX_ARGUMENT_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in any argument (a scenario is about 8 levels deep)."""
Handler = Callable[..., Awaitable[dict[str, Any] | InputRequiredResult]]
"""``handler(state, args, on_wait, ctx)``: the service call behind a tool (``ctx`` only for asking the person)."""
ToolContext = Context[LazyState, Any]


def _describe_validation_error(tool: str, exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"])[:120] or "arguments"
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


def _too_deep(arguments: dict[str, Any]) -> str | None:
    """The first argument nested deeper than :data:`MAX_ARGUMENT_DEPTH`, found without recursing."""
    stack: list[tuple[str, Any, int]] = [(str(key), value, 1) for key, value in arguments.items()]
    while stack:
        name, value, depth = stack.pop()
        if depth > MAX_ARGUMENT_DEPTH:
            return name
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((name, child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def redact_result(result: dict[str, Any], secrets: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """``result`` with every secret value replaced in its strings and keys (its token count updated), and its
    compact JSON (serialized once when nothing is replaced)."""
    text = json_of(result)
    if not any(secret and secret in text for secret in secrets):
        return result, text
    logger.warning("secret_in_result redacted=true")

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, REDACTED) if secret else value
            return value
        if isinstance(value, dict):
            return {clean(key): clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    cleaned: dict[str, Any] = clean(result)
    if "estimated_tokens" in cleaned:
        cleaned["estimated_tokens"] = count_json(cleaned) + 1
    return cleaned, to_json(cleaned)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def run_call(
    name: str, input_model: type[ToolInput], handler: Handler, arguments: dict[str, Any], ctx: ToolContext
) -> CallToolResult | InputRequiredResult:
    """Check ``arguments`` against ``input_model``, run ``handler`` within the call deadline, and turn its result or
    error into the tool result (secrets redacted; nothing unexpected reaches the client as a crash)."""
    bad_text = _invalid_unicode(arguments)
    if bad_text is not None:
        return error_result(
            f"Invalid arguments for {name}: {bad_text} contains invalid Unicode (a lone surrogate such as "
            "\\ud800); send valid UTF-8 text."
        )
    deep = _too_deep(arguments)
    if deep is not None:
        return error_result(
            f"Invalid arguments for {name}: {deep} is nested more than {MAX_ARGUMENT_DEPTH} levels deep; a "
            "scenario is much flatter. Send values in get_scenario's shape."
        )
    try:
        args = input_model.model_validate(arguments)
    except ValidationError as exc:
        return error_result(_describe_validation_error(name, exc))
    try:
        state = await ctx.request_context.lifespan_context.ready()
    except Exception as exc:  # e.g. the journal's database driver missing: every call says so, the process lives on
        logger.exception("state_unavailable tool=%s error=%s", name, type(exc).__name__)
        return error_result(to_tool_message(exc))
    reports = 0

    async def on_wait(attempt: int, delay: float, reason: str) -> None:
        nonlocal reports
        reports += 1  # progress must grow with every notification
        retry = f"; retry {attempt} in {delay:.1f} s" if delay > 0 else ""
        await ctx.report_progress(reports, None, f"Runloop API: {reason}{retry}")

    try:
        with call_deadline(state.settings.call_timeout):
            result = await handler(state, args, on_wait, ctx)
    except RunloopMcpError as exc:
        logger.info("tool_error tool=%s error=%s", name, type(exc).__name__)
        return error_result(to_tool_message(exc, state.settings.secret_values))
    except Exception as exc:  # the boundary: nothing unexpected reaches the client as a crash
        # At every log level the traceback goes to the log (stderr, secrets redacted), never to the client.
        logger.exception("tool_crash tool=%s error=%s", name, type(exc).__name__)
        return error_result(to_tool_message(exc))
    if isinstance(result, InputRequiredResult):
        return result
    result, text = redact_result(result, state.settings.secret_values)
    if has_lone_surrogate(text):
        logger.warning("lone_surrogate_in_result tool=%s replaced_with=U+FFFD", name)
        result = sendable(result)
        text = to_json(result)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=result)


def max_tokens_of(state: AppState, requested: int | None) -> int:
    cap = state.settings.max_tokens_cap
    if requested is None:
        return state.settings.default_max_tokens
    if requested > cap:
        raise InvalidArgument(
            f"max_tokens={requested} is above this server's cap; send a number from {MIN_MAX_TOKENS} to {cap}"
        )
    return requested
