"""get_scenario through the MCP client: whole scenarios within budget, clipping, slices that rebuild the original."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from mcp_types import TextContent

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.budget import lookup_path
from tests.support.common import RealTokens, Session, error_text

pytestmark = pytest.mark.anyio


def largest(emulator: Emulator, count: int = 1) -> list[dict[str, Any]]:
    return sorted(emulator.snapshot().values(), key=lambda s: len(str(s)), reverse=True)[:count]


async def get(mcp: Session, real_tokens: RealTokens, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await mcp.call("get_scenario", arguments)
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    block = result.content[0]
    assert isinstance(block, TextContent)
    budget = arguments.get("max_tokens", 4000)
    assert real_tokens.count(block.text) <= budget, "result over budget by a real tokenizer"
    return dict(result.structured_content)


async def read_whole(
    mcp: Session, real_tokens: RealTokens, scenario_id: str, path: str, offset: int, budget: int
) -> str:
    """Read one string from ``offset`` to its end, slice by slice."""
    text = ""
    for _ in range(500):
        result = await get(
            mcp, real_tokens, {"scenario_id": scenario_id, "field": path, "offset": offset, "max_tokens": budget}
        )
        piece = result["slice"]
        assert result["scenario"] is None and piece["field"] == path and piece["offset"] == offset
        text += str(piece["text"])
        if piece["next_offset"] is None:
            assert "end" in result["hint"]
            return text
        assert piece["next_offset"] == offset + len(piece["text"]) and "next_offset" in result["hint"]
        offset = piece["next_offset"]
    raise AssertionError("slices never ended")


async def test_small_scenario_comes_whole(mcp: Session, emulator: Emulator, real_tokens: RealTokens) -> None:
    smallest = min(emulator.snapshot().values(), key=lambda s: len(str(s)))
    result = await get(mcp, real_tokens, {"scenario_id": smallest["id"], "max_tokens": 4000})
    assert result["scenario"] == smallest and result["clipped"] == [] and result["slice"] is None
    assert "update_scenario" in result["hint"]


@pytest.mark.parametrize("budget", [500, 2000, 8000])
async def test_clipped_strings_are_marked_and_slices_rebuild_them(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, budget: int
) -> None:
    scenario = largest(emulator)[0]
    result = await get(mcp, real_tokens, {"scenario_id": scenario["id"], "max_tokens": budget})
    shown = result["scenario"]
    assert shown["id"] == scenario["id"] and result["clipped"], "the largest scenario does not fit"
    assert "field=path" in result["hint"]
    for note in result["clipped"]:
        original = lookup_path(scenario, note["path"])
        assert note["id"] == scenario["id"] and note["original_length"] == len(original)
        kept = note["returned_length"]
        assert lookup_path(shown, note["path"]).startswith(original[:kept])
        rest = await read_whole(mcp, real_tokens, scenario["id"], note["path"], kept, budget)
        assert original[:kept] + rest == original
    # Everything not clipped is exactly the original.
    clipped_paths = {note["path"] for note in result["clipped"]}
    for key, value in scenario.items():
        if not any(p == key or p.startswith(key + ".") for p in clipped_paths):
            assert shown[key] == value


async def test_every_scenario_fits_the_smallest_budget_and_what_is_left_out_reads_back(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    """At max_tokens=500 the largest scenarios come with strings clipped and, where needed, whole values left out
    behind a marker (listed in clipped with left_out); each left-out value reads back whole in slices."""
    for scenario in largest(emulator, 4):
        shown = await get(mcp, real_tokens, {"scenario_id": scenario["id"], "max_tokens": 500})
        assert shown["scenario"]["id"] == scenario["id"] and shown["clipped"]
        for note in shown["clipped"]:
            if note.get("left_out") is None:
                continue
            text, offset = "", 0
            while True:
                piece = await get(
                    mcp,
                    real_tokens,
                    {"scenario_id": scenario["id"], "field": note["path"], "offset": offset, "max_tokens": 2000},
                )
                text += piece["slice"]["text"]
                if piece["slice"]["next_offset"] is None:
                    break
                offset = piece["slice"]["next_offset"]
            assert len(text) == note["original_length"]
            assert json.loads(text) == lookup_path(scenario, note["path"])


async def test_every_field_left_out_reads_back_as_star(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    """A scenario with thousands of top-level fields shows only its id at max_tokens=500, with one note of path *;
    field="*" (as the note and the hint say) reads every field but id back, as compact JSON, in slices."""
    scenario = dict(min(emulator.snapshot().values(), key=lambda s: len(str(s))))
    scenario.update({f"extra_{index}": index for index in range(3000)})  # fields newer than this server
    emulator.put(scenario)
    shown = await get(mcp, real_tokens, {"scenario_id": scenario["id"], "max_tokens": 500})
    assert shown["scenario"] == {"id": scenario["id"]}
    [note] = shown["clipped"]
    assert note["path"] == "*" and note["left_out"] == "fields" and note["returned_length"] == 0
    text = await read_whole(mcp, real_tokens, scenario["id"], note["path"], note["returned_length"], 20000)
    assert len(text) == note["original_length"]
    assert json.loads(text) == {key: value for key, value in scenario.items() if key != "id"}


async def test_whole_string_from_offset_zero(mcp: Session, emulator: Emulator, real_tokens: RealTokens) -> None:
    scenario = largest(emulator)[0]
    statement = scenario["input_context"]["problem_statement"]
    text = await read_whole(mcp, real_tokens, scenario["id"], "input_context.problem_statement", 0, 20000)
    assert text == statement


async def test_archived_scenarios_can_be_read(mcp: Session, emulator: Emulator, real_tokens: RealTokens) -> None:
    archived = next(s for s in emulator.snapshot().values() if s.get("status") == "archived")
    result = await get(mcp, real_tokens, {"scenario_id": archived["id"], "max_tokens": 20000})
    assert result["scenario"]["status"] == "archived"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"scenario_id": ""}, "scenario_id"),
        ({"scenario_id": "   "}, "scenario_id"),
        ({"scenario_id": ".."}, "scenario_id"),
        ({"scenario_id": "x" * 300}, "scenario_id"),
        ({}, "scenario_id"),
        ({"scenario_id": "scn_missing"}, "404"),
        ({"scenario_id": "scn_missing", "max_tokens": 100}, "500"),
        ({"scenario_id": "scn_missing", "max_tokens": 10**6}, "20000"),
        ({"scenario_id": "scn_missing", "offset": -1}, "offset"),
    ],
)
async def test_bad_get_arguments_are_clear_errors(mcp: Session, arguments: dict[str, Any], expected: str) -> None:
    message = await mcp.error("get_scenario", arguments)
    assert expected in message and "Traceback" not in message


async def test_bad_slices_are_clear_errors(mcp: Session, emulator: Emulator) -> None:
    scenario = largest(emulator)[0]
    sid = scenario["id"]
    assert "does not exist" in await mcp.error("get_scenario", {"scenario_id": sid, "field": "no.such.path"})
    assert "not a string" in await mcp.error(
        "get_scenario", {"scenario_id": sid, "field": "scoring_contract.scoring_function_parameters.0.weight"}
    )
    length = len(scenario["input_context"]["problem_statement"])
    message = await mcp.error(
        "get_scenario", {"scenario_id": sid, "field": "input_context.problem_statement", "offset": length + 1}
    )
    assert f"0..{length}" in message


@pytest.mark.parametrize("budget", [1000, 4000])
async def test_a_megabytes_long_statement_is_clipped_from_an_estimate_and_fits(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, budget: int
) -> None:
    """A value too big to fit whole (more bytes than 256 x the budget) is not counted whole: clipping steers by
    the density of a sample, and the exact count of what is sent still decides. Random base64 is the costliest
    text to count; 3 MB of it with two long metadata values."""
    rng = random.Random(11)
    blob = base64.b64encode(rng.randbytes(2_250_000)).decode()
    scenario = dict(largest(emulator)[0], id="scn_megabytes")
    scenario["input_context"] = {**scenario["input_context"], "problem_statement": blob}
    scenario["metadata"] = {"notes": "plain words " * 20_000, "hash": blob[:100_000]}
    emulator.put(scenario)
    result = await get(mcp, real_tokens, {"scenario_id": "scn_megabytes", "max_tokens": budget})
    shown = result["scenario"]["input_context"]["problem_statement"]
    assert blob.startswith(shown.split("…")[0]) and len(shown) < len(blob)
    clipped = {clip["path"] for clip in result["clipped"]}
    assert "input_context.problem_statement" in clipped
    assert result["estimated_tokens"] <= budget
