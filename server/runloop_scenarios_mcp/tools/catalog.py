"""What a host sees of this server's tools before calling one: names, titles, descriptions, annotations, schemas.

This module is all a ``tools/list`` needs, and it is cheap to import: the JSON Schemas are read from
``published_schemas.json``, which ``runloop-scenarios-mcp schemas --write`` generates from the contract
models (:mod:`services.contracts`, the single source of truth) next to ``schemas/``, and which
``schemas --check`` and the tests hold equal to them. So a host's ``initialize`` and ``tools/list`` are
answered without importing the services, the pydantic contracts, httpx or the tokenizers (see
:class:`~runloop_scenarios_mcp.tools.server.ScenariosServer`, which loads the handlers on the first call).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_types import Tool, ToolAnnotations

PUBLISHED_SCHEMAS = Path(__file__).with_name("published_schemas.json")
"""Every tool's input and output JSON Schema, ``{tool: {"input": ..., "output": ...}}`` (written by schema_export)."""

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    """What an agent reads to choose the tool: write it for that reader."""
    annotations: ToolAnnotations


LIST_DESCRIPTION = """Find Runloop scenarios: returns one page that always fits max_tokens, with a lean summary of each.

Use it to browse or search; text finds words in names, problem statements and metadata (each match with a
snippet); filter with name (exact), search (part of an id or name), benchmark_id (an id such as bmd_..., not a
name) or validation_type. Continue with cursor=next_cursor until next_cursor is null. Choose fields to get more
of each scenario (["*"] for everything); get_scenario returns one scenario in full, archived ones too."""

GET_DESCRIPTION = """Read one Runloop scenario by id with every field, within max_tokens.

Strings too long for the budget are clipped, or whole values left out, and listed in clipped; read them whole
with field (the path) and offset, following next_offset. Archived scenarios can be read too."""

UPDATE_DESCRIPTION = """Change a Runloop scenario, always as a dry run first: dry_run=true (the default) writes nothing.

The dry run returns preview_token, a field-by-field diff (long text as changed regions) and warnings. To write,
call again with the same scenario_id and changes, dry_run=false and that preview_token. changes is a partial
scenario in get_scenario's shape, merged as JSON Merge Patch (metadata keys you omit are kept); edit one scorer
by name and long text in place with {"replace": [{"old", "new"}]} (see changes). To undo an applied change,
pass restore=<its journal_entry> instead of changes, preview and apply the same way. Results fit max_tokens."""

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("list_scenarios", "List Runloop scenarios", LIST_DESCRIPTION, READ_ONLY),
    ToolSpec("get_scenario", "Get one Runloop scenario", GET_DESCRIPTION, READ_ONLY),
    ToolSpec("update_scenario", "Update a Runloop scenario (preview first)", UPDATE_DESCRIPTION, WRITE),
)
"""Every tool of this server, in the order ``tools/list`` gives them."""


@functools.cache
def published_schemas() -> dict[str, dict[str, dict[str, Any]]]:
    """``{tool: {"input": schema, "output": schema}}``, read once from :data:`PUBLISHED_SCHEMAS`."""
    schemas: dict[str, dict[str, dict[str, Any]]] = json.loads(PUBLISHED_SCHEMAS.read_text(encoding="utf-8"))
    return schemas


@functools.cache
def published_tools() -> tuple[Tool, ...]:
    """The ``tools/list`` entries, built once per process."""
    schemas = published_schemas()
    return tuple(
        Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=schemas[spec.name]["input"],
            output_schema=schemas[spec.name]["output"],
            annotations=spec.annotations,
        )
        for spec in TOOLS
    )


def find_tool(name: str) -> Tool | None:
    return next((tool for tool in published_tools() if tool.name == name), None)


def is_read_only(tool: Tool) -> bool:
    return bool(tool.annotations and tool.annotations.read_only_hint)
