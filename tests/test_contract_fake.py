"""The server against an independent fake of the Runloop API (tests/support/fake_runloop.py), not the emulator.

The fake is written from docs/upstream-api.md alone and takes other legal choices than the emulator
wherever the contract is open (order, default limit, total_count, unknown cursors, nested updates,
scenarios of every era). Everything goes through the real MCP client, in both protocol modes. The first
block checks the fake itself against the contract, so a failure below is the server's, not the fake's.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import TextContent

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.services.budget import lookup_path
from tests.support.common import CANARY_KEY, RealTokens, Session, error_text, make_settings
from tests.support.fake_runloop import UPDATE_FIELDS, FakeRunloop, NestedUpdate, TotalCount, UnknownCursor

pytestmark = pytest.mark.anyio

MODES = ["legacy", "modern"]
INTERNAL = "Internal error"
LENIENT_DEFAULTS: dict[str, Any] = {"status": "active", "metadata": {}, "name": None, "validation_type": None}
"""What a field absent upstream may be shown as (docs/upstream-api.md, "Scenario fields":
missing status means active, metadata {})."""


@pytest.fixture
def fake() -> FakeRunloop:
    return FakeRunloop(CANARY_KEY)


@asynccontextmanager
async def connect(fake: FakeRunloop, tmp_path: Path, mode: str, **settings: Any) -> AsyncIterator[Session]:
    server = build_server(make_settings(tmp_path, **settings), transport=fake.transport())
    async with Client(server, mode="legacy" if mode == "legacy" else "auto") as client:
        yield Session(client, mode)


@pytest.fixture(params=MODES)
async def session(request: pytest.FixtureRequest, fake: FakeRunloop, tmp_path: Path) -> AsyncIterator[Session]:
    async with connect(fake, tmp_path, request.param) as opened:
        yield opened


# --- the fake itself follows the contract ---------------------------------------------------------------


async def _raw(fake: FakeRunloop, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {CANARY_KEY}"})
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://runloop.test") as client:
        return await client.request(method, path, headers=headers, **kwargs)


async def test_fake_lists_in_creation_order_with_default_limit_and_optional_total(fake: FakeRunloop) -> None:
    listed = fake.listed()
    assert listed != sorted(listed), "the fake must not order by id"
    first = (await _raw(fake, "GET", "/v1/scenarios")).json()
    assert [s["id"] for s in first["scenarios"]] == listed[:20]
    assert first["has_more"] is True and first["total_count"] == len(listed) and first["remaining_count"] == 0
    quiet = (await _raw(fake, "GET", "/v1/scenarios", params={"include_total_count": "false", "limit": 5})).json()
    assert "total_count" not in quiet and len(quiet["scenarios"]) == 5
    after = (await _raw(fake, "GET", "/v1/scenarios", params={"starting_after": listed[4], "limit": 2})).json()
    assert [s["id"] for s in after["scenarios"]] == listed[5:7]
    unknown = (await _raw(fake, "GET", "/v1/scenarios", params={"starting_after": "scn_nope"})).json()
    assert unknown["scenarios"] == [] and unknown["has_more"] is False
    archived = fake.quirks["archived"]
    assert archived not in listed and (await _raw(fake, "GET", f"/v1/scenarios/{archived}")).status_code == 200
    assert "status" not in fake.scenario(fake.quirks["no_status"]) and fake.quirks["no_status"] in listed


async def test_fake_errors_and_update_semantics(fake: FakeRunloop) -> None:
    sid = fake.quirks["new_kinds"]
    assert (await _raw(fake, "GET", "/v1/scenarios", headers={})).status_code == 401
    missing = await _raw(fake, "GET", "/v1/scenarios/scn_missing")
    assert missing.status_code == 404 and "message" in missing.json()
    bodies: list[dict[str, Any]] = [{"is_public": True}, {"environment": {}}, {"name": "  "}]
    for body in bodies:
        assert (await _raw(fake, "POST", f"/v1/scenarios/{sid}", json=body)).status_code == 400, body
    assert (await _raw(fake, "POST", f"/v1/scenarios/{fake.quirks['archived']}", json={})).status_code == 400
    before = fake.scenario(sid)
    kept = (await _raw(fake, "POST", f"/v1/scenarios/{sid}", json={"name": None, "metadata": {"a": "b"}})).json()
    assert kept["name"] == before["name"] and kept["metadata"] == {"a": "b"}
    env = await _raw(fake, "POST", f"/v1/scenarios/{sid}", json={"environment_parameters": {"snapshot_id": "s"}})
    assert env.json()["environment"] == {"snapshot_id": "s"} and "environment_parameters" not in env.json()
    assert env.json()["evaluation_budget"] == before["evaluation_budget"]


# --- list_scenarios: complete walks ---------------------------------------------------------------------


async def walk(
    session: Session, arguments: dict[str, Any], real_tokens: RealTokens | None = None
) -> list[dict[str, Any]]:
    """Follow next_cursor to the end, checking every page against its budget."""
    pages: list[dict[str, Any]] = []
    args = dict(arguments)
    for _ in range(400):
        result = await session.call("list_scenarios", args)
        assert not result.is_error, error_text(result)
        assert result.structured_content is not None
        page = dict(result.structured_content)
        budget = arguments.get("max_tokens", 4000)
        assert page.get("estimated_tokens", 0) <= budget, "page over budget by the server's own estimate"
        if real_tokens is not None:
            block = result.content[0]
            assert isinstance(block, TextContent)
            assert real_tokens.count(block.text) <= budget, "page over budget by a real tokenizer"
        assert page["returned"] == len(page["scenarios"])
        pages.append(page)
        if page["next_cursor"] is None:
            assert page["has_more"] is False
            return pages
        assert page["has_more"] is True and page["returned"] >= 1
        args = {"cursor": page["next_cursor"]} | {k: v for k, v in arguments.items() if k in ("max_tokens", "limit")}
    raise AssertionError("the walk did not end")


def ids(pages: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for page in pages for item in page["scenarios"]]


def resolve(fake: FakeRunloop, filters: dict[str, Any]) -> dict[str, Any]:
    """Filters with placeholders (benchmark:N, quirk:KEY-name) replaced by the fake's own values."""
    out = dict(filters)
    if out.get("benchmark_id", "").startswith("benchmark:"):
        out["benchmark_id"] = list(fake.benchmarks)[int(out["benchmark_id"].split(":")[1])]
    if out.get("name", "").startswith("quirk:"):
        out["name"] = fake.store[fake.quirks[out["name"].split(":")[1]]]["name"]
    return out


