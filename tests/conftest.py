"""Shared fixtures only: the emulator, settings, and MCP sessions through the real SDK client.

Helpers that tests import by name live in ``tests/support/`` (never import from this file).
Async test modules set ``pytestmark = pytest.mark.anyio``. ``mcp`` is parametrized over both
protocol modes: ``legacy`` (the 2025-11-25 initialize handshake most hosts speak) and ``modern``
(the SDK default, stateless 2026-07-28).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator
from tests.support import postgres
from tests.support.common import CANARY_KEY, RealTokens, Session, make_settings


def pytest_report_header() -> str:
    """Whether the PostgreSQL journal tests run here, said before any test does."""
    return postgres.report_header()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Said again at the end (``make test`` runs pytest -q, which hides the header) when they did not run."""
    if postgres.unreachable_reason() is not None:
        terminalreporter.write_line(postgres.report_header(), yellow=True, bold=True)


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


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


@pytest.fixture(scope="session")
def real_tokens() -> RealTokens:
    return RealTokens()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (skipped without a server, failed with CI=true)."""
    with postgres.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The journal database of this test, on each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'shared-journal.sqlite3'}"
        return
    with postgres.fresh_database() as url:
        yield url
