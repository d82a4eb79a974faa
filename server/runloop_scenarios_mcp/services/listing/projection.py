"""What a listed scenario looks like: the lean summary, or the top-level fields the caller chose.

Summaries are remembered (:func:`summary_item`): an agent pages through the same scenarios again and again, and a
summary, its JSON and its token counts depend only on a few values of the scenario; one made before is used again
for the same scenario id while those values are equal (as strings: see :func:`_only_strings`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument
from runloop_scenarios_mcp.services.budget import ListItem
from runloop_scenarios_mcp.upstream.models import SCENARIO_FIELDS

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


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str | None:
    """The start of a problem statement, whitespace collapsed, with an ellipsis when cut."""
    if not isinstance(text, str):
        return None
    # Collapse only a growing prefix: the collapsed prefix is a prefix of the collapsed whole, so once it is
    # longer than ``limit`` it holds every character kept (a long statement is not joined whole for 100).
    size = 4 * limit
    while True:
        flat = " ".join(text[:size].split())
        if len(flat) > limit:
            return flat[: limit - 1].rstrip() + "…"
        if size >= len(text):
            return flat
        size *= 4


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


def _summary_values(scenario: dict[str, Any]) -> dict[str, Any]:
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


def summarize(scenario: dict[str, Any]) -> dict[str, Any]:
    """The lean view: enough to choose a scenario, a fraction of its tokens.

    Leaves out what would say nothing: ``status`` (listings hold only active scenarios), nulls and empty
    values (no metadata, no scorers). Named in ``fields``, each of these is returned as it is.
    """
    return {
        key: value
        for key, value in _summary_values(scenario).items()
        if key != "status" and value is not None and value != {} and value != []
    }


SUMMARY_CACHE_ENTRIES = 2048
"""Summaries remembered at most, one per scenario id (the emulator's whole data set is 520 scenarios)."""
SUMMARY_CACHE_CHARS = 8 * 1024 * 1024
"""Characters held by the remembered summaries at most: their texts and the problem statements they were made from."""
_summaries: OrderedDict[str, tuple[tuple[Any, ...], ListItem]] = OrderedDict()
_summary_chars = 0
_summary_lock = threading.Lock()
_STRING_OR_NONE = frozenset({str, type(None)})


def _summary_source(scenario: dict[str, Any]) -> tuple[Any, ...]:
    """Every value :func:`summarize` reads, as it reads them: two scenarios with equal sources have one summary, as
    long as the values are strings (or None): Python's equality says ``1 == 1.0 == True`` where JSON does not (see
    :func:`_only_strings`). Metadata as its pairs in order; an empty or absent one as none, as the summary has it."""
    context = scenario.get("input_context")
    statement = context.get("problem_statement") if isinstance(context, dict) else None
    contract = scenario.get("scoring_contract")
    functions = contract.get("scoring_function_parameters") if isinstance(contract, dict) else None
    scorers = (
        tuple(
            [
                (
                    function.get("name"),
                    scorer.get("type") if isinstance(scorer := function.get("scorer"), dict) else None,
                )
                for function in functions
                if isinstance(function, dict)
            ]
        )
        if isinstance(functions, list)
        else ()
    )
    metadata = scenario.get("metadata")
    return (
        scenario.get("name"),
        scenario.get("validation_type"),
        statement if isinstance(statement, str) else None,  # (no excerpt, whatever else it is)
        scorers,
        tuple(metadata.items()) if isinstance(metadata, dict) else () if metadata is None else metadata,
    )


def _only_strings(source: tuple[Any, ...]) -> bool:
    """Whether every value in ``source`` is a string or None: then only an equal source of strings equals it."""
    name, kind, _statement, scorers, pairs = source
    return (
        type(name) in _STRING_OR_NONE
        and type(kind) in _STRING_OR_NONE
        and type(pairs) is tuple
        and all(type(key) is str and type(value) is str for key, value in pairs)
        and all(
            type(scorer) in _STRING_OR_NONE and type(scorer_type) in _STRING_OR_NONE for scorer, scorer_type in scorers
        )
    )


def summary_item(scenario: dict[str, Any]) -> ListItem:
    """:func:`summarize` as a list item (with its JSON and, once counted, its part counts), remembered per scenario
    id in a small LRU bounded in entries and characters, and used again while the values it was made from are the
    same. Items are shared between calls: neither they nor their values are changed.
    """
    global _summary_chars
    scenario_id = scenario["id"]
    if type(scenario_id) is not str:
        return ListItem(summarize(scenario))
    source = _summary_source(scenario)
    known = _summaries.get(scenario_id)  # (one lookup is atomic: no lock on the way to a hit)
    if known is not None and known[0] == source:  # (strings compared, none hashed: statements are long)
        try:  # noqa: SIM105 (contextlib.suppress costs more than the rest of a hit)
            _summaries.move_to_end(scenario_id)
        except KeyError:  # (another thread has just dropped it: it is still right)
            pass
        return known[1]
    item = ListItem(summarize(scenario))
    chars = _chars(source, item)
    if chars > SUMMARY_CACHE_CHARS // 16 or not _only_strings(source):
        return item
    with _summary_lock:
        replaced = _summaries.pop(scenario_id, None)
        if replaced is not None:
            _summary_chars -= _chars(*replaced)
        _summaries[scenario_id] = (source, item)
        _summary_chars += chars
        while len(_summaries) > SUMMARY_CACHE_ENTRIES or _summary_chars > SUMMARY_CACHE_CHARS:
            _, evicted = _summaries.popitem(last=False)
            _summary_chars -= _chars(*evicted)
    return item


def _chars(source: tuple[Any, ...], item: ListItem) -> int:
    """What a remembered summary holds: its problem statement (in the source) and its JSON (name, metadata...)."""
    statement: str | None = source[2]
    return len(item.text) + (len(statement) if statement is not None else 0)


def summary_cache_size() -> tuple[int, int]:
    """Entries and characters held by the summary cache (for tests and benches)."""
    with _summary_lock:
        return len(_summaries), _summary_chars


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
            summary = summary or _summary_values(scenario)
            out[name] = summary[name]
    return out
