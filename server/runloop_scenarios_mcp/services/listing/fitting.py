"""One scenario alone on a page that it does not fit: clip its long strings, and when that is not enough,
leave out whole values behind a marker, so every budget the server accepts shows every scenario.

Clipping keeps a prefix of each long string, but each clipped string costs a note in ``clipped`` (about
30 tokens), so a scenario with many scripts and test files cannot fit a small budget by clipping alone.
Then an object or array is replaced by a marker that says what was left out, how big it is and how to
read it, with one note (``left_out``): the smallest one whose absence makes the scenario fit, else the
one that saves the most (then again, until it fits). Should even that not do (hundreds of top-level
values), only the id is shown, with one note for the rest (path ``*``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from runloop_scenarios_mcp.services.budget import Clip, PathParts, clip_to_fit, count_json, dotted, to_json
from runloop_scenarios_mcp.services.contracts import ClippedField

KEEP: frozenset[PathParts] = frozenset({("id",), ("match", "field"), ("match", "snippet")})
"""Never clipped: the id, and the match of a content search (short by construction)."""
_KEEP_TOP = frozenset({"id", "match"})

NotesCost = Callable[[list[ClippedField]], int]
"""Tokens the page spends beyond the item for a list of notes (the notes themselves, the longer hint)."""


def clip_note(scenario_id: str, clip: Clip) -> ClippedField:
    """The ``clipped`` entry that tells an agent where a string was shortened and how long it really is."""
    return ClippedField(
        id=scenario_id, path=clip.path, original_length=clip.original_length, returned_length=clip.returned_length
    )


def left_out_marker(kind: str, size: int) -> str:
    """What stands in for a value left out whole: its kind, its size, and where to read it."""
    return f"…[{kind} of {size} chars left out: read it with get_scenario]"


def fit_alone(
    item: dict[str, Any], scenario_id: str, room: int, cost: NotesCost
) -> tuple[dict[str, Any], list[ClippedField]]:
    """``item`` shortened so its JSON plus ``cost(notes)`` takes at most ``room`` tokens, and its notes."""
    left_out: list[tuple[PathParts, ClippedField]] = []
    current = item
    while True:
        done = [note for _, note in left_out]

        def overhead(clips: list[Clip], done: list[ClippedField] = done) -> int:
            return cost(done + [clip_note(scenario_id, clip) for clip in clips])

        keep = KEEP | {path for path, _ in left_out}
        clipped, made, tokens = clip_to_fit(current, room, keep=keep, overhead=overhead)
        notes = done + [clip_note(scenario_id, clip) for clip in made]
        excess = tokens + cost(notes) - room
        if excess <= 0:
            return clipped, notes
        path = _to_leave_out(item, clipped, notes, excess)
        if path is None:
            return _id_only(item, scenario_id)
        value = _at(item, path)
        kind = "object" if isinstance(value, dict) else "array"
        size = len(to_json(value))
        current = _replaced(current, path, left_out_marker(kind, size))
        note = ClippedField(id=scenario_id, path=dotted(path), original_length=size, returned_length=0, left_out=kind)
        left_out.append((path, note))


def _containers(value: Any, path: PathParts = ()) -> Iterator[PathParts]:
    """Paths of the objects and arrays inside ``value`` (not itself), outermost first; never the id or the match."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if not path and key in _KEEP_TOP:
            continue
        if isinstance(child, dict | list) and child:
            yield (*path, key)
            yield from _containers(child, (*path, key))


def _to_leave_out(
    item: dict[str, Any], clipped: dict[str, Any], notes: list[ClippedField], excess: int
) -> PathParts | None:
    """The object or array to leave out next: the smallest whose absence saves ``excess`` tokens, else the one
    that saves the most; None when leaving any out saves nothing."""
    sufficient: tuple[int, PathParts] | None = None
    largest: tuple[int, PathParts] | None = None
    for path in _containers(clipped):
        name = dotted(path)
        spent = count_json(_at(clipped, path)) + sum(
            count_json(note.model_dump(mode="json"))
            for note in notes
            if note.path == name or note.path.startswith(name + ".")
        )
        size = len(to_json(_at(item, path)))
        stand_in = ClippedField(
            id=str(item["id"]), path=name, original_length=size, returned_length=0, left_out="array"
        )
        saved = spent - count_json(left_out_marker("object", size)) - count_json(stand_in.model_dump(mode="json"))
        if saved >= excess and (sufficient is None or size < sufficient[0]):
            sufficient = (size, path)
        if saved > 0 and (largest is None or saved > largest[0]):
            largest = (saved, path)
    chosen = sufficient or largest
    return None if chosen is None else chosen[1]


def _at(value: Any, path: PathParts) -> Any:
    for part in path:
        value = value[part]
    return value


def _replaced(value: Any, path: PathParts, new: str) -> Any:
    """A copy of ``value`` with ``path`` replaced (the containers on the way copied, the rest shared)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replaced(copy[head], rest, new)
    return copy


def _id_only(item: dict[str, Any], scenario_id: str) -> tuple[dict[str, Any], list[ClippedField]]:
    shown = {key: value for key, value in item.items() if key in _KEEP_TOP}
    rest = {key: value for key, value in item.items() if key not in _KEEP_TOP}
    note = ClippedField(
        id=scenario_id, path="*", original_length=len(to_json(rest)), returned_length=0, left_out="fields"
    )
    return shown, [note]
