"""Content search (``text``): which scenarios mention every word, and a snippet around the first hit.

A scenario matches when each word of ``text`` (split on whitespace, case-insensitive by Unicode
case folding) occurs in its name, its problem statement or one of its metadata values; the words may
sit in different fields. The match names the field holding the most of the words (the first such, in
the order name, problem statement, metadata values), by the path get_scenario's ``field`` reads, and
a snippet of at most :data:`SNIPPET_CHARS` characters around the earliest hit in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument
from runloop_scenarios_mcp.services.budget import count_text, utf8_size

SNIPPET_CHARS = 200
"""A snippet's length at most, its ellipses included."""
SNIPPET_TOKENS = 70
"""A snippet's tokens at most: 200 characters of CJK or emoji can cost 300; such snippets get narrower."""
_CONTEXT_BEFORE = 60
"""Characters kept before the hit, so the snippet shows what leads to it."""
STATEMENT_PATH = "input_context.problem_statement"


def _searchable(scenario: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields text is looked for in, in the order a match names them: (path, text)."""
    out: list[tuple[str, str]] = []
    name = scenario.get("name")
    if isinstance(name, str):
        out.append(("name", name))
    context = scenario.get("input_context")
    statement = context.get("problem_statement") if isinstance(context, dict) else None
    if isinstance(statement, str):
        out.append((STATEMENT_PATH, statement))
    metadata = scenario.get("metadata")
    if isinstance(metadata, dict):
        out += [(f"metadata.{key}", value) for key, value in metadata.items() if isinstance(value, str)]
    return out


@dataclass(frozen=True)
class TextQuery:
    """The words of a ``text`` argument, case-folded, each once."""

    words: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TextQuery:
        words = tuple(dict.fromkeys(text.casefold().split()))
        if not words:
            raise InvalidArgument("text is blank: pass one or more words to look for, or omit text")
        return cls(words)

    def match(self, scenario: dict[str, Any]) -> dict[str, str] | None:
        """``{"field": path, "snippet": ...}`` when every word occurs in the searchable fields, else None."""
        fields = [(path, value, value.casefold()) for path, value in _searchable(scenario)]
        if not all(any(word in folded for _, _, folded in fields) for word in self.words):
            return None
        best: tuple[str, str, str, list[tuple[int, str]]] | None = None
        for path, value, folded in fields:
            hits = [(folded.find(word), word) for word in self.words if word in folded]
            if hits and (best is None or len(hits) > len(best[3])):
                best = (path, value, folded, hits)
        assert best is not None  # every word occurs somewhere, so some field holds a hit
        path, value, folded, hits = best
        start, word = min(hits)
        return {"field": path, "snippet": snippet(value, folded, start, len(word))}


def _original_span(value: str, folded: str, start: int, length: int) -> tuple[int, int]:
    """Where ``folded[start:start + length]`` lies in ``value`` (case folding can lengthen a character: ß -> ss)."""
    if len(folded) == len(value):  # each character folded to one: positions agree
        return start, start + length
    begin = end = None
    position = 0
    for index, char in enumerate(value):
        position += len(char.casefold())
        if begin is None and position > start:
            begin = index
        if position >= start + length:
            end = index + 1
            break
    return begin or 0, end or len(value)


def _word_edges(value: str, left: int, right: int, begin: int, end: int) -> tuple[int, int]:
    """Move cut edges to nearby whitespace (at most 15 characters in), never into the hit ``[begin, end)``."""
    if left > 0 and not value[left - 1].isspace():
        space = next((i for i in range(left, min(left + 15, begin)) if value[i].isspace()), None)
        left = left if space is None else space + 1
    if right < len(value) and not value[right].isspace():
        space = next((i for i in range(right - 1, max(right - 15, end) - 1, -1) if value[i].isspace()), None)
        right = right if space is None else space
    return left, right


def snippet(value: str, folded: str, start: int, length: int) -> str:
    """At most :data:`SNIPPET_CHARS` characters of ``value`` around a hit, whitespace collapsed, ``…`` where cut."""
    begin, end = _original_span(value, folded, start, length)
    width = SNIPPET_CHARS - 2
    for _ in range(4):
        left = max(0, begin - min(_CONTEXT_BEFORE, width // 3))
        right = min(len(value), left + width)
        left = max(0, right - width)
        left, right = _word_edges(value, left, right, begin, end)
        text = ("…" if left > 0 else "") + " ".join(value[left:right].split()) + ("…" if right < len(value) else "")
        tokens = count_text(text) if utf8_size(text) > SNIPPET_TOKENS else 0  # a token is at least a byte
        if tokens <= SNIPPET_TOKENS or width <= 24:
            return text
        width = max(24, width * SNIPPET_TOKENS // tokens - 4)
    return text
