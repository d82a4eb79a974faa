"""Packing one list page into its token budget: whole scenarios while they fit, a lone oversized one shortened.

Scenarios are added while their exact counts (each the larger of the two encodings', counted once per item)
and the envelope's fit, then the whole page is counted exactly (both tokenizers, each summed over its own
parts) and settled: scenarios are given back when it is over, more are added when the exact count leaves
room. The result never exceeds the budget by the exact count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runloop_scenarios_mcp.services.budget import (
    ListItem,
    Serialized,
    count_list_items,
    list_json,
    to_json,
)
from runloop_scenarios_mcp.services.contracts import ClippedField
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.services.listing.feed import Entry, UpstreamFeed
from runloop_scenarios_mcp.services.listing.fitting import fit_alone
from runloop_scenarios_mcp.services.listing.projection import project, summary_item

_TOP_UPS = 2
"""Times a page that fits by its exact count may take more scenarios into the room it has left."""
_HARDER_FITS = 4
"""Times a lone shortened scenario is shortened again, harder, before it is reduced to its id."""
_AN_ID = re.compile(r"\s*[a-z]{2,8}_(?=[A-Za-z]*[0-9])[A-Za-z0-9]{8,}\s*")
"""What an id looks like (scn_46ch4zz4cnwfxaffn6k7aywt): a short prefix, then letters and at least one digit."""
_ONE_EMPTY_ITEM = [ListItem({})]
"""Stands in for the one item of a page when the envelope around it is counted."""


def _cost(item: ListItem) -> int:
    """What ``item`` adds to a page: its part's exact count (``text[2:]`` and the separator with the next item's
    opening ``,{"``), the larger of the two encodings', counted once per item (remembered summaries keep it)."""
    return max(item.part_counts(last=False))


@dataclass(frozen=True)
class PageState:
    """What the envelope says about where the listing stands after this page."""

    has_more: bool
    after: str | None
    """The id the next page continues after."""
    scanned: int
    total_count: int | None
    scan_bound_reached: bool


@dataclass(frozen=True)
class Envelope:
    """Builds the list_scenarios result around a page of items, leaving out what would say nothing.

    Every page: ``returned``, ``has_more``, ``next_cursor`` (null at the end), ``scenarios``; ``scanned`` with
    text. The first page of a listing adds ``estimated_tokens``, ``max_tokens`` and a ``hint`` on how to go on;
    later pages add a hint only when it says something new (values clipped, a scan stopped at its bound, no
    match), ``clipped`` only when not empty, ``total_count`` only when asked and known.
    """

    codec: CursorCodec
    query: dict[str, Any]
    """The filters, fields and text the next cursor carries."""
    max_tokens: int
    resumed: bool
    """Whether this page continues a cursor (a first page says more)."""
    total_asked: bool
    _cursors: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def _text(self) -> str | None:
        text: str | None = self.query.get("text")
        return text

    def build(self, items: list[ListItem], clips: list[ClippedField], state: PageState) -> tuple[dict[str, Any], int]:
        """The result and its token count (by both tokenizers, as sent)."""
        cursor = None
        if state.has_more and state.after is not None:
            cursor = self._cursors.get(state.after)
            if cursor is None:  # (the same for the same id: the page is built a few times while it is settled)
                cursor = self._cursors[state.after] = self.codec.encode(
                    CursorState(after=state.after, query=self.query)
                )
        has_more = cursor is not None
        out: dict[str, Any] = {"returned": len(items), "has_more": has_more, "next_cursor": cursor}
        if state.total_count is not None:
            out["total_count"] = state.total_count
        if self._text is not None:
            out["scanned"] = state.scanned
        if not self.resumed:
            out["estimated_tokens"] = 0
            out["max_tokens"] = self.max_tokens
        hint = self._hint(len(items), bool(clips), state, has_more=has_more)
        if hint:
            out["hint"] = hint
        if clips:
            out["clipped"] = [note.model_dump(mode="json") for note in clips]
        text, tokens = count_list_items(out, "scenarios", items)
        if not self.resumed:
            # The count includes its own digits: settle it (a number's width changes by at most one token).
            tokens += 1
            out["estimated_tokens"] = tokens
            text = list_json(out, "scenarios", [item.text for item in items])
        out["scenarios"] = [item.value for item in items]
        return Serialized(out, text), tokens

    def _hint(self, returned: int, clipped: bool, state: PageState, *, has_more: bool) -> str | None:
        if returned == 0 and not has_more:
            return "No more scenarios: this listing is complete." if self.resumed else self._no_match()
        parts: list[str] = []
        if clipped:
            parts.append(
                "See clipped: read those values with get_scenario(scenario_id), long strings with field and offset."
            )
        bound = self._text is not None and state.scan_bound_reached and has_more
        if bound:
            parts.append(
                f"This call scanned {state.scanned} scenarios, as many as one call may, and found {returned} "
                "matches; more remain to scan: pass cursor=next_cursor."
            )
        if self._text is not None and self.total_asked and state.total_count is None and not self.resumed:
            parts.append(
                "total_count is left out: with text it is known only when one call scans the whole listing; add up "
                "returned while following next_cursor."
            )
        if not self.resumed and not bound:
            if has_more:
                narrow = "fewer fields" if self.query.get("fields") == ["*"] else "filters"
                parts.append(
                    f"More remain: pass cursor=next_cursor alone (it keeps the query), or narrow with {narrow}."
                )
                if self._text is not None:
                    parts.append("Each call scans a bounded number of scenarios: follow next_cursor until it is null.")
            else:
                parts.append("This is the last page.")
        return " ".join(parts) or None

    def _no_match(self) -> str:
        """The hint of an empty first page, about the filters actually given (never quoting them)."""
        filters: dict[str, str] = self.query.get("filters") or {}
        given = [*filters, *(["text"] if self._text is not None else [])]
        parts = ["No scenario matches" + (" all of these filters." if len(given) > 1 else ".")]
        if "name" in filters:
            parts.append(
                "name must equal the whole name (case-sensitive); search matches part of an id or name, text words "
                "anywhere in names, problem statements and metadata."
            )
        if "benchmark_id" in filters:
            parts.append(
                "benchmark_id takes a benchmark's id (such as bmd_...), not its name; scenarios show benchmark names "
                "in metadata, which text searches."
            )
        if "search" in filters:
            parts.append("search matches only part of a scenario id or name; text also searches problem statements.")
        if "validation_type" in filters:
            parts.append("validation_type matches only scenarios of exactly that type.")
        if self._text is not None:
            parts.append("text needs every one of its words in a scenario's name, problem statement or metadata.")
        if any(
            _AN_ID.fullmatch(value) for value in (filters.get("name", ""), filters.get("search", ""), self._text or "")
        ):
            parts.append(
                "Archived scenarios are left out of listings: read one by its id with get_scenario(scenario_id)."
            )
        if len(given) > 1:
            parts.append("Drop a filter to widen the listing.")
        if not given:
            parts = ["No scenarios: the Runloop API lists none (archived scenarios are never listed)."]
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
        self._items: list[ListItem] = []
        self._entries: list[Entry] = []
        self._sizes: list[int] = []  # each item's tokens by _cost, separator included
        self._clips: list[ClippedField] = []
        self._used = 0  # envelope + items + separators, item by item (the whole page is counted exactly in settle)

    async def pack(self) -> dict[str, Any]:
        """The page as the list_scenarios result (a JSON-ready dict)."""
        await self._add_while_it_fits()
        settled = await self._settle()
        return settled if settled is not None else self._fit_lone_scenario()

    def _state(self, *, has_more: bool | None = None, after: str | None = None) -> PageState:
        feed = self._feed
        resume_after, scanned = feed.resume_point()
        return PageState(
            has_more=feed.has_more if has_more is None else has_more,
            after=after or resume_after,
            scanned=scanned,
            total_count=feed.total_count,
            scan_bound_reached=feed.scan_bound_reached,
        )

    def _result(self) -> tuple[dict[str, Any], int]:
        return self._envelope.build(self._items, self._clips, self._state())

    def _overhead(self, scenario_id: str, clips: list[ClippedField]) -> int:
        """Tokens of the envelope around one item (``{}`` in its place, so one token less), with ``clips``."""
        state = self._state(has_more=True, after=scenario_id)
        return self._envelope.build(_ONE_EMPTY_ITEM, clips, state)[1] - 1

    def _project(self, entry: Entry) -> ListItem:
        """The scenario as the page shows it: the (remembered) summary or the chosen fields, with its match."""
        if self._fields is None:
            summary = summary_item(entry.scenario)
            if entry.match is None:
                return summary
            # (a summary has its id first and never a match: the match goes last, before the closing brace)
            with_match = {**summary.value, "match": entry.match}
            return ListItem(with_match, f'{summary.text[:-1]},"match":{to_json(entry.match)}}}')
        item = project(entry.scenario, self._fields)
        return ListItem(item if entry.match is None else {**item, "match": entry.match})

    async def _add_while_it_fits(self) -> None:
        feed = self._feed
        while self._limit is None or len(self._items) < self._limit:
            entry = feed.buffered() or await feed.peek()  # (no coroutine per scenario while the buffer holds some)
            if entry is None or not self._add_next(entry):
                return

    def _add_next(self, entry: Entry) -> bool:
        """Move ``entry`` (the feed's next) onto the page if its cost fits (or it is the first, shortened if need
        be); whether the next may follow."""
        scenario_id = entry.scenario["id"]
        item = self._project(entry)
        if not self._items:
            self._used = self._overhead(scenario_id, [])
        tokens = _cost(item)
        if self._used + tokens > self._budget:
            if self._items:
                return False  # the next page starts with this one, whole
            item, self._clips = self._fit(item, scenario_id, self._budget)
        self._items.append(item)
        self._entries.append(entry)
        self._sizes.append(tokens)
        self._used += tokens
        self._feed.take()
        return not self._clips

    async def _add_if_exactly_fits(self, room: int) -> bool:
        """Add the next scenario if its cost (its exact count with a separator) fits ``room``."""
        if self._limit is not None and len(self._items) >= self._limit:
            return False
        entry = await self._feed.peek()
        if entry is None:
            return False
        item = self._project(entry)
        tokens = _cost(item)
        if tokens > room:
            return False
        self._items.append(item)
        self._entries.append(entry)
        self._sizes.append(tokens)
        self._feed.take()
        return True

    def _give_back(self, excess: int) -> None:
        """Return the last scenarios to the feed until their costs cover ``excess`` (at least one)."""
        freed = 0
        while len(self._items) > 1 and (freed < excess or not freed):
            self._items.pop()
            self._entries.pop()
            self._feed.give_back()
            freed += self._sizes.pop()
        self._used -= freed

    async def _settle(self) -> dict[str, Any] | None:
        """Settle the page by its exact count (the sum of the costs is close: one or two counts do); None when a lone
        scenario is still over the budget."""
        shrunk, top_ups = False, 0
        while True:
            result, tokens = self._result()
            excess = tokens - self._budget
            if excess > 0:
                if len(self._items) == 1:
                    return None  # one scenario over on its own: shorten it harder
                self._give_back(excess)  # removes at least one scenario, so this ends
                shrunk = True
                continue
            if not self._items or self._clips or shrunk or top_ups == _TOP_UPS:
                return result
            top_ups += 1
            room_left = self._budget - tokens
            if room_left >= 2 * sum(self._sizes) / len(self._sizes):
                self._used, count = tokens, len(self._items)  # exact: top up into the room left, item by item
                await self._add_while_it_fits()
                if len(self._items) == count:
                    return result
            elif not await self._add_if_exactly_fits(room_left):
                return result  # (room for one more at most, and the next one, counted exactly, does not fit)

    def _fit_lone_scenario(self) -> dict[str, Any]:
        """The page with its one scenario shortened harder, from the original, until the exact count fits."""
        entry = self._entries[0]
        scenario_id = entry.scenario["id"]
        room = self._budget
        for _ in range(_HARDER_FITS):
            result, tokens = self._result()
            excess = tokens - self._budget
            if excess <= 0:
                return result
            room -= excess + 4
            self._items[0], self._clips = self._fit(self._project(entry), scenario_id, room)
        self._items[0], self._clips = self._fit(self._project(entry), scenario_id, 0)  # the id alone
        return self._result()[0]

    def _fit(self, item: ListItem, scenario_id: str, room: int) -> tuple[ListItem, list[ClippedField]]:
        """Shorten a scenario that does not fit alone so that the page around it takes at most ``room`` tokens."""
        base = self._overhead(scenario_id, [])
        fitted, notes = fit_alone(
            item.value,
            scenario_id,
            room - base,
            lambda notes: self._overhead(scenario_id, notes) - base if notes else 0,
        )
        return (item if fitted is item.value else ListItem(fitted)), notes