WALKS: list[tuple[dict[str, str], int | None]] = [
    ({}, 500),
    ({}, None),
    ({}, 20000),
    ({"validation_type": "FORWARD"}, 1000),
    ({"benchmark_id": "benchmark:0"}, 1500),
    ({"benchmark_id": "benchmark:1"}, 20000),
    ({"search": "PORT"}, 800),
    ({"name": "quirk:twin_a"}, 600),
    ({"name": "quirk:unicode"}, 600),
]


@pytest.mark.parametrize(("filters", "budget"), WALKS, ids=lambda v: str(v))
async def test_walk_lists_every_active_scenario_exactly_once(
    session: Session, fake: FakeRunloop, real_tokens: RealTokens, filters: dict[str, str], budget: int | None
) -> None:
    actual = resolve(fake, filters)
    expected = fake.listed(**actual)
    assert expected, "the walk would prove nothing"
    args: dict[str, Any] = dict(actual) | ({"max_tokens": budget} if budget else {})
    pages = await walk(session, args, real_tokens)
    assert ids(pages) == expected
    assert all(item.get("status", "active") == "active" for page in pages for item in page["scenarios"])


@pytest.mark.parametrize(
    "arguments",
    [
        {"fields": ["*"], "max_tokens": 3000},
        {"fields": ["id", "name", "environment"], "limit": 7},
        {"fields": ["input_context", "reference_output"], "max_tokens": 1200, "benchmark_id": "benchmark:1"},
    ],
    ids=["all-fields", "lean-limit", "large-fields"],
)
async def test_walk_with_fields_is_complete_and_lossless(
    session: Session, fake: FakeRunloop, arguments: dict[str, Any]
) -> None:
    args = resolve(fake, arguments)
    filters = {k: v for k, v in args.items() if k in ("benchmark_id",)}
    pages = await walk(session, args)
    assert ids(pages) == fake.listed(**filters)
    clipped = {(c["id"], c["path"]) for page in pages for c in page.get("clipped", [])}
    for page in pages:
        assert "limit" not in args or page["returned"] <= args["limit"]
        for item in page["scenarios"]:
            original = fake.scenario(item["id"])
            wanted = list(original) if args["fields"] == ["*"] else ["id", *args["fields"]]
            assert {name for name in wanted if name in original} <= set(item) <= set(wanted)
            for name in set(item) - set(original):  # absent upstream: absent, or the contract's lenient default
                assert item[name] == LENIENT_DEFAULTS[name], (item["id"], name)
            if not any(sid == item["id"] for sid, _ in clipped):
                shown = {name: value for name, value in item.items() if name in original}
                assert shown == {name: original[name] for name in shown}, "unclipped items are the API's JSON as is"
    if args["fields"] == ["*"]:
        assert (fake.quirks["big"], "input_context.problem_statement") in clipped


