"""Tool inputs and results: the single source of every JSON Schema this server publishes.

Each tool has an ``...Input`` model (its ``inputSchema``) and a ``...Result`` model (its
``outputSchema``); ``schemas/`` is generated from them (``make schemas``). Descriptions are
written for an agent deciding what to send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from runloop_scenarios_mcp.config import DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS_CAP, MIN_MAX_TOKENS
from runloop_scenarios_mcp.upstream.models import ValidationType

MAX_TEXT_LENGTH = 256
"""The longest ``text`` a list_scenarios call may search for (a cursor carries it)."""
MAX_SCENARIOS_PER_PAGE = 1000
"""The largest ``limit`` a list_scenarios call may ask for (the API itself allows more per upstream page)."""


def _no_coercion(value: Any) -> Any:
    """Integers as JSON sends them: a string ("5") or a boolean (true) is not turned into a number."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a string or a boolean")
    return value


NO_COERCION = BeforeValidator(_no_coercion)
"""On an integer argument (last in its ``Annotated``, so the schema keeps its bounds): 5 or 5.0, never "5" or true."""
MaxTokens = Annotated[
    int | None,
    Field(
        ge=MIN_MAX_TOKENS,
        description=(
            f"Token budget for this result (at least {MIN_MAX_TOKENS}, at most the server's cap, "
            f"{DEFAULT_MAX_TOKENS_CAP} by default). Omit for the server default ({DEFAULT_MAX_TOKENS}). The whole "
            "result is guaranteed to fit."
        ),
        examples=[DEFAULT_MAX_TOKENS],
    ),
    NO_COERCION,
]
ScenarioId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="Scenario id as list_scenarios returns it, e.g. scn_46ch4zz4cnwfxaffn6k7aywt.",
    ),
]


def _compact(schema: dict[str, Any]) -> None:
    """Keep tools/list small: drop what only repeats a name (pydantic's generated titles) or says nothing
    (``"default": null`` on an optional field). Every description and constraint stays."""
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if "default" in prop and prop["default"] is None:
            del prop["default"]


def present_or_absent(*names: str) -> Callable[[dict[str, Any]], None]:
    """Schema of a model whose named optional fields are left out rather than null: compact, and each of those
    fields typed as what it holds when present (no null branch)."""

    def adjust(schema: dict[str, Any]) -> None:
        _compact(schema)
        for name in names:
            prop = schema["properties"][name]
            kinds = [kind for kind in prop.pop("anyOf", []) if kind != {"type": "null"}]
            if kinds:
                prop.update(kinds[0])

    return adjust


class Contract(BaseModel):
    """Base of every model whose schema is published (tool inputs, results and their parts)."""

    model_config = ConfigDict(json_schema_extra=_compact)


class ToolInput(Contract):
    """Base of tool inputs: unknown arguments are rejected."""

    model_config = ConfigDict(extra="forbid")


class ToolResult(Contract):
    """Base of tool results."""


class ClippedField(Contract):
    """A string that was shortened to fit the budget; read the rest with get_scenario(field=..., offset=...).

    A value may also be left out whole (``left_out``): read it with get_scenario(field=path), as compact JSON.
    """

    model_config = ConfigDict(json_schema_extra=present_or_absent("left_out"))

    id: str = Field(description="Scenario id the clipped string belongs to.")
    path: str = Field(
        description=(
            "JSON path of the string inside the scenario, e.g. input_context.problem_statement (* when every field "
            "but id was left out)."
        )
    )
    original_length: int = Field(
        description="Length of the full string, in characters (of a value left out: of its compact JSON)."
    )
    returned_length: int = Field(description="Characters of it included in this result (a prefix; 0 when left out).")
    left_out: Literal["object", "array", "fields"] | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description=(
            "Present when the whole value was replaced by a marker to fit the budget: object, array, or fields (every "
            "field but id). Read it with get_scenario (field=path reads it in slices, as compact JSON)."
        ),
    )


# --- list_scenarios ------------------------------------------------------------------------


