"""Plain JSON values: the absent marker, a deep copy without recursion, and an RFC 7396 merge."""

from __future__ import annotations

from typing import Any

ABSENT: Any = object()
"""Where the scenario (or changes) has no value at all, as opposed to null."""


def copy_json(value: Any) -> Any:
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