async def test_short_upstream_pages_and_misleading_remaining_count_do_not_end_the_walk(
    fake: FakeRunloop, tmp_path: Path
) -> None:
    fake.max_page = 3  # the API may answer with fewer scenarios than asked; remaining_count is always 0
    for mode in MODES:
        async with connect(fake, tmp_path, mode) as session:
            pages = await walk(session, {"max_tokens": 6000})
        assert ids(pages) == fake.listed()


async def test_total_count_when_asked_and_null_otherwise(session: Session, fake: FakeRunloop) -> None:
    for filters in ({}, {"validation_type": "REVERSE"}, resolve(fake, {"benchmark_id": "benchmark:0"})):
        asked = await session.ok("list_scenarios", {**filters, "include_total_count": True, "limit": 2})
        assert asked["total_count"] == len(fake.listed(**filters))
        assert fake.lists()[-1].query.get("include_total_count") in (None, "true")
        quiet = await session.ok("list_scenarios", {**filters, "limit": 2})
        assert quiet.get("total_count") is None


@pytest.mark.parametrize("total_count", ["never", "null"])
async def test_total_count_missing_upstream_is_null_not_an_error(
    fake: FakeRunloop, tmp_path: Path, total_count: TotalCount
) -> None:
    fake.total_count = total_count
    async with connect(fake, tmp_path, "modern") as session:
        page = await session.ok("list_scenarios", {"include_total_count": True, "limit": 5})
        assert page.get("total_count") is None and page["returned"] == 5
        assert ids(await walk(session, {"include_total_count": True, "max_tokens": 20000})) == fake.listed()


@pytest.mark.parametrize("behaviour", ["position", "empty", "error"])
async def test_cursor_whose_scenario_was_archived_meanwhile(
    fake: FakeRunloop, tmp_path: Path, behaviour: UnknownCursor
) -> None:
    """The contract leaves an unknown starting_after open: the walk must continue, or say plainly it cannot."""
    fake.unknown_cursor = behaviour
    async with connect(fake, tmp_path, "modern") as session:
        first = await session.ok("list_scenarios", {"limit": 5})
        fake.archive(first["scenarios"][-1]["id"])
        result = await session.call("list_scenarios", {"cursor": first["next_cursor"], "limit": 5})
        if not result.is_error:
            assert result.structured_content is not None
            page = dict(result.structured_content)
            assert [s["id"] for s in page["scenarios"]] == fake.listed()[4:9], "the walk must go on where it was"
        else:
            message = error_text(result)
            assert INTERNAL not in message and "cursor" in message, message
            assert "Check the scenario id" not in message, "a list call must not blame a scenario id: " + message


# --- get_scenario ---------------------------------------------------------------------------------------


async def test_every_scenario_reads_back_exactly_as_the_api_sent_it(session: Session, fake: FakeRunloop) -> None:
    for key, sid in fake.quirks.items():
        if key == "big":
            continue
        got = await session.ok("get_scenario", {"scenario_id": sid, "max_tokens": 20000})
        assert got["clipped"] == [] and got["scenario"] == fake.scenario(sid), key


@pytest.mark.parametrize(("key", "budget"), [("big", 2000), ("big", 500), ("unicode", 900)])
async def test_get_clips_within_budget_and_slices_rebuild_every_string(
    session: Session, fake: FakeRunloop, real_tokens: RealTokens, key: str, budget: int
) -> None:
    sid = fake.quirks[key]
    original = fake.scenario(sid)
    result = await session.call("get_scenario", {"scenario_id": sid, "max_tokens": budget})
    if result.is_error:  # a scenario with many fields may not fit the smallest budgets: the error says what will
        needed = re.search(r"max_tokens=(\d+) or more", error_text(result))
        assert needed is not None and int(needed.group(1)) > budget, error_text(result)
        budget = int(needed.group(1))
        result = await session.call("get_scenario", {"scenario_id": sid, "max_tokens": budget})
    assert not result.is_error, error_text(result)
    got = dict(result.structured_content or {})
    block = result.content[0]
    assert isinstance(block, TextContent) and real_tokens.count(block.text) <= budget
    assert got["estimated_tokens"] <= budget and got["clipped"]
    assert got["scenario"]["id"] == sid
    for clip in got["clipped"]:
        full = lookup_path(original, clip["path"])
        if "left_out" in clip:  # left out whole: read back as its compact JSON
            full = json.dumps(full, ensure_ascii=False, separators=(",", ":"))
        assert isinstance(full, str) and clip["original_length"] == len(full)
        assert lookup_path(got["scenario"], clip["path"]).startswith(full[: clip["returned_length"]])
        text, offset = "", 0
        for _ in range(200):
            part = await session.ok(
                "get_scenario", {"scenario_id": sid, "field": clip["path"], "offset": offset, "max_tokens": budget}
            )
            assert part["estimated_tokens"] <= budget
            piece = part["slice"]
            assert piece["offset"] == offset and piece["total_length"] == len(full)
            text += piece["text"]
            if piece["next_offset"] is None:
                break
            assert piece["next_offset"] > offset
            offset = piece["next_offset"]
        assert text == full, clip["path"]


