"""The guarded write of update_scenario, in one pass under the scenario's write lock.

Order: the token (everything checkable without I/O), single use, then under the lock: one fresh
read, the version check, the plan, the person's confirmation of that plan (when the client can
ask), the journal entry (committed), the POST, and a check of the API's answer against the plan.
Nothing is written unless a valid preview token matches the request and the scenario is still
the version the preview saw.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from runloop_scenarios_mcp.errors import (
    JournalError,
    PreviewRefused,
    UpstreamError,
    UpstreamStatusError,
    WriteOutcomeUnknown,
)
from runloop_scenarios_mcp.services.contracts import DiffEntry
from runloop_scenarios_mcp.services.journal import Journal, Outcome
from runloop_scenarios_mcp.services.update.diff_view import confirmation_text, show_entries
from runloop_scenarios_mcp.services.update.plan import Plan, diff, fingerprint
from runloop_scenarios_mcp.services.update.preview import UpdateRequest, head, resolve_changes
from runloop_scenarios_mcp.services.update.result import fit_update_result
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.upstream.client import OnWait, RunloopClient

logger = logging.getLogger(__name__)

Answer = Literal["accepted", "declined", "cancelled", "timeout", "error"]
Confirm = Callable[[str], Awaitable[Answer]]
"""Asks the person to confirm the given summary of the change; the tool layer implements it."""
WriteLock = Callable[[str, str], AbstractAsyncContextManager[Outcome | None]]
"""The scenario's write lock, yielding whether the preview token's nonce was used (read under the lock)."""

_REFUSALS: dict[str, str] = {
    "declined": (
        "The person declined this change in the confirmation dialog, so nothing was written. Do not apply this "
        "change again unless the person asks for it."
    ),
    "cancelled": (
        "The confirmation was cancelled, so nothing was written. Do not apply it again unless the person asks for it."
    ),
    "timeout": (
        "No answer to the confirmation came in time, so nothing was written. The preview_token stays valid until it "
        "expires, if the person still wants the change."
    ),
    "error": (
        "The confirmation could not be shown or its answer could not be read, so nothing was written. The "
        "preview_token stays valid until it expires; try again if the person still wants the change."
    ),
}
"""What an apply that the person did not confirm says, by the confirmation's outcome."""


async def apply(
    client: RunloopClient,
    tokens: PreviewTokens,
    journal: Journal,
    lock: WriteLock,
    request: UpdateRequest,
    *,
    confirm: Confirm | None,
    on_wait: OnWait | None,
) -> dict[str, Any]:
    """Check the token, then read, plan, confirm, journal and write once, under the scenario's write lock."""
    key = request.key()
    claims = tokens.open(request.preview_token, request.scenario_id, key)
    async with lock(request.scenario_id, claims.nonce) as used:  # single use read in the hop that takes the lock
        if used is not None:
            raise PreviewRefused("used", _USED if used == "applied" else _USED_UNKNOWN)
        try:
            current = await client.get_scenario(request.scenario_id, on_wait=on_wait)
        except UpstreamError as exc:  # the re-read before the write failed: nothing was sent
            raise _with_note(exc, _NOT_SENT) from None
        version = fingerprint(current)
        if not tokens.matches_version(claims, request.scenario_id, key, version):
            if tokens.matches_after(claims, version):
                raise PreviewRefused("used", _ALREADY)
            raise PreviewRefused(
                "stale",
                "The scenario changed since the preview (someone or something else edited it), so this token no "
                "longer applies. Nothing was written. Run the dry run again to see the current diff, then apply "
                "with the new token.",
            )
        plan, warnings = await resolve_changes(journal, request, current)
        if confirm is not None:
            answer = await confirm(confirmation_text(plan.scenario_id, plan.diff, warnings))
            if answer != "accepted":
                raise PreviewRefused("declined", _REFUSALS[answer])
        return await _write(client, journal, plan, warnings, claims.nonce, request, on_wait)


