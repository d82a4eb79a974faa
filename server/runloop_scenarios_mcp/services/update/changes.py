"""The agent's ``changes`` as a plain JSON Merge Patch: shorthand expanded, typos refused.

``expand_changes(current, changes)`` is the first step of an update preview. It takes what an agent
naturally sends and returns an RFC 7396 merge patch against ``current`` (get_scenario's shape):

* unknown keys at any depth are refused with their path and a did-you-mean, unless the scenario
  already holds that key there (fields newer than this server stay editable); the known keys of
  each level come from the models in ``upstream/models.py``, a scorer's from its (merged) ``type``;
  ``metadata``, ``input_context.additional_context`` and ``scorer.scorer_params`` take any key;
* a dotted top-level key (``"metadata.owner": "x"``) is shorthand for the nested form when that
  reading is the only one; otherwise the refusal shows the nested JSON to send;
* ``scoring_contract.scoring_function_parameters`` given as an object keyed by scorer name patches
  those scorers (merge patch each; null removes; a new name adds a complete scorer at the end) and
  becomes the full new list; an array still replaces the whole list;
* ``{"replace": [{"old": ..., "new": ...}, ...]}`` in place of a string edits that string in place.

Pure (no I/O), never mutates its arguments, never shares containers with them, and bounds its
recursion: changes nested deeper than :data:`MAX_DEPTH` are refused. Every refusal is an
:class:`InvalidChanges` whose short message says what to send instead and that nothing was written.
Weights, required scorer fields and value types are checked later, on the merged scenario.
"""

from __future__ import annotations

import difflib
import json
import types
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from runloop_scenarios_mcp.errors import InvalidChanges
from runloop_scenarios_mcp.upstream.models import READ_ONLY_FIELDS, UPDATE_FIELD_NAMES, ScenarioView, ScoringFunction

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in ``changes`` (a scenario needs fewer than 10)."""
SCORERS_PATH = ("scoring_contract", "scoring_function_parameters")
REQUEST_ONLY_FIELD = "environment_parameters"
"""The update request's name of ``environment``; plan_update refuses it with its own message."""

_KEY_SHOWN = 60
_VALUE_SHOWN = 80
_KNOWN_SHOWN = 6
_MAX_SEGMENTS = 8
_NOTHING = " Nothing was written."
_ABSENT: Any = object()


# --- the shape of a scenario, from the pydantic models ----------------------------------------


class _Free:
    """Any key, any value: a free-form map, or a field this server does not know."""


class _Leaf:
    """A single value (string, number, enum) or a list of them: it has no keys of its own."""


@dataclass(frozen=True)
class _Model:
    fields: Mapping[str, _Shape]


@dataclass(frozen=True)
class _Items:
    """A list of objects (e.g. test_files); a list in a merge patch replaces the whole list."""

    item: _Shape


@dataclass(frozen=True)
class _Scorers:
    """scoring_function_parameters: a list of scoring functions, patchable by name."""

    function: _Model


@dataclass(frozen=True)
class _ScorerUnion:
    """A scorer: its known keys depend on its ``type``; an unknown type takes any key."""

    variants: Mapping[str, _Model]


