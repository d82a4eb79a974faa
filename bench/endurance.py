"""Endurance: N list_scenarios calls in one process (in-memory MCP client, in-process emulator); RSS stays flat.

Walks the whole catalogue with next_cursor again and again (restarting at the end), alternating budgets,
so every call does real packing and cursor work. Prints RSS after a warm-up, at the midpoint and at the
end, and the end/warm-up ratio (the baseline is the same process after its first 1% of calls).

Idle RSS first (``--idle-wait`` seconds after the first answer, so the warm-up has finished): the console
script with --emulator after its first list_scenarios, against a bare MCPServer from the SDK with one tool
after its first tools/list, both launched over stdio the same way (bench/startup.py's commands).

Usage: python bench/endurance.py [--calls 100000] [--idle-wait 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.services import tokenizers
from runloop_scenarios_mcp.services.budget import part_cache_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import BASELINE, server_command


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def process_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry.name))
    return found


async def idle_rss(command: str, args: list[str], call: str | None, wait: float) -> float:
    """RSS of the server process ``wait`` seconds after its first answer (tools/list, then ``call`` if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    before = _children()
    async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
        await client.list_tools()
        if call is not None:
            result = await client.call_tool(call, {})
            assert not result.is_error, result.content
        await anyio.sleep(wait)
        (pid,) = _children() - before
        return process_rss_mib(pid)


async def run(calls: int, workdir: Path) -> None:
    settings = Settings(emulator=True, journal_path=workdir / "journal.jsonl", log_level="WARNING")
    server = build_server(settings)
    warm_up = max(1, calls // 100)
    marks: dict[str, tuple[int, float]] = {}
    cursor: str | None = None
    pages = errors = 0
    started = time.perf_counter()
    async with Client(server, mode="legacy") as client:
        for i in range(1, calls + 1):
            arguments: dict[str, Any] = {"max_tokens": 1500 if i % 2 else 4000}
            if cursor is not None:
                arguments = {"cursor": cursor, "max_tokens": arguments["max_tokens"]}
            result = await client.call_tool("list_scenarios", arguments)
            if result.is_error or result.structured_content is None:
                errors += 1
                cursor = None
            else:
                cursor = result.structured_content["next_cursor"]
                pages += cursor is None
            if i in (warm_up, calls // 2, calls):
                gc.collect()
                marks["warm-up" if i == warm_up else "mid" if i == calls // 2 else "end"] = (i, rss_mib())
    elapsed = time.perf_counter() - started
    print(
        f"endurance: {calls} list_scenarios calls in {elapsed:.1f} s ({calls / elapsed:.0f} calls/s), "
        f"{pages} full walks of the catalogue, {errors} errors"
    )
    for label, (at, rss) in marks.items():
        print(f"  RSS {label:<8} after {at:>7} calls: {rss:7.1f} MiB")
    base, end = marks["warm-up"][1], marks["end"][1]
    print(
        f"  RSS end / warm-up: {end / base:.3f}x ({end - base:+.1f} MiB); mid to end {end - marks['mid'][1]:+.1f} MiB"
    )
    entries, size = part_cache_size()
    pieces = ", ".join(
        f"{name} {tokenizers.load_encoding(name).piece_cache_size()}" for name in tokenizers.ENCODING_NAMES
    )
    print(
        f"  caches at the end: part counts {entries} entries ({size / 2**20:.1f} MiB of text); pieces {pieces} "
        f"(bound {tokenizers.PIECE_CACHE_ENTRIES} each); class codes {tokenizers.class_code_table_size()} characters"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--idle-wait", type=float, default=3.0, help="seconds idle before reading RSS (default 3)")
    parser.add_argument("--idle-runs", type=int, default=3)
    args = parser.parse_args()
    ours_cmd, ours_args = server_command()
    ours_idle = [
        anyio.run(idle_rss, ours_cmd, ours_args, "list_scenarios", args.idle_wait) for _ in range(args.idle_runs)
    ]
    bare_idle = [
        anyio.run(idle_rss, sys.executable, ["-c", BASELINE], None, args.idle_wait) for _ in range(args.idle_runs)
    ]
    ours_rss, bare_rss = sorted(ours_idle)[len(ours_idle) // 2], sorted(bare_idle)[len(bare_idle) // 2]
    print(f"RSS idle {args.idle_wait:g} s after the first answer, median of {args.idle_runs} launches over stdio:")
    print(f"  runloop-scenarios-mcp --emulator, after its first list_scenarios: {ours_rss:7.1f} MiB")
    print(f"  bare MCPServer (one tool), after its first tools/list:            {bare_rss:7.1f} MiB")
    print(f"  difference: {ours_rss - bare_rss:+.1f} MiB")
    if args.calls <= 0:
        return
    print(f"RSS at start (before the server): {rss_mib():.1f} MiB")
    with tempfile.TemporaryDirectory() as workdir:
        anyio.run(run, args.calls, Path(workdir))


if __name__ == "__main__":
    main()
