"""The update_scenario tool: dry run by default, apply only with a matching preview token and, when the
client can ask its user, only after the person confirms the change.

The service (:mod:`services.update.apply`) reads and plans the change once, under the scenario's write
lock, and hands that plan's summary to :func:`_confirmer`, which asks the person the way the protocol
allows: a standalone ``elicitation/create`` request mid-call (2025-11-25), or, on 2026-07-28, by ending
this round with an ``InputRequiredResult`` whose answer comes back with the retried call (which reads
the scenario again before writing). Declined, cancelled, timed out or failed: nothing is written. A
client without elicitation is not asked; the preview token is then the guard.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import anyio
from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from runloop_scenarios_mcp.services.contracts import UpdateScenarioInput
from runloop_scenarios_mcp.services.journal import AuditContext
from runloop_scenarios_mcp.services.sendable import sendable
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.services.update.apply import Answer, Confirm, apply
from runloop_scenarios_mcp.services.update.preview import UpdateRequest, preview
from runloop_scenarios_mcp.tools.calls import ToolContext, max_tokens_of
from runloop_scenarios_mcp.upstream.client import OnWait, deadline_paused

logger = logging.getLogger(__name__)

CONFIRM_KEY = "confirm_write"
"""The key of the person's confirmation in ``input_requests`` / ``input_responses`` (2026-07-28)."""


class Confirmation(BaseModel):
    """The form shown to the person before a write."""

    confirm: bool = Field(description="Write this change to Runloop?")


class _AskPerson(Exception):
    """Ends this round of a 2026-07-28 call with a question for the person (the call comes back with the answer)."""

    def __init__(self, message: str) -> None:
        super().__init__("confirmation needed")
        self.message = message


def _can_elicit(ctx: ToolContext) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _seen(message: str) -> str:
    """What ``request_state`` carries: which summary the person was shown (the SDK seals it)."""
    return hashlib.sha256(sendable(message).encode()).hexdigest()[:32]


def _answer(outcome: Any) -> Answer:
    """One word for an elicitation outcome (``ElicitResult`` on the wire, ``ElicitationResult`` from the SDK)."""
    if isinstance(outcome, AcceptedElicitation):
        return "accepted" if isinstance(outcome.data, Confirmation) and outcome.data.confirm else "declined"
    action = getattr(outcome, "action", None)
    if action == "accept":
        content = getattr(outcome, "content", None) or {}
        return "accepted" if content.get("confirm") is True else "declined"
    return "cancelled" if action == "cancel" else "declined" if action == "decline" else "error"


def _confirmer(ctx: ToolContext, state: AppState) -> Confirm | None:
    """How to ask the person on this connection, or None when the client cannot be asked."""
    if not _can_elicit(ctx):
        return None
    if ctx.protocol_version is not None and is_version_at_least(ctx.protocol_version, "2026-07-28"):

        async def confirm_in_rounds(message: str) -> Answer:
            response = (ctx.input_responses or {}).get(CONFIRM_KEY)
            if not isinstance(response, ElicitResult) or ctx.request_state != _seen(message):
                raise _AskPerson(message)  # first round, or the summary changed since the person saw it
            return _answer(response)

        return confirm_in_rounds

    async def confirm_mid_call(message: str) -> Answer:
        try:
            # The person's time to answer is theirs: it does not count against the call's --call-timeout.
            with deadline_paused(), anyio.fail_after(state.settings.confirm_timeout):
                return _answer(await ctx.elicit(sendable(message), Confirmation))
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # an elicitation that fails for any reason writes nothing
            logger.warning("confirmation_failed error=%s", type(exc).__name__, exc_info=True)
            return "error"

    return confirm_mid_call


def _audit(ctx: ToolContext, state: AppState) -> AuditContext:
    """Who asks, for the journal: the client's name and version, the transport, which HTTP bearer token (an id)."""
    try:
        params = ctx.session.client_params
    except Exception:  # no session information on this request
        params = None
    info = getattr(params, "client_info", None)
    token_id = None
    if state.settings.transport == "http" and state.settings.http_token is not None:
        # The guard let this request in, so it carried the configured token: record which one, never the token.
        scheme, _, given = ((ctx.headers or {}).get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            token_id = "sha256:" + hashlib.sha256(given.strip().encode()).hexdigest()[:12]
    return AuditContext(
        client_name=_label(getattr(info, "name", None)),
        client_version=_label(getattr(info, "version", None)),
        transport=state.settings.transport,
        http_token_id=token_id,
    )


def _label(value: Any) -> str | None:
    """A client-supplied name, made safe to store: a string, printable, at most 200 characters."""
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    return cleaned[:200] or None


async def update_scenario(
    state: AppState, args: UpdateScenarioInput, on_wait: OnWait, ctx: ToolContext
) -> dict[str, Any] | InputRequiredResult:
    client = state.require_client()
    request = UpdateRequest(
        scenario_id=args.scenario_id,
        changes=args.changes,
        restore=args.restore,
        preview_token=args.preview_token,
        max_tokens=max_tokens_of(state, args.max_tokens),
        audit=None if args.dry_run else _audit(ctx, state),
    )
    if args.dry_run:
        return await preview(client, state.previews, state.journal, request, on_wait=on_wait)
    try:
        return await apply(
            client,
            state.previews,
            state.journal,
            state.write_lock,
            request,
            confirm=_confirmer(ctx, state),
            on_wait=on_wait,
        )
    except _AskPerson as ask:
        question = ElicitRequest(
            params=ElicitRequestFormParams(
                message=sendable(ask.message), requested_schema=render_elicitation_schema(Confirmation)
            )
        )
        return InputRequiredResult(input_requests={CONFIRM_KEY: question}, request_state=_seen(ask.message))