class ListScenariosInput(ToolInput):
    name: str | None = Field(None, description="Only scenarios with exactly this name (case-sensitive).")
    benchmark_id: str | None = Field(
        None,
        description=(
            "Only scenarios in this benchmark: its id (such as bmd_...), not its name. Scenarios show benchmark names "
            "in metadata; to find them by name, use text."
        ),
    )
    validation_type: ValidationType | None = Field(None, description="Only scenarios with this validation type.")
    search: str | None = Field(
        None, description="Part of a scenario id or name, as the Runloop API matches it (not problem statements)."
    )
    text: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description=(
            "Content search: only scenarios whose name, problem statement or metadata values contain it "
            "(case-insensitive; several words: all of them, in any of those fields). Each match carries match: the "
            "field of the hit and a snippet around it. Combines with the other filters and fields. Each call scans a "
            "bounded number of scenarios (see scanned), so a page may hold few or no matches while has_more is true: "
            "follow next_cursor to the end for every match."
        ),
    )
    cursor: str | None = Field(
        None,
        description=(
            "next_cursor from the previous page, to continue. It remembers the filters, text and fields; pass it "
            "alone or with the same ones."
        ),
    )
    max_tokens: MaxTokens = None
    limit: Annotated[int | None, NO_COERCION] = Field(
        None,
        ge=1,
        le=MAX_SCENARIOS_PER_PAGE,
        description=f"At most this many scenarios on this page (1-{MAX_SCENARIOS_PER_PAGE}).",
    )
    fields: list[str] | None = Field(
        None,
        description=(
            "Top-level scenario fields to return. Omit for a lean summary (id, name, validation_type, "
            "problem_statement_excerpt, scorers, metadata; empty values left out, status too: listings hold only "
            'active scenarios); ["*"] returns every field (expensive).'
        ),
        examples=[["id", "name", "metadata"], ["*"]],
    )
    include_total_count: bool = Field(False, strict=True, description="Also return how many scenarios match in total.")


class ListScenariosResult(ToolResult):
    """A page of scenarios. Fields that would only say null, empty or the obvious are left out (see each)."""

    model_config = ConfigDict(
        json_schema_extra=present_or_absent("scanned", "estimated_tokens", "max_tokens", "hint", "clipped")
    )

    returned: int = Field(description="Number of scenarios on this page.")
    has_more: bool = Field(description="True when more matching scenarios remain: pass next_cursor to get them.")
    next_cursor: str | None = Field(description="Opaque cursor for the next page; null at the end.")
    total_count: int | None = Field(
        None,
        description=(
            "Scenarios matching in total, when include_total_count was asked and it is known (with text: only when "
            "one call scanned the whole listing). Left out otherwise."
        ),
    )
    scanned: int | None = Field(
        None,
        description=(
            "With text: how many scenarios this call examined (matching or not), up to where next_cursor resumes."
        ),
    )
    estimated_tokens: int | None = Field(
        None,
        description=(
            "Tokens this result takes, by the server's conservative count. On the first page of a listing; later "
            "pages are within max_tokens as well."
        ),
    )
    max_tokens: int | None = Field(
        None,
        description="The budget this page was packed into. On the first page of a listing.",
    )
    hint: str | None = Field(
        None,
        description=(
            "How to continue or narrow the query. On the first page, and on any page with something to say (values "
            "clipped, a scan stopped at its bound, no match)."
        ),
    )
    clipped: list[ClippedField] | None = Field(
        None,
        description="Values shortened or left out to fit the budget, with their full length. Left out when none.",
    )
    scenarios: list[dict[str, Any]] = Field(
        description=(
            "This page of scenarios, each with the requested fields. With text, each also has match: {field: where "
            "the hit is (a path get_scenario's field reads), snippet: up to about 200 characters around it}."
        )
    )


# --- get_scenario --------------------------------------------------------------------------


class GetScenarioInput(ToolInput):
    scenario_id: ScenarioId
    max_tokens: MaxTokens = None
    field: str | None = Field(
        None,
        description=(
            "Read one long string (or a value left out whole, as its compact JSON) in slices instead of the whole "
            "scenario: its JSON path as listed in clipped, "
            "e.g. input_context.problem_statement or scoring_contract.scoring_function_parameters.0.scorer.bash_script."
        ),
    )
    offset: Annotated[int, NO_COERCION] = Field(
        0, ge=0, description="With field: the character offset to start reading at (next_offset)."
    )


class StringSlice(Contract):
    """A slice of one long string of a scenario."""

    field: str = Field(description="JSON path of the string (or of a value left out, read as its compact JSON).")
    offset: int = Field(description="Character offset of this slice.")
    text: str = Field(description="The characters from offset, as many as fit the budget.")
    total_length: int = Field(description="Length of the whole string, in characters.")
    next_offset: int | None = Field(description="Offset of the next slice; null when this slice reaches the end.")


class GetScenarioResult(ToolResult):
    estimated_tokens: int = Field(description="Tokens this result takes, by the server's conservative count.")
    max_tokens: int = Field(description="The budget this result was packed into.")
    hint: str = Field(description="How to read what was clipped, or what to do next.")
    clipped: list[ClippedField] = Field(
        description="Values shortened or left out to fit the budget, with their full length."
    )
    slice: StringSlice | None = Field(description="The requested slice, when field was given.")
    scenario: dict[str, Any] | None = Field(
        description="The scenario with every field (long strings maybe clipped, values maybe left out: see clipped)."
    )


# --- update_scenario -----------------------------------------------------------------------


