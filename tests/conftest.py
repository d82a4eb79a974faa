"""Shared fixtures: the emulator, settings, and MCP sessions through the real SDK client.

Async test modules set ``pytestmark = pytest.mark.anyio``. ``mcp`` is parametrized over both
protocol modes: ``legacy`` (the 2025-11-25 initialize handshake most hosts speak) and ``modern``
(the SDK default, stateless 2026-07-28). Every successful tool result is validated against the
published output schema in ``schemas/``, so no test can pass on a result that breaks the contract.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import CallToolResult, TextContent
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator import Emulator, LoopbackEmulator

CANARY_KEY = "rl_canary_key_7f3e9b1c5d2a4e68"
TEST_SECRET = "test-secret-for-signing-0123456789"
ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's Runloop configuration."""
    for name in list(os.environ):
        if name.startswith("RUNLOOP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(api_key=CANARY_KEY)


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


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


@pytest.fixture(params=["legacy", "modern"])
async def mcp(request: pytest.FixtureRequest, emulator: Emulator, settings: Settings) -> AsyncIterator[Session]:
    """A session with the server on the in-process emulator, in each protocol mode."""
    server = build_server(settings, transport=emulator.transport())
    mode = "legacy" if request.param == "legacy" else "auto"
    async with Client(server, mode=mode) as client:
        yield Session(client, request.param)


@pytest.fixture
def loopback(emulator: Emulator) -> Iterator[LoopbackEmulator]:
    """The emulator on a real loopback port, for faults, timeouts and retries."""
    with LoopbackEmulator(emulator) as server:
        yield server
