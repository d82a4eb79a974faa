"""``scoring_function_parameters`` as an object keyed by scorer name: each scorer patched, removed or added.

A name the scenario holds once takes a merge patch of that scorer (null removes it); a new name
adds a complete scorer (its ``scorer`` with a ``type``, and a ``weight``) at the end. The result is
the full new list. Each scorer's own patch is checked by the walk that calls this module, passed in
as ``walk`` (the two call each other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from runloop_scenarios_mcp.errors import InvalidChanges
from runloop_scenarios_mcp.services.merge_patch import merge_patch as merge
from runloop_scenarios_mcp.services.update.changes.json_values import ABSENT, copy_json
from runloop_scenarios_mcp.services.update.changes.messages import (
    VALUE_SHOWN,
    fail,
    json_text,
    known_list,
    path_text,
    show,
    suggest,
)
from runloop_scenarios_mcp.services.update.changes.shapes import Model, Shape

Walk = Callable[[Shape, Any, Any, tuple[str, ...]], Any]
"""``walk(shape, current, patch, path)``: ``patch`` with its shorthand expanded and its keys checked."""

_EXAMPLE_SCORERS: dict[str, dict[str, str]] = {
    "ast_grep_scorer": {"type": "ast_grep_scorer", "pattern": "...", "search_directory": "."},
    "bash_script_scorer": {"type": "bash_script_scorer", "bash_script": "echo score=1.0"},
    "command_scorer": {"type": "command_scorer", "command": "make test"},
    "custom_scorer": {"type": "custom_scorer", "custom_scorer_type": "..."},
    "python_script_scorer": {"type": "python_script_scorer", "python_script": "print(1.0)"},
    "test_based_scorer": {"type": "test_based_scorer", "test_command": "pytest"},
}


def _scorer_names(items: list[Any]) -> list[str]:
    names = [item.get("name") for item in items if isinstance(item, dict)]
    return list(dict.fromkeys(name for name in names if isinstance(name, str)))


def _no_such_scorer(path: tuple[str, ...], name: str, existing: list[str], adding: bool) -> InvalidChanges:
    suggestion = suggest(name, existing)
    hint = f'did you mean "{show(suggestion)}"? ' if suggestion is not None else ""
    names = f"Scorers: {known_list(existing)}." if existing else "The scenario has no scorers."
    add = " To add a scorer under this name, give its scorer (with a type) and weight." if adding else ""
    return fail(f'{path_text(path)}: no scorer is named "{show(name)}"; {hint}{names}{add}')


def scorers_by_name(
    function: Model, current: Any, patch: dict[str, Any], path: tuple[str, ...], walk: Walk
) -> list[Any]:
    """The full new scorers list: ``current`` with the scorers named in ``patch`` patched, removed or added."""
    items: list[Any] = current if isinstance(current, list) else []
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    counts = Counter(name for name in names if isinstance(name, str))
    existing = _scorer_names(items)
    removed: set[str] = set()
    patched: dict[str, Any] = {}
    added: list[dict[str, Any]] = []
    for name, value in patch.items():
        where = (*path, name)
        if counts[name] > 1:
            raise fail(
                f'{path_text(path)}: {counts[name]} scorers are named "{show(name)}", so a patch by name is '
                "ambiguous; send the whole list as an array instead."
            )
        if value is not None and not isinstance(value, dict):
            raise fail(
                f'{path_text(where)}: give an object (a merge patch of that scorer, e.g. {{"weight": 0.5}}) or null '
                "to remove it; an array under scoring_function_parameters replaces the whole list."
            )
        if counts[name] == 1:
            index = names.index(name)
            if value is None:
                removed.add(name)
            else:
                patched[name] = copy_json(merge(items[index], walk(function, items[index], value, where)))
            continue
        if value is None or "scorer" not in value:
            raise _no_such_scorer(path, name, existing, adding=value is not None)
        if "name" in value and value["name"] != name:
            raise fail(
                f'{path_text(where)}: a new scorer is named by its key; drop "name" or set it to "{show(name)}".'
            )
        new = copy_json(merge({"name": name}, walk(function, ABSENT, value, where)))
        _check_complete(new, name, where)
        added.append(new)
    result: list[Any] = []
    for item, held_name in zip(items, names, strict=True):
        if isinstance(held_name, str) and held_name in removed:
            continue
        result.append(patched[held_name] if isinstance(held_name, str) and held_name in patched else copy_json(item))
    return result + added


def _check_complete(new: dict[str, Any], name: str, where: tuple[str, ...]) -> None:
    """Refuse a new scorer without a scorer type or a weight, with an example to send."""
    scorer = new.get("scorer")
    kind = scorer.get("type") if isinstance(scorer, dict) else None
    missing = []
    if not isinstance(scorer, dict):
        missing.append("scorer (an object with a type)")
    elif not isinstance(kind, str):
        missing.append("scorer.type")
    if new.get("weight") is None:
        missing.append("weight")
    if missing:
        example_scorer: Any = _EXAMPLE_SCORERS["command_scorer"]
        if isinstance(scorer, dict) and isinstance(kind, str):  # theirs, with any missing required field filled in
            example_scorer = {**_EXAMPLE_SCORERS.get(kind, {}), **scorer}
            if len(json_text(example_scorer)) > 2 * VALUE_SHOWN:
                example_scorer = _EXAMPLE_SCORERS.get(kind, {"type": kind})
        weight = new.get("weight")
        example = json_text(
            {name: {"scorer": example_scorer, "weight": weight if isinstance(weight, int | float) else 0.25}}
        )
        raise fail(f"{path_text(where)}: a new scorer needs {' and '.join(missing)}; e.g. {example}.")
