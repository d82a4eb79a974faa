"""Endurance: N list_scenarios calls in one process (in-memory MCP client, in-process emulator); RSS stays flat.

Walks the whole catalogue with next_cursor again and again (restarting at the end), alternating budgets,
so every call does real packing and cursor work. Prints RSS after a warm-up, at the midpoint and at the
end, and the end/warm-up ratio (the baseline is the same process after its first 1% of calls).

Usage: python bench/endurance.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    print(f"RSS at start (before the server): {rss_mib():.1f} MiB")
    with tempfile.TemporaryDirectory() as workdir:
        anyio.run(run, args.calls, Path(workdir))


if __name__ == "__main__":
    main()
