"""Debts found in review (issue 10): one definition per name and default, and the checks that keep it so."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any, get_args

import anyio
import pytest

from runloop_scenarios_mcp import config, errors
from runloop_scenarios_mcp.emulator import data as emulator_data
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator
from runloop_scenarios_mcp.services import journal
from runloop_scenarios_mcp.services.contracts import MAX_SCENARIOS_PER_PAGE, ListScenariosInput
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.services.journal import Journal
from runloop_scenarios_mcp.services.state import AppState
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.upstream import client as upstream_client
from runloop_scenarios_mcp.upstream.client import API_MAX_LIMIT, ListQuery, RunloopClient
from runloop_scenarios_mcp.upstream.models import (
    LIST_FILTERS,
    SCORER_TYPES,
    VALIDATION_TYPES,
    ScorerType,
    ValidationType,
)
from tests.support.common import TEST_SECRET, make_settings
from tests.support.raw_stdio import RawSession, base_env, call

# --- one list of filter names --------------------------------------------------------------


def test_the_list_filters_are_the_filter_arguments_of_the_tool_and_of_the_upstream_query() -> None:
    tool_arguments = tuple(ListScenariosInput.model_fields)
    assert tool_arguments[: len(LIST_FILTERS)] == LIST_FILTERS
    query_fields = tuple(field.name for field in dataclasses.fields(ListQuery))
    assert query_fields[: len(LIST_FILTERS)] == LIST_FILTERS


def test_every_list_filter_is_sent_upstream_and_packed_in_a_cursor() -> None:
    filters: dict[str, Any] = {name: f"v-{name}" for name in LIST_FILTERS}
    assert {key: value for key, value in ListQuery(**filters).params().items() if key in filters} == filters
    codec = CursorCodec("s" * 32)
    state = codec.decode(codec.encode(CursorState(after="scn_1", query={"filters": filters, "fields": None})))
    assert state.query["filters"] == filters


def test_cursor_packing_order_is_the_list_filter_order() -> None:
    """Reordering LIST_FILTERS changes how cursors are packed: this pins the order cursors were issued with."""
    assert LIST_FILTERS == ("name", "benchmark_id", "validation_type", "search")


# --- one definition per enumeration and per limit -----------------------------------------


def test_type_tuples_are_the_literal_types() -> None:
    assert get_args(ValidationType) == VALIDATION_TYPES
    assert get_args(ScorerType) == SCORER_TYPES
    assert get_args(config.LogLevel) == config.LOG_LEVELS


def test_the_emulator_models_the_same_enumerations() -> None:
    """The emulator is independent of the client code (a separate layer), so it spells them itself: they agree."""
    assert emulator_data.VALIDATION_TYPES == VALIDATION_TYPES
    assert emulator_data.SCORER_TYPES == SCORER_TYPES


def test_the_two_list_limits_have_distinct_names() -> None:
    assert MAX_SCENARIOS_PER_PAGE == 1000  # what a list_scenarios caller may ask for
    assert API_MAX_LIMIT == 5000  # what the API's list endpoint accepts
    assert not hasattr(upstream_client, "MAX_LIST_LIMIT")


# --- every default defined once ------------------------------------------------------------


def test_the_upstream_client_defaults_are_the_settings_defaults() -> None:
    client = RunloopClient(api_key="k", base_url=config.DEFAULT_BASE_URL)
    settings = config.Settings()
    assert client._timeout == settings.timeout == config.DEFAULT_TIMEOUT
    assert client._http.timeout.connect == settings.connect_timeout == config.DEFAULT_CONNECT_TIMEOUT
    assert client._max_retries == settings.max_retries == config.DEFAULT_MAX_RETRIES
    assert client._initial_retry_delay == settings.retry_initial_delay == config.DEFAULT_RETRY_INITIAL_DELAY
    assert client._retry_budget == settings.retry_budget == config.DEFAULT_RETRY_BUDGET
    assert settings.confirm_timeout == config.DEFAULT_CONFIRM_TIMEOUT
    assert settings.log_level == config.DEFAULT_LOG_LEVEL


def test_the_published_budget_texts_name_the_defaults() -> None:
    schema = ListScenariosInput.model_json_schema()["properties"]
    budget = schema["max_tokens"]["description"]
    assert f"at least {config.MIN_MAX_TOKENS}" in budget
    assert f"{config.DEFAULT_MAX_TOKENS_CAP} by default" in budget
    assert f"server default ({config.DEFAULT_MAX_TOKENS})" in budget
    assert f"(1-{MAX_SCENARIOS_PER_PAGE})" in schema["limit"]["description"]


# --- one error hierarchy --------------------------------------------------------------------


def test_every_error_class_is_in_the_documented_hierarchy_and_nothing_else_is() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.RunloopMcpError)
    }
    assert errors.__doc__ is not None
    tree = errors.__doc__.split("::", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^[\s│├└─]*([A-Z]\w+)", tree, flags=re.MULTILINE))
    assert documented == defined
    assert "JournalError" in defined


def test_journal_errors_are_runloop_errors_with_an_agent_facing_message() -> None:
    assert journal.JournalError is errors.JournalError
    error = errors.JournalError("Cannot write the undo journal at /x: set RUNLOOP_MCP_JOURNAL")
    assert isinstance(error, errors.RunloopMcpError)
    assert errors.to_tool_message(error) == str(error)


def test_refusal_reasons_are_the_ones_raised() -> None:
    """A read-only refusal is worded by tools/server.py before any handler runs; no PreviewRefused carries it."""
    assert "read_only" not in get_args(errors.RefusalReason)


# --- an unexpected exception is logged with its traceback at the default level ----------------

CRASH_WORDS = "nobody expects this"
"""The last words of the traceback below; used as the API key, so the traceback carries a secret."""

FAULTY_SERVER = """
import os
from runloop_scenarios_mcp import cli
from runloop_scenarios_mcp.tools import read