# --- update_scenario ------------------------------------------------------------------------------------


def _keys_deep(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys_deep(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys_deep(v)}
    return set()


async def round_trip(session: Session, fake: FakeRunloop, sid: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Preview then apply; checks nothing is sent by the preview and the POST holds only documented fields."""
    posts = len(fake.posts())
    preview = await session.ok("update_scenario", {"scenario_id": sid, "changes": changes})
    assert len(fake.posts()) == posts, "a dry run must not POST"
    applied = await session.ok(
        "update_scenario",
        {"scenario_id": sid, "changes": changes, "dry_run": False, "preview_token": preview["preview_token"]},
    )
    sent = fake.posts()
    assert len(sent) == posts + 1
    body = sent[-1].body
    assert isinstance(body, dict) and body == preview["upstream_body"] == applied["upstream_body"]
    assert set(body) <= UPDATE_FIELDS, f"undocumented update fields: {set(body) - UPDATE_FIELDS}"
    assert not {"prebuilt_id", "is_public", "status"} & _keys_deep(body), body
    assert applied["applied"] is True and applied["verified"] is True, applied["mismatches"]
    return body


@pytest.mark.parametrize("nested", ["merge", "replace"])
async def test_round_trip_keeps_unknown_fields_at_every_level(
    fake: FakeRunloop, tmp_path: Path, nested: NestedUpdate
) -> None:
    fake.nested = nested
    sid = fake.quirks["new_kinds"]
    before = fake.scenario(sid)
    async with connect(fake, tmp_path, "legacy") as session:
        body = await round_trip(
            session, fake, sid, {"metadata": {"owner": "qa"}, "input_context": {"problem_statement": "Rewritten."}}
        )
    assert body["metadata"] == {**before["metadata"], "owner": "qa"}
    assert body["input_context"] == {**before["input_context"], "problem_statement": "Rewritten."}
    after = fake.scenario(sid)
    for key in ("evaluation_budget", "scoring_contract", "environment", "validation_type", "create_time_ms"):
        assert after[key] == before[key], key
    assert after["input_context"]["attachments"] == before["input_context"]["attachments"]


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("no_status", {"metadata": {"k": "v"}}, {}),
    ("no_metadata", {"metadata": {"k": "v"}}, {"metadata": {"k": "v"}}),
    (
        "no_environment",
        {"environment": {"blueprint_id": "bpt_new"}},
        {"environment_parameters": {"blueprint_id": "bpt_new"}},
    ),
    ("nulls", {"environment": {"working_directory": "/w"}}, {"environment_parameters": {"working_directory": "/w"}}),
    ("nulls", {"reference_output": "patch"}, {"reference_output": "patch"}),
    ("old_era", {"metadata": {"k": "v"}}, {}),
    ("old_era", {"environment": {"working_directory": "/srv"}}, {}),
    ("minimal", {"metadata": {"k": "v"}}, {"metadata": {"k": "v"}}),
    ("bare", {"name": "named-at-last"}, {"name": "named-at-last"}),
    ("flat_scorer", {"name": "flat-renamed"}, {"name": "flat-renamed"}),
    ("new_kinds", {"validation_type": "FORWARD"}, {"validation_type": "FORWARD"}),
    ("unicode", {"metadata": {"emoji": "🧪"}}, {}),
    ("no_validation_type", {"metadata": None}, {"metadata": {}}),
]


@pytest.mark.parametrize(("key", "changes", "expected_body"), CASES, ids=lambda v: v if isinstance(v, str) else "")
async def test_old_and_odd_shapes_update_cleanly(
    session: Session, fake: FakeRunloop, key: str, changes: dict[str, Any], expected_body: dict[str, Any]
) -> None:
    sid = fake.quirks[key]
    before = fake.scenario(sid)
    body = await round_trip(session, fake, sid, changes)
    if expected_body:
        assert body == expected_body
    after = fake.scenario(sid)
    untouched = set(before) - {"environment" if k == "environment_parameters" else k for k in body}
    assert {k: after.get(k) for k in untouched} == {k: before[k] for k in untouched}, "other fields must not move"
    assert ("status" in after) == ("status" in before)


async def test_scoring_change_keeps_an_unknown_scorer_type(session: Session, fake: FakeRunloop) -> None:
    sid = fake.quirks["new_kinds"]
    functions = fake.scenario(sid)["scoring_contract"]["scoring_function_parameters"]
    functions[0]["weight"], functions[1]["weight"] = 0.5, 0.5
    body = await round_trip(session, fake, sid, {"scoring_contract": {"scoring_function_parameters": functions}})
    assert body["scoring_contract"]["scoring_function_parameters"] == functions
    assert fake.scenario(sid)["scoring_contract"]["aggregation"] == "weighted_mean"


@pytest.mark.parametrize(
    ("key", "changes", "words"),
    [
        ("archived", {"metadata": {"k": "v"}}, "archived"),
        ("archived_old", {"name": "x"}, "archived"),
        ("no_status", {"name": "   "}, "blank"),
        ("old_era", {"is_public": False}, "is_public"),
        ("old_era", {"prebuilt_id": "prb_x"}, "prebuilt_id"),
        ("new_kinds", {"environment_parameters": {}}, "environment"),
        ("new_kinds", {"validation_type": "NEW_KIND_2"}, "validation_type"),
    ],
)
async def test_refusals_are_actionable_and_send_nothing(
    session: Session, fake: FakeRunloop, key: str, changes: dict[str, Any], words: str
) -> None:
    sid = fake.quirks[key]
    message = await session.error("update_scenario", {"scenario_id": sid, "changes": changes})
    assert words in message and INTERNAL not in message, message
    assert fake.posts() == []


async def test_archived_scenarios_are_readable(session: Session, fake: FakeRunloop) -> None:
    for key in ("archived", "archived_old"):
        got = await session.ok("get_scenario", {"scenario_id": fake.quirks[key], "max_tokens": 20000})
        assert got["scenario"]["status"] == "archived"


# --- upstream errors ------------------------------------------------------------------------------------


async def test_unknown_id_is_an_actionable_404(session: Session, fake: FakeRunloop) -> None:
    for tool, args in (
        ("get_scenario", {"scenario_id": "scn_doesnotexist0000"}),
        ("update_scenario", {"scenario_id": "scn_doesnotexist0000", "changes": {"name": "x"}}),
    ):
        message = await session.error(tool, args)
        assert "404" in message and "list_scenarios" in message and INTERNAL not in message, message
    empty = await session.ok("list_scenarios", {"benchmark_id": "bmk_unknown"})
    assert empty["returned"] == 0 and empty["next_cursor"] is None


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_key_is_an_actionable_401_without_the_key(fake: FakeRunloop, tmp_path: Path, mode: str) -> None:
    from pydantic import SecretStr

    wrong = "rl_wrong_key_5b9d2e7a1c"
    async with connect(fake, tmp_path, mode, api_key=SecretStr(wrong)) as session:
        sid = fake.listed()[0]
        for tool, args in (
            ("list_scenarios", {}),
            ("get_scenario", {"scenario_id": sid}),
            ("update_scenario", {"scenario_id": sid, "changes": {"name": "x"}}),
        ):
            message = await session.error(tool, args)
            assert "401" in message and "RUNLOOP_API_KEY" in message, message
            assert wrong not in message and CANARY_KEY not in message
    assert fake.requests and all(r.headers.get("authorization") == f"Bearer {wrong}" for r in fake.requests)
    assert fake.posts() == []


async def test_no_tool_crashes_on_any_scenario_shape(session: Session, fake: FakeRunloop) -> None:
    """Every quirk through every tool: a result or a clear error, never an internal error."""
    for sid in fake.quirks.values():
        for tool, args in (
            ("get_scenario", {"scenario_id": sid, "max_tokens": 1000}),
            ("update_scenario", {"scenario_id": sid, "changes": {"metadata": {"seen": "yes"}}}),
            ("list_scenarios", {"search": sid, "fields": ["*"], "max_tokens": 1500}),
            ("list_scenarios", {"search": sid}),
        ):
            result = await session.call(tool, args)
            assert not result.is_error or INTERNAL not in error_text(result), (tool, sid, error_text(result))
    assert fake.posts() == []
