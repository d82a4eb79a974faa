"""Packing one list page into its token budget: whole scenarios while they fit, a lone oversized one clipped.

Sizes are estimated while scenarios are added (cheap), then the whole page is counted exactly (both
tokenizers) and settled: scenarios are given back when it is over, more are added when the exact count
leaves room. The result never exceeds the budget by the exact count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument
from runloop_scenarios_mcp.services.budget import Clip, budget_for, clip_to_fit, count_json, estimate_json, to_json
from runloop_scenarios_mcp.services.contracts import ClippedField, ListScenariosResult
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.services.listing.feed import UpstreamFeed
from runloop_scenarios_mcp.services.listing.projection import project

_TOP_UPS = 2
"""Times a page that fits by its exact count may take more scenarios into the room it has left."""
_HARDER_CLIPS = 4
"""Times a lone clipped scenario is clipped again, harder, before the budget is declared too small."""


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


def clip_note(scenario_id: str, clip: Clip) -> ClippedField:
    """The ``clipped`` entry that tells an agent where a string was shortened and how long it really is."""
    return ClippedField(
        id=scenario_id, path=clip.path, original_length=clip.original_length, returned_length=clip.returned_length
    )


@dataclass(frozen=True)
class Envelope:
    """Builds the list_scenarios result around a page of items: counts, cursor, hint, its own token count."""

    codec: CursorCodec
    query: dict[str, Any]
    """The filters and fields the next cursor carries."""
    max_tokens: int
    resumed: bool
    """Whether this page continues a cursor (the hint of an empty page differs)."""

    def build(
        self,
        items: list[dict[str, Any]],
        ids: list[str],
        clips: list[ClippedField],
        *,
        has_more: bool,
        total_count: int | None,
    ) -> dict[str, Any]:
        next_cursor = self.codec.encode(CursorState(after=ids[-1], query=self.query)) if has_more and ids else None
        result = ListScenariosResult(
            returned=len(items),
            has_more=has_more,
            next_cursor=next_cursor,
            total_count=total_count,
            estimated_tokens=0,
            max_tokens=self.max_tokens,
            hint=self._hint(has_more=has_more, returned=len(items), clipped=bool(clips)),
            clipped=clips,
            scenarios=items,
        ).model_dump(mode="json")
        # The count includes its own digits: settle it (a number's width changes by at most one token).
        result["estimated_tokens"] = count_json(result) + 1
        return result

    def _hint(self, *, has_more: bool, returned: int, clipped: bool) -> str:
        if returned == 0:
            if self.resumed:
                return "No more scenarios: this listing is complete."
            return (
                "No scenario matches. name must match exactly (case-sensitive); use search for a partial match, "
                "or drop filters."
            )
        parts: list[str] = []
        if clipped:
            parts.append("Long strings were clipped: read the rest with get_scenario(scenario_id, field=path, offset).")
        if has_more:
            narrow = "fewer fields" if self.query.get("fields") == ["*"] else "filters"
            parts.append(f"More remain: pass cursor=next_cursor, or narrow with {narrow}.")
        else:
            parts.append("This is the last page.")
        return " ".join(parts)


class PagePacker:
    """One page: scenarios from ``feed`` projected to ``fields``, packed into ``budget`` tokens, at most ``limit``."""

    def __init__(
        self, feed: UpstreamFeed, envelope: Envelope, *, fields: list[str] | None, budget: int, limit: int | None
    ) -> None:
        self._feed = feed
        self._envelope = envelope
        self._fields = fields
        self._budget = budget
        self._limit = limit
        self._items: list[dict[str, Any]] = []
        self._ids: list[str] = []
        self._sizes: list[int] = []  # each item's estimated tokens, separator included
        self._clips: list[ClippedField] = []
        self._estimate = _Estimate()
        self._used = 0  # envelope + items + separators, by estimates (the whole page is counted exactly in settle)

    async def pack(self) -> dict[str, Any]:
        """The page as the list_scenarios result (a JSON-ready dict)."""
        await self._add_while_it_fits()
        settled = await self._settle()
        return settled if settled is not None else self._clip_lone_scenario()

    def _result(self) -> dict[str, Any]:
        return self._envelope_of(self._items, self._ids, self._clips, has_more=self._feed.has_more)

    def _envelope_of(
        self, items: list[dict[str, Any]], ids: list[str], clips: list[ClippedField], *, has_more: bool
    ) -> dict[str, Any]:
        return self._envelope.build(items, ids, clips, has_more=has_more, total_count=self._feed.total_count)

    def _project(self, scenario: dict[str, Any]) -> dict[str, Any]:
        return project(scenario, self._fields)

    async def _add_while_it_fits(self) -> None:
        while (self._limit is None or len(self._items) < self._limit) and await self._add_next():
            pass

    async def _add_next(self) -> bool:
        """Move the next scenario onto the page if its estimate fits (or it is the first, clipped if need be)."""
        scenario = await self._feed.peek()
        if scenario is None:
            return False
        item = self._project(scenario)
        if not self._items:  # the envelope, without "{}"
            self._used = count_json(self._envelope_of([{}], [scenario["id"]], [], has_more=True)) - 1
        tokens = self._estimate.of(item) + 1
        if self._used + tokens > self._budget:
            if self._items:
                return False  # the next page starts with this one, whole
            item, self._clips = self._clip(item, scenario["id"], self._budget - self._used)
        self._items.append(item)
        self._ids.append(scenario["id"])
        self._sizes.append(tokens)
        self._used += tokens
        self._feed.take()
        return not self._clips

    def _give_back(self, excess: int) -> None:
        """Return the last scenarios to the feed until their estimates cover ``excess`` (at least one)."""
        freed = 0
        while len(self._items) > 1 and (freed < excess or not freed):
            self._items.pop()
            self._feed.give_back(self._ids.pop())
            freed += self._sizes.pop()
        self._used -= freed

    async def _settle(self) -> dict[str, Any] | None:
        """Settle the page by its exact count (estimates are close: one or two counts do); None when a lone
        scenario is still over the budget."""
        shrunk, top_ups = False, 0
        while True:
            result = self._result()
            excess = result["estimated_tokens"] - self._budget
            if excess > 0:
                if len(self._items) == 1:
                    return None  # one scenario over on its own: clip it harder
                self._give_back(excess)  # removes at least one scenario, so this ends
                shrunk = True
                continue
            room_left = self._budget - result["estimated_tokens"]
            if (
                not self._items
                or self._clips
                or shrunk
                or top_ups == _TOP_UPS
                or room_left < 2 * sum(self._sizes) / len(self._sizes)
            ):
                return result  # (less room than two average scenarios: an exact recount would rarely gain one)
            top_ups += 1
            self._used, count = result["estimated_tokens"], len(self._items)  # exact: top up into the room left
            await self._add_while_it_fits()
            if len(self._items) == count:
                return result

    def _clip_lone_scenario(self) -> dict[str, Any]:
        """The page with its one scenario clipped harder, from the original, until the exact count fits."""
        scenario_id = self._ids[0]
        room = self._budget - self._used + (count_json(self._items[0]) + 1 if len(self._items) == 1 else 0)
        for _ in range(_HARDER_CLIPS):
            result = self._result()
            excess = result["estimated_tokens"] - self._budget
            if excess <= 0:
                return result
            room -= excess + 4
            self._items[0], self._clips = self._clip(self._project(self._feed.original(scenario_id)), scenario_id, room)
        smallest, notes = self._clip(self._project(self._feed.original(scenario_id)), scenario_id, 0)
        needed = budget_for(count_json(self._envelope_of([smallest], self._ids, notes, has_more=True)) + 8)
        raise InvalidArgument(
            f"max_tokens={self._envelope.max_tokens} is too small for scenario {scenario_id} with these fields, even "
            f"with its long strings clipped: pass max_tokens={needed} or more with the same cursor, or pass fewer "
            "fields."
        )

    def _clip(self, item: dict[str, Any], scenario_id: str, room: int) -> tuple[dict[str, Any], list[ClippedField]]:
        """Clip a scenario that does not fit alone into ``room`` tokens, counting its clip notes and the longer hint."""
        base = count_json(self._envelope_of([{}], [scenario_id], [], has_more=True))

        def overhead(made: list[Clip]) -> int:
            if not made:
                return 0
            notes = [clip_note(scenario_id, clip) for clip in made]
            return count_json(self._envelope_of([{}], [scenario_id], notes, has_more=True)) - base + 1

        clipped, made = clip_to_fit(item, room, overhead=overhead)[:2]
        return clipped, [clip_note(scenario_id, clip) for clip in made]
