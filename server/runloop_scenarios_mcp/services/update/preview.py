"""The dry run of update_scenario: read, expand, merge, validate, diff, and a token for exactly this. No POST, ever."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument, InvalidChanges
from runloop_scenarios_mcp.services.journal import AuditContext, Journal
from runloop_scenarios_mcp.services.update.diff_view import show_entries
from runloop_scenarios_mcp.services.update.plan import Plan, digest, fingerprint, plan_update
from runloop_scenarios_mcp.services.update.restore import restore_changes
from runloop_scenarios_mcp.services.update.result import fit_update_result
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.upstream.client import OnWait, RunloopClient
from runloop_scenarios_mcp.upstream.models import UPDATE_FIELD_NAMES

HINT_PREVIEW = (
    "Nothing was written. Check diff and warnings; to apply, call update_scenario again with the same scenario_id "
    "and {what}, dry_run=false and this preview_token before expires_at."
)


@dataclass(frozen=True)
class UpdateRequest:
    """One update_scenario call, as the service sees it."""

    scenario_id: str
    changes: dict[str, Any] | None
    restore: str | None
    preview_token: str | None
    max_tokens: int
    audit: AuditContext | None = None
    """Who asks (client, transport, HTTP token id): recorded with the journal entry of an apply."""

    def key(self) -> str:
        """What the preview token binds: the exact changes, or the journal entry to restore."""
        self.check()
        return digest({"restore": self.restore} if self.restore is not None else {"changes": self.changes})

    def check(self) -> None:
        if (self.changes is None) == (self.restore is None):
            raise InvalidArgument(
                'Send exactly one of changes (the fields to change, e.g. {"metadata": {"owner": "team-a"}}) or '
                "restore (a journal entry id from an apply result, to put back the version it saved)."
            )


async def resolve_changes(journal: Journal, request: UpdateRequest, current: dict[str, Any]) -> tuple[Plan, list[str]]:
    """The plan for this request against ``current`` (checked by ``request.key()`` first); a restore first becomes
    the changes that undo its entry."""
    if request.restore is not None:
        changes, notes = await restore_changes(journal, request.restore, current)
        if not changes:
            raise InvalidChanges(
                f"The scenario already holds the version journal entry {request.restore} saved"
                + (" (as far as the Runloop API can restore it)" if notes else "")
                + ", so there is nothing to restore. Nothing was written."
            )
        plan = plan_update(current, changes)
        return plan, [*notes, *plan.warnings]
    assert request.changes is not None
    plan = plan_update(current, request.changes)
    return plan, plan.warnings


def changed_fields(plan: Plan) -> list[str]:
    """The get_scenario names of the top-level fields the write sends."""
    return [read for read, sent in UPDATE_FIELD_NAMES.items() if sent in plan.body]


def head(
    plan: Plan,
    warnings: list[str],
    *,
    hint: str,
    preview_token: str | None = None,
    expires_at: str | None = None,
    applied: bool = False,
    journal_entry: str | None = None,
    verified: bool | None = None,
) -> dict[str, Any]:
    """The always-whole part of a result, in the order an agent reads it: token and next step first."""
    return {
        "preview_token": preview_token,
        "expires_at": expires_at,
        "hint": hint,
        "scenario_id": plan.scenario_id,
        "dry_run": journal_entry is None,
        "applied": applied,
        "journal_entry": journal_entry,
        "changed_fields": changed_fields(plan),
        "warnings": [w if len(w) <= 400 else w[:399] + "…" for w in warnings[:8]],
        "verified": verified,
    }


async def preview(
    client: RunloopClient,
    tokens: PreviewTokens,
    journal: Journal,
    request: UpdateRequest,
    *,
    on_wait: OnWait | None,
) -> dict[str, Any]:
    """The dry run: read, merge, validate, diff; a token for exactly this. Sends no POST, ever."""
    key = request.key()
    current = await client.get_scenario(request.scenario_id, on_wait=on_wait)
    plan, warnings = await resolve_changes(journal, request, current)
    token, expires_at = tokens.issue(plan.scenario_id, key, fingerprint(plan.before), fingerprint(plan.expected))
    what = f'restore="{request.restore}"' if request.restore is not None else "changes"
    top = head(plan, warnings, hint=HINT_PREVIEW.format(what=what), preview_token=token, expires_at=expires_at)
    return fit_update_result(top, show_entries(plan.diff), [], plan.body, request.max_tokens)
