"""Write or check ``schemas/``: one JSON Schema per tool input and result, generated from the contracts.

The same schemas also go, as one file, into the package (``tools/published_schemas.json``): the server
answers ``tools/list`` from it without importing the contracts (see ``tools/catalog.py``).
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from runloop_scenarios_mcp.services.contracts import TOOL_CONTRACTS
from runloop_scenarios_mcp.upstream.models import ScenarioView

PUBLISHED_SCHEMAS = Path(__file__).parent / "tools" / "published_schemas.json"
"""``tools.catalog.PUBLISHED_SCHEMAS`` (this module imports no MCP code, so it names the file itself)."""


def generated_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every tool input and result, plus the Runloop ScenarioView for reference."""
    out: dict[str, dict[str, Any]] = {}
    for tool, (input_model, result_model) in TOOL_CONTRACTS.items():
        out[f"{tool}.input.json"] = input_model.model_json_schema()
        out[f"{tool}.output.json"] = result_model.model_json_schema()
    out["scenario_view.json"] = ScenarioView.model_json_schema()
    for schema in out.values():
        Draft202012Validator.check_schema(schema)
    return out


def published_schemas(schemas: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{tool: {"input": ..., "output": ...}}`` from :func:`generated_schemas`' files."""
    return {
        tool: {"input": schemas[f"{tool}.input.json"], "output": schemas[f"{tool}.output.json"]}
        for tool in TOOL_CONTRACTS
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_or_write(directory: Path, *, write: bool) -> int:
    """Write the schemas (``write``) or compare them with the files; returns a process exit code."""
    schemas = generated_schemas()
    expected = {name: render(schema) for name, schema in schemas.items()}
    # Key order kept as generated: it is the order a host shows the arguments in.
    published = json.dumps(published_schemas(schemas), indent=1, ensure_ascii=False) + "\n"
    if write:
        PUBLISHED_SCHEMAS.write_text(published, encoding="utf-8")
        directory.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in directory.glob("*.json")} - set(expected):
            (directory / stale).unlink()
        for name, text in expected.items():
            (directory / name).write_text(text, encoding="utf-8")
        sys.stderr.write(
            f"wrote {len(expected)} schemas to {directory}/ and the tool catalog's {PUBLISHED_SCHEMAS.name}\n"
        )
        return 0
    if not directory.is_dir():
        sys.stderr.write(f"no {directory}/ directory here: run from the repository root, or pass --dir\n")
        return 2
    problems: list[str] = []
    if not PUBLISHED_SCHEMAS.is_file() or PUBLISHED_SCHEMAS.read_text(encoding="utf-8") != published:
        problems.append(f"{PUBLISHED_SCHEMAS}: differs from the contracts (the server lists its tools from it)")
    present = {p.name for p in directory.glob("*.json")}
    for name in sorted(present - set(expected)):
        problems.append(f"{directory}/{name}: no tool or model generates it any more")
    for name, text in expected.items():
        path = directory / name
        actual = path.read_text(encoding="utf-8") if path.is_file() else ""
        if actual != text:
            diff = difflib.unified_diff(
                actual.splitlines(), text.splitlines(), f"{path} (committed)", f"{path} (code)", lineterm=""
            )
            problems.append("\n".join(list(diff)[:40]) or f"{path}: missing")
    if problems:
        sys.stderr.write(
            f"{directory}/ is out of date with the code:\n"
            + "\n".join(problems)
            + f"\nRun `make schemas` (or `runloop-scenarios-mcp schemas --write --dir {directory}`) and commit.\n"
        )
        return 1
    sys.stderr.write(f"{directory}/ is up to date: {len(expected)} files\n")
    return 0
