"""The update_scenario tool: dry run by default, apply only with a matching preview token and, when the
client can ask its user, only after the person confirms the diff.

Confirmation is a resolver (``Resolve``), so the SDK carries it on both protocol generations: a
standalone ``elicitation/create`` request mid-call (2025-11-25) or an ``InputRequiredResult`` round
trip (2026-07-28). Declined, cancelled, timed out or failed: nothing is written (fail closed). A
client without elicitation is not asked; the preview token is then the guard.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

import anyio
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field, ValidationError

from runloop_scenarios_mcp.errors import PreviewRefused, RunloopMcpError
from runloop_scenarios_mcp.services.contracts import UpdateScenarioInput, UpdateScenarioResult
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.services.update.apply import execute_apply, prepare_apply, preview
from runloop_scenarios_mcp.tools.registry import max_tokens_of, register
from runloop_scenarios_mcp.upstream.client import OnWait

logger = logging.getLogger(__name__)

WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True)
NOT_ASKED = "not-asked"
"""What the confirmation resolver yields when there is no one to ask (dry run, no elicitation, bad token)."""
_DIFF_LINES = 20
_VALUE_CHARS = 160


class Confirmation(BaseModel):
    """The form shown to the person before a write."""

    confirm: bool = Field(description="Write this change to Runloop?")


def _render(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def confirmation_message(scenario_id: str, diff: list[Any]) -> str:
    """What the person reads: the scenario, then each changed value before and after (bounded)."""
    lines = [f"Apply this change to Runloop scenario {scenario_id}?"]
    for entry in diff[:_DIFF_LINES]:
        lines.append(f"- {entry.path}: {_render(entry.before)} -> {_render(entry.after)}")
    if len(diff) > _DIFF_LINES:
        lines.append(f"... and {len(diff) - _DIFF_LINES} more changed values")
    return "\n".join(lines)


def _can_elicit(ctx: Context[AppState, Any]) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def ask_person(
    ctx: Context[AppState, Any],
    scenario_id: Any = None,
    changes: Any = None,
    dry_run: Any = True,
    preview_token: Any = None,
) -> Elicit[Confirmation] | str | ElicitationResult[Confirmation]:
    """Ask the person to confirm an apply, showing the diff it would write; skip when there is nothing to ask."""
    if dry_run is not False or not _can_elicit(ctx):
        return NOT_ASKED
    state: AppState = ctx.request_context.lifespan_context
    try:
        args = UpdateScenarioInput.model_validate(
            {"scenario_id": scenario_id, "changes": changes, "dry_run": dry_run, "preview_token": preview_token}
        )
        prepared = await prepare_apply(
            state.require_client(),
            state.previews,
            state.journal,
            args.scenario_id,
            args.changes,
            args.preview_token,
            on_wait=None,
        )
    except (ValidationError, RunloopMcpError):
        return NOT_ASKED  # the tool body reports the problem; never ask about a write that cannot happen
    except Exception as exc:  # anything unexpected before asking: refuse the write (fail closed)
        logger.error("confirmation_prepare_failed error=%s", type(exc).__name__)
        return "error"
    message = confirmation_message(args.scenario_id, prepared.plan.diff)
    if ctx.protocol_version is not None and is_version_at_least(ctx.protocol_version, "2026-07-28"):
        return Elicit(message, Confirmation)  # carried by an InputRequiredResult round trip
    try:
        with anyio.fail_after(state.settings.confirm_timeout):
            return await ctx.elicit(message, Confirmation)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # an elicitation that fails for any reason writes nothing
        logger.warning("confirmation_failed error=%s", type(exc).__name__)
        return "error"


Answer = Literal["accepted", "not_asked", "declined", "cancelled", "timeout", "error"]


def _answer(outcome: Any) -> Answer:
    """One word for the resolver's outcome (the SDK wraps plain values as accepted)."""
    data = outcome.data if isinstance(outcome, AcceptedElicitation) else outcome
    if isinstance(data, AcceptedElicitation):
        data = data.data
    if isinstance(data, Confirmation):
        return "accepted" if data.confirm else "declined"
    if data == NOT_ASKED:
        return "not_asked"
    if data in ("timeout", "error"):
        return data  # type: ignore[no-any-return]
    action = getattr(data, "action", None) or getattr(outcome, "action", None)
    return "cancelled" if action == "cancel" else "declined" if action == "decline" else "error"


_REFUSALS: dict[str, str] = {
    "declined": "The person declined this change in the confirmation dialog, so nothing was written.",
    "cancelled": "The confirmation was cancelled, so nothing was written.",
    "timeout": "No answer to the confirmation came in time, so nothing was written.",
    "error": "The confirmation could not be shown or its answer could not be read, so nothing was written.",
}


async def _update_scenario(
    state: AppState, args: UpdateScenarioInput, on_wait: OnWait, confirmation: Any = None
) -> dict[str, Any]:
    client = state.require_client()
    if args.dry_run:
        return await preview(client, state.previews, args.scenario_id, args.changes, on_wait=on_wait)
    answer = _answer(confirmation) if confirmation is not None else "not_asked"
    if answer not in ("accepted", "not_asked"):
        raise PreviewRefused(
            "declined", _REFUSALS[answer] + " The preview token stays valid until it expires; apply again to retry."
        )
    async with state.write_lock(args.scenario_id):
        prepared = await prepare_apply(
            client, state.previews, state.journal, args.scenario_id, args.changes, args.preview_token, on_wait=on_wait
        )
        return await execute_apply(
            client, state.journal, prepared, max_tokens=max_tokens_of(state, None), on_wait=on_wait
        )


UPDATE_DESCRIPTION = """Change a Runloop scenario, always as a dry run first: dry_run=true (the default) writes nothing.

The dry run returns the field-by-field diff, warnings, the exact body that would be sent, and a preview_token.
To write, call again with the same scenario_id and changes, dry_run=false and that preview_token. changes is
a partial scenario in get_scenario's shape, merged as JSON Merge Patch (metadata keys you omit are kept).
To undo an applied change, preview and apply the diff's before values the same way."""


def register_write_tools(server: MCPServer[AppState]) -> None:
    register(
        server,
        name="update_scenario",
        title="Update a Runloop scenario (preview first)",
        description=UPDATE_DESCRIPTION,
        annotations=WRITE,
        input_model=UpdateScenarioInput,
        result_model=UpdateScenarioResult,
        handler=_update_scenario,
        resolved={"confirmation": Annotated[ElicitationResult[Confirmation], Resolve(ask_person)]},
    )