real_list_page = read.list_page

async def list_page(*args, **kwargs):  # the fault: after a real upstream read, what no code expects
    await real_list_page(*args, **kwargs)
    raise LookupError(os.environ["RUNLOOP_API_KEY"])

read.list_page = list_page
cli.main()
"""


def test_a_tool_crash_logs_its_traceback_at_the_default_level_redacted_and_tells_the_client_nothing(
    tmp_path: Path,
) -> None:
    """The real console entry point in a process whose listing service raises LookupError (a fault put in for
    this test: every failure the code knows of is one of our errors), so the tool boundary logs it."""
    emulator = Emulator(scenarios=[{"id": "scn_plain", "name": "plain", "status": "active"}])
    with LoopbackEmulator(emulator) as loopback:
        env = base_env(
            tmp_path, RUNLOOP_API_KEY=CRASH_WORDS, RUNLOOP_BASE_URL=loopback.base_url, RUNLOOP_MCP_SECRET=TEST_SECRET
        )
        # no --log-level: the default, INFO
        session = RawSession([], env, command=[sys.executable, "-c", FAULTY_SERVER])
        try:
            session.handshake()
            response = session.request(call(1, "list_scenarios", {}))
        finally:
            code = session.close()
    assert code == 0
    assert any(request.authorized for request in emulator.requests), "the key never reached the emulator"
    result = response["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"] == errors.to_tool_message(RuntimeError("anything unexpected"))
    assert "Traceback" not in json.dumps(result) and "LookupError" not in json.dumps(result)

    stderr = session.stderr.decode()
    crashes = [line for line in stderr.splitlines() if "tool_crash tool=list_scenarios" in line]
    assert len(crashes) == 1, stderr[-2000:]
    assert " ERROR " in crashes[0]
    assert "Traceback (most recent call last)" in crashes[0] and "LookupError" in crashes[0]
    assert "[redacted]" in crashes[0]  # the key, where the traceback's last line says it
    assert CRASH_WORDS not in stderr and TEST_SECRET not in stderr


# --- per-scenario write locks stay bounded ----------------------------------------------------


def app_state(tmp_path: Path) -> AppState:
    return AppState(
        settings=make_settings(tmp_path),
        client=None,
        cursors=CursorCodec(TEST_SECRET),
        previews=PreviewTokens(TEST_SECRET),
        journal=Journal(journal.open_store(make_settings(tmp_path).database)),
    )


@pytest.mark.anyio
async def test_write_locks_are_dropped_when_nobody_holds_or_waits(tmp_path: Path) -> None:
    state = app_state(tmp_path)
    for number in range(5000):
        async with state.write_lock(f"scn_{number}"):
            assert len(state.write_locks) == 1
    assert len(state.write_locks) == 0

    most = 0

    async def write(scenario_id: str) -> None:
        nonlocal most
        async with state.write_lock(scenario_id):
            most = max(most, len(state.write_locks))
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as group:
        for number in range(300):
            group.start_soon(write, f"scn_{number % 30}")  # 30 scenarios, 10 writers each
    assert 1 <= most <= 30
    assert len(state.write_locks) == 0


@pytest.mark.anyio
async def test_a_write_lock_still_excludes_writers_of_one_scenario(tmp_path: Path) -> None:
    state = app_state(tmp_path)
    inside: list[int] = []
    entered = 0

    async def write(number: int) -> None:
        nonlocal entered
        async with state.write_lock("scn_one"):
            inside.append(number)
            assert len(inside) == 1, f"writers {inside} inside at once"
            entered += 1
            for _ in range(3):
                await anyio.sleep(0)  # let every other writer try to get in
            assert len(state.write_locks) == 1
            inside.remove(number)

    async with anyio.create_task_group() as group:
        for number in range(50):
            group.start_soon(write, number)
    assert entered == 50 and len(state.write_locks) == 0


@pytest.mark.anyio
async def test_a_writer_cancelled_while_waiting_leaves_no_lock_behind(tmp_path: Path) -> None:
    state = app_state(tmp_path)
    release = anyio.Event()
    holding = anyio.Event()

    async def holder() -> None:
        async with state.write_lock("scn_one"):
            holding.set()
            await release.wait()

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            async with state.write_lock("scn_one"):
                raise AssertionError("the waiter got the lock while it was held")

    async with anyio.create_task_group() as group:
        group.start_soon(holder)
        await holding.wait()
        scope = anyio.CancelScope()
        group.start_soon(waiter, scope)
        await anyio.sleep(0.01)
        assert len(state.write_locks) == 1
        scope.cancel()
        await anyio.sleep(0.01)
        release.set()
    assert len(state.write_locks) == 0
    async with state.write_lock("scn_one"):  # and the scenario can be locked again
        assert len(state.write_locks) == 1
