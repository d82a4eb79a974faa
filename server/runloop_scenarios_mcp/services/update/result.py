"""An update_scenario result that fits its token budget, whatever the size of the scenario or the change.

The head (``preview_token``, ``expires_at``, ``hint``, ids, flags, warnings) is small and always
whole. The upstream body is shown only when it holds no long text (the diff shows that as
regions; the body would repeat it whole) and fits. What can be large gives way in this order:
the upstream body (replaced by its size), then
the longest strings of the diff and mismatches (clipped evenly, marked), then whole entries from
the end (counted in ``diff_omitted``). The exact count of the final JSON by both tokenizers
decides, as for list and get; apply always writes the complete values, never what is shown here.
"""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.services.budget import (
    MAX_TOKEN_BYTES,
    clip_to_fit,
    count_json,
    count_serialized,
    to_json,
    usable,
    utf8_size,
)
from runloop_scenarios_mcp.services.update.diff_view import LONG_TEXT


def _assemble(
    head: dict[str, Any],
    diff: list[dict[str, Any]],
    diff_omitted: int,
    mismatches: list[dict[str, Any]],
    body: dict[str, Any] | None,
    body_bytes: int,
    max_tokens: int,
) -> dict[str, Any]:
    result = dict(head)
    result["diff"] = diff
    if diff_omitted:
        result["diff_omitted"] = diff_omitted
    result["mismatches"] = mismatches
    result["upstream_body_bytes"] = body_bytes
    if body is not None:
        result["upstream_body"] = body
    result["estimated_tokens"] = max_tokens  # widest value first, so the final (smaller) number never adds a token
    result["max_tokens"] = max_tokens
    return result


def _cost(result: dict[str, Any], limit: int) -> int:
    """Tokens of ``result``, or ``limit + 1`` when its size alone proves it cannot fit (no tokenizing)."""
    text = to_json(result)
    if utf8_size(text) > MAX_TOKEN_BYTES * limit:
        return limit + 1
    return count_serialized(text)


def fit_update_result(
    head: dict[str, Any],
    diff: list[dict[str, Any]],
    mismatches: list[dict[str, Any]],
    body: dict[str, Any],
    max_tokens: int,
) -> dict[str, Any]:
    """The result, within ``max_tokens`` by o200k_base and cl100k_base (within :func:`usable` of it)."""
    limit = usable(max_tokens)
    body_bytes = utf8_size(to_json(body))
    shown_body = body if not _has_long_text(body) else None
    result = _assemble(head, diff, 0, mismatches, shown_body, body_bytes, max_tokens)
    tokens = _cost(result, limit)
    if tokens > limit and shown_body is not None:
        result = _assemble(head, diff, 0, mismatches, None, body_bytes, max_tokens)
        tokens = _cost(result, limit)
    if tokens > limit:
        result, tokens = _shrink(head, diff, mismatches, body_bytes, max_tokens, limit)
    result["estimated_tokens"] = tokens
    return result


def _shrink(
    head: dict[str, Any],
    diff: list[dict[str, Any]],
    mismatches: list[dict[str, Any]],
    body_bytes: int,
    max_tokens: int,
    limit: int,
) -> tuple[dict[str, Any], int]:
    """Clip the strings of diff and mismatches to the room left; drop entries from the end if still too big."""
    empty = _assemble(head, [], 0, [], None, body_bytes, max_tokens)
    room = limit - count_json(empty) + count_json({"diff": [], "mismatches": []})
    clipped, _clips, _ = clip_to_fit({"diff": diff, "mismatches": mismatches}, room, keep=_paths(diff, mismatches))
    diff, mismatches = clipped["diff"], clipped["mismatches"]
    result = _assemble(head, diff, 0, mismatches, None, body_bytes, max_tokens)
    tokens = _cost(result, limit)
    if tokens <= limit:
        return result, tokens
    # Objects and lists with many small strings: collapse them to a marker saying what and how big, clip again.
    collapsed, _clips, _ = clip_to_fit(
        {"diff": [_collapsed(e) for e in diff], "mismatches": [_collapsed(e) for e in mismatches]},
        room,
        keep=_paths(diff, mismatches),
    )
    diff, mismatches = collapsed["diff"], collapsed["mismatches"]
    result = _assemble(head, diff, 0, mismatches, None, body_bytes, max_tokens)
    tokens = _cost(result, limit)
    if tokens <= limit:
        return result, tokens
    # Too many entries even so: keep the longest prefix that fits (binary search).
    entries = [("diff", e) for e in diff] + [("mismatches", e) for e in mismatches]
    low, high = 0, len(entries)
    best = _assemble(head, [], len(diff), [], None, body_bytes, max_tokens)
    best_tokens = count_json(best)
    while low < high:
        mid = (low + high + 1) // 2
        kept = entries[:mid]
        shown_diff = [e for kind, e in kept if kind == "diff"]
        shown_mismatches = [e for kind, e in kept if kind == "mismatches"]
        candidate = _assemble(
            head, shown_diff, len(diff) - len(shown_diff), shown_mismatches, None, body_bytes, max_tokens
        )
        candidate_tokens = _cost(candidate, limit)
        if candidate_tokens <= limit:
            low, best, best_tokens = mid, candidate, candidate_tokens
        else:
            high = mid - 1
    return best, best_tokens


def _collapsed(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with each object or list value replaced by a marker of what it was and how big."""
    out = dict(entry)
    for side in ("before", "after"):
        value = entry.get(side)
        if isinstance(value, dict | list) and value:
            kind = f"an object of {len(value)} keys" if isinstance(value, dict) else f"a list of {len(value)} items"
            size = len(to_json(value))
            out[side] = (
                f"…[left out to fit max_tokens: {kind}, {size:,} characters as JSON; raise max_tokens to see it]"
            )
    return out


def _has_long_text(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > LONG_TEXT
    if isinstance(value, dict):
        return any(_has_long_text(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_long_text(item) for item in value)
    return False


def _paths(*lists: list[dict[str, Any]]) -> frozenset[tuple[str | int, ...]]:
    """The ``path`` strings of every entry: never clipped, an agent needs them whole to act."""
    kinds = ("diff", "mismatches")
    return frozenset((kinds[k], i, "path") for k, entries in enumerate(lists) for i in range(len(entries)))
