"""What a change would do, as pure functions: merge, validate, diff, and build the upstream body.

``plan_update(current, changes)`` turns a JSON Merge Patch (RFC 7396) in get_scenario's shape into
exactly what an apply would send (only changed top-level fields, each complete, under the
request names of docs/upstream-api.md, "Update body fields") and the scenario the API should return.
The agent's own forms (dotted paths, scorers by name, text edits) are first expanded into a plain
merge patch by :func:`changes.expand_changes`; preview tokens live in :mod:`tokens`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from runloop_scenarios_mcp.errors import shown
from runloop_scenarios_mcp.services.budget import is_clipped_text
from runloop_scenarios_mcp.services.contracts import DiffEntry
from runloop_scenarios_mcp.services.cursor import canonical
from runloop_scenarios_mcp.services.merge_patch import merge_patch
from runloop_scenarios_mcp.services.update.changes import expand_changes
from runloop_scenarios_mcp.services.update.changes.messages import fail, use_environment
from runloop_scenarios_mcp.upstream.client import REDACTED
from runloop_scenarios_mcp.upstream.models import (
    CLEAR_VALUES,
    EMPTY_SUBFIELD,
    READ_ONLY_FIELDS,
    SCENARIO_FIELDS,
    SCORER_TYPES,
    SCORING_FUNCTION_NAME_PATTERN,
    UPDATE_FIELD_NAMES,
    VALIDATION_TYPES,
    ScenarioView,
)

_NAME = re.compile(SCORING_FUNCTION_NAME_PATTERN)
_MISSING: Any = object()

SCORER_REQUIRED: dict[str, tuple[str, ...]] = {
    "ast_grep_scorer": ("pattern", "search_directory"),
    "custom_scorer": ("custom_scorer_type",),
    "python_script_scorer": ("python_script",),
}


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8", "surrogatepass")).hexdigest()[:32]  # lone surrogates too


def fingerprint(scenario: dict[str, Any]) -> str:
    """The version of a scenario as read: any change to any field changes it."""
    return digest(scenario)


def diff(before: Any, after: Any, path: str = "") -> list[DiffEntry]:
    """Leaf-level differences; lists of equal length are compared item by item, lists of named objects
    (scorers) that gain, lose or reorder items are compared by name (paths ``...<list>.<name>...``).

    A value compared with itself has no differences: the parts of a scenario a merge patch left alone are
    shared with it (``merge_patch``), so a plan's diff walks only what the patch touched.
    """
    if before is after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[DiffEntry] = []
        for key in list(before) + [k for k in after if k not in before]:
            child = f"{path}.{key}" if path else str(key)
            out += diff(before.get(key, _MISSING), after.get(key, _MISSING), child)
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) == len(after) and _names(before) == _names(after):
            out = []
            for index, (old, new) in enumerate(zip(before, after, strict=True)):
                out += diff(old, new, f"{path}.{index}")
            return out
        if before and after and _names(before) and _names(after):
            return _diff_by_name(before, after, path)
    if before is not _MISSING and after is not _MISSING and before == after and type(before) is type(after):
        return []
    if before is _MISSING and after is _MISSING:
        return []
    return [
        DiffEntry(path=path, before=None if before is _MISSING else before, after=None if after is _MISSING else after)
    ]


def _names(items: list[Any]) -> list[str] | None:
    """The ``name`` of each item when every item is an object with a distinct string name (scorers), else None."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def _diff_by_name(before: list[Any], after: list[Any], path: str) -> list[DiffEntry]:
    """Named items added, removed or reordered: one entry per scorer (path ``...<name>``), not the whole list."""
    old = {item["name"]: item for item in before}
    new = {item["name"]: item for item in after}
    out: list[DiffEntry] = []
    kept_before = [name for name in old if name in new]
    kept_after = [name for name in new if name in old]
    if kept_before != kept_after:
        out.append(DiffEntry(path=path, before=kept_before, after=kept_after))  # the order of the kept ones
    for name, item in old.items():
        if name in new:
            out += diff(item, new[name], f"{path}.{name}")
        else:
            out.append(DiffEntry(path=f"{path}.{name}", before=item, after=None))
    out += [DiffEntry(path=f"{path}.{name}", before=None, after=item) for name, item in new.items() if name not in old]
    return out


