"""update_scenario against the emulator on real loopback HTTP while the apply POST fails.

Each fault must give a clear tool error, report the scenario's state truthfully (the server reads it
again after a failed write) and leave a journal that never claims a write that did not happen.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator
from tests.support.common import (
    Session,
    active_scenario,
    apply_update,
    error_text,
    make_settings,
    preview_update,
    small_scenario,
)
from tests.support.journal import journal_events

pytestmark = pytest.mark.anyio

POST = frozenset({"POST"})
GET = frozenset({"GET"})
CHANGES = {"metadata": {"reviewer": "fault-test"}, "name": "fault-test-name"}


def _journal(path: Path) -> list[dict[str, Any]]:
    """The journal beside ``path`` (the database), as prepared and outcome records."""
    return journal_events(path.parent)


def _outcomes(path: Path) -> list[str]:
    return [r["event"] for r in _journal(path)]


@pytest.fixture(params=["legacy", "auto"])
async def wire(request: pytest.FixtureRequest, loopback: LoopbackEmulator, tmp_path: Path) -> AsyncIterator[Session]:
    settings = make_settings(tmp_path, base_url=loopback.base_url, max_retries=1, timeout=2.0)
    async with Client(build_server(settings), mode=request.param) as client:
        yield Session(client, request.param)


STATUS_CASES = [
    (409, "conflict (409)"),
    (422, "invalid (422)"),
    (429, "rate limiting"),
    (500, "server error (500)"),
    (502, "server error (502)"),
    (503, "server error (503)"),
]


@pytest.mark.parametrize(("status", "fragment"), STATUS_CASES, ids=[str(c[0]) for c in STATUS_CASES])
async def test_status_error_on_apply_reports_unchanged_and_journals_failure(
    wire: Session, loopback: LoopbackEmulator, tmp_path: Path, status: int, fragment: str
) -> None:
    emulator = loopback.emulator
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    preview = await preview_update(wire, sid, CHANGES)
    # 429 is retried once (max_retries=1) with the Retry-After given; the others are not retried
    loopback.faults.queue(
        *[Fault("status", status=status, retry_after="0.01", methods=POST)] * (2 if status == 429 else 1)
    )
    result = await apply_update(wire, sid, CHANGES, preview["preview_token"])
    assert result.is_error
    message = error_text(result)
    assert fragment in message, message
    assert "unchanged" in message and "nothing was written" in message
    assert emulator.get(sid) == scenario
    posts = emulator.posts()
    assert [p.status for p in posts] == ([429, 429] if status == 429 else [status])
    assert all(p.body == preview["upstream_body"] for p in posts)
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "failed"]
    # the token was not spent: the same apply goes through once the API is healthy
    retry = await apply_update(wire, sid, CHANGES, preview["preview_token"])
    assert not retry.is_error, error_text(retry)
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "failed", "prepared", "applied"]
    stored = emulator.get(sid)
    assert stored is not None and stored["name"] == "fault-test-name"


async def test_429_then_success_applies_once(wire: Session, loopback: LoopbackEmulator, tmp_path: Path) -> None:
    emulator = loopback.emulator
    sid = active_scenario(emulator, small_scenario)["id"]
    preview = await preview_update(wire, sid, CHANGES)
    loopback.faults.queue(Fault("status", status=429, retry_after="0.01", methods=POST))
    result = await apply_update(wire, sid, CHANGES, preview["preview_token"])
    assert not result.is_error, error_text(result)
    assert [p.status for p in emulator.posts()] == [429, 200]
    assert len({p.request_id for p in emulator.posts()}) == 1  # one idempotency key across the retry
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "applied"]


@pytest.mark.parametrize("kind", ["drop_connection", "truncated_body"])
async def test_broken_connection_during_apply_is_reported_as_unknown(
    wire: Session, loopback: LoopbackEmulator, tmp_path: Path, kind: str
) -> None:
    emulator = loopback.emulator
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    preview = await preview_update(wire, sid, CHANGES)
    loopback.faults.queue(Fault(kind, methods=POST))  # type: ignore[arg-type]
    result = await apply_update(wire, sid, CHANGES, preview["preview_token"])
    assert result.is_error
    message = error_text(result)
    assert "broke after the update was sent" in message
    assert "unchanged so far" in message and "may still land" in message and "new dry run" in message
    assert emulator.get(sid) == scenario  # these faults do not apply the write
    records = _journal(tmp_path / "journal.jsonl")
    assert [r["event"] for r in records] == ["prepared", "unknown"]
    assert records[1]["after"] == scenario  # what the re-read saw
    assert "applied" not in [r["event"] for r in records]
    # the outcome is unknown, so the token is spent: a new dry run shows the current state
    again = await apply_update(wire, sid, CHANGES, preview["preview_token"])
    assert again.is_error and "dry run" in error_text(again)
    assert len(emulator.posts()) == 1


async def test_write_that_lands_after_a_timeout_is_never_reported_as_not_written(
    loopback: LoopbackEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The POST times out while the API is still working on it; the write lands after our re-read."""
    emulator = loopback.emulator
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    # The API holds the POST until the tool call is over (not for a fixed time a slow machine could outrun).
    release = threading.Event()
    handle = emulator.handle

    def held_post(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            release.wait(timeout=60)  # a hang guard only: the test releases it
        return handle(request)

    monkeypatch.setattr(emulator, "handle", held_post)
    settings = make_settings(tmp_path, base_url=loopback.base_url, max_retries=0, timeout=0.3)
    try:
        async with Client(build_server(settings), mode="legacy") as client:
            session = Session(client, "legacy")
            preview = await preview_update(session, sid, CHANGES)
            result = await apply_update(session, sid, CHANGES, preview["preview_token"])
    finally:
        release.set()
    message = error_text(result)
    assert result.is_error
    assert "nothing was written" not in message and "may" in message
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "unknown"]
    with anyio.fail_after(30):  # a hang guard only: the released POST lands at once
        while not emulator.posts():
            await anyio.sleep(0.01)
    stored = emulator.get(sid)
    assert stored is not None and stored["name"] == "fault-test-name"  # it did land


