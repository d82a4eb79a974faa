"""``{"replace": [{"old": ..., "new": ...}, ...]}`` in place of a string: edits applied to the held text.

Each ``old`` must occur exactly once in the text as it stands after the edits before it; when it
does not occur at all, the refusal says whether it would occur ignoring case or whitespace.
"""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.services.update.changes.messages import fail, kind_of, path_text, show


def is_edit(value: Any) -> bool:
    """True when ``value`` is a text edit (an object whose only key is ``replace``, holding a list)."""
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


def apply_edits(current: Any, edits: list[Any], path: tuple[str, ...]) -> str:
    """The text at ``path`` with ``edits`` applied in order; refused unless each old text occurs once."""
    where = path_text(path)
    if not isinstance(current, str):
        raise fail(
            f"{where}: a replace edit needs existing text, but {where} is {kind_of(current)}; send its whole new "
            "value instead."
        )
    if not edits:
        raise fail(f'{where}.replace is empty: give at least one {{"old": "...", "new": "..."}} edit.')
    text = current
    for index, edit in enumerate(edits):
        at = f"{where}.replace[{index}]"
        shape = '{"old": "<text that occurs once>", "new": "<replacement>"}'
        if not isinstance(edit, dict):
            raise fail(f"{at}: each edit must be an object {shape}.")
        extra = [key for key in edit if key not in ("old", "new")]
        if extra:
            raise fail(f"{at}: unexpected key {show(str(extra[0]))}; each edit is exactly {shape}.")
        old, new = edit.get("old"), edit.get("new")
        if not isinstance(old, str) or not old:
            raise fail(f"{at}: old must be a non-empty string; each edit is {shape}.")
        if not isinstance(new, str):
            raise fail(f'{at}: new must be a string ("" deletes the old text); each edit is {shape}.')
        first = text.find(old)
        state = "the text" if index == 0 else "the text as it stands after the previous edits"
        if first < 0:
            raise fail(f"{at}: its old text occurs 0 times in {state}{_near_match(text, old)}.")
        if text.find(old, first + 1) >= 0:
            count = max(2, text.count(old))
            raise fail(
                f"{at}: its old text occurs {count} times in {state}; include more of the surrounding text so it "
                "occurs exactly once."
            )
        text = text[:first] + new + text[first + len(old) :]
    return text
