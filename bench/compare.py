"""Ours against a naive passthrough server (bench/naive_server.py), in one run, same emulator, same data.

Figures (tokens are o200k_base counts of each tool result's text, what an agent's context receives):
* tokens per page and per scenario, walking the whole catalogue with each server's defaults;
* how many pages exceed a 4,000- and a 20,000-token budget;
* calls (and tokens) to find a scenario by name when scanning pages, for names deep in the list;
* p50/p95 latency of one page call (in-memory MCP client);
* cold start of each stdio server to its first tools/list answer, as a ratio.

Usage: python bench/compare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp_types import TextContent

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.budget import load_encoding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from naive_server import build_naive_server
from startup import server_command, time_to_tools

ENCODING = load_encoding("o200k_base")
BUDGETS = (4000, 20000)
Page = tuple[list[dict[str, Any]], int, float]
"""(scenarios on the page, tokens of the result text, seconds the call took)."""
Walker = Callable[[Any], Awaitable[Page]]


def tokens(text: str) -> int:
    return len(ENCODING.encode(text, disallowed_special=()))


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def walk_ours(client: Client) -> list[Page]:
    pages: list[Page] = []
    cursor: str | None = None
    while True:
        start = time.perf_counter()
        result = await client.call_tool("list_scenarios", {"cursor": cursor} if cursor else {})
        elapsed = time.perf_counter() - start
        assert not result.is_error and result.structured_content is not None, text_of(result)
        pages.append((result.structured_content["scenarios"], tokens(text_of(result)), elapsed))
        cursor = result.structured_content["next_cursor"]
        if cursor is None:
            return pages


async def walk_naive(client: Client) -> list[Page]:
    pages: list[Page] = []
    after: str | None = None
    while True:
        start = time.perf_counter()
        result = await client.call_tool("list_scenarios", {"starting_after": after} if after else {})
        elapsed = time.perf_counter() - start
        text = text_of(result)
        page = json.loads(text)
        pages.append((page["scenarios"], tokens(text), elapsed))
        if not page["has_more"]:
            return pages
        after = page["scenarios"][-1]["id"]


def find_cost(pages: list[Page], name: str) -> tuple[int, int]:
    """Calls and tokens an agent scanning page by page spends until the scenario named ``name`` shows up."""
    spent = 0
    for number, (scenarios, page_tokens, _) in enumerate(pages, start=1):
        spent += page_tokens
        if any(s.get("name") == name for s in scenarios):
            return number, spent
    raise AssertionError(f"{name!r} not found")


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(workdir: Path) -> tuple[list[Page], list[Page], list[str]]:
    ours_server = build_server(Settings(emulator=True, journal_path=workdir / "journal.jsonl", log_level="WARNING"))
    naive_server = build_naive_server(Emulator().transport())
    async with Client(ours_server, mode="legacy") as ours, Client(naive_server, mode="legacy") as naive:
        await walk_ours(ours)  # warm both (tokenizer load, caches) before timing
        await walk_naive(naive)
        ours_pages = await walk_ours(ours)
        naive_pages = await walk_naive(naive)
    catalogue = [s for page in naive_pages for s in page[0]]
    names = [catalogue[int(len(catalogue) * share)]["name"] for share in (0.5, 0.8, 0.95)] + [catalogue[-1]["name"]]
    return ours_pages, naive_pages, names


def report(label: str, pages: list[Page]) -> list[str]:
    count = sum(len(p[0]) for p in pages)
    total = sum(p[1] for p in pages)
    per_page = [p[1] for p in pages]
    over = ", ".join(f"over {b}: {sum(t > b for t in per_page)}" for b in BUDGETS)
    return [
        f"{label}: {len(pages)} pages for {count} scenarios; tokens per page mean {total / len(pages):,.0f}, "
        f"max {max(per_page):,}; tokens per scenario {total / count:,.0f}; pages {over}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold starts per server (interleaved)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as workdir:
        ours_pages, naive_pages, names = anyio.run(measure, Path(workdir))
    print("catalogue walk with each server's defaults (ours: 4,000-token pages of summaries; naive: the API's pages)")
    for line in report("  ours ", ours_pages) + report("  naive", naive_pages):
        print(line)
    ours_per = sum(p[1] for p in ours_pages) / sum(len(p[0]) for p in ours_pages)
    naive_per = sum(p[1] for p in naive_pages) / sum(len(p[0]) for p in naive_pages)
    print(f"  tokens per scenario, naive / ours: {naive_per / ours_per:.1f}x")
    print("find a scenario by name, scanning pages (calls, tokens):")
    for name in names:
        oc, ot = find_cost(ours_pages, name)
        nc, nt = find_cost(naive_pages, name)
        print(
            f"  {name[:40]:<40} ours {oc:>3} calls {ot:>9,} tok | naive {nc:>3} calls {nt:>9,} tok | "
            f"tokens naive/ours {nt / ot:.1f}x"
        )
    print("  with the name filter both servers need 1 call (ours: name=..., naive: name=...)")
    ours_lat = [p[2] for p in ours_pages]
    naive_lat = [p[2] for p in naive_pages]
    print(
        f"page latency (in-memory MCP): ours p50 {pct(ours_lat, 0.5) * 1000:.1f} ms "
        f"p95 {pct(ours_lat, 0.95) * 1000:.1f} ms | naive p50 {pct(naive_lat, 0.5) * 1000:.1f} ms "
        f"p95 {pct(naive_lat, 0.95) * 1000:.1f} ms | "
        f"p50 ratio ours/naive {pct(ours_lat, 0.5) / pct(naive_lat, 0.5):.1f}x"
    )
    ours_cmd = server_command()
    naive_cmd = (sys.executable, [str(Path(__file__).resolve().parent / "naive_server.py")])
    ours_cold: list[float] = []
    naive_cold: list[float] = []
    for _ in range(runs):  # interleaved so machine load hits both alike
        ours_cold.append(anyio.run(time_to_tools, *ours_cmd)[0])
        naive_cold.append(anyio.run(time_to_tools, *naive_cmd)[0])
    o, n = statistics.median(ours_cold), statistics.median(naive_cold)
    print(
        f"cold start to first tools/list, median of {runs}: ours {o * 1000:.0f} ms, naive {n * 1000:.0f} ms, "
        f"ratio ours/naive {o / n:.2f}x"
    )


if __name__ == "__main__":
    main()