def _clipped_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path] if is_clipped_text(value) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _clipped_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _clipped_paths(v, f"{path}.{i}")]
    return []


@dataclass
class Plan:
    """What an apply of ``changes`` to one version of a scenario would do."""

    scenario_id: str
    before: dict[str, Any]
    expected: dict[str, Any]
    body: dict[str, Any]
    diff: list[DiffEntry]
    warnings: list[str] = field(default_factory=list)


def plan_update(current: dict[str, Any], changes: dict[str, Any]) -> Plan:
    """Merge, validate and turn ``changes`` into the upstream body; refusals are InvalidChanges."""
    scenario_id = current["id"]
    if current.get("status") == "archived":
        raise fail(
            "This scenario is archived, and the Runloop API does not update archived scenarios. Unarchive it in "
            "Runloop first, or pick an active scenario."
        )
    if not changes:
        raise fail('changes is empty: pass the fields to change, e.g. {"metadata": {"owner": "team-a"}}.')
    changes = expand_changes(current, changes)  # dotted keys, scorers by name, text edits; unknown keys refused
    clipped = _clipped_paths(changes)
    if clipped:
        raise fail(
            f"changes contains clipped text at {', '.join(clipped[:3])} (it ends with '…[+N chars clipped]'). "
            "Sending it would cut the string short: read the whole string with get_scenario(field=..., offset=...) "
            "and send the complete value."
        )
    patch: dict[str, Any] = {}
    for key, value in changes.items():
        if key in UPDATE_FIELD_NAMES:
            patch[key] = value
        elif key == "environment_parameters":
            raise fail(use_environment(key))
        elif current.get(key, _MISSING) == value:
            continue  # an unchanged read-only or unknown field, e.g. sent back from get_scenario: nothing to do
        elif key in READ_ONLY_FIELDS:
            raise fail(
                f"{key} is read-only and cannot be changed with update_scenario"
                + (" (archive or unarchive a scenario in Runloop)" if key == "status" else "")
                + f". Updatable fields: {', '.join(UPDATE_FIELD_NAMES)}."
            )
        else:
            known = "an unknown field" if key not in SCENARIO_FIELDS else "not updatable"
            raise fail(f"{shown(key)} is {known}: the Runloop update API accepts only {', '.join(UPDATE_FIELD_NAMES)}.")

    expected = merge_patch(current, patch)
    body: dict[str, Any] = {}
    for read_name, request_name in UPDATE_FIELD_NAMES.items():
        if read_name not in patch:
            continue
        before = current.get(read_name, _MISSING)
        after = expected.get(read_name, _MISSING)
        if after is _MISSING:
            if read_name not in CLEAR_VALUES:
                raise fail(
                    f"{read_name} cannot be cleared (null) through the Runloop API; send a new value instead"
                    + (f" (one of {', '.join(VALIDATION_TYPES)})" if read_name == "validation_type" else "")
                    + "."
                )
            after = CLEAR_VALUES[read_name]
        if read_name in EMPTY_SUBFIELD and isinstance(after, dict) and isinstance(before, dict):
            after = dict(after)
            for sub, empty in EMPTY_SUBFIELD[read_name].items():
                if sub in before and sub not in after:
                    after[sub] = empty
        if read_name == "environment" and isinstance(after, dict) and "prebuilt_id" in after:
            # Removed from the API in 2025 (docs/upstream-api.md, "Fields the API no longer takes"): never sent,
            # so the diff shows it dropped.
            after = {key: value for key, value in after.items() if key != "prebuilt_id"}
        if before is not _MISSING and canonical(before) == canonical(after):
            expected[read_name] = before
            continue
        expected[read_name] = after
        body[request_name] = after

    entries = diff(current, expected)
    if not body:
        raise fail(
            "These changes leave the scenario as it is, so there is nothing to preview or apply. Compare with "
            "get_scenario and send the values you want to change."
        )
    hiding = [name for name, sent in body.items() if REDACTED in canonical(sent)]
    if hiding:
        raise fail(
            f"{', '.join(hiding)} holds a secret value (this server's API key, shown as {REDACTED} when read), and "
            "writing the field back would replace the secret with that marker. Change this field in Runloop directly"
        )
    warnings = _validate(expected, set(body), _scorer_types(current))
    return Plan(scenario_id=scenario_id, before=current, expected=expected, body=body, diff=entries, warnings=warnings)


