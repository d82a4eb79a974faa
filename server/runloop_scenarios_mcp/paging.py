"""list_scenarios as a service: project scenarios, pack them into a token budget, hand out cursors.

Upstream pages are fetched lazily, at most :data:`MAX_UPSTREAM_REQUESTS` per call. A page holds
whole scenarios while they fit; a scenario too big alone is clipped, never dropped. The cursor
names the last scenario returned, so the next call resumes exactly after it (the API's own
``starting_after`` accepts any scenario id), whatever the upstream page boundaries were.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from .budget import Clip, clip_to_fit, count_json, usable
from .contracts import ClippedField, ListScenariosResult
from .cursor import CursorCodec, CursorState
from .errors import InvalidArgument, InvalidCursor
from .models import SCENARIO_FIELDS
from .runloop import ListQuery, OnWait, RunloopClient

MAX_UPSTREAM_REQUESTS = 4
"""Upstream pages one call may fetch; bounds the latency and load of a single tool call."""
MAX_UPSTREAM_PAGE = 200
EXCERPT_CHARS = 200
SUMMARY_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "validation_type",
    "problem_statement_excerpt",
    "scorers",
    "metadata",
)
SELECTABLE_FIELDS: tuple[str, ...] = tuple(dict.fromkeys((*SCENARIO_FIELDS, *SUMMARY_FIELDS)))
FILTER_NAMES: tuple[str, ...] = ("name", "benchmark_id", "validation_type", "search")
_SAFETY = 0.98
"""Pack to this share of the budget by summed per-item counts; the exact count of the whole page decides."""


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str | None:
    """The start of a problem statement, whitespace collapsed, with an ellipsis when cut."""
    if not isinstance(text, str):
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _scorers(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    contract = scenario.get("scoring_contract")
    functions = contract.get("scoring_function_parameters") if isinstance(contract, dict) else None
    out: list[dict[str, Any]] = []
    for function in functions if isinstance(functions, list) else []:
        if isinstance(function, dict):
            scorer = function.get("scorer")
            kind = scorer.get("type") if isinstance(scorer, dict) else None
            out.append({"name": function.get("name"), "type": kind, "weight": function.get("weight")})
    return out


def summarize(scenario: dict[str, Any]) -> dict[str, Any]:
    """The lean view: enough to choose a scenario, a fraction of its tokens."""
    context = scenario.get("input_context")
    statement = context.get("problem_statement") if isinstance(context, dict) else None
    return {
        "id": scenario["id"],
        "name": scenario.get("name"),
        "status": scenario.get("status", "active"),
        "validation_type": scenario.get("validation_type"),
        "problem_statement_excerpt": excerpt(statement),
        "scorers": _scorers(scenario),
        "metadata": scenario.get("metadata", {}),
    }


def normalize_fields(fields: list[str] | None) -> list[str] | None:
    """None for the summary, ["*"] for everything, else the requested fields (id first, no repeats)."""
    if fields is None:
        return None
    if not fields:
        raise InvalidArgument('fields is empty: omit it for the summary, pass ["*"] for every field, or name fields')
    if "*" in fields:
        if len(fields) > 1:
            raise InvalidArgument('fields: "*" means every field and cannot be combined with names; pass ["*"] alone')
        return ["*"]
    unknown = [f for f in fields if f not in SELECTABLE_FIELDS]
    if unknown:
        raise InvalidArgument(
            f"fields: unknown field name(s) {unknown[:5]!r}. Valid names: {', '.join(SELECTABLE_FIELDS)}, "
            'or ["*"] for every field.'
        )
    return list(dict.fromkeys(["id", *fields]))


def project(scenario: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The part of a scenario the caller asked for (absent fields stay absent)."""
    if fields is None:
        return summarize(scenario)
    if fields == ["*"]:
        return scenario
    summary: dict[str, Any] | None = None
    out: dict[str, Any] = {}
    for name in fields:
        if name in scenario:
            out[name] = scenario[name]
        elif name in SUMMARY_FIELDS:
            summary = summary or summarize(scenario)
            out[name] = summary[name]
    return out


@dataclass(frozen=True)
class ListRequest:
    filters: dict[str, str]
    fields: list[str] | None
    max_tokens: int
    limit: int | None
    include_total_count: bool
    cursor: str | None


def resolve_query(request: ListRequest, codec: CursorCodec) -> tuple[dict[str, Any], str | None]:
    """The query to run (filters and fields) and where to start, checking a cursor against the arguments."""
    query: dict[str, Any] = {"filters": request.filters, "fields": request.fields}
    if request.cursor is None:
        return query, None
    state: CursorState = codec.decode(request.cursor)
    bound = state.query
    given_filters = request.filters
    if (given_filters and given_filters != bound.get("filters")) or (
        request.fields is not None and request.fields != bound.get("fields")
    ):
        raise InvalidCursor(
            "cursor belongs to a query with other filters or fields. Pass the cursor alone (it remembers its "
            "filters and fields) or with exactly the same ones, or drop the cursor to start a new listing."
        )
    return bound, state.after


def _hint(*, has_more: bool, returned: int, clipped: bool, fields: list[str] | None) -> str:
    if returned == 0:
        return (
            "No scenario matches. name must match exactly (case-sensitive); use search for a partial match, "
            "or drop filters."
        )
    parts: list[str] = []
    if clipped:
        parts.append(
            "Long strings were clipped (see clipped): read one with get_scenario(scenario_id, field=path, "
            "offset=returned_length)."
        )
    if has_more:
        narrow = "fields" if fields == ["*"] else "name, search, benchmark_id or validation_type"
        parts.append(
            f"More remain: call list_scenarios with cursor=next_cursor for the next page, or narrow with {narrow}."
        )
    else:
        parts.append("This is the last page.")
    return " ".join(parts)


