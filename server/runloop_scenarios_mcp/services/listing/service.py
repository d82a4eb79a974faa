"""list_scenarios as a service: resolve the query and the cursor, then pack one page from the upstream feed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import InvalidCursor
from runloop_scenarios_mcp.services.budget import usable
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.services.listing.feed import MAX_UPSTREAM_PAGE, UpstreamFeed
from runloop_scenarios_mcp.services.listing.packer import Envelope, PagePacker
from runloop_scenarios_mcp.services.listing.text import TextQuery
from runloop_scenarios_mcp.upstream.client import OnWait, RunloopClient

_LARGE_FIELDS = frozenset({"input_context", "scoring_contract", "reference_output", "environment"})
"""Fields that can take thousands of tokens; with none of them a scenario is a few dozen tokens."""


@dataclass(frozen=True)
class ListRequest:
    filters: dict[str, str]
    fields: list[str] | None
    max_tokens: int
    limit: int | None
    include_total_count: bool
    cursor: str | None
    text: str | None = None


def resolve_query(request: ListRequest, codec: CursorCodec) -> tuple[dict[str, Any], str | None]:
    """The query to run (filters, fields, text) and where to start, checking a cursor against the arguments."""
    query: dict[str, Any] = {"filters": request.filters, "fields": request.fields}
    if request.text is not None:
        query["text"] = request.text
    if request.cursor is None:
        return query, None
    state: CursorState = codec.decode(request.cursor)
    bound = state.query
    given_filters = request.filters
    if (
        (given_filters and given_filters != bound.get("filters"))
        or (request.fields is not None and request.fields != bound.get("fields"))
        or (request.text is not None and request.text != bound.get("text"))
    ):
        raise InvalidCursor(
            "cursor belongs to a query with other filters or fields (or text). Pass the cursor alone (it remembers its "
            "filters, fields and text) or with exactly the same ones, or drop the cursor to start a new listing."
        )
    return bound, state.after


def items_per_page(budget: int, fields: list[str] | None, limit: int | None, *, text: bool) -> int:
    """About how many scenarios a page holds (guessed from the fields; a match adds its snippet), at least one."""
    per_item_guess = 120 if fields is None else 1500 if set(fields) & _LARGE_FIELDS or fields == ["*"] else 60
    if text:
        per_item_guess += 60
    held = max(1, budget // per_item_guess)
    return held if limit is None else min(held, limit)


def upstream_page_size(budget: int, fields: list[str] | None, limit: int | None, *, text: bool = False) -> int:
    """Scenarios to ask upstream for at a time: about what the budget holds, plus a margin (a text scan sizes
    its later pages by the share of matches it sees: see the feed)."""
    held = items_per_page(budget, fields, None, text=text)
    page_size = min(MAX_UPSTREAM_PAGE, max(5, math.ceil(held * 1.3) + 1))
    return page_size if limit is None else min(page_size, limit)


async def list_page(
    client: RunloopClient, request: ListRequest, codec: CursorCodec, *, on_wait: OnWait | None = None
) -> dict[str, Any]:
    """One budgeted page of scenarios as the list_scenarios result (a JSON-ready dict)."""
    query, after = resolve_query(request, codec)
    filters: dict[str, str] = query.get("filters") or {}
    fields: list[str] | None = query.get("fields")
    text: str | None = query.get("text")
    budget = usable(request.max_tokens)
    feed = UpstreamFeed(
        client,
        filters,
        after=after,
        page_size=upstream_page_size(budget, fields, request.limit, text=text is not None),
        include_total_count=request.include_total_count,
        on_wait=on_wait,
        text=TextQuery.parse(text) if text is not None else None,
        wanted=items_per_page(budget, fields, request.limit, text=text is not None),
    )
    envelope = Envelope(
        codec,
        query,
        max_tokens=request.max_tokens,
        resumed=after is not None,
        total_asked=request.include_total_count,
    )
    return await PagePacker(feed, envelope, fields=fields, budget=budget, limit=request.limit).pack()
