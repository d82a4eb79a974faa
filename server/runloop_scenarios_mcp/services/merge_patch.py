"""JSON Merge Patch (RFC 7396), both ways: apply a patch, and find the patch between two values. Pure."""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces.

    Non-mutating; the result may share untouched parts with ``target`` (callers copy what they change).
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def make_merge_patch(source: Any, target: Any) -> Any:
    """The merge patch that turns ``source`` into ``target`` (used to undo a change)."""
    if not isinstance(source, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {}
    for key in source.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        if key not in source:
            patch[key] = value
        elif source[key] != value:
            patch[key] = make_merge_patch(source[key], value)
    return patch