def _result(
    items: list[dict[str, Any]],
    clips: list[ClippedField],
    *,
    has_more: bool,
    next_cursor: str | None,
    total_count: int | None,
    max_tokens: int,
    fields: list[str] | None,
) -> dict[str, Any]:
    result = ListScenariosResult(
        returned=len(items),
        has_more=has_more,
        next_cursor=next_cursor,
        total_count=total_count,
        estimated_tokens=0,
        max_tokens=max_tokens,
        hint=_hint(has_more=has_more, returned=len(items), clipped=bool(clips), fields=fields),
        clipped=clips,
        scenarios=items,
    ).model_dump(mode="json")
    # The count includes its own digits: settle it (a number's width changes by at most one token).
    result["estimated_tokens"] = count_json(result) + 1
    return result


async def list_page(
    client: RunloopClient, request: ListRequest, codec: CursorCodec, *, on_wait: OnWait | None = None
) -> dict[str, Any]:
    """One budgeted page of scenarios as the list_scenarios result (a JSON-ready dict)."""
    query, after = resolve_query(request, codec)
    filters: dict[str, str] = query.get("filters") or {}
    fields: list[str] | None = query.get("fields")
    budget = usable(request.max_tokens)
    per_item_guess = 150 if fields is None else 1500
    page_size = min(MAX_UPSTREAM_PAGE, max(5, math.ceil(budget / per_item_guess * 1.3) + 1))
    if request.limit is not None:
        page_size = min(page_size, request.limit)

    buffer: deque[dict[str, Any]] = deque()
    upstream_after = after
    upstream_more = True
    total_count: int | None = None
    requests = 0
    scenario_by_id: dict[str, dict[str, Any]] = {}

    async def refill() -> None:
        nonlocal upstream_after, upstream_more, total_count, requests
        page = await client.list_scenarios(
            ListQuery(
                **filters,
                limit=page_size,
                starting_after=upstream_after,
                include_total_count=request.include_total_count and requests == 0,
            ),
            on_wait=on_wait,
        )
        requests += 1
        if request.include_total_count and total_count is None:
            total_count = page["total_count"]
        scenarios: list[dict[str, Any]] = page["scenarios"]
        buffer.extend(scenarios)
        scenario_by_id.update((scenario["id"], scenario) for scenario in scenarios)
        upstream_more = bool(page["has_more"]) and bool(scenarios)
        if scenarios:
            upstream_after = scenarios[-1]["id"]

    def cursor_for(last_id: str) -> str:
        return codec.encode(CursorState(after=last_id, query={"filters": filters, "fields": fields}))

    items: list[dict[str, Any]] = []
    item_tokens: list[int] = []
    ids: list[str] = []
    clips: list[ClippedField] = []
    envelope = 0
    while request.limit is None or len(items) < request.limit:
        if not buffer:
            if not upstream_more or requests >= MAX_UPSTREAM_REQUESTS:
                break
            await refill()
            continue
        scenario = buffer[0]
        item = project(scenario, fields)
        if not items:
            envelope = count_json(
                _result(
                    [],
                    [],
                    has_more=True,
                    next_cursor=cursor_for(scenario["id"]),
                    total_count=total_count,
                    max_tokens=request.max_tokens,
                    fields=fields,
                )
            )
        tokens = count_json(item)
        if envelope + sum(item_tokens) + len(items) + tokens > budget * _SAFETY:
            if items:
                break  # the next page starts with this one, whole
            item, clips, tokens = _clip_alone(item, scenario["id"], budget - envelope)
        items.append(item)
        item_tokens.append(tokens)
        ids.append(scenario["id"])
        buffer.popleft()
        if clips:
            break

    given_back = False
    for _ in range(8):
        has_more = bool(buffer) or upstream_more or given_back
        result = _result(
            items,
            clips,
            has_more=has_more,
            next_cursor=cursor_for(ids[-1]) if has_more and ids else None,
            total_count=total_count,
            max_tokens=request.max_tokens,
            fields=fields,
        )
        excess = result["estimated_tokens"] - budget
        if excess <= 0:
            return result
        if len(items) > 1:  # the summed estimate was a little short: the last one goes to the next page
            items.pop()
            ids.pop()
            given_back = True
        else:  # one scenario, clipped: clip it harder, from the original
            item, clips, _ = _clip_alone(project(scenario_by_id[ids[0]], fields), ids[0], budget - envelope - excess)
            items[0] = item
    raise RuntimeError("could not pack a page within the budget")  # pragma: no cover - budgets >= 500 always fit


def _clip_alone(item: dict[str, Any], scenario_id: str, room: int) -> tuple[dict[str, Any], list[ClippedField], int]:
    """Clip a scenario that does not fit alone into ``room`` tokens, leaving room for the clip notes and hint."""
    room -= 48  # the longer hint of a clipped page
    clipped, made, tokens = clip_to_fit(item, room)
    notes = [_note(scenario_id, clip) for clip in made]
    notes_tokens = count_json([n.model_dump() for n in notes]) if notes else 0
    if tokens + notes_tokens > room:
        clipped, made, tokens = clip_to_fit(item, room - notes_tokens)
        notes = [_note(scenario_id, clip) for clip in made]
    return clipped, notes, tokens


def _note(scenario_id: str, clip: Clip) -> ClippedField:
    return ClippedField(
        id=scenario_id, path=clip.path, original_length=clip.original_length, returned_length=clip.returned_length
    )
