"""Scenarios from the Runloop API in listing order, fetched one upstream page at a time, only when needed."""

from __future__ import annotations

from collections import deque
from typing import Any

from runloop_scenarios_mcp.errors import InvalidCursor, UpstreamStatusError
from runloop_scenarios_mcp.upstream.client import ListQuery, OnWait, RunloopClient

MAX_UPSTREAM_REQUESTS = 4
"""Upstream pages one call may fetch; bounds the latency and load of a single tool call."""
MAX_UPSTREAM_PAGE = 200


class UpstreamFeed:
    """The scenarios after ``after`` that match ``filters``, in order, at most :data:`MAX_UPSTREAM_REQUESTS` pages.

    The packer peeks at the next scenario, takes it, or gives taken ones back (they are served again next).
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
    ) -> None:
        self._client = client
        self._filters = filters
        self._after = after  # where the cursor resumes (None on a first page)
        self._page_size = page_size
        self._include_total_count = include_total_count
        self._on_wait = on_wait
        self._buffer: deque[dict[str, Any]] = deque()
        self._position = after  # upstream starting_after for the next fetch
        self._upstream_more = True
        self._requests = 0
        self._by_id: dict[str, dict[str, Any]] = {}
        self.total_count: int | None = None
        """Matches in total, as the first upstream page reported it (only when asked)."""

    @property
    def has_more(self) -> bool:
        """Whether a scenario remains after those taken (fetched and not taken, or not fetched yet)."""
        return bool(self._buffer) or self._upstream_more

    async def peek(self) -> dict[str, Any] | None:
        """The next scenario, fetching upstream pages as needed; None at the end or when this call may fetch no more."""
        while not self._buffer:
            if not self._upstream_more or self._requests >= MAX_UPSTREAM_REQUESTS:
                return None
            await self.refill()
        return self._buffer[0]

    def take(self) -> None:
        """Consume the scenario :meth:`peek` returned."""
        self._buffer.popleft()

    def give_back(self, scenario_id: str) -> None:
        """Put a taken scenario back in front, so it is served again."""
        self._buffer.appendleft(self._by_id[scenario_id])

    def original(self, scenario_id: str) -> dict[str, Any]:
        """A fetched scenario as the API returned it."""
        return self._by_id[scenario_id]

    async def refill(self) -> None:
        """Fetch the next upstream page into the buffer."""
        resuming = self._requests == 0 and self._after is not None
        try:
            listing = await self._client.list_scenarios(
                ListQuery(
                    **self._filters,
                    limit=self._page_size,
                    starting_after=self._position,
                    include_total_count=self._include_total_count and self._requests == 0,
                ),
                on_wait=self._on_wait,
            )
        except UpstreamStatusError as exc:
            # What the API does with a starting_after it no longer lists is undocumented: an error is one answer.
            if resuming and self._after is not None and exc.status_code in (400, 404, 422):
                raise _lost_position(self._after) from None
            raise
        self._requests += 1
        if self._include_total_count and self.total_count is None:
            self.total_count = listing["total_count"]
        scenarios: list[dict[str, Any]] = listing["scenarios"]
        self._buffer.extend(scenarios)
        self._by_id.update((scenario["id"], scenario) for scenario in scenarios)
        self._upstream_more = bool(listing["has_more"]) and bool(scenarios)
        if scenarios:
            self._position = scenarios[-1]["id"]
        elif resuming and self._after is not None and await self._anchor_gone(self._after):
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
