"""How a change is shown: diff entries an agent can afford, and the summary a person confirms.

A long string never appears whole: its entry gives both full lengths and the changed regions, each
with a little unchanged context and the character offsets where it starts in the old and the new
text. Finding the regions is linear in the text (common prefix and suffix), then a line-level match
of what lies between, so a 5 MB statement costs milliseconds, not a quadratic character diff.
"""

from __future__ import annotations

import difflib
import json
from itertools import accumulate
from typing import Any

from runloop_scenarios_mcp.services.budget import clip_marker
from runloop_scenarios_mcp.services.contracts import DiffEntry

LONG_TEXT = 300
"""Strings longer than this (characters) are shown as changed regions instead of whole."""
CONTEXT = 60
"""Unchanged characters shown on each side of a changed region."""
REGION_CHARS = 400
"""Most characters of one side of one region; the rest is marked as clipped."""
MAX_REGIONS = 12
"""Regions shown per string; the count of the others is given."""
_MAX_LINES = 20_000
"""Above this many lines in the changed middle, the middle is shown as one region (bounded time)."""


def show_entries(entries: list[DiffEntry]) -> list[dict[str, Any]]:
    """Each diff entry as the result shows it: whole when short, as changed regions when a long string."""
    return [show_entry(entry) for entry in entries]


def show_entry(entry: DiffEntry) -> dict[str, Any]:
    before, after = entry.before, entry.after
    if isinstance(before, str) and isinstance(after, str) and max(len(before), len(after)) > LONG_TEXT:
        regions, omitted = text_regions(before, after)
        shown: dict[str, Any] = {
            "path": entry.path,
            "before_length": len(before),
            "after_length": len(after),
            "regions": regions,
        }
        if omitted:
            shown["regions_omitted"] = omitted
        return shown
    out: dict[str, Any] = {"path": entry.path, "before": _shorten(before), "after": _shorten(after)}
    for side, value in (("before_length", before), ("after_length", after)):
        if isinstance(value, str) and len(value) > LONG_TEXT:
            out[side] = len(value)
    return out


def _shorten(value: Any) -> Any:
    """A long string alone (added or removed) as its start and a clip marker."""
    return _clip(value, LONG_TEXT) if isinstance(value, str) else value


def _clip(text: str, limit: int = REGION_CHARS) -> str:
    """``text`` cut to its first ``limit`` characters and a clip marker, when longer."""
    return text if len(text) <= limit else text[:limit] + clip_marker(len(text) - limit)


def _spans(before: str, after: str) -> list[tuple[int, int, int, int]]:
    """Changed spans ``(before_start, before_end, after_start, after_end)``, in order."""
    prefix = _common_length(before, after, reverse=False)
    suffix = _common_length(before[prefix:], after[prefix:], reverse=True)
    a0, a1, b0, b1 = prefix, len(before) - suffix, prefix, len(after) - suffix
    if (a1 - a0) + (b1 - b0) <= 2 * REGION_CHARS:
        return [(a0, a1, b0, b1)]
    a_lines = before[a0:a1].splitlines(keepends=True)
    b_lines = after[b0:b1].splitlines(keepends=True)
    if len(a_lines) > _MAX_LINES or len(b_lines) > _MAX_LINES or len(a_lines) < 2 or len(b_lines) < 2:
        return [(a0, a1, b0, b1)]
    a_at = list(accumulate((len(line) for line in a_lines), initial=a0))
    b_at = list(accumulate((len(line) for line in b_lines), initial=b0))
    spans: list[tuple[int, int, int, int]] = []
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        span = _trim(before, after, a_at[i1], a_at[i2], b_at[j1], b_at[j2])
        if spans and span[0] - spans[-1][1] <= 2 * CONTEXT and span[2] - spans[-1][3] <= 2 * CONTEXT:
            last = spans.pop()
            span = (last[0], span[1], last[2], span[3])
        spans.append(span)
    return spans or [(a0, a1, b0, b1)]


def _common_length(a: str, b: str, *, reverse: bool) -> int:
    """Length of the common prefix (or suffix) of ``a`` and ``b``, by binary search over slice comparisons."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        same = a[len(a) - mid :] == b[len(b) - mid :] if reverse else a[:mid] == b[:mid]
        if same:
            low = mid
        else:
            high = mid - 1
    return low


def _trim(before: str, after: str, a0: int, a1: int, b0: int, b1: int) -> tuple[int, int, int, int]:
    """Narrow a changed span of whole lines to the characters that differ."""
    while a0 < a1 and b0 < b1 and before[a0] == after[b0]:
        a0, b0 = a0 + 1, b0 + 1
    while a1 > a0 and b1 > b0 and before[a1 - 1] == after[b1 - 1]:
        a1, b1 = a1 - 1, b1 - 1
    return a0, a1, b0, b1


def text_regions(before: str, after: str) -> tuple[list[dict[str, Any]], int]:
    """The changed regions of a long string with context and offsets, and how many more were left out."""
    spans = _spans(before, after)
    regions: list[dict[str, Any]] = []
    for a0, a1, b0, b1 in spans[:MAX_REGIONS]:
        lead = min(CONTEXT, a0, b0)
        tail = min(CONTEXT, len(before) - a1, len(after) - b1)
        regions.append(
            {
                "before_offset": a0 - lead,
                "after_offset": b0 - lead,
                "before": _clip(before[a0 - lead : a1 + tail]),
                "after": _clip(after[b0 - lead : b1 + tail]),
            }
        )
    return regions, max(0, len(spans) - MAX_REGIONS)


# --- what a person confirms ------------------------------------------------------------------

CONFIRM_ENTRIES = 12
CONFIRM_VALUE_CHARS = 160
CONFIRM_MAX_CHARS = 4_000
"""The whole summary a person reads; lines past it are dropped and counted (the preview shows every change)."""


def _render(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= CONFIRM_VALUE_CHARS else text[: CONFIRM_VALUE_CHARS - 1] + "…"


def confirmation_text(scenario_id: str, entries: list[DiffEntry], warnings: list[str]) -> str:
    """The bounded, readable summary a person is asked to confirm: at most 12 entries (3 regions each) and 3
    warnings, every path, value and warning cut at 160 characters, and the whole at most 4,000 characters."""
    lines = [f"Apply this change to Runloop scenario {scenario_id}?"]
    for entry in entries[:CONFIRM_ENTRIES]:
        shown = show_entry(entry)
        if "regions" in shown:
            lengths = f"{shown['before_length']:,} -> {shown['after_length']:,}"
            lines.append(f"- {entry.path[:CONFIRM_VALUE_CHARS]}: text of {lengths} characters")
            for region in shown["regions"][:3]:
                lines.append(
                    f"    at {region['before_offset']:,}: {_render(region['before'])} -> {_render(region['after'])}"
                )
            more = len(shown["regions"]) - 3 + shown.get("regions_omitted", 0)
            if more > 0:
                lines.append(f"    ... and {more} more changed regions")
        else:
            lines.append(f"- {entry.path[:CONFIRM_VALUE_CHARS]}: {_render(entry.before)} -> {_render(entry.after)}")
    if len(entries) > CONFIRM_ENTRIES:
        lines.append(f"... and {len(entries) - CONFIRM_ENTRIES} more changed values")
    for warning in warnings[:3]:
        lines.append(f"Warning: {warning[:CONFIRM_VALUE_CHARS]}")
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        tail = f"... and {len(lines) - index} more lines (the preview shows every change)"
        if size + len(line) + 1 + len(tail) > CONFIRM_MAX_CHARS and index < len(lines) - 1:
            kept.append(tail)
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)
