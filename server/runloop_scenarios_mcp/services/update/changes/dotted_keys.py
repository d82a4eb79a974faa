"""Dotted top-level keys (``"metadata.owner": "x"``) read as the nested form, when that reading is the only one.

A dotted key is refused, with the nested JSON to send, when it could mean something else: a field
the scenario holds under that literal name, a free-form map whose keys may hold dots, a list
position (scorers are patched by name instead), or a path that changes also sets another way.
"""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.errors import InvalidChanges
from runloop_scenarios_mcp.services.update.changes.json_values import ABSENT
from runloop_scenarios_mcp.services.update.changes.messages import (
    fail,
    json_text,
    nest,
    path_text,
    show,
    suggest,
    use_environment,
)
from runloop_scenarios_mcp.services.update.changes.shapes import (
    REQUEST_ONLY_FIELD,
    SCENARIO_SHAPE,
    SCORERS_PATH,
    TOP_FIELDS,
    Free,
    Items,
    Leaf,
    Shape,
    child_shape,
)
from runloop_scenarios_mcp.services.update.changes.text_edits import is_edit

_MAX_SEGMENTS = 8


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _dotted_refusal(key: str, segments: tuple[str, ...], value: Any, current: dict[str, Any]) -> str | None:
    """Why a dotted key cannot be read as shorthand, or None when it can."""
    shown = f'"{show(key)}"'
    if len(segments) > _MAX_SEGMENTS:
        return f"{shown} has too many dots to be a field path; send the nested form."
    if any(segment == "" for segment in segments):
        path = tuple(segment for segment in segments if segment)
        example = f" e.g. {json_text(nest(path, value))}" if path else ""
        return f"{shown} is not a field path (it has an empty segment); send the nested form{example}."
    for held in current:
        if "." in held and key.startswith(held + "."):
            return (
                f'{shown} is ambiguous: the scenario has a field literally named "{show(held)}"; send the nested form.'
            )
    head = segments[0]
    if head == REQUEST_ONLY_FIELD:
        return use_environment(shown)
    if head not in TOP_FIELDS and head not in current:
        suggestion = suggest(head, list(TOP_FIELDS))
        hint = f'; did you mean "{show(suggestion)}"?' if suggestion is not None else "."
        return f'{shown}: the scenario has no field "{show(head)}"{hint}'
    numeric = next((i for i, segment in enumerate(segments) if _is_index(segment)), None)
    if numeric is not None:
        if segments[:numeric] == SCORERS_PATH and not any(_is_index(s) for s in segments[numeric + 1 :]):
            scorers = current.get("scoring_contract", {})
            items = scorers.get("scoring_function_parameters") if isinstance(scorers, dict) else None
            index = int(segments[numeric]) if len(segments[numeric]) < 10 else -1
            item = items[index] if isinstance(items, list) and 0 <= index < len(items) else None
            name = item.get("name") if isinstance(item, dict) else None
            name = name if isinstance(name, str) else "<scorer name>"
            example = json_text(nest((*SCORERS_PATH, name, *segments[numeric + 1 :]), value))
            return f"{shown}: scorers are patched by name, not position; send {example} instead."
        where = ".".join(show(s) for s in segments[:numeric])
        return f"{shown}: {where} is a list, and a list is replaced whole; send the complete new list at {where}."
    shape: Shape = SCENARIO_SHAPE
    for index, segment in enumerate(segments):
        rest = segments[index + 1 :]
        if isinstance(shape, Leaf | Items) and index > 0:
            where = ".".join(show(s) for s in segments[:index])
            return (
                f"{shown}: {where} is not an object; send {json_text(nest(segments[:index], '<new value>'))} instead."
            )
        if isinstance(shape, Free) and index > 0 and len(rest) >= 1:
            where = ".".join(show(s) for s in segments[:index])
            flat = ".".join(segments[index:])
            return (
                f"{shown} is ambiguous: keys in {where} may contain dots; send "
                f"{json_text(nest((*segments[:index], flat), value))} instead."
            )
        shape = child_shape(shape, segment)
    return None


def expand_dotted(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Dotted top-level keys moved into the nested form; a new dict, built copy-on-write."""
    out = {key: value for key, value in changes.items() if "." not in key or key in current}
    owned: set[int] = {id(out)}
    for key, value in changes.items():
        if "." not in key:
            continue
        segments = tuple(key.split("."))
        if key in current:
            if current[key] == value or (segments[0] not in TOP_FIELDS and segments[0] not in current):
                continue  # a field the scenario holds under this very name, and no other reading: left to plan_update
            raise fail(
                f'"{show(key)}" is ambiguous: the scenario has a field literally named so, and a dotted key is '
                "also read as a path; send the nested form of the path you mean."
            )
        reason = _dotted_refusal(key, segments, value, current)
        if reason is not None:
            raise fail(reason)
        node = out
        for depth, segment in enumerate(segments):
            here = node.get(segment, ABSENT)
            if depth == len(segments) - 1:
                if here is not ABSENT:
                    raise _conflict(key, segments, value)
                node[segment] = value
            elif here is ABSENT:
                child: dict[str, Any] = {}
                owned.add(id(child))
                node[segment] = child
                node = child
            elif isinstance(here, dict) and not is_edit(here):
                if id(here) not in owned:
                    here = dict(here)
                    owned.add(id(here))
                    node[segment] = here
                node = here
            else:
                raise _conflict(key, segments, value)
    return out


def _conflict(key: str, segments: tuple[str, ...], value: Any) -> InvalidChanges:
    return fail(
        f'"{show(key)}" sets {path_text(segments)}, which changes also sets another way; send it once, nested: '
        f"{json_text(nest(segments, value))}."
    )