_USED = "This preview_token was already used: the change is applied. To change the scenario again, run a new dry run."
_USED_UNKNOWN = (
    "This preview_token was already used for a write whose outcome is unknown (the connection broke), so it cannot be "
    "used again. Run a new dry run: it shows the scenario as it is now and gives a new token."
)
_ALREADY = (
    "This preview_token was already used, or the same change was made another way: the scenario already looks as "
    "this preview's result, so nothing was written. To change it again, run a new dry run."
)
_NOT_SENT = (
    "The scenario could not be read again just before the write, so nothing was written. The preview_token is still "
    "valid: apply again with it once the Runloop API answers."
)


async def _write(
    client: RunloopClient,
    journal: Journal,
    plan: Plan,
    warnings: list[str],
    nonce: str,
    request: UpdateRequest,
    on_wait: OnWait | None,
) -> dict[str, Any]:
    """Journal the previous version, POST the planned body, and check the API's answer against the plan."""
    entry = await journal.prepare(plan, nonce, request.audit)  # committed (and the token claimed) before the POST
    notes: list[str] = []
    try:
        returned = await client.update_scenario(plan.scenario_id, plan.body, on_wait=on_wait)
    except UpstreamError as exc:
        outcome, state = await _after_failure(client, plan, on_wait, in_flight=isinstance(exc, WriteOutcomeUnknown))
        journal_note = await _finish(journal, plan.scenario_id, entry, outcome, state, type(exc).__name__)
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
        journal_note = await _finish(journal, plan.scenario_id, entry, "applied", returned, "")
        notes += [journal_note] if journal_note else []
    mismatches = _mismatches(plan, returned)
    hint = (
        f'Applied. To undo, call update_scenario with scenario_id="{plan.scenario_id}" and restore="{entry}" '
        "(a dry run first, as always)."
    )
    if mismatches:
        hint = "Applied, but the API returned values that differ from the preview (see mismatches). " + hint
    if notes:
        hint = hint + " " + " ".join(notes)
    top = head(plan, warnings, hint=hint, applied=True, journal_entry=entry, verified=not mismatches)
    return fit_update_result(top, show_entries(plan.diff), show_entries(mismatches), plan.body, request.max_tokens)


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


async def _finish(
    journal: Journal, scenario_id: str, entry: str, outcome: Outcome, state: dict[str, Any] | None, detail: str
) -> str:
    """Record the outcome; a journal that fails now cannot undo the write, so say so instead of hiding it."""
    try:
        # The last step under the write lock: the lock is released with the outcome, in the same hop.
        await journal.finish(entry, outcome, after=state, detail=detail, release=scenario_id)
    except JournalError as exc:
        logger.error("journal_finish_failed entry=%s outcome=%s", entry, outcome)
        return (
            f"The outcome could not be recorded in the undo journal ({exc}); its entry {entry} holds the previous "
            "version and stays marked as prepared."
        )
    return ""


def _refused_by_api(exc: UpstreamError) -> bool:
    """The API answered the write with a client error that retrying the same body cannot fix."""
    return isinstance(exc, UpstreamStatusError) and 400 <= exc.status_code < 500 and exc.status_code not in (408, 429)


def _failure(exc: UpstreamError, outcome: str, entry: str, journal_note: str) -> UpstreamError:
    if outcome == "failed" and _refused_by_api(exc):
        state = (
            "The Runloop API refused this change, so nothing was written (the scenario is unchanged, checked by "
            "reading it again). Fix changes as the API's reason says and run a new dry run; this preview_token will "
            "not make the API accept the same change."
        )
    elif outcome == "failed":
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


def _with_note(exc: UpstreamError, note: str) -> UpstreamError:
    """The same kind of upstream error, its message followed by what happened to the scenario."""
    message = f"{exc} {note}"
    if isinstance(exc, UpstreamStatusError):
        return UpstreamStatusError(exc.status_code, message, detail=exc.detail)
    return type(exc)(message)


def _mismatches(plan: Plan, returned: dict[str, Any]) -> list[DiffEntry]:
    """Where the API's scenario differs from the preview's expected one (fields unknown to us included)."""
    return diff(plan.expected, returned)
