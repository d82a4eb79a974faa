"""list_scenarios as a service: project scenarios, pack them into a token budget, hand out cursors.

Upstream pages are fetched lazily, at most :data:`MAX_UPSTREAM_REQUESTS` per call. A page holds
whole scenarios while they fit; a scenario too big alone is clipped, never dropped. The cursor
names the last scenario returned, so the next call resumes exactly after it (the API's own
``starting_after`` accepts any scenario id), whatever the upstream page boundaries were.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument, InvalidCursor, UpstreamStatusError
from runloop_scenarios_mcp.services.budget import (
    Clip,
    budget_for,
    clip_to_fit,
    count_json,
    estimate_json,
    to_json,
    usable,
)
from runloop_scenarios_mcp.services.contracts import ClippedField, ListScenariosResult
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.upstream.client import ListQuery, OnWait, RunloopClient
from runloop_scenarios_mcp.upstream.models import SCENARIO_FIELDS

MAX_UPSTREAM_REQUESTS = 4
"""Upstream pages one call may fetch; bounds the latency and load of a single tool call."""
MAX_UPSTREAM_PAGE = 200
EXCERPT_CHARS = 100
"""Enough to recognise a problem statement (its title line and the start of a sentence) at about 25 tokens."""
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
_TOP_UPS = 2
"""Times a page that fits by its exact count may take more scenarios into the room it has left."""


class _Estimate:
    """Quick token estimates for packing: bytes of compact JSON times the tokens-per-byte of the first item.

    The first item is tokenized (o200k_base); the rest are scaled from their size, which costs nothing.
    The exact count of the whole page (both tokenizers) decides what is returned, so an estimate only
    needs to be close, not safe.
    """

    def __init__(self) -> None:
        self._per_byte: float | None = None

    def of(self, item: Any) -> int:
        size = len(to_json(item).encode())
        if self._per_byte is None:
            exact = estimate_json(item)
            self._per_byte = exact / max(size, 1)
            return exact
        return math.ceil(size * self._per_byte)


_LARGE_FIELDS = frozenset({"input_context", "scoring_contract", "reference_output", "environment"})
"""Fields that can take thousands of tokens; with none of them a scenario is a few dozen tokens."""
FILTER_NAMES: tuple[str, ...] = ("name", "benchmark_id", "validation_type", "search")


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
            out.append({"name": function.get("name"), "type": kind})
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
            f"fields: unknown field name(s) {[name[:40] for name in unknown[:5]]!r}. "
            f"Valid names: {', '.join(SELECTABLE_FIELDS)}, "
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
        elif name not in SCENARIO_FIELDS:  # a derived summary field (problem_statement_excerpt, scorers)
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


def _hint(*, has_more: bool, returned: int, clipped: bool, fields: list[str] | None, resumed: bool) -> str:
    if returned == 0:
        if resumed:
            return "No more scenarios: this listing is complete."
        return (
            "No scenario matches. name must match exactly (case-sensitive); use search for a partial match, "
            "or drop filters."
        )
    parts: list[str] = []
    if clipped:
        parts.append("Long strings were clipped: read the rest with get_scenario(scenario_id, field=path, offset).")
    if has_more:
        narrow = "fewer fields" if fields == ["*"] else "filters"
        parts.append(f"More remain: pass cursor=next_cursor, or narrow with {narrow}.")
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
    resumed: bool,
) -> dict[str, Any]:
    result = ListScenariosResult(
        returned=len(items),
        has_more=has_more,
        next_cursor=next_cursor,
        total_count=total_count,
        estimated_tokens=0,
        max_tokens=max_tokens,
        hint=_hint(has_more=has_more, returned=len(items), clipped=bool(clips), fields=fields, resumed=resumed),
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
    per_item_guess = 150 if fields is None else 1500 if set(fields) & _LARGE_FIELDS or fields == ["*"] else 60
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
        resuming = requests == 0 and after is not None
        try:
            listing = await client.list_scenarios(
                ListQuery(
                    **filters,
                    limit=page_size,
                    starting_after=upstream_after,
                    include_total_count=request.include_total_count and requests == 0,
                ),
                on_wait=on_wait,
            )
        except UpstreamStatusError as exc:
            # What the API does with a starting_after it no longer lists is undocumented: an error is one answer.
            if resuming and after is not None and exc.status_code in (400, 404, 422):
                raise _lost_position(after) from None
            raise
        requests += 1
        if request.include_total_count and total_count is None:
            total_count = listing["total_count"]
        scenarios: list[dict[str, Any]] = listing["scenarios"]
        buffer.extend(scenarios)
        scenario_by_id.update((scenario["id"], scenario) for scenario in scenarios)
        upstream_more = bool(listing["has_more"]) and bool(scenarios)
        if scenarios:
            upstream_after = scenarios[-1]["id"]
        elif resuming and after is not None and await _anchor_gone(client, after, on_wait):
            raise _lost_position(after)  # an empty page is the other answer: not the end of the listing

    def cursor_for(last_id: str) -> str:
        return codec.encode(CursorState(after=last_id, query={"filters": filters, "fields": fields}))

    def page(items: list[dict[str, Any]], ids: list[str], clips: list[ClippedField], has_more: bool) -> dict[str, Any]:
        return _result(
            items,
            clips,
            has_more=has_more,
            next_cursor=cursor_for(ids[-1]) if has_more and ids else None,
            total_count=total_count,
            max_tokens=request.max_tokens,
            fields=fields,
            resumed=after is not None,
        )

    items: list[dict[str, Any]] = []
    ids: list[str] = []
    sizes: list[int] = []  # each item's estimated tokens, separator included
    clips: list[ClippedField] = []
    estimate = _Estimate()
    used = 0  # envelope + items + separators, by estimates (the whole page is counted exactly below)

    async def take() -> bool:
        """Move the next scenario onto the page if its estimate fits (or it is the first, clipped if need be)."""
        nonlocal used, clips
        while not buffer:
            if not upstream_more or requests >= MAX_UPSTREAM_REQUESTS:
                return False
            await refill()
        scenario = buffer[0]
        item = project(scenario, fields)
        if not items:
            used = count_json(page([{}], [scenario["id"]], [], True)) - 1  # the envelope, without "{}"
        tokens = estimate.of(item) + 1
        if used + tokens > budget:
            if items:
                return False  # the next page starts with this one, whole
            item, clips = _clip_alone(item, scenario["id"], budget - used, page)
        items.append(item)
        ids.append(scenario["id"])
        sizes.append(tokens)
        used += tokens
        buffer.popleft()
        return not clips

    def give_back(excess: int) -> None:
        """Return the last scenarios to the buffer until their estimates cover ``excess`` (at least one)."""
        nonlocal used
        freed = 0
        while len(items) > 1 and (freed < excess or not freed):
            items.pop()
            buffer.appendleft(scenario_by_id[ids.pop()])
            freed += sizes.pop()
        used -= freed

    while (request.limit is None or len(items) < request.limit) and await take():
        pass

    shrunk, top_ups = False, 0
    while True:  # estimates are close: one or two exact counts settle the page
        result = page(items, ids, clips, bool(buffer) or upstream_more)
        excess = result["estimated_tokens"] - budget
        if excess > 0:
            if len(items) == 1:
                break  # one scenario over on its own: clip it harder below
            give_back(excess)  # removes at least one scenario, so this ends
            shrunk = True
            continue
        room_left = budget - result["estimated_tokens"]
        if not items or clips or shrunk or top_ups == _TOP_UPS or room_left < 2 * sum(sizes) / len(sizes):
            return result  # (less room than two average scenarios: an exact recount would rarely gain one)
        top_ups += 1
        used, count = result["estimated_tokens"], len(items)  # exact: top up what the exact count leaves room for
        while (request.limit is None or len(items) < request.limit) and await take():
            pass
        if len(items) == count:
            return result
    room = budget - used + (count_json(items[0]) + 1 if len(items) == 1 else 0)
    for _ in range(4):  # one scenario, clipped: clip it harder, from the original
        result = page(items, ids, clips, bool(buffer) or upstream_more)
        excess = result["estimated_tokens"] - budget
        if excess <= 0:
            return result
        room -= excess + 4
        items[0], clips = _clip_alone(project(scenario_by_id[ids[0]], fields), ids[0], room, page)
    alone = project(scenario_by_id[ids[0]], fields)
    smallest, notes = _clip_alone(alone, ids[0], 0, page)
    needed = budget_for(count_json(page([smallest], ids, notes, True)) + 8)
    raise InvalidArgument(
        f"max_tokens={request.max_tokens} is too small for scenario {ids[0]} with these fields, even with its long "
        f"strings clipped: pass max_tokens={needed} or more with the same cursor, or pass fewer fields."
    )


def _lost_position(after: str) -> InvalidCursor:
    return InvalidCursor(
        f"This cursor continues after scenario {after}, which the Runloop API no longer lists (archived, or changed "
        "so it no longer matches the filters), so it cannot continue from there. Start the listing again without "
        "cursor, with the same filters and fields, to see the remaining scenarios."
    )


async def _anchor_gone(client: RunloopClient, scenario_id: str, on_wait: OnWait | None) -> bool:
    """Whether the scenario a cursor continues after has left the listings (archived or gone)."""
    try:
        scenario = await client.get_scenario(scenario_id, on_wait=on_wait)
    except UpstreamStatusError as exc:
        return exc.status_code == 404
    return scenario.get("status") == "archived"


def _clip_alone(
    item: dict[str, Any],
    scenario_id: str,
    room: int,
    page: Callable[[list[dict[str, Any]], list[str], list[ClippedField], bool], dict[str, Any]],
) -> tuple[dict[str, Any], list[ClippedField]]:
    """Clip a scenario that does not fit alone into ``room`` tokens, counting its clip notes and the longer hint."""
    base = count_json(page([{}], [scenario_id], [], True))

    def overhead(made: list[Clip]) -> int:
        if not made:
            return 0
        return count_json(page([{}], [scenario_id], [clip_note(scenario_id, clip) for clip in made], True)) - base + 1

    clipped, made = clip_to_fit(item, room, overhead=overhead)[:2]
    return clipped, [clip_note(scenario_id, clip) for clip in made]


def clip_note(scenario_id: str, clip: Clip) -> ClippedField:
    """The ``clipped`` entry that tells an agent where a string was shortened and how long it really is."""
    return ClippedField(
        id=scenario_id, path=clip.path, original_length=clip.original_length, returned_length=clip.returned_length
    )