class ScriptedNetwork:
    """The in-process emulator behind a network that can apply a POST yet answer 502, or fail the next GET."""

    def __init__(self, emulator: Emulator, *, apply_then: int | None = None, fail_get_after_post: int | None = None):
        self.emulator = emulator
        self.apply_then = apply_then
        self.fail_get_after_post = fail_get_after_post
        self.posted = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.posted = True
            if self.apply_then is not None:
                self.emulator.handle(request)  # the write lands upstream...
                return httpx.Response(self.apply_then, json={"message": "Bad Gateway"})  # ...but a proxy fails
            return httpx.Response(503, json={"message": "Service Unavailable"})
        if self.posted and self.fail_get_after_post is not None:
            return httpx.Response(self.fail_get_after_post, json={"message": "down"})
        return self.emulator.handle(request)


async def test_write_applied_despite_an_error_status_is_reported_as_applied(tmp_path: Path, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    network = ScriptedNetwork(emulator, apply_then=502)
    settings = make_settings(tmp_path, max_retries=0)
    async with Client(build_server(settings, transport=httpx.MockTransport(network.handle))) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, sid, CHANGES)
        result = await apply_update(session, sid, CHANGES, preview["preview_token"])
    assert not result.is_error, error_text(result)
    applied = result.structured_content
    assert applied is not None and applied["applied"] is True and applied["verified"] is True
    assert "502" in applied["hint"] and "reading the scenario again shows the change" in applied["hint"]
    assert "Bad Gateway" not in applied["hint"]  # upstream text is data: never spliced into a hint
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "applied"]
    stored = emulator.get(sid)
    assert stored is not None and stored["name"] == "fault-test-name"


async def test_reread_failure_after_a_failed_write_is_unknown_not_unchanged(tmp_path: Path, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    network = ScriptedNetwork(emulator, fail_get_after_post=503)
    settings = make_settings(tmp_path, max_retries=0)
    async with Client(build_server(settings, transport=httpx.MockTransport(network.handle))) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, sid, CHANGES)
        result = await apply_update(session, sid, CHANGES, preview["preview_token"])
    message = error_text(result)
    assert result.is_error and "503" in message
    assert "could not be confirmed unchanged" in message and "nothing was written" not in message
    assert _outcomes(tmp_path / "journal.jsonl") == ["prepared", "unknown"]