_Shape = _Free | _Leaf | _Model | _Items | _Scorers | _ScorerUnion
FREE = _Free()
LEAF = _Leaf()


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions and Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_classes(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [cls for arg in get_args(annotation) for cls in _model_classes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _is_free(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_free(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_free(arg) for arg in get_args(annotation))
    return annotation is Any or annotation is dict or origin is dict


def _list_item(annotation: Any) -> Any:
    """The item type of ``list[X]`` (through Optional), or None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _list_item(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        items = [_list_item(arg) for arg in get_args(annotation)]
        return next((item for item in items if item is not None), None)
    if origin is list:
        args = get_args(annotation)
        return args[0] if args else Any
    return None


def _type_tag(cls: type[BaseModel]) -> str | None:
    field = cls.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    tags = get_args(field.annotation)
    return tags[0] if len(tags) == 1 and isinstance(tags[0], str) else None


def _model(cls: type[BaseModel]) -> _Model:
    return _Model({(info.alias or name): _shape_of(info.annotation) for name, info in cls.model_fields.items()})


def _shape_of(annotation: Any) -> _Shape:
    item = _list_item(annotation)
    if item is not None:
        classes = _model_classes(item)
        if classes == [ScoringFunction]:
            return _Scorers(_model(ScoringFunction))
        return _Items(_model(classes[0])) if len(classes) == 1 else LEAF
    classes = _model_classes(annotation)
    if len(classes) > 1:
        tagged = {tag: _model(cls) for cls in classes if (tag := _type_tag(cls)) is not None}
        return _ScorerUnion(tagged)
    if classes:
        return _model(classes[0])
    return FREE if _is_free(annotation) else LEAF


SCENARIO_SHAPE = _model(ScenarioView)
TOP_FIELDS: tuple[str, ...] = (*SCENARIO_SHAPE.fields, REQUEST_ONLY_FIELD)


# --- messages ---------------------------------------------------------------------------------


def _fail(message: str) -> InvalidChanges:
    return InvalidChanges(message + _NOTHING)


def _safe(text: str) -> str:
    """Lone surrogates (invalid in UTF-8) spelled as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _quote(key: str) -> str:
    """A key as a JSON string for a message: escaped, at most ~60 characters."""
    return _safe(json.dumps(key[:_KEY_SHOWN] + ("…" if len(key) > _KEY_SHOWN else ""), ensure_ascii=False))


def _show(key: str) -> str:
    """A key inside a message (within a path or inside double quotes)."""
    return _quote(key)[1:-1]


def _where(path: tuple[str, ...]) -> str:
    shown = [_show(segment) for segment in path]
    text = ".".join(shown)
    if len(text) > 180 and len(shown) > 3:
        text = ".".join([shown[0], "…", *shown[-2:]])
    return text


def _json(value: Any) -> str:
    """Compact JSON for a message; values longer than ~80 characters become ``<your value>``."""
    if not isinstance(value, dict):
        text = _safe(json.dumps(value, ensure_ascii=False))
        return text if len(text) <= _VALUE_SHOWN else "<your value>"
    parts = [f"{_quote(k)}: {_json(v)}" for k, v in value.items()]
    return "{" + ", ".join(parts) + "}"


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    nested: Any = value
    for segment in reversed(path):
        nested = {segment: nested}
    result: dict[str, Any] = nested
    return result


def _known_list(known: list[str]) -> str:
    shown = ", ".join(_show(k) for k in known[:_KNOWN_SHOWN])
    return shown + (", …" if len(known) > _KNOWN_SHOWN else "")


def _suggest(key: str, known: list[str]) -> str | None:
    if len(key) > 2 * _KEY_SHOWN:
        return None
    matches = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key(path: tuple[str, ...], known: list[str]) -> InvalidChanges:
    suggestion = _suggest(path[-1], known)
    if suggestion is not None:
        return _fail(f'{_where(path)} is an unknown field; did you mean "{_show(suggestion)}"?')
    if len(path) == 1:
        updatable = ", ".join(UPDATE_FIELD_NAMES)
        return _fail(f"{_where(path)} is an unknown field; update_scenario can change: {updatable}.")
    return _fail(f"{_where(path)} is an unknown field; the fields of {_where(path[:-1])} are: {_known_list(known)}.")


def _kind(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "an object"


# --- depth ------------------------------------------------------------------------------------


def _check_depth(value: Any) -> None:
    """Refuse objects and arrays nested deeper than MAX_DEPTH, without recursing."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise _fail(
                f"changes is nested more than {MAX_DEPTH} levels deep; a scenario is much flatter. Send only the "
                "fields to change, in get_scenario's shape."
            )
        stack.extend((child, depth + 1) for child in children)


# --- replace edits ----------------------------------------------------------------------------


def _is_edit(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("replace"), list)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _near_match(text: str, old: str) -> str:
    if old.casefold() in text.casefold():
        return " (it does occur ignoring case: copy old exactly from get_scenario)"
    squashed = _squash(old)
    if squashed and squashed in _squash(text):
        return " (it does occur with different whitespace or line breaks: copy old exactly from get_scenario)"
    if squashed and squashed.casefold() in _squash(text).casefold():
        return " (it does occur ignoring case and whitespace: copy old exactly from get_scenario)"
    return ""


def _apply_edits(current: Any, edits: list[Any], path: tuple[str, ...]) -> str:
    where = _where(path)
    if not isinstance(current, str):
        raise _fail(
            f"{where}: a replace edit needs existing text, but {where} is {_kind(current)}; send its whole new "
            "value instead."
        )
    if not edits:
        raise _fail(f'{where}.replace is empty: give at least one {{"old": "...", "new": "..."}} edit.')
    text = current
    for index, edit in enumerate(edits):
        at = f"{where}.replace[{index}]"
        shape = '{"old": "<text that occurs once>", "new": "<replacement>"}'
        if not isinstance(edit, dict):
            raise _fail(f"{at}: each edit must be an object {shape}.")
        extra = [key for key in edit if key not in ("old", "new")]
        if extra:
            raise _fail(f"{at}: unexpected key {_show(str(extra[0]))}; each edit is exactly {shape}.")
        old, new = edit.get("old"), edit.get("new")
        if not isinstance(old, str) or not old:
            raise _fail(f"{at}: old must be a non-empty string; each edit is {shape}.")
        if not isinstance(new, str):
            raise _fail(f'{at}: new must be a string ("" deletes the old text); each edit is {shape}.')
        first = text.find(old)
        state = "the text" if index == 0 else "the text as it stands after the previous edits"
        if first < 0:
            raise _fail(f"{at}: its old text occurs 0 times in {state}{_near_match(text, old)}.")
        if text.find(old, first + 1) >= 0:
            count = max(2, text.count(old))
            raise _fail(
                f"{at}: its old text occurs {count} times in {state}; include more of the surrounding text so it "
                "occurs exactly once."
            )
        text = text[:first] + new + text[first + len(old) :]
    return text


# --- walking changes against the scenario -----------------------------------------------------


def _fields(shape: _Shape, held: Mapping[str, Any], patch: Mapping[str, Any]) -> Mapping[str, _Shape] | None:
    """The known keys of an object of this shape (None: any key), a scorer's by its merged type."""
    if isinstance(shape, _Model):
        return shape.fields
    if isinstance(shape, _ScorerUnion):
        kind = patch["type"] if "type" in patch else held.get("type")
        variant = shape.variants.get(kind) if isinstance(kind, str) else None
        return None if variant is None else variant.fields
    return None


def _walk(shape: _Shape, current: Any, patch: Any, path: tuple[str, ...]) -> Any:
    """``patch`` (a non-null merge-patch value at ``path``) with its shorthand expanded and its keys checked."""
    if isinstance(shape, _Scorers) and isinstance(patch, dict):
        return _scorers_by_name(shape.function, current, patch, path)
    if _is_edit(patch) and not isinstance(current, dict):
        return _apply_edits(current, patch["replace"], path)
    if not isinstance(patch, dict):
        return _literal(shape, patch, current, path)
    if isinstance(current, str) and "replace" in patch:
        raise _fail(
            f'{_where(path)}: a text edit is {{"replace": [{{"old": "...", "new": "..."}}]}} with no other key; '
            "or send the whole new value."
        )
    held: Mapping[str, Any] = current if isinstance(current, dict) else {}
    known = _fields(shape, held, patch)
    out: dict[str, Any] = {}
    for key, value in patch.items():
        child: _Shape
        if known is None:
            child = FREE
        elif key in known:
            child = known[key]
        elif key in held:
            child = FREE  # a field this server does not know, already in the scenario: kept and editable
        else:
            raise _unknown_key((*path, key), [*known, *(k for k in held if k not in known)])
        out[key] = None if value is None else _walk(child, held.get(key, _ABSENT), value, (*path, key))
    return out


def _literal(shape: _Shape, value: Any, current: Any, path: tuple[str, ...]) -> Any:
    """A value that replaces what is there (scalar or array): copied, with the keys of its objects checked."""
    if isinstance(value, list) and isinstance(shape, _Items | _Scorers):
        item_shape = shape.item if isinstance(shape, _Items) else shape.function
        held = [item for item in current if isinstance(item, dict)] if isinstance(current, list) else []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                _check_keys(item_shape, item, held, (*path, str(index)))
    return _copy(value)


def _check_keys(
    shape: _Shape, value: Mapping[str, Any], held: Sequence[Mapping[str, Any]], path: tuple[str, ...]
) -> None:
    """Refuse unknown keys in a new object, unless one of the scenario's objects at that place holds them."""
    known = _fields(shape, {}, value)
    if known is None:
        return
    held_keys = {key for item in held for key in item}
    for key, child in value.items():
        if key not in known:
            if key in held_keys:
                continue
            raise _unknown_key((*path, key), [*known, *sorted(held_keys - set(known))])
        sub = known[key]
        if isinstance(child, dict):
            _check_keys(sub, child, [h[key] for h in held if isinstance(h.get(key), dict)], (*path, key))
        elif isinstance(child, list) and isinstance(sub, _Items | _Scorers):
            item_shape = sub.item if isinstance(sub, _Items) else sub.function
            held_items = [i for h in held if isinstance(h.get(key), list) for i in h[key] if isinstance(i, dict)]
            for index, item in enumerate(child):
                if isinstance(item, dict):
                    _check_keys(item_shape, item, held_items, (*path, key, str(index)))


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value, without recursion (the scenario's own nesting is not bounded here)."""
    if not isinstance(value, dict | list):
        return value
    top: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, top)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            clone = item
            if isinstance(item, dict | list):
                clone = {} if isinstance(item, dict) else []
                stack.append((item, clone))
            if isinstance(target, dict):
                target[key] = clone
            else:
                target.append(clone)
    return top


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396, non-mutating; the result may share untouched parts with ``target`` (callers copy it)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --- scorers by name --------------------------------------------------------------------------

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
    suggestion = _suggest(name, existing)
    hint = f'did you mean "{_show(suggestion)}"? ' if suggestion is not None else ""
    names = f"Scorers: {_known_list(existing)}." if existing else "The scenario has no scorers."
    add = " To add a scorer under this name, give its scorer (with a type) and weight." if adding else ""
    return _fail(f'{_where(path)}: no scorer is named "{_show(name)}"; {hint}{names}{add}')


def _scorers_by_name(function: _Model, current: Any, patch: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
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
            raise _fail(
                f'{_where(path)}: {counts[name]} scorers are named "{_show(name)}", so a patch by name is ambiguous; '
                "send the whole list as an array instead."
            )
        if value is not None and not isinstance(value, dict):
            raise _fail(
                f'{_where(where)}: give an object (a merge patch of that scorer, e.g. {{"weight": 0.5}}) or null '
                "to remove it; an array under scoring_function_parameters replaces the whole list."
            )
        if counts[name] == 1:
            index = names.index(name)
            if value is None:
                removed.add(name)
            else:
                patched[name] = _copy(_merge(items[index], _walk(function, items[index], value, where)))
            continue
        if value is None or "scorer" not in value:
            raise _no_such_scorer(path, name, existing, adding=value is not None)
        if "name" in value and value["name"] != name:
            raise _fail(f'{_where(where)}: a new scorer is named by its key; drop "name" or set it to "{_show(name)}".')
        new = _copy(_merge({"name": name}, _walk(function, _ABSENT, value, where)))
        _check_complete(new, name, where)
        added.append(new)
    result: list[Any] = []
    for item, held_name in zip(items, names, strict=True):
        if isinstance(held_name, str) and held_name in removed:
            continue
        result.append(patched[held_name] if isinstance(held_name, str) and held_name in patched else _copy(item))
    return result + added


def _check_complete(new: dict[str, Any], name: str, where: tuple[str, ...]) -> None:
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
            if len(_json(example_scorer)) > 2 * _VALUE_SHOWN:
                example_scorer = _EXAMPLE_SCORERS.get(kind, {"type": kind})
        weight = new.get("weight")
        example = _json(
            {name: {"scorer": example_scorer, "weight": weight if isinstance(weight, int | float) else 0.25}}
        )
        raise _fail(f"{_where(where)}: a new scorer needs {' and '.join(missing)}; e.g. {example}.")


# --- dotted top-level keys --------------------------------------------------------------------


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _child_shape(shape: _Shape, segment: str) -> _Shape:
    if isinstance(shape, _Model):
        return shape.fields.get(segment, FREE)
    if isinstance(shape, _Scorers):
        return shape.function
    if isinstance(shape, _ScorerUnion):
        return next((v.fields[segment] for v in shape.variants.values() if segment in v.fields), FREE)
    return shape


def _dotted_refusal(key: str, segments: tuple[str, ...], value: Any, current: dict[str, Any]) -> str | None:
    """Why a dotted key cannot be read as shorthand, or None when it can."""
    shown = f'"{_show(key)}"'
    if len(segments) > _MAX_SEGMENTS:
        return f"{shown} has too many dots to be a field path; send the nested form."
    if any(segment == "" for segment in segments):
        path = tuple(segment for segment in segments if segment)
        example = f" e.g. {_json(_nest(path, value))}" if path else ""
        return f"{shown} is not a field path (it has an empty segment); send the nested form{example}."
    for held in current:
        if "." in held and key.startswith(held + "."):
            return (
                f'{shown} is ambiguous: the scenario has a field literally named "{_show(held)}"; send the nested form.'
            )
    head = segments[0]
    if head == REQUEST_ONLY_FIELD:
        return f"{shown}: use environment, as get_scenario shows it (the server sends it as {REQUEST_ONLY_FIELD})."
    if head not in TOP_FIELDS and head not in current:
        suggestion = _suggest(head, list(TOP_FIELDS))
        hint = f'; did you mean "{_show(suggestion)}"?' if suggestion is not None else "."
        return f'{shown}: the scenario has no field "{_show(head)}"{hint}'
    numeric = next((i for i, segment in enumerate(segments) if _is_index(segment)), None)
    if numeric is not None:
        if segments[:numeric] == SCORERS_PATH and not any(_is_index(s) for s in segments[numeric + 1 :]):
            scorers = current.get("scoring_contract", {})
            items = scorers.get("scoring_function_parameters") if isinstance(scorers, dict) else None
            index = int(segments[numeric]) if len(segments[numeric]) < 10 else -1
            item = items[index] if isinstance(items, list) and 0 <= index < len(items) else None
            name = item.get("name") if isinstance(item, dict) else None
            name = name if isinstance(name, str) else "<scorer name>"
            example = _json(_nest((*SCORERS_PATH, name, *segments[numeric + 1 :]), value))
            return f"{shown}: scorers are patched by name, not position; send {example} instead."
        where = ".".join(_show(s) for s in segments[:numeric])
        return f"{shown}: {where} is a list, and a list is replaced whole; send the complete new list at {where}."
    shape: _Shape = SCENARIO_SHAPE
    for index, segment in enumerate(segments):
        rest = segments[index + 1 :]
        if isinstance(shape, _Leaf | _Items) and index > 0:
            where = ".".join(_show(s) for s in segments[:index])
            return f"{shown}: {where} is not an object; send {_json(_nest(segments[:index], '<new value>'))} instead."
        if isinstance(shape, _Free) and index > 0 and len(rest) >= 1:
            where = ".".join(_show(s) for s in segments[:index])
            flat = ".".join(segments[index:])
            return (
                f"{shown} is ambiguous: keys in {where} may contain dots; send "
                f"{_json(_nest((*segments[:index], flat), value))} instead."
            )
        shape = _child_shape(shape, segment)
    return None


def _expand_dotted(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
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
            raise _fail(
                f'"{_show(key)}" is ambiguous: the scenario has a field literally named so, and a dotted key is '
                "also read as a path; send the nested form of the path you mean."
            )
        reason = _dotted_refusal(key, segments, value, current)
        if reason is not None:
            raise _fail(reason)
        node = out
        for depth, segment in enumerate(segments):
            here = node.get(segment, _ABSENT)
            if depth == len(segments) - 1:
                if here is not _ABSENT:
                    raise _conflict(key, segments, value)
                node[segment] = value
            elif here is _ABSENT:
                child: dict[str, Any] = {}
                owned.add(id(child))
                node[segment] = child
                node = child
            elif isinstance(here, dict) and not _is_edit(here):
                if id(here) not in owned:
                    here = dict(here)
                    owned.add(id(here))
                    node[segment] = here
                node = here
            else:
                raise _conflict(key, segments, value)
    return out


def _conflict(key: str, segments: tuple[str, ...], value: Any) -> InvalidChanges:
    return _fail(
        f'"{_show(key)}" sets {_where(segments)}, which changes also sets another way; send it once, nested: '
        f"{_json(_nest(segments, value))}."
    )


# --- entry point ------------------------------------------------------------------------------


def expand_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The agent's `changes` as a plain RFC 7396 merge patch against `current`.

    `current` is the scenario as get_scenario returns it. Raises errors.InvalidChanges with an
    actionable message; never mutates its arguments.
    """
    if not isinstance(changes, dict):
        raise _fail('changes must be an object of the fields to change, e.g. {"metadata": {"owner": "team-a"}}.')
    _check_depth(changes)
    expanded = _expand_dotted(current, changes)
    _check_depth(expanded)
    out: dict[str, Any] = {}
    for key, value in expanded.items():
        shape: _Shape
        if key == REQUEST_ONLY_FIELD or key in READ_ONLY_FIELDS or (key in current and "." in key):
            out[key] = _copy(value)  # plan_update refuses or skips these with its own messages
            continue
        if key in SCENARIO_SHAPE.fields:
            shape = SCENARIO_SHAPE.fields[key]
        elif key in current:
            shape = FREE
        else:
            raise _unknown_key((key,), list(SCENARIO_SHAPE.fields))
        out[key] = None if value is None else _walk(shape, current.get(key, _ABSENT), value, (key,))
    return out