class UpdateScenarioInput(ToolInput):
    scenario_id: ScenarioId
    changes: dict[str, Any] | None = Field(
        None,
        description=(
            "Partial scenario in get_scenario's shape, merged as JSON Merge Patch (RFC 7396): objects merge "
            "(metadata keys you omit are kept), arrays and scalars replace, null removes a key or clears metadata, "
            "lists and reference_output (name, validation_type, environment and scorer_timeout_sec cannot be "
            "cleared). id and status are read-only. Edit one scorer by name: scoring_contract.scoring_function_"
            'parameters as {"<scorer name>": {"weight": 0.6}} (null removes it, a new name adds a complete one; '
            'an array replaces the whole list). Edit long text in place: {"replace": [{"old": "...", "new": '
            '"..."}]} as the value of a string field; each old must occur exactly once.'
        ),
        examples=[
            {"metadata": {"owner": "team-a"}},
            {"input_context": {"problem_statement": {"replace": [{"old": "retry twice", "new": "retry three times"}]}}},
            {"scoring_contract": {"scoring_function_parameters": {"tests": {"weight": 0.6}}}},
        ],
    )
    restore: str | None = Field(
        None,
        max_length=128,
        description=(
            "Instead of changes: a journal entry id (j_..., from an apply result) to put back the version that "
            "entry saved. Previewed and applied like any change."
        ),
    )
    dry_run: bool = Field(
        True,
        strict=True,
        description="true (default): preview only, nothing is written. false: apply with preview_token.",
    )
    preview_token: str | None = Field(
        None,
        max_length=256,
        description="Token from the dry run of these exact changes (or restore); required when dry_run is false.",
    )
    max_tokens: MaxTokens = None


class TextRegion(Contract):
    """One changed region of a long string, with unchanged context on both sides."""

    before_offset: int = Field(description="Character offset in the old text where this region's before starts.")
    after_offset: int = Field(description="Character offset in the new text where this region's after starts.")
    before: str = Field(description="The old text of the region, with context (clipped past 400 characters).")
    after: str = Field(description="The new text of the region, with context (clipped past 400 characters).")


class DiffEntry(Contract):
    path: str = Field(description="JSON path of the changed value.")
    before: Any = Field(None, description="Value before the change (null when absent). Left out for long text.")
    after: Any = Field(None, description="Value after the change (null when removed). Left out for long text.")
    before_length: int | None = Field(None, description="For long text: length of the whole old string.")
    after_length: int | None = Field(None, description="For long text: length of the whole new string.")
    regions: list[TextRegion] | None = Field(
        None, description="For long text: only the changed regions, with context and offsets."
    )
    regions_omitted: int | None = Field(None, description="For long text: changed regions not shown.")


class UpdateScenarioResult(ToolResult):
    preview_token: str | None = Field(
        description="Pass with dry_run=false and the same changes (or restore) to apply. Null after an apply."
    )
    expires_at: str | None = Field(description="When preview_token stops being accepted (UTC, ISO 8601).")
    hint: str = Field(description="What to do next.")
    scenario_id: str = Field(description="The scenario previewed or updated.")
    dry_run: bool = Field(description="True when this was a preview and nothing was written.")
    applied: bool = Field(description="True when the change was written to Runloop.")
    journal_entry: str | None = Field(
        description="After apply: the journal entry holding the previous version (pass it as restore to undo)."
    )
    changed_fields: list[str] = Field(description="Top-level fields the write sends (or sent), each complete.")
    warnings: list[str] = Field(description="Things worth a second look that do not block the change.")
    diff: list[DiffEntry] = Field(description="Every value that changes, field by field (long text as regions).")
    diff_omitted: int = Field(0, description="Diff entries left out to fit max_tokens (raise max_tokens to see them).")
    mismatches: list[DiffEntry] = Field(
        description="After apply: values the API returned that differ from the preview."
    )
    verified: bool | None = Field(description="After apply: true when the API's result matches the preview.")
    upstream_body_bytes: int = Field(description="Size of the JSON body sent (or that apply would send), in bytes.")
    upstream_body: dict[str, Any] | None = Field(
        None,
        description=(
            "The exact JSON body, when it holds no long text and fits max_tokens (else left out: see diff and "
            "upstream_body_bytes)."
        ),
    )
    estimated_tokens: int = Field(description="Tokens this result takes, by the server's conservative count.")
    max_tokens: int = Field(description="The budget this result was packed into.")


TOOL_CONTRACTS: dict[str, tuple[type[ToolInput], type[ToolResult]]] = {
    "list_scenarios": (ListScenariosInput, ListScenariosResult),
    "get_scenario": (GetScenarioInput, GetScenarioResult),
    "update_scenario": (UpdateScenarioInput, UpdateScenarioResult),
}