def _scorer_types(scenario: dict[str, Any]) -> set[str]:
    """Scorer types the scenario already uses: the API returned them, so it knows them, even if we do not."""
    contract = scenario.get("scoring_contract")
    functions = contract.get("scoring_function_parameters") if isinstance(contract, dict) else None
    if not isinstance(functions, list):
        return set()
    return {
        f["scorer"]["type"]
        for f in functions
        if isinstance(f, dict) and isinstance(f.get("scorer"), dict) and isinstance(f["scorer"].get("type"), str)
    }


def _validate(
    scenario: dict[str, Any], sent: set[str], upstream_types: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Check the merged scenario; errors raise InvalidChanges, soft problems come back as warnings."""
    errors: list[str] = []
    warnings: list[str] = []
    try:
        ScenarioView.model_validate(scenario)
    except ValidationError as exc:
        for error in exc.errors()[:6]:
            where = ".".join(str(p) for p in error["loc"])
            if where.split(".")[0] in {name for name, req in UPDATE_FIELD_NAMES.items() if req in sent}:
                errors.append(f"{where}: {error['msg']}")
    if "name" in sent and (not isinstance(scenario.get("name"), str) or not scenario["name"].strip()):
        errors.append("name: must not be blank")
    if "validation_type" in sent and scenario.get("validation_type") not in VALIDATION_TYPES:
        errors.append(f"validation_type: must be one of {', '.join(VALIDATION_TYPES)}")
    if "metadata" in sent:
        metadata = scenario.get("metadata")
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            errors.append("metadata: must be an object whose values are all strings")
    if "scorer_timeout_sec" in sent:
        timeout = scenario.get("scorer_timeout_sec")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            errors.append("scorer_timeout_sec: must be a positive whole number of seconds")
    if "scoring_contract" in sent:
        _check_scoring(scenario.get("scoring_contract"), errors, warnings, upstream_types)
    if errors:
        raise fail("The changed scenario would not be valid: " + "; ".join(errors) + ".")
    return warnings


def _check_scoring(
    contract: Any, errors: list[str], warnings: list[str], upstream_types: frozenset[str] | set[str] = frozenset()
) -> None:
    functions = contract.get("scoring_function_parameters") if isinstance(contract, dict) else None
    if not isinstance(functions, list):
        errors.append("scoring_contract.scoring_function_parameters: must be a list of scoring functions")
        return
    if not functions:
        warnings.append("The scoring contract has no scoring functions: runs of this scenario cannot be scored.")
    total = 0.0
    names: list[str] = []
    for index, function in enumerate(functions):
        where = f"scoring_contract.scoring_function_parameters.{index}"
        if not isinstance(function, dict):
            errors.append(f"{where}: must be an object with name, scorer and weight")
            continue
        name, weight, scorer = function.get("name"), function.get("weight"), function.get("scorer")
        if not isinstance(name, str) or not _NAME.match(name):
            errors.append(
                f"{where}.name: {shown(name)} must match {SCORING_FUNCTION_NAME_PATTERN} (letters, digits, _ and -)"
            )
        else:
            names.append(name)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            errors.append(f"{where}.weight: must be a number greater than 0 (got {shown(weight)})")
        else:
            total += weight
        kind = scorer.get("type") if isinstance(scorer, dict) else None
        if kind in upstream_types and kind not in SCORER_TYPES:
            pass  # a scorer type newer than this code, already in use upstream: the API accepts it
        elif kind not in SCORER_TYPES:
            errors.append(f"{where}.scorer.type: must be one of {', '.join(SCORER_TYPES)} (got {shown(kind)})")
        else:
            missing = [f for f in SCORER_REQUIRED.get(str(kind), ()) if not isinstance(scorer.get(f), str)]  # type: ignore[union-attr]
            if missing:
                errors.append(f"{where}.scorer: a {kind} needs {', '.join(missing)}")
    if len(set(names)) != len(names):
        warnings.append("Two scoring functions share a name; Runloop reports scores by name.")
    if functions and abs(total - 1.0) > 1e-6:
        warnings.append(f"Scoring weights sum to {total:g}, not 1.0; Runloop's SDKs normalize weights to sum to 1.0.")
