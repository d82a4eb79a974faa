"""update_scenario as a service: dry-run previews and guarded applies (read, check, journal, write, verify).

The tool layer only adds the human confirmation between :func:`prepare_apply` and
:func:`execute_apply`. Nothing here writes unless a valid preview token matches the changes and
the scenario is still the version the preview saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import PreviewRefused, UpstreamError, UpstreamStatusError, WriteOutcomeUnknown
from runloop_scenarios_mcp.services.budget import clip_to_fit
from runloop_scenarios_mcp.services.contracts import DiffEntry, UpdateScenarioResult
from runloop_scenarios_mcp.services.journal import Journal, JournalError, Outcome
from runloop_scenarios_mcp.services.update.plan import Plan, PreviewTokens, TokenClaims, diff, fingerprint, plan_update
from runloop_scenarios_mcp.upstream.client import OnWait, RunloopClient

logger = logging.getLogger(__name__)

HINT_PREVIEW = (
    "Nothing was written. Check diff and warnings; to apply, call update_scenario again with the same scenario_id "
    "and changes, dry_run=false and this preview_token before expires_at."
)


def _result(plan: Plan, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario_id": plan.scenario_id,
        "dry_run": True,
        "applied": False,
        "diff": plan.diff,
        "warnings": plan.warnings,
        "upstream_body": plan.body,
        "preview_token": None,
        "expires_at": None,
        "journal_entry": None,
        "scenario": None,
        "verified": None,
        "mismatches": [],
        "hint": HINT_PREVIEW,
    }
    base.update(values)
    return UpdateScenarioResult(**base).model_dump(mode="json")


async def preview(
    client: RunloopClient, tokens: PreviewTokens, scenario_id: str, changes: dict[str, Any], *, on_wait: OnWait | None
) -> dict[str, Any]:
    """The dry run: read, merge, validate, diff; a token for exactly this. Sends no POST, ever."""
    current = await client.get_scenario(scenario_id, on_wait=on_wait)
    plan = plan_update(current, changes)
    token, expires_at = tokens.issue(plan, changes)
    return _result(plan, preview_token=token, expires_at=expires_at)


@dataclass
class ApplyPlan:
    plan: Plan
    claims: TokenClaims


async def prepare_apply(
    client: RunloopClient,
    tokens: PreviewTokens,
    journal: Journal,
    scenario_id: str,
    changes: dict[str, Any],
    token: str | None,
    *,
    on_wait: OnWait | None,
) -> ApplyPlan:
    """Every check before a write: the token, then a fresh read to make sure nothing changed since the preview."""
    claims = tokens.check(token, scenario_id, changes)
    used = journal.used_token(claims.nonce)
    if used is not None:
        raise PreviewRefused("used", _USED if used == "applied" else _USED_UNKNOWN)
    try:
        current = await client.get_scenario(scenario_id, on_wait=on_wait)
    except UpstreamError as exc:  # the re-read before the write failed: nothing was sent
        raise _with_note(exc, _NOT_SENT) from None
    version = fingerprint(current)
    if version != claims.before:
        if version == claims.after:
            raise PreviewRefused("used", _ALREADY)
        raise PreviewRefused(
            "stale",
            "The scenario changed since the preview (someone or something else edited it), so this token no longer "
            "applies. Run the dry run again to see the current diff, then apply with the new token.",
        )
    return ApplyPlan(plan=plan_update(current, changes), claims=claims)


_USED = "This preview_token was already used: the change is applied. To change the scenario again, run a new dry run."
_USED_UNKNOWN = (
    "This preview_token was already used for a write whose outcome is unknown (the connection broke), so it cannot be "
    "used again. Run a new dry run: it shows the scenario as it is now and gives a new token."
)
_ALREADY = (
    "This preview_token was already used, or the same change was made another way: the scenario already looks as "
    "this preview's result, so nothing was written. To change it again, run a new dry run."
)


async def execute_apply(
    client: RunloopClient, journal: Journal, prepared: ApplyPlan, *, max_tokens: int, on_wait: OnWait | None
) -> dict[str, Any]:
    """Journal the previous version, POST the previewed body, and check the API's answer against the preview."""
    plan = prepared.plan
    entry = journal.prepare(plan.scenario_id, plan.before, plan.body, prepared.claims.nonce)  # fsync'd: before the POST
    notes: list[str] = []
    try:
        returned = await client.update_scenario(plan.scenario_id, plan.body, on_wait=on_wait)
    except UpstreamError as exc:
        outcome, state = await _after_failure(client, plan, on_wait, in_flight=isinstance(exc, WriteOutcomeUnknown))
        journal_note = _finish(journal, entry, outcome, state, type(exc).__name__)
        if outcome != "applied" or state is None:
            unchanged = outcome == "unknown" and state is not None and fingerprint(state) == fingerprint(plan.before)
            raise _failure(exc, "unknown_unchanged" if unchanged else outcome, entry, journal_note) from None
        returned = state
        # Name the error by status or kind only: upstream text is data and never goes into a hint.
        what = f"HTTP {exc.status_code}" if isinstance(exc, UpstreamStatusError) else type(exc).__name__
        notes.append(
            f"The API answered with an error ({what}), but reading the scenario again shows the change applied."
        )
        notes += [journal_note] if journal_note else []
    else:
        journal_note = _finish(journal, entry, "applied", returned, "")
        notes += [journal_note] if journal_note else []
    mismatches = _mismatches(plan, returned)
    shown, _, _ = clip_to_fit(returned, max(500, max_tokens // 2))
    hint = (
        f"Applied. To undo, preview and apply the diff's before values; the previous version is also in the undo "
        f"journal as {entry} (`{journal.undo_command(entry)}` prints the changes that restore it)."
    )
    if mismatches:
        hint = "Applied, but the API returned values that differ from the preview (see mismatches). " + hint
    if notes:
        hint = hint + " " + " ".join(notes)
    return _result(
        plan,
        dry_run=False,
        applied=True,
        journal_entry=entry,
        scenario=shown,
        verified=not mismatches,
        mismatches=mismatches,
        hint=hint,
    )


async def _after_failure(
    client: RunloopClient, plan: Plan, on_wait: OnWait | None, *, in_flight: bool
) -> tuple[Any, dict[str, Any] | None]:
    """After a failed POST, read the scenario again to report truthfully whether the write happened.

    ``in_flight``: the POST was sent and got no answer, so it may still land after this read; an
    unchanged scenario then proves nothing and the outcome stays unknown.
    """
    try:
        state = await client.get_scenario(plan.scenario_id, on_wait=on_wait)
    except UpstreamError:
        return "unknown", None
    version = fingerprint(state)
    if version == fingerprint(plan.before):
        return ("unknown" if in_flight else "failed"), state
    if not _mismatches(plan, state):
        return "applied", state
    return "unknown", state


def _finish(journal: Journal, entry: str, outcome: Outcome, state: dict[str, Any] | None, detail: str) -> str:
    """Record the outcome; a journal that fails now cannot undo the write, so say so instead of hiding it."""
    try:
        journal.finish(entry, outcome, after=state, detail=detail)
    except JournalError as exc:
        logger.error("journal_finish_failed entry=%s outcome=%s", entry, outcome)
        return (
            f"The outcome could not be recorded in the undo journal ({exc}); its entry {entry} holds the previous "
            "version and stays marked as prepared."
        )
    return ""


def _failure(exc: UpstreamError, outcome: str, entry: str, journal_note: str) -> UpstreamError:
    if outcome == "failed":
        state = (
            "The scenario is unchanged (checked by reading it again); nothing was written. The preview_token is still "
            "valid: apply again with it once the Runloop API accepts writes, or run a new dry run."
        )
    elif outcome == "unknown_unchanged":
        state = (
            "Reading the scenario again shows it unchanged so far, but the update was sent and may still land. Wait a "
            "moment, then run a new dry run (it shows the scenario as it is then) before writing again. The previous "
            f"version is in the undo journal as {entry}."
        )
    else:
        state = (
            "The scenario could not be confirmed unchanged: read it with get_scenario or run a new dry run before "
            f"writing again. Its previous version is in the undo journal as {entry}."
        )
    return _with_note(exc, state + (f" {journal_note}" if journal_note else ""))


_NOT_SENT = (
    "The scenario could not be read again just before the write, so nothing was written. The preview_token is still "
    "valid: apply again with it once the Runloop API answers."
)


def _with_note(exc: UpstreamError, note: str) -> UpstreamError:
    """The same kind of upstream error, its message followed by what happened to the scenario."""
    message = f"{exc} {note}"
    if isinstance(exc, UpstreamStatusError):
        return UpstreamStatusError(exc.status_code, message, detail=exc.detail)
    return type(exc)(message)


def _mismatches(plan: Plan, returned: dict[str, Any]) -> list[DiffEntry]:
    """Where the API's scenario differs from the preview's expected one (fields unknown to us included)."""
    return diff(plan.expected, returned)
