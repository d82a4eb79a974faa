"""What a listed scenario looks like: the lean summary, or the top-level fields the caller chose."""

from __future__ import annotations

from typing import Any

from runloop_scenarios_mcp.errors import InvalidArgument
from runloop_scenarios_mcp.upstream.models import SCENARIO_FIELDS

EXCERPT_CHARS = 100
"""Enough to recognise a problem statement (its title line and the start of a sentence) at about 25 tokens."""
SUMMARY_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "validation_type",
    "problem_statement_excerpt",
    "scorers",
    "metadata",
)
SELECTABLE_FIELDS: tuple[str, ...] = tuple(dict.fromkeys((*SCENARIO_FIELDS, *SUMMARY_FIELDS)))


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str | None:
    """The start of a problem statement, whitespace collapsed, with an ellipsis when cut."""
    if not isinstance(text, str):
        return None
    # Collapse only a growing prefix: the collapsed prefix is a prefix of the collapsed whole, so once it is
    # longer than ``limit`` it holds every character kept (a long statement is not joined whole for 100).
    size = 4 * limit
    while True:
        flat = " ".join(text[:size].split())
        if len(flat) > limit:
            return flat[: limit - 1].rstrip() + "…"
        if size >= len(text):
            return flat
        size *= 4


def _scorers(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    contract = scenario.get("scoring_contract")
    functions = contract.get("scoring_function_parameters") if isinstance(contract, dict) else None
    out: list[dict[str, Any]] = []
    for function in functions if isinstance(functions, list) else []:
        if isinstance(function, dict):
            scorer = function.get("scorer")
            kind = scorer.get("type") if isinstance(scorer, dict) else None
            out.append({"name": function.get("name"), "type": kind})
    return out


def _summary_values(scenario: dict[str, Any]) -> dict[str, Any]:
    context = scenario.get("input_context")
    statement = context.get("problem_statement") if isinstance(context, dict) else None
    return {
        "id": scenario["id"],
        "name": scenario.get("name"),
        "status": scenario.get("status", "active"),
        "validation_type": scenario.get("validation_type"),
        "problem_statement_excerpt": excerpt(statement),
        "scorers": _scorers(scenario),
        "metadata": scenario.get("metadata", {}),
    }


def summarize(scenario: dict[str, Any]) -> dict[str, Any]:
    """The lean view: enough to choose a scenario, a fraction of its tokens.

    Leaves out what would say nothing: ``status`` (listings hold only active scenarios), nulls and empty
    values (no metadata, no scorers). Named in ``fields``, each of these is returned as it is.
    """
    return {
        key: value
        for key, value in _summary_values(scenario).items()
        if key != "status" and value is not None and value != {} and value != []
    }


def normalize_fields(fields: list[str] | None) -> list[str] | None:
    """None for the summary, ["*"] for everything, else the requested fields (id first, no repeats)."""
    if fields is None:
        return None
    if not fields:
        raise InvalidArgument('fields is empty: omit it for the summary, pass ["*"] for every field, or name fields')
    if "*" in fields:
        if len(fields) > 1:
            raise InvalidArgument('fields: "*" means every field and cannot be combined with names; pass ["*"] alone')
        return ["*"]
    unknown = [f for f in fields if f not in SELECTABLE_FIELDS]
    if unknown:
        raise InvalidArgument(
            f"fields: unknown field name(s) {[name[:40] for name in unknown[:5]]!r}. "
            f"Valid names: {', '.join(SELECTABLE_FIELDS)}, "
            'or ["*"] for every field.'
        )
    return list(dict.fromkeys(["id", *fields]))


def project(scenario: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The part of a scenario the caller asked for (absent fields stay absent)."""
    if fields is None:
        return summarize(scenario)
    if fields == ["*"]:
        return scenario
    summary: dict[str, Any] | None = None
    out: dict[str, Any] = {}
    for name in fields:
        if name in scenario:
            out[name] = scenario[name]
        elif name not in SCENARIO_FIELDS:  # a derived summary field (problem_statement_excerpt, scorers)
            summary = summary or _summary_values(scenario)
            out[name] = summary[name]
    return out
