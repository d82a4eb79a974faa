"""The refusals' wording: every key and value shown escaped and bounded, with a did-you-mean.

Every refusal is an :class:`InvalidChanges` built by :func:`fail`, which says that nothing was
written. Keys are shown as JSON strings cut at ~60 characters, values as compact JSON up to ~80
characters (longer ones become ``<your value>``), lists of known keys at most six long.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from runloop_scenarios_mcp.errors import InvalidChanges
from runloop_scenarios_mcp.services.update.changes.json_values import ABSENT
from runloop_scenarios_mcp.services.update.changes.shapes import REQUEST_ONLY_FIELD
from runloop_scenarios_mcp.upstream.models import UPDATE_FIELD_NAMES

KEY_SHOWN = 60
VALUE_SHOWN = 80
_KNOWN_SHOWN = 6
_NOTHING = " Nothing was written."


def fail(message: str) -> InvalidChanges:
    return InvalidChanges(message + _NOTHING)


def _safe(text: str) -> str:
    """Lone surrogates (invalid in UTF-8) spelled as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def quote(key: str) -> str:
    """A key as a JSON string for a message: escaped, at most ~60 characters."""
    return _safe(json.dumps(key[:KEY_SHOWN] + ("…" if len(key) > KEY_SHOWN else ""), ensure_ascii=False))


def show(key: str) -> str:
    """A key inside a message (within a path or inside double quotes)."""
    return quote(key)[1:-1]


def path_text(path: tuple[str, ...]) -> str:
    """A path for a message: its keys shown and joined by dots, the middle left out when long."""
    shown = [show(segment) for segment in path]
    text = ".".join(shown)
    if len(text) > 180 and len(shown) > 3:
        text = ".".join([shown[0], "…", *shown[-2:]])
    return text


def json_text(value: Any) -> str:
    """Compact JSON for a message; values longer than ~80 characters become ``<your value>``."""
    if not isinstance(value, dict):
        text = _safe(json.dumps(value, ensure_ascii=False))
        return text if len(text) <= VALUE_SHOWN else "<your value>"
    parts = [f"{quote(k)}: {json_text(v)}" for k, v in value.items()]
    return "{" + ", ".join(parts) + "}"


def nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """``value`` under ``path`` as nested objects (the form to send, for an example)."""
    nested: Any = value
    for segment in reversed(path):
        nested = {segment: nested}
    result: dict[str, Any] = nested
    return result


def known_list(known: list[str]) -> str:
    shown = ", ".join(show(k) for k in known[:_KNOWN_SHOWN])
    return shown + (", …" if len(known) > _KNOWN_SHOWN else "")


def suggest(key: str, known: list[str]) -> str | None:
    """The known key closest to ``key``, if one is close enough."""
    if len(key) > 2 * KEY_SHOWN:
        return None
    matches = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key(path: tuple[str, ...], known: list[str]) -> InvalidChanges:
    suggestion = suggest(path[-1], known)
    if suggestion is not None:
        return fail(f'{path_text(path)} is an unknown field; did you mean "{show(suggestion)}"?')
    if len(path) == 1:
        updatable = ", ".join(UPDATE_FIELD_NAMES)
        return fail(f"{path_text(path)} is an unknown field; update_scenario can change: {updatable}.")
    return fail(
        f"{path_text(path)} is an unknown field; the fields of {path_text(path[:-1])} are: {known_list(known)}."
    )


def use_environment(where: str) -> str:
    """The refusal of the request's name for the environment at ``where``: changes use the name get_scenario shows."""
    return f"{where}: use environment, as get_scenario shows it (the server sends it as {REQUEST_ONLY_FIELD})."


def kind_of(value: Any) -> str:
    """What a (non-string) value is, in words."""
    if value is ABSENT:
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "an object"
