"""Tool snapshots (github-mcp-server's toolsnaps): the exact tools/list output is committed in
tests/snapshots/tools.json, so any change to a tool's name, title, description, annotations or schemas
fails here until it is accepted on purpose:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_toolsnaps.py

Both protocol modes must list the same tools, and read-only mode exactly the read-only subset.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from tests.support.common import ROOT, SCHEMAS, make_settings

pytestmark = pytest.mark.anyio

SNAPSHOT = ROOT / "tests" / "snapshots" / "tools.json"
REGENERATE = "UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_toolsnaps.py"


async def _listed(tmp_path: Path, mode: str, **settings: Any) -> list[dict[str, Any]]:
    server = build_server(make_settings(tmp_path, emulator=True, **settings))
    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def _render(tools: list[dict[str, Any]]) -> str:
    return json.dumps(tools, indent=2, ensure_ascii=False) + "\n"


async def test_tools_list_matches_the_snapshot(tmp_path: Path) -> None:
    actual = _render(await _listed(tmp_path, "legacy"))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(actual, encoding="utf-8")
    committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.is_file() else ""
    if actual != committed:
        diff = "\n".join(
            difflib.unified_diff(
                committed.splitlines(), actual.splitlines(), "snapshot (committed)", "tools/list (code)", lineterm=""
            )
        )
        pytest.fail(f"tools/list changed:\n{diff[:6000]}\nIf the change is intended, regenerate with:\n  {REGENERATE}")


async def test_both_protocol_modes_list_the_same_tools(tmp_path: Path) -> None:
    assert await _listed(tmp_path, "auto") == await _listed(tmp_path, "legacy")


async def test_read_only_lists_exactly_the_read_only_tools(tmp_path: Path) -> None:
    full = await _listed(tmp_path, "legacy")
    read_only = await _listed(tmp_path, "legacy", read_only=True)
    assert read_only == [tool for tool in full if tool["annotations"]["readOnlyHint"]]
    assert {tool["name"] for tool in full} - {tool["name"] for tool in read_only} == {"update_scenario"}


async def test_listed_schemas_are_the_committed_schema_files(tmp_path: Path) -> None:
    """What agents see is what schemas/ documents: the contract's own input and output schemas."""
    for tool in await _listed(tmp_path, "legacy"):
        for kind, key in (("input", "inputSchema"), ("output", "outputSchema")):
            committed = json.loads((SCHEMAS / f"{tool['name']}.{kind}.json").read_text(encoding="utf-8"))
            assert tool[key] == committed, f"{tool['name']} {key} differs from schemas/; run `make schemas`"


async def test_every_argument_and_result_field_is_described(tmp_path: Path) -> None:
    def walk(schema: Any, where: str) -> list[str]:
        missing: list[str] = []
        if isinstance(schema, dict):
            for name, prop in schema.get("properties", {}).items():
                if not prop.get("description"):
                    missing.append(f"{where}.{name}")
                missing += walk(prop, f"{where}.{name}")
            for name, sub in schema.get("$defs", {}).items():
                missing += walk(sub, f"{where}.$defs.{name}")
        return missing

    for tool in await _listed(tmp_path, "legacy"):
        first_sentence = tool["description"].split(". ")[0].split("\n")[0]
        assert len(first_sentence) <= 120, f"{tool['name']}: the first sentence should say when to use it"
        assert not walk(tool["inputSchema"], tool["name"]), walk(tool["inputSchema"], tool["name"])
        assert not walk(tool["outputSchema"], tool["name"]), walk(tool["outputSchema"], tool["name"])
