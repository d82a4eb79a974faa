"""Progress while an upstream request waits (upstream/client.py ``_with_progress``).

On asyncio the ticker is a timer: a request answered within the first interval reports nothing and spawns
no task; a slow one reports every interval until it is answered; an ``on_wait`` that fails is raised once
the request ends. The task-group ticker (other event loops) is checked directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest

from runloop_scenarios_mcp.upstream import client as upstream_client
from runloop_scenarios_mcp.upstream.client import RunloopClient

pytestmark = pytest.mark.anyio

SCENARIO = {"id": "scn_progress", "name": "waited for"}


def _client(delay: float) -> RunloopClient:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(delay)
        return httpx.Response(200, json=SCENARIO)

    return RunloopClient(
        api_key="rl_progress_key", base_url="http://runloop.test", transport=httpx.MockTransport(answer)
    )


class _Reports:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, float, str]] = []
        self.fail = fail

    async def __call__(self, attempt: int, delay: float, reason: str) -> None:
        self.calls.append((attempt, delay, reason))
        if self.fail:
            raise ConnectionResetError("the client went away")


async def test_a_quick_answer_reports_nothing_and_spawns_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_client, "PROGRESS_INTERVAL", 0.2)
    client = _client(0.0)
    reports = _Reports()
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    original = loop.create_task

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "create_task", counting)
    assert await client.get_scenario("scn_progress", on_wait=reports) == SCENARIO
    monkeypatch.undo()
    assert reports.calls == [] and created == []
    await anyio.sleep(0.3)  # the timer was cancelled: nothing fires after the answer
    assert reports.calls == []
    await client.aclose()


async def test_a_slow_answer_reports_every_interval_until_it_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_client, "PROGRESS_INTERVAL", 0.1)
    client = _client(0.35)
    reports = _Reports()
    before = len(asyncio.all_tasks())
    assert await client.get_scenario("scn_progress", on_wait=reports) == SCENARIO
    assert 2 <= len(reports.calls) <= 4, reports.calls
    assert all(
        attempt == 1 and delay == 0.0 and "waiting for the answer" in why for attempt, delay, why in reports.calls
    )
    assert len(asyncio.all_tasks()) == before  # the ticker ended with the request
    count = len(reports.calls)
    await anyio.sleep(0.25)
    assert len(reports.calls) == count
    await client.aclose()


async def test_a_failing_progress_report_is_raised_when_the_request_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_client, "PROGRESS_INTERVAL", 0.05)
    client = _client(0.2)
    reports = _Reports(fail=True)
    with pytest.raises(ConnectionResetError):
        await client.get_scenario("scn_progress", on_wait=reports)
    assert len(reports.calls) == 1  # the ticker stopped at its first failure
    await client.aclose()


async def test_the_task_group_ticker_reports_and_returns_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_client, "PROGRESS_INTERVAL", 0.05)
    reports = _Reports()

    async def slow() -> str:
        await anyio.sleep(0.18)
        return "answer"

    async def broken() -> str:
        raise ValueError("no answer")

    assert await upstream_client._progress_in_task_group(slow, 0, reports) == "answer"
    assert 2 <= len(reports.calls) <= 4 and all(attempt == 1 for attempt, _, _ in reports.calls)
    with pytest.raises(ValueError, match="no answer"):  # the work's own error, not an ExceptionGroup
        await upstream_client._progress_in_task_group(broken, 0, reports)
