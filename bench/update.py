"""update_scenario latency against a bare httpx POST, and a fuzz campaign of generated change sets.

Latency: the emulator on loopback HTTP; an in-memory MCP client (2026-07-28, and 2025-11-25 with
--legacy) calls update_scenario as a dry run (preview) and as an apply (token, re-read, journal with
fsync, POST, verification). The baseline is a bare httpx POST of the same body to the same emulator.
Figures are p50/p95 in milliseconds and as ratios to the baseline measured in the same run.

Fuzz: the Hypothesis strategies of tests/test_update_properties.py, run through the MCP client
against the in-process emulator, checking the same properties (no POST without a matching preview,
POST body == previewed body, untouched fields survive, refused applies change nothing).

    .venv/bin/python bench/update.py [--rounds 200] [--fuzz 5000] [--legacy]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
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


async def latency(rounds: int, mode: str) -> dict[str, list[float]]:
    emulator = Emulator(api_key=KEY)
    sid = _small_active(emulator)
    times: dict[str, list[float]] = {"bare POST": [], "preview": [], "apply": []}
    with LoopbackEmulator(emulator) as loopback, tempfile.TemporaryDirectory() as tmp:
        server = build_server(_settings(loopback.base_url, Path(tmp) / "journal.jsonl"))
        async with (
            Client(server, mode=mode) as client,
            httpx.AsyncClient(base_url=loopback.base_url, headers={"Authorization": f"Bearer {KEY}"}) as bare,
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
                response = await bare.post(f"/v1/scenarios/{sid}", json=body)
                t_bare = time.perf_counter() - start
                assert response.status_code == 200
                if i >= 5:
                    times["preview"].append(t_preview * 1000)
                    times["apply"].append(t_apply * 1000)
                    times["bare POST"].append(t_bare * 1000)
    return times


def fuzz(count: int, seed: int) -> dict[str, int]:
    """Run ``count`` generated change sets through both MCP properties; returns counts by outcome."""
    import random

    from anyio.from_thread import start_blocking_portal
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from mcp_types import CallToolResult
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
    parser.add_argument("--fuzz", type=int, default=4000, help="generated change sets to run (default 4000)")
    parser.add_argument("--legacy", action="store_true", help="MCP 2025-11-25 (initialize handshake) instead")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    mode = "legacy" if args.legacy else "auto"
    times = anyio.run(latency, args.rounds, mode)
    base50, base95 = _pct(times["bare POST"], 0.5), _pct(times["bare POST"], 0.95)
    print(f"update_scenario latency, {args.rounds} rounds, MCP {'2025-11-25' if args.legacy else '2026-07-28'}, ")
    print("emulator on loopback HTTP (ms; ratio = against a bare httpx POST of the same body, same run)")
    print(f"{'':12} {'p50':>8} {'p95':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
    for name, values in times.items():
        p50, p95 = _pct(values, 0.5), _pct(values, 0.95)
        print(f"{name:12} {p50:8.2f} {p95:8.2f} {p50 / base50:9.1f}x {p95 / base95:9.1f}x")
    print(f"(mean bare POST {statistics.mean(times['bare POST']):.2f} ms)")
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
