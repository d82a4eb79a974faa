"""Scenarios from the Runloop API in listing order, fetched one upstream page at a time, only when needed.

With ``text`` the feed also examines each scenario and serves only the matches; it remembers where
each match stands in the upstream listing, so a cursor resumes the scan exactly: after the last
scenario the page went through, whether it was returned or examined and skipped.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, NamedTuple

from runloop_scenarios_mcp.errors import InvalidCursor, UpstreamStatusError
from runloop_scenarios_mcp.services.listing.text import TextQuery
from runloop_scenarios_mcp.upstream.client import ListQuery, OnWait, RunloopClient

MAX_UPSTREAM_REQUESTS = 4
"""Upstream pages one call may fetch; bounds the latency and load of a single tool call."""
MAX_UPSTREAM_PAGE = 200


class Entry(NamedTuple):
    """A scenario the feed serves, with where it stands among the scenarios this call examined (a tuple: one is
    made per scenario fetched, and a tuple is made several times faster than a frozen dataclass)."""

    scenario: dict[str, Any]
    match: dict[str, str] | None
    """With ``text``: the field and snippet of the hit."""
    seq: int
    """How many scenarios this call examined before it."""
    before: str | None
    """Id of the scenario examined just before it (None: the call's starting point)."""


class UpstreamFeed:
    """The scenarios after ``after`` that match ``filters`` (and ``text``), in order, at most
    :data:`MAX_UPSTREAM_REQUESTS` upstream pages.

    The packer peeks at the next entry, takes it, or gives taken ones back (they are served again next).
    """

    def __init__(
        self,
        client: RunloopClient,
        filters: dict[str, str],
        *,
        after: str | None,
        page_size: int,
        include_total_count: bool,
        on_wait: OnWait | None,
        text: TextQuery | None = None,
        wanted: int = 1,
    ) -> None:
        self._client = client
        self._filters = filters
        self._after = after  # where the cursor resumes (None on a first page)
        self._page_size = page_size
        self._include_total_count = include_total_count
        self._on_wait = on_wait
        self._text = text
        self._wanted = wanted  # about how many matches a page holds (sizes the upstream pages of a text scan)
        self._buffer: deque[Entry] = deque()
        self._taken: list[Entry] = []
        self._position = after  # upstream starting_after for the next fetch: the last scenario examined
        self._upstream_more = True
        self._requests = 0
        self._examined = 0
        self._matched = 0
        self._upstream_total: int | None = None

    @property
    def has_more(self) -> bool:
        """Whether a scenario remains after those taken (fetched and not taken, or not fetched yet)."""
        return bool(self._buffer) or self._upstream_more

    @property
    def scan_bound_reached(self) -> bool:
        """Whether this call stopped only because it may fetch no more upstream pages."""
        return not self._buffer and self._upstream_more and self._requests >= MAX_UPSTREAM_REQUESTS

    def resume_point(self) -> tuple[str | None, int]:
        """Where the next call resumes (the id to continue after) and how many scenarios this call went through.

        Everything before the next entry not taken has been examined: matches were taken, others skipped.
        """
        if self._buffer:
            head = self._buffer[0]
            return head.before or self._after, head.seq
        return self._position, self._examined

    @property
    def total_count(self) -> int | None:
        """Matches in total: as the first upstream page reported it; with text, only when this call saw them all."""
        if not self._include_total_count:
            return None
        if self._text is None:
            return self._upstream_total
        return self._matched if self._after is None and not self._upstream_more else None

    async def peek(self) -> Entry | None:
        """The next entry, fetching upstream pages as needed; None at the end or when this call may fetch no more."""
        while not self._buffer:
            if not self._upstream_more or self._requests >= MAX_UPSTREAM_REQUESTS:
                return None
            await self.refill()
        return self._buffer[0]

    def buffered(self) -> Entry | None:
        """The next entry if it is already fetched (what :meth:`peek` returns without fetching), else None."""
        return self._buffer[0] if self._buffer else None

    def take(self) -> None:
        """Consume the entry :meth:`peek` returned."""
        self._taken.append(self._buffer.popleft())

    def give_back(self) -> None:
        """Put the last taken entry back in front, so it is served again."""
        self._buffer.appendleft(self._taken.pop())

    def _next_page_size(self) -> int:
        """The first page is sized for the budget; a text scan sizes the next by the share of matches seen so far."""
        if self._text is None or self._requests == 0:
            return self._page_size
        still_wanted = max(1, self._wanted - self._matched, self._wanted // 2)  # (the guess of what fits is rough)
        share = (self._matched + 1) / (self._examined + 2)
        return max(self._page_size, min(MAX_UPSTREAM_PAGE, math.ceil(still_wanted / share * 2)))

    async def refill(self) -> None:
        """Fetch the next upstream page; examine its scenarios into the buffer."""
        resuming = self._requests == 0 and self._after is not None
        try:
            listing = await self._client.list_scenarios(
                ListQuery(
                    **self._filters,
                    limit=self._next_page_size(),
                    starting_after=self._position,
                    include_total_count=self._include_total_count and self._text is None and self._requests == 0,
                ),
                on_wait=self._on_wait,
            )
        except UpstreamStatusError as exc:
            # What the API does with a starting_after it no longer lists is undocumented: an error is one answer.
            if resuming and self._after is not None and exc.status_code in (400, 404, 422):
                raise _lost_position(self._after) from None
            raise
        self._requests += 1
        if self._include_total_count and self._text is None and self._requests == 1:
            self._upstream_total = listing["total_count"]
        scenarios: list[dict[str, Any]] = listing["scenarios"]
        for scenario in scenarios:
            match = self._text.match(scenario) if self._text is not None else None
            if self._text is None or match is not None:
                self._buffer.append(Entry(scenario, match, self._examined, self._position))
                self._matched += 1
            self._examined += 1
            self._position = scenario["id"]
        self._upstream_more = bool(listing["has_more"]) and bool(scenarios)
        if not scenarios and resuming and self._after is not None and await self._anchor_gone(self._after):
            raise _lost_position(self._after)  # an empty page is the other answer: not the end of the listing

    async def _anchor_gone(self, scenario_id: str) -> bool:
        """Whether the scenario a cursor continues after has left the listings (archived or gone)."""
        try:
            scenario = await self._client.get_scenario(scenario_id, on_wait=self._on_wait)
        except UpstreamStatusError as exc:
            return exc.status_code == 404
        return scenario.get("status") == "archived"


def _lost_position(after: str) -> InvalidCursor:
    return InvalidCursor(
        f"This cursor continues after scenario {after}, which the Runloop API no longer lists (archived, or changed "
        "so it no longer matches the filters), so it cannot continue from there. Start the listing again without "
        "cursor, with the same filters and fields, to see the remaining scenarios."
    )
