"""Cursors: opaque, signed, bound to their query; every misuse is a clear tool error.

Through the MCP client (both protocol modes) for the behaviour, plus a table of the codec itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.errors import InvalidCursor
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from tests.support.common import Session, error_text, make_settings

pytestmark = pytest.mark.anyio

FILTERS = {"validation_type": "FORWARD", "search": "fix"}


async def first_cursor(mcp: Session, **arguments: Any) -> str:
    page = await mcp.ok("list_scenarios", {"max_tokens": 500, **arguments})
    assert page["next_cursor"], "the test needs a page with more after it"
    return str(page["next_cursor"])


def altered(cursor: str, index: int) -> str:
    replacement = "A" if cursor[index] != "A" else "B"
    return cursor[:index] + replacement + cursor[index + 1 :]


async def test_cursor_alone_continues_with_its_filters_and_fields(mcp: Session, emulator: Emulator) -> None:
    fields = ["name", "validation_type"]
    cursor = await first_cursor(mcp, fields=fields, **FILTERS)
    page = await mcp.ok("list_scenarios", {"cursor": cursor, "max_tokens": 500})
    assert page["returned"] >= 1
    for item in page["scenarios"]:
        assert set(item) == {"id", *fields}
        assert item["validation_type"] == "FORWARD" and "fix" in item["name"].casefold()
    same = await mcp.ok("list_scenarios", {"cursor": cursor, "max_tokens": 500, "fields": fields, **FILTERS})
    assert same["scenarios"] == page["scenarios"]


@pytest.mark.parametrize(
    "other",
    [
        {"validation_type": "REVERSE"},
        {"search": "add"},
        {"name": "x"},
        {"fields": ["name"]},
        {"fields": ["*"]},
    ],
)
async def test_cursor_reused_with_other_filters_or_fields_is_refused(mcp: Session, other: dict[str, Any]) -> None:
    cursor = await first_cursor(mcp, **FILTERS)
    message = await mcp.error("list_scenarios", {"cursor": cursor, **other})
    assert "other filters or fields" in message and "drop the cursor" in message


async def test_tampered_and_truncated_cursors_are_refused(mcp: Session) -> None:
    cursor = await first_cursor(mcp, **FILTERS)
    head, query = cursor.split(".")
    candidates = [
        cursor[:-1],
        cursor[: len(cursor) // 2],
        cursor + "A",
        altered(cursor, len(head) - 3),  # the tag
        altered(cursor, 6),  # the scenario id
        f"{head}.{query.replace('FORWARD', 'REVERSE')}",  # another query, same tag
        head,  # the filters dropped
        f"{head}.",
        "0" + cursor,
        "",
        "....",
        "scn_x.%ZZ",
        "x" * 9000,
        "c2.scn_f3dkxyfv8sh0qctn0fv7av6j..z1rspNcG9t6TtoWv",  # the previous format
    ]
    for bad in candidates:
        message = await mcp.error("list_scenarios", {"cursor": bad})
        assert "cursor is not valid" in message, bad
        assert "next_cursor" in message and "start over" in message


async def test_cursor_from_another_server_secret_is_refused(mcp: Session, emulator: Emulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret=SecretStr("another-secret-0123456789abcdef"))
    other = build_server(settings, transport=emulator.transport())
    async with Client(other) as client:
        page = await client.call_tool("list_scenarios", {"max_tokens": 500})
        assert page.structured_content is not None
        foreign = page.structured_content["next_cursor"]
    message = await mcp.error("list_scenarios", {"cursor": foreign})
    assert "issued by another server" in message and "RUNLOOP_MCP_SECRET" in message


async def test_a_preview_token_is_not_a_cursor(mcp: Session, emulator: Emulator) -> None:
    scenario_id = next(sid for sid, s in emulator.snapshot().items() if s.get("status") != "archived")
    preview = await mcp.ok("update_scenario", {"scenario_id": scenario_id, "changes": {"metadata": {"k": "v"}}})
    result = await mcp.call("list_scenarios", {"cursor": preview["preview_token"]})
    assert result.is_error and "cursor is not valid" in error_text(result)


# --- the codec itself ------------------------------------------------------------------------

QUERIES: list[dict[str, Any]] = [
    {"filters": {}, "fields": None},
    {"filters": {}, "fields": ["*"]},
    {"filters": {"validation_type": "EVALUATION"}, "fields": None},
    {"filters": {"name": "a.b~c d/é%,+", "search": "日本語"}, "fields": ["id", "name"]},
    {"filters": {"benchmark_id": "bmd_1", "search": "x"}, "fields": ["id", "metadata"]},
    {"filters": {}, "fields": None, "text": "csv  import~.+%"},
    {"filters": {"search": "x"}, "fields": ["*"], "text": "数据"},
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("after", ["scn_2f7k9", "scn_00x", "scn_Upper", "odd.id/with~dots é", "12345"])
def test_codec_round_trips(query: dict[str, Any], after: str) -> None:
    codec = CursorCodec("secret")
    cursor = codec.encode(CursorState(after=after, query=query))
    assert cursor.isascii() and '"' not in cursor and "\\" not in cursor
    assert codec.decode(cursor) == CursorState(after=after, query=query)
    with pytest.raises(InvalidCursor):
        CursorCodec("other secret").decode(cursor)


def test_default_cursor_is_short() -> None:
    from runloop_scenarios_mcp.services.budget import count_text

    cursor = CursorCodec("secret").encode(CursorState(after="scn_f3dkxyfv8sh0qctn0fv7av6j", query=QUERIES[0]))
    assert cursor.isdigit() and count_text(cursor) <= 19  # the id as 39 digits, the tag as 18: 3 digits a token


@pytest.mark.parametrize("after", ["scn_f3dkxyfv8sh0qctn0fv7av6j", "scn_31Lc2KRNVVJbVQK3jCsxkQ", "scn_0"])
def test_scenario_ids_travel_as_digits_in_one_spelling(after: str) -> None:
    from runloop_scenarios_mcp.services.budget import count_text

    codec = CursorCodec("secret")
    cursor = codec.encode(CursorState(after=after, query=QUERIES[0]))
    assert cursor.isdigit() and count_text(cursor) <= 20
    assert codec.decode(cursor).after == after
    for other in (str(int(cursor[:-18]) ^ 1) + cursor[-18:], "0" + cursor):  # the other alphabet; a leading zero
        with pytest.raises(InvalidCursor):
            codec.decode(other)


@pytest.mark.parametrize(
    ("after", "query", "cursor"),
    [
        ("scn_46ch4zz4cnwfxaffn6k7aywt", QUERIES[0], "50113805014196612430059809124726230138423682993997560703"),
        ("scn_0Ab9", QUERIES[0], "29830823511758658539795509"),
        (
            "scn_00a",
            {"filters": {"name": "x y"}, "fields": ["id", "name"], "text": "csv"},
            "93332617956864717284733.csv~id,name~x+y",
        ),
        ("other-id", QUERIES[0], "b3RoZXItaWQ~812887588875112865"),
    ],
)
def test_cursors_keep_their_spelling(after: str, query: dict[str, Any], cursor: str) -> None:
    """Cursors issued before keep working with the same secret (other replicas, restarts): the same id digits and
    tag as the codec made when these were recorded."""
    codec = CursorCodec("s" * 32)
    assert codec.encode(CursorState(after=after, query=query)) == cursor
    assert codec.decode(cursor) == CursorState(after=after, query=query)
