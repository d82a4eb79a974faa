"""schemas/ is what the contracts generate, every schema is valid, and the live tools publish exactly these."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from runloop_scenarios_mcp.schema_export import check_or_write, generated_schemas, render
from runloop_scenarios_mcp.services.contracts import TOOL_CONTRACTS
from tests.support.common import SCHEMAS, Session

COMMAND = [sys.executable, "-m", "runloop_scenarios_mcp", "schemas"]


def test_committed_schemas_equal_the_generated_ones() -> None:
    generated = generated_schemas()
    committed = {path.name for path in SCHEMAS.glob("*.json")}
    assert committed == set(generated), "run `make schemas` and commit"
    for name, schema in generated.items():
        text = (SCHEMAS / name).read_text(encoding="utf-8")
        assert text == render(schema), f"schemas/{name} is stale: run `make schemas`"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_each_schema_file_is_a_valid_draft_2020_12_schema(path: Path) -> None:
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_every_tool_has_both_schema_files() -> None:
    for tool in TOOL_CONTRACTS:
        assert (SCHEMAS / f"{tool}.input.json").is_file() and (SCHEMAS / f"{tool}.output.json").is_file()


def test_check_command_passes_on_the_repository() -> None:
    done = subprocess.run([*COMMAND, "--check", "--dir", str(SCHEMAS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_check_fails_on_a_missing_or_changed_file_and_write_repairs_it(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    (copy / "list_scenarios.output.json").unlink()
    done = subprocess.run([*COMMAND, "--check", "--dir", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "list_scenarios.output.json" in done.stderr and "make schemas" in done.stderr
    (copy / "get_scenario.input.json").write_text("{}\n", encoding="utf-8")
    (copy / "stray.json").write_text("{}\n", encoding="utf-8")
    assert check_or_write(copy, write=False) == 1
    assert check_or_write(copy, write=True) == 0
    assert check_or_write(copy, write=False) == 0
    assert {p.name for p in copy.glob("*.json")} == {p.name for p in SCHEMAS.glob("*.json")}


@pytest.mark.anyio
async def test_live_tool_schemas_equal_the_files(mcp: Session) -> None:
    tools = {tool.name: tool for tool in (await mcp.client.list_tools()).tools}
    assert set(tools) == set(TOOL_CONTRACTS)
    for name, tool in tools.items():
        published_in = json.loads((SCHEMAS / f"{name}.input.json").read_text(encoding="utf-8"))
        published_out = json.loads((SCHEMAS / f"{name}.output.json").read_text(encoding="utf-8"))
        assert tool.output_schema == published_out, f"{name} outputSchema differs from schemas/"
        assert dict(tool.input_schema) == published_in, f"{name} inputSchema differs from schemas/"
