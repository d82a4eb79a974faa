"""The walk that ties the forms together: ``expand_changes`` and the key check at every depth.

``changes`` is checked for depth, its dotted top-level keys are nested (:mod:`.dotted_keys`), and
then each value is walked against the scenario's shape (:mod:`.shapes`) and the value it holds:
unknown keys are refused unless the scenario already holds them there, text edits are applied
(:mod:`.text_edits`), scorers given by name become the full new list (:mod:`.scorers_by_name`), and
values that replace what is there are copied, the keys of their objects checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runloop_scenarios_mcp.services.update.changes.dotted_keys import expand_dotted
from runloop_scenarios_mcp.services.update.changes.json_values import ABSENT, copy_json
from runloop_scenarios_mcp.services.update.changes.messages import fail, path_text, unknown_key
from runloop_scenarios_mcp.services.update.changes.scorers_by_name import scorers_by_name
from runloop_scenarios_mcp.services.update.changes.shapes import (
    FREE,
    REQUEST_ONLY_FIELD,
    SCENARIO_SHAPE,
    Items,
    Scorers,
    Shape,
    item_shape,
    known_fields,
)
from runloop_scenarios_mcp.services.update.changes.text_edits import apply_edits, is_edit
from runloop_scenarios_mcp.upstream.models import READ_ONLY_FIELDS

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in ``changes`` (a scenario needs fewer than 10)."""


def _check_depth(value: Any) -> None:
    """Refuse objects and arrays nested deeper than MAX_DEPTH, without recursing."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise fail(
                f"changes is nested more than {MAX_DEPTH} levels deep; a scenario is much flatter. Send only the "
                "fields to change, in get_scenario's shape."
            )
        stack.extend((child, depth + 1) for child in children)


def _walk(shape: Shape, current: Any, patch: Any, path: tuple[str, ...]) -> Any:
    """``patch`` (a non-null merge-patch value at ``path``) with its shorthand expanded and its keys checked."""
    if isinstance(shape, Scorers) and isinstance(patch, dict):
        return scorers_by_name(shape.function, current, patch, path, _walk)
    if is_edit(patch) and not isinstance(current, dict):
        return apply_edits(current, patch["replace"], path)
    if not isinstance(patch, dict):
        return _literal(shape, patch, current, path)
    if isinstance(current, str) and "replace" in patch:
        raise fail(
            f'{path_text(path)}: a text edit is {{"replace": [{{"old": "...", "new": "..."}}]}} with no other key; '
            "or send the whole new value."
        )
    held: Mapping[str, Any] = current if isinstance(current, dict) else {}
    known = known_fields(shape, held, patch)
    out: dict[str, Any] = {}
    for key, value in patch.items():
        child: Shape
        if known is None:
            child = FREE
        elif key in known:
            child = known[key]
        elif key in held:
            child = FREE  # a field this server does not know, already in the scenario: kept and editable
        else:
            raise unknown_key((*path, key), [*known, *(k for k in held if k not in known)])
        out[key] = None if value is None else _walk(child, held.get(key, ABSENT), value, (*path, key))
    return out


def _literal(shape: Shape, value: Any, current: Any, path: tuple[str, ...]) -> Any:
    """A value that replaces what is there (scalar or array): copied, with the keys of its objects checked."""
    if isinstance(value, list) and isinstance(shape, Items | Scorers):
        items = item_shape(shape)
        held = [item for item in current if isinstance(item, dict)] if isinstance(current, list) else []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                _check_keys(items, item, held, (*path, str(index)))
    return copy_json(value)


def _check_keys(
    shape: Shape, value: Mapping[str, Any], held: Sequence[Mapping[str, Any]], path: tuple[str, ...]
) -> None:
    """Refuse unknown keys in a new object, unless one of the scenario's objects at that place holds them."""
    known = known_fields(shape, {}, value)
    if known is None:
        return
    held_keys = {key for item in held for key in item}
    for key, child in value.items():
        if key not in known:
            if key in held_keys:
                continue
            raise unknown_key((*path, key), [*known, *sorted(held_keys - set(known))])
        sub = known[key]
        if isinstance(child, dict):
            _check_keys(sub, child, [h[key] for h in held if isinstance(h.get(key), dict)], (*path, key))
        elif isinstance(child, list) and isinstance(sub, Items | Scorers):
            held_items = [i for h in held if isinstance(h.get(key), list) for i in h[key] if isinstance(i, dict)]
            for index, item in enumerate(child):
                if isinstance(item, dict):
                    _check_keys(item_shape(sub), item, held_items, (*path, key, str(index)))


def expand_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The agent's `changes` as a plain RFC 7396 merge patch against `current`.

    `current` is the scenario as get_scenario returns it. Raises errors.InvalidChanges with an
    actionable message; never mutates its arguments.
    """
    if not isinstance(changes, dict):
        raise fail('changes must be an object of the fields to change, e.g. {"metadata": {"owner": "team-a"}}.')
    _check_depth(changes)
    expanded = expand_dotted(current, changes)
    _check_depth(expanded)
    out: dict[str, Any] = {}
    for key, value in expanded.items():
        shape: Shape
        if key == REQUEST_ONLY_FIELD or key in READ_ONLY_FIELDS or (key in current and "." in key):
            out[key] = copy_json(value)  # plan_update refuses or skips these with its own messages
            continue
        if key in SCENARIO_SHAPE.fields:
            shape = SCENARIO_SHAPE.fields[key]
        elif key in current:
            shape = FREE
        else:
            raise unknown_key((key,), list(SCENARIO_SHAPE.fields))
        out[key] = None if value is None else _walk(shape, current.get(key, ABSENT), value, (key,))
    return out
