"""get_scenario as a service: one scenario in full within a budget, long strings readable in slices."""

from __future__ import annotations

from typing import Any

import anyio

from runloop_scenarios_mcp.errors import InvalidArgument, shown
from runloop_scenarios_mcp.services.budget import MAX_TOKEN_BYTES, count_json, lookup_path, to_json, usable, utf8_size
from runloop_scenarios_mcp.services.contracts import ClippedField, GetScenarioResult, StringSlice
from runloop_scenarios_mcp.services.listing.fitting import fit_alone
from runloop_scenarios_mcp.services.sendable import has_lone_surrogate, sendable
from runloop_scenarios_mcp.upstream.client import OnWait, RunloopClient

_HINT_FULL = "This is the whole scenario. To change it, call update_scenario with dry_run=true first."
_HINT_CLIPPED = (
    "Long strings were clipped or values left out (see clipped). Read one whole with get_scenario(scenario_id, "
    "field=path, offset=returned_length), then offset=next_offset until next_offset is null."
)
_HINT_SLICE_MORE = "More of this string remains: call again with offset=next_offset."
_HINT_SLICE_END = "This slice reaches the end of the string."


def _result(
    *,
    scenario: dict[str, Any] | None,
    slice_: StringSlice | None,
    clips: list[ClippedField],
    max_tokens: int,
    hint: str,
) -> dict[str, Any]:
    result = GetScenarioResult(
        estimated_tokens=0, max_tokens=max_tokens, hint=hint, clipped=clips, slice=slice_, scenario=scenario
    ).model_dump(mode="json")
    result["estimated_tokens"] = count_json(result) + 1
    return result


async def get_page(
    client: RunloopClient,
    scenario_id: str,
    *,
    max_tokens: int,
    field: str | None,
    offset: int,
    on_wait: OnWait | None = None,
) -> dict[str, Any]:
    """The get_scenario result: the scenario (clipped to fit), or one slice of one of its strings."""
    scenario = await client.get_scenario(scenario_id, on_wait=on_wait)
    text = to_json(scenario)
    if has_lone_surrogate(text):  # shown only, never written: what UTF-8 cannot carry is shown as U+FFFD
        scenario = sendable(scenario)
        text = to_json(scenario)
    if field is not None:
        return _slice(scenario, field, offset, max_tokens)
    size = utf8_size(text)
    if size > OFF_LOOP_BYTES:  # counting a few megabytes takes seconds: keep the event loop serving meanwhile
        return await anyio.to_thread.run_sync(_fit_whole, scenario, scenario_id, max_tokens, size)
    return _fit_whole(scenario, scenario_id, max_tokens, size)


OFF_LOOP_BYTES = 256 * 1024
"""Scenarios larger than this (as JSON) are fitted in a worker thread."""


def _fit_whole(scenario: dict[str, Any], scenario_id: str, max_tokens: int, size: int) -> dict[str, Any]:
    limit = usable(max_tokens)
    if size <= MAX_TOKEN_BYTES * limit:  # else it cannot fit whole: not counted whole (see clip_to_fit)
        result = _result(scenario=scenario, slice_=None, clips=[], max_tokens=max_tokens, hint=_HINT_FULL)
        if result["estimated_tokens"] <= limit:
            return result
    sid = str(scenario.get("id", scenario_id))

    def cost(notes: list[ClippedField]) -> int:
        return count_json(_result(scenario={}, slice_=None, clips=notes, max_tokens=max_tokens, hint=_HINT_CLIPPED)) + 1

    # Long strings clipped, and when that is not enough, whole values left out behind a marker (listed in
    # clipped with left_out): every budget the server accepts shows every scenario.
    room = limit + 1  # the scenario replaces "{}" (one token) in the envelope that cost counts
    while True:
        shown_scenario, notes = fit_alone(scenario, sid, room, cost)
        result = _result(scenario=shown_scenario, slice_=None, clips=notes, max_tokens=max_tokens, hint=_HINT_CLIPPED)
        excess = result["estimated_tokens"] - limit
        if excess <= 0 or room <= 0:
            return result
        room -= excess + 2


_EVERY_FIELD = "*"
"""The path of the note when every field but id was left out (services/listing/fitting.py): reads them all."""


def _slice(scenario: dict[str, Any], field: str, offset: int, max_tokens: int) -> dict[str, Any]:
    try:
        value = lookup_path(scenario, field)
    except KeyError:
        if field == _EVERY_FIELD:
            value = {key: item for key, item in scenario.items() if key != "id"}
        else:
            raise InvalidArgument(
                f"field {shown(field)} does not exist in this scenario. Pass a dotted path to a string, as listed "
                "in clipped (e.g. input_context.problem_statement, reference_output)."
            ) from None
    if isinstance(value, dict | list):
        value = to_json(value)  # a value left out whole is read as its compact JSON (its length in clipped)
    elif not isinstance(value, str):
        raise InvalidArgument(
            f"field {shown(field)} is a JSON {type(value).__name__}, not a string, object or array; field reads "
            "those in slices. Omit field to get the whole scenario."
        )
    if offset > len(value):
        raise InvalidArgument(
            f"offset {offset} is past the end of {shown(field)} ({len(value)} characters); use 0..{len(value)}"
        )

    def build(length: int) -> dict[str, Any]:
        end = offset + length
        next_offset = end if end < len(value) else None
        piece = StringSlice(
            field=field, offset=offset, text=value[offset:end], total_length=len(value), next_offset=next_offset
        )
        hint = _HINT_SLICE_MORE if next_offset is not None else _HINT_SLICE_END
        return _result(scenario=None, slice_=piece, clips=[], max_tokens=max_tokens, hint=hint)

    limit = usable(max_tokens)
    remaining = len(value) - offset
    result = build(remaining)
    if result["estimated_tokens"] <= limit:
        return result
    # Largest length that fits: estimate from the token density, then correct by binary search.
    low, high = 0, remaining
    guess = int(remaining * (limit - 150) / max(result["estimated_tokens"], 1))
    best = build(0)
    if best["estimated_tokens"] > limit:  # pragma: no cover - the envelope alone always fits 500 tokens
        raise InvalidArgument(f"max_tokens={max_tokens} is too small for a slice; raise it")
    probe = max(1, min(guess, remaining))
    for _ in range(24):
        if low >= high:
            break
        candidate = build(probe)
        if candidate["estimated_tokens"] <= limit:
            low, best = probe, candidate
        else:
            high = probe - 1
        probe = (low + high + 1) // 2
    return best
