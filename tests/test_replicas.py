"""Several real server processes on one journal database (issue 14), on SQLite and on a real PostgreSQL.

The Runloop API is the emulator on a loopback port; every server is the installed console script in a
process of its own, with the same RUNLOOP_MCP_SECRET and RUNLOOP_MCP_DATABASE_URL:

- two stdio processes: one token applied by both at once, different previews of one version applied at
  once, and N applies from previews of one version: exactly one upstream write each time;
- two HTTP replicas behind a round-robin proxy (each request to the next replica): a listing walked across
  them, preview on one and apply on the other, the A -> B -> A replay refused, N concurrent applies with
  one write, 2025-11-25 sessions through a sticky proxy, and the audit trail seen by a third process;
- a server killed mid-apply: the journal stays readable, the entry is there as unknown, and the scenario's
  lock does not outlive the process.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator
from tests.support.common import active_scenario, error_text, small_scenario
from tests.support.journal import journal_entries
from tests.support.raw_stdio import RawSession, call, initialize
from tests.support.replicas import (
    HTTP_TOKEN,
    RoundRobinProxy,
    http_client,
    http_replica,
    journal_cli,
    server_env,
    stdio_server,
)

pytestmark = pytest.mark.anyio


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _preview(client: Client, sid: str, changes: dict[str, Any]) -> str:
    data = _data(await client.call_tool("update_scenario", {"scenario_id": sid, "changes": changes}))
    return str(data["preview_token"])


async def _apply(client: Client, sid: str, changes: dict[str, Any], token: str) -> CallToolResult:
    arguments = {"scenario_id": sid, "changes": changes, "dry_run": False, "preview_token": token}
    return await client.call_tool("update_scenario", arguments)


async def _at_once(*calls: Any) -> list[CallToolResult]:
    """Run the calls concurrently; their results in order."""
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await calls[index]

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(one, index)
    return results


def _posts(loopback: LoopbackEmulator, sid: str) -> int:
    return sum(1 for r in loopback.emulator.requests if r.method == "POST" and sid in r.path)


async def _one_version_many_previews(
    clients: list[Client], loopback: LoopbackEmulator, sid: str, count: int
) -> list[CallToolResult]:
    """``count`` previews of different changes, all of the same version, applied at once across the clients."""
    changes = [{"metadata": {f"writer_{n}": "x"}} for n in range(count)]
    tokens = [await _preview(clients[n % len(clients)], sid, changes[n]) for n in range(count)]
    before = _posts(loopback, sid)
    results = await _at_once(
        *(_apply(clients[(n + 1) % len(clients)], sid, changes[n], tokens[n]) for n in range(count))
    )
    assert _posts(loopback, sid) - before == 1, "exactly one upstream write"
    winners = [n for n, result in enumerate(results) if not result.is_error]
    assert len(winners) == 1, [error_text(r) for r in results]
    for n, result in enumerate(results):
        if n != winners[0]:
            assert "changed since the preview" in error_text(result), error_text(result)
    stored = loopback.emulator.get(sid)
    assert stored is not None and stored["metadata"][f"writer_{winners[0]}"] == "x"
    return results


# --- two stdio processes on one SQLite file -----------------------------------------------------


async def test_two_stdio_processes_on_one_sqlite_file(tmp_path: Path, loopback: LoopbackEmulator) -> None:
    database = f"sqlite://{tmp_path / 'shared.sqlite3'}"
    env = server_env(tmp_path, database, loopback.base_url)
    emulator = loopback.emulator
    first_sid = active_scenario(emulator, small_scenario)["id"]
    second_sid = active_scenario(emulator, small_scenario, skip=1)["id"]
    third_sid = active_scenario(emulator, small_scenario, skip=2)["id"]
    async with Client(stdio_server(env), mode="legacy") as one, Client(stdio_server(env)) as two:
        # the same token, applied by both processes at the same moment: written once
        changes = {"metadata": {"both": "once"}}
        token = await _preview(one, first_sid, changes)
        results = await _at_once(_apply(one, first_sid, changes, token), _apply(two, first_sid, changes, token))
        assert sorted(r.is_error for r in results) == [False, True]
        assert "already used" in error_text(next(r for r in results if r.is_error))
        assert _posts(loopback, first_sid) == 1
        # two previews of one version, one per process, applied at once: one writes, the other is stale
        await _one_version_many_previews([one, two], loopback, second_sid, 2)
        # and six of them
        await _one_version_many_previews([one, two], loopback, third_sid, 6)
    listed = journal_cli(database, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(line[2], line[3]) for line in lines] == [
        (first_sid, "applied"),
        (second_sid, "applied"),
        (third_sid, "applied"),
    ]
    assert {line[6] for line in lines} == {"stdio"} and {line[5] for line in lines} == {"mcp/0.1.0"}


# --- two HTTP replicas behind a round-robin proxy ----------------------------------------------


@pytest.fixture
def replicas(tmp_path: Path, loopback: LoopbackEmulator, database_url: str) -> Iterator[RoundRobinProxy]:
    env = server_env(tmp_path, database_url, loopback.base_url, RUNLOOP_MCP_HTTP_TOKEN=HTTP_TOKEN)
    with http_replica(env) as a, http_replica(env) as b:
        proxy = RoundRobinProxy([a, b])
        with proxy.running():
            yield proxy


async def test_http_replicas_behind_a_round_robin_proxy_share_one_journal(
    replicas: RoundRobinProxy, loopback: LoopbackEmulator, database_url: str
) -> None:
    emulator = loopback.emulator
    async with http_client(replicas.url) as client:  # 2026-07-28: stateless, any replica answers any call
        # a listing walked across the replicas: each page from the other one, every scenario exactly once
        seen: list[str] = []
        arguments: dict[str, Any] = {"fields": ["id"], "limit": 7, "max_tokens": 600}
        for _ in range(6):
            page = _data(await client.call_tool("list_scenarios", arguments))
            seen += [s["id"] for s in page["scenarios"]]
            arguments = {"cursor": page["next_cursor"], "max_tokens": 600}
        assert len(seen) == len(set(seen)) and len(seen) >= 12
        in_one = [
            s["id"]
            for s in _data(
                await client.call_tool("list_scenarios", {"fields": ["id"], "limit": len(seen), "max_tokens": 20000})
            )["scenarios"]
        ]
        assert seen == in_one  # the pages, each from the other replica, are the one listing in order
        assert set(replicas.replicas_of("list_scenarios")) == {0, 1}

        # preview on one replica, apply on the other
        scenario = active_scenario(emulator, small_scenario)
        sid = scenario["id"]
        changes = {"metadata": {"replica": "crossed"}}
        token = await _preview(client, sid, changes)
        applied = _data(await _apply(client, sid, changes, token))
        [previewed_on] = replicas.replicas_of("update_scenario", scenario_id=sid, changes=changes, dry_run=None)
        [applied_on] = replicas.replicas_of("update_scenario", preview_token=token)
        assert previewed_on != applied_on
        # A -> B -> A: the scenario goes back to exactly the version the token was issued for ...
        undo_token = _data(
            await client.call_tool("update_scenario", {"scenario_id": sid, "restore": applied["journal_entry"]})
        )
        arguments = {"scenario_id": sid, "restore": applied["journal_entry"], "dry_run": False}
        _data(await client.call_tool("update_scenario", {**arguments, "preview_token": undo_token["preview_token"]}))
        assert emulator.get(sid) == scenario
        # ... and the used token, sent to each replica in turn, is refused by both: single use is shared
        for _ in range(2):
            replay = await _apply(client, sid, changes, token)
            assert replay.is_error and "already used" in error_text(replay), error_text(replay)
        assert set(replicas.replicas_of("update_scenario", preview_token=token)) == {0, 1}
        assert _posts(loopback, sid) == 2

        # N previews of one version applied at once through the proxy: exactly one upstream write
        await _one_version_many_previews([client], loopback, active_scenario(emulator, small_scenario, skip=1)["id"], 6)

    # a third process sees every write, with who made it
    listed = journal_cli(database_url, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert len(lines) == 3 and {line[3] for line in lines} == {"applied"}
    assert {line[6] for line in lines} == {"http"}
    assert {line[7] for line in lines} == {
        "sha256:" + __import__("hashlib").sha256(HTTP_TOKEN.encode()).hexdigest()[:12]
    }
    assert HTTP_TOKEN not in listed.stdout
    exported = journal_cli(database_url, "export", "--scenario", sid)
    documents = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [d["changes"] for d in documents] == [["metadata.replica"], ["metadata.replica"]]
    assert documents[0]["before"] == scenario and documents[1]["after"] == scenario
    assert HTTP_TOKEN not in exported.stdout


async def test_2025_11_25_sessions_need_and_work_with_sticky_routing(
    tmp_path: Path, loopback: LoopbackEmulator, database_url: str
) -> None:
    env = server_env(tmp_path, database_url, loopback.base_url, RUNLOOP_MCP_HTTP_TOKEN=HTTP_TOKEN)
    sid = active_scenario(loopback.emulator, small_scenario)["id"]
    with http_replica(env) as a, http_replica(env) as b:
        proxy = RoundRobinProxy([a, b], sticky=True)
        with proxy.running():
            async with http_client(proxy.url, mode="legacy") as client:
                changes = {"metadata": {"session": "sticky"}}
                token = await _preview(client, sid, changes)
                _data(await _apply(client, sid, changes, token))
    assert len({route.replica for route in proxy.routes}) == 1  # one session, one replica
    assert len(journal_entries(database_url)) == 1


# --- a server killed mid-apply -----------------------------------------------------------------


INITIALIZE = initialize(0, client="killer", version="1")


async def test_a_server_killed_mid_apply_leaves_its_entry_unknown_and_the_scenario_unlocked(
    tmp_path: Path, loopback: LoopbackEmulator, database_url: str
) -> None:
    env = server_env(tmp_path, database_url, loopback.base_url)
    emulator = loopback.emulator
    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    changes = {"metadata": {"killed": "mid-apply"}}
    server = RawSession([], env)
    try:
        assert "result" in server.request(INITIALIZE)
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        preview = server.request(call(1, "update_scenario", {"scenario_id": sid, "changes": changes}))
        token = preview["result"]["structuredContent"]["preview_token"]
        loopback.faults.queue(Fault("latency", delay=2.0, methods=frozenset({"POST"})))  # the POST hangs a while
        server.send(
            call(
                2, "update_scenario", {"scenario_id": sid, "changes": changes, "dry_run": False, "preview_token": token}
            )
        )
        deadline = time.monotonic() + 20
        while not [row for row in journal_entries(database_url) if row.scenario_id == sid]:
            assert time.monotonic() < deadline, "the apply never journaled its entry"
            time.sleep(0.02)
        time.sleep(0.3)  # the POST is in flight now
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        server.process.kill()
        server.close()
    listed = journal_cli(database_url, "list", "--scenario", sid)
    assert listed.returncode == 0, listed.stderr
    [line] = [line.split("\t") for line in listed.stdout.splitlines()]
    assert line[3] == "unknown" and line[5] == "killer/1"
    # the scenario is not locked by the dead process: another server writes it at once
    async with Client(stdio_server(env)) as other:
        with anyio.fail_after(10):
            while emulator.get(sid) == scenario:  # the hung POST lands after all (the outcome was truly unknown)
                await anyio.sleep(0.05)
            again = {"metadata": {"after": "the kill"}}
            _data(await _apply(other, sid, again, await _preview(other, sid, again)))
    outcomes = [row.outcome for row in journal_entries(database_url) if row.scenario_id == sid]
    assert outcomes == ["unknown", "applied"]
    shown = journal_cli(database_url, "show", listed.stdout.split("\t", 1)[0])
    document = json.loads(shown.stdout)
    assert document["finished_at"] is None and document["before"] == scenario
