"""update_scenario keeps the budget promise and gets agents right the first time (issue 11).

Through the real MCP client (both protocol generations) against the emulator: every preview and
apply result fits max_tokens by an independent tokenizer, whatever the size of the scenario or
the change, while the API always receives the complete new value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import ElicitResult, TextContent

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from tests.support.common import (
    RealTokens,
    Session,
    active_scenario,
    apply_update,
    error_text,
    make_settings,
    preview_update,
    small_scenario,
)

pytestmark = pytest.mark.anyio

WORDS = "the scheduler retries a failed job after a fixed delay and records each attempt in its log;\n"


def long_statement(chars: int) -> str:
    text = "".join(f"{index:05d} {WORDS}" for index in range(chars // (len(WORDS) + 6) + 1))
    return text[:chars]


def with_statement(emulator: Emulator, text: str) -> dict[str, Any]:
    scenario = active_scenario(emulator, small_scenario)
    scenario = dict(scenario, input_context={**scenario["input_context"], "problem_statement": text})
    emulator.put(scenario)
    return scenario


def assert_fits(result: Any, budget: int, real_tokens: RealTokens) -> None:
    """The text content (what a host counts) and structuredContent each fit the budget by both tokenizers."""
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert real_tokens.count(text.text) <= budget, (real_tokens.count(text.text), budget)
    assert real_tokens.json(result.structured_content) <= budget
    assert result.structured_content["estimated_tokens"] <= budget


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


@pytest.mark.parametrize("budget", [500, 1000, 4000, 20000])
@pytest.mark.parametrize("form", ["whole", "replace"])
async def test_one_word_edit_in_a_long_statement_fits_every_budget(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens, budget: int, form: str
) -> None:
    old = long_statement(57_487)
    scenario = with_statement(emulator, old)
    sid = scenario["id"]
    new = old.replace("fixed delay", "jittered delay", 1)
    statement: Any = (
        new
        if form == "whole"
        else {
            "replace": [
                {
                    "old": "00000 the scheduler retries a failed job after a fixed",
                    "new": "00000 the scheduler retries a failed job after a jittered",
                }
            ]
        }
    )
    changes = {"input_context": {"problem_statement": statement}}
    arguments = {"scenario_id": sid, "changes": changes, "max_tokens": budget}

    preview = await mcp.call("update_scenario", arguments)
    assert not preview.is_error, error_text(preview)
    assert_fits(preview, budget, real_tokens)
    shown = preview.structured_content
    assert list(shown)[:3] == ["preview_token", "expires_at", "hint"]
    assert shown["changed_fields"] == ["input_context"]
    assert all(len(s) < 2_000 for s in strings(shown)), "a long value was returned whole"
    entry = next(d for d in shown["diff"] if d["path"] == "input_context.problem_statement")
    assert entry["before_length"] == len(old) and entry["after_length"] == len(new)
    region = entry["regions"][0]
    assert "fixed" in region["before"] and "jittered" in region["after"]
    assert old[region["before_offset"] :].startswith(region["before"][:20])
    assert "upstream_body" not in shown and shown["upstream_body_bytes"] > len(old)

    applied = await mcp.call(
        "update_scenario", {**arguments, "dry_run": False, "preview_token": shown["preview_token"]}
    )
    assert not applied.is_error, error_text(applied)
    assert_fits(applied, budget, real_tokens)
    assert applied.structured_content["applied"] is True
    stored = emulator.get(sid)
    assert stored is not None and stored["input_context"]["problem_statement"] == new  # complete, never clipped


async def test_a_five_megabyte_change_fits_a_small_budget(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    scenario = with_statement(emulator, long_statement(2_000))
    new = long_statement(5_000_000)
    changes = {"input_context": {"problem_statement": new}, "metadata": {f"k{i}": "v" * 50 for i in range(400)}}
    arguments = {"scenario_id": scenario["id"], "changes": changes, "max_tokens": 1000}
    preview = await mcp.call("update_scenario", arguments)
    assert not preview.is_error, error_text(preview)
    assert_fits(preview, 1000, real_tokens)
    shown = preview.structured_content
    assert shown["diff_omitted"] > 0 and "upstream_body" not in shown
    applied = await mcp.call(
        "update_scenario", {**arguments, "dry_run": False, "preview_token": shown["preview_token"]}
    )
    assert not applied.is_error, error_text(applied)
    assert_fits(applied, 1000, real_tokens)
    stored = emulator.get(scenario["id"])
    assert stored is not None and stored["input_context"]["problem_statement"] == new
    assert stored["metadata"]["k399"] == "v" * 50


async def test_a_small_change_still_shows_the_body(mcp: Session, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    preview = await preview_update(mcp, scenario["id"], {"name": "short-name"})
    assert preview["upstream_body"] == {"name": "short-name"}
    assert preview["upstream_body_bytes"] == len(json.dumps({"name": "short-name"}, separators=(",", ":")))


async def test_the_preview_token_is_short(mcp: Session, emulator: Emulator, real_tokens: RealTokens) -> None:
    scenario = active_scenario(emulator, small_scenario)
    for index in range(40):
        token = (await preview_update(mcp, scenario["id"], {"metadata": {"n": str(index)}}))["preview_token"]
        assert real_tokens.count(token) <= 40, token


async def test_a_nested_typo_is_refused_with_a_suggestion(mcp: Session, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    message = await mcp.error(
        "update_scenario", {"scenario_id": scenario["id"], "changes": {"input_context": {"problem_statment": "x"}}}
    )
    assert "input_context.problem_statment" in message and '"problem_statement"' in message
    assert "Nothing was written" in message
    assert emulator.posts() == []


async def test_an_unknown_field_the_scenario_holds_stays_editable(mcp: Session, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    functions = scenario["scoring_contract"]["scoring_function_parameters"]
    functions[0] = {**functions[0], "added_later": {"kept": True}}  # a field newer than this server
    emulator.put(scenario)
    changes = {
        "scoring_contract": {"scoring_function_parameters": {functions[0]["name"]: {"added_later": {"kept": False}}}}
    }
    preview = await preview_update(mcp, scenario["id"], changes)
    assert [d["path"] for d in preview["diff"]] == ["scoring_contract.scoring_function_parameters.0.added_later.kept"]
    assert not (await apply_update(mcp, scenario["id"], changes, preview["preview_token"])).is_error
    stored = emulator.get(scenario["id"])
    assert stored is not None
    assert stored["scoring_contract"]["scoring_function_parameters"][0]["added_later"] == {"kept": False}


async def test_a_dotted_key_is_shorthand_for_the_nested_form(mcp: Session, emulator: Emulator) -> None:
    scenario = active_scenario(emulator, small_scenario)
    preview = await preview_update(mcp, scenario["id"], {"metadata.owner": "team-x"})
    assert preview["diff"] == [
        {"path": "metadata.owner", "before": scenario["metadata"].get("owner"), "after": "team-x"}
    ]
    assert preview["upstream_body"]["metadata"] == {**scenario["metadata"], "owner": "team-x"}


async def test_one_scorer_is_edited_by_name(mcp: Session, emulator: Emulator) -> None:
    scenario = active_scenario(
        emulator, lambda s: small_scenario(s) and len(s["scoring_contract"]["scoring_function_parameters"]) >= 3
    )
    functions = scenario["scoring_contract"]["scoring_function_parameters"]
    functions[2] = {**functions[2], "added_later": {"kept": True}}  # a field this server does not know
    emulator.put(scenario)
    target = functions[1]["name"]
    changes = {"scoring_contract": {"scoring_function_parameters": {target: {"weight": 0.5}}}}
    preview = await preview_update(mcp, scenario["id"], changes)
    assert [d["path"] for d in preview["diff"]] == ["scoring_contract.scoring_function_parameters.1.weight"]
    assert not (await apply_update(mcp, scenario["id"], changes, preview["preview_token"])).is_error
    stored = emulator.get(scenario["id"])
    assert stored is not None
    expected = [dict(f) for f in functions]
    expected[1]["weight"] = 0.5
    assert stored["scoring_contract"]["scoring_function_parameters"] == expected


async def test_a_replace_edit_that_does_not_match_once_writes_nothing(mcp: Session, emulator: Emulator) -> None:
    scenario = with_statement(emulator, long_statement(5_000))
    edit = {"input_context": {"problem_statement": {"replace": [{"old": "the scheduler", "new": "a scheduler"}]}}}
    message = await mcp.error("update_scenario", {"scenario_id": scenario["id"], "changes": edit})
    assert "occurs" in message and "times" in message and "Nothing was written" in message
    assert emulator.posts() == []


async def test_send_exactly_one_of_changes_or_restore(mcp: Session, emulator: Emulator) -> None:
    sid = active_scenario(emulator, small_scenario)["id"]
    neither = await mcp.error("update_scenario", {"scenario_id": sid})
    both = await mcp.error("update_scenario", {"scenario_id": sid, "changes": {"name": "x"}, "restore": "j_x"})
    assert neither == both and "exactly one of changes" in neither
    unknown = await mcp.error("update_scenario", {"scenario_id": sid, "restore": "j_nope"})
    assert "No journal entry" in unknown


async def test_an_api_refusal_says_to_fix_changes_not_to_retry(tmp_path: Path, emulator: Emulator) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(400, json={"message": "name must not contain spaces"})
        return emulator.handle(request)

    scenario = active_scenario(emulator, small_scenario)
    server = build_server(make_settings(tmp_path), transport=httpx.MockTransport(handler))
    async with Client(server) as client:
        session = Session(client, "modern")
        preview = await preview_update(session, scenario["id"], {"name": "with space"})
        result = await apply_update(session, scenario["id"], {"name": "with space"}, preview["preview_token"])
    message = error_text(result)
    assert result.is_error and "nothing was written" in message
    assert '"name must not contain spaces"' in message and "Fix changes" in message
    assert "still valid" not in message and "apply again" not in message
    assert emulator.get(scenario["id"]) == scenario


@pytest.mark.parametrize(("mode", "gets"), [("legacy", 1), ("auto", 2)])
async def test_a_confirmed_apply_reads_once_per_round_under_the_lock(
    tmp_path: Path, emulator: Emulator, mode: str, gets: int
) -> None:
    """Legacy asks mid-call: one read. 2026-07-28 asks by ending the round: one read per round, the last right
    before the write (before this change: 2 and 3)."""
    shown: list[str] = []

    async def person(context: Any, params: Any) -> ElicitResult:
        shown.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    scenario = active_scenario(emulator, small_scenario)
    sid = scenario["id"]
    server = build_server(make_settings(tmp_path), transport=emulator.transport())
    async with Client(server, mode=mode, elicitation_callback=person) as client:
        session = Session(client, mode)
        preview = await preview_update(session, sid, {"name": "confirmed"})
        before = len(emulator.requests)
        result = await apply_update(session, sid, {"name": "confirmed"}, preview["preview_token"])
    assert not result.is_error, error_text(result)
    reads = [r for r in emulator.requests[before:] if r.method == "GET"]
    assert len(reads) == gets
    assert len(shown) == 1 and '- name: "' in shown[0]


async def test_after_a_decline_the_agent_is_told_not_to_ask_again(tmp_path: Path, emulator: Emulator) -> None:
    async def person(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="decline")

    sid = active_scenario(emulator, small_scenario)["id"]
    server = build_server(make_settings(tmp_path), transport=emulator.transport())
    async with Client(server, mode="legacy", elicitation_callback=person) as client:
        session = Session(client, "legacy")
        preview = await preview_update(session, sid, {"name": "declined"})
        result = await apply_update(session, sid, {"name": "declined"}, preview["preview_token"])
    message = error_text(result)
    assert "nothing was written" in message and "unless the person asks" in message
    assert "retry" not in message and emulator.posts() == []


async def test_the_confirmation_of_a_long_edit_is_bounded(tmp_path: Path, emulator: Emulator) -> None:
    shown: list[str] = []

    async def person(context: Any, params: Any) -> ElicitResult:
        shown.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    old = long_statement(200_000)
    scenario = with_statement(emulator, old)
    lines = old.split("\n")
    new = "\n".join(line.replace("fixed", "jittered") if i % 50 == 0 else line for i, line in enumerate(lines))
    changes = {"input_context": {"problem_statement": new}}
    server = build_server(make_settings(tmp_path), transport=emulator.transport())
    async with Client(server, mode="legacy", elicitation_callback=person) as client:
        session = Session(client, "legacy")
        preview = await session.ok("update_scenario", {"scenario_id": scenario["id"], "changes": changes})
        await apply_update(session, scenario["id"], changes, preview["preview_token"])
    assert len(shown) == 1 and len(shown[0]) < 4_000
    assert "input_context.problem_statement: text of 200,000 -> " in shown[0] and "more changed regions" in shown[0]


async def test_adding_and_removing_scorers_shows_them_by_name_even_at_the_smallest_budget(
    mcp: Session, emulator: Emulator, real_tokens: RealTokens
) -> None:
    scenario = active_scenario(
        emulator, lambda s: small_scenario(s) and len(s["scoring_contract"]["scoring_function_parameters"]) >= 2
    )
    functions = scenario["scoring_contract"]["scoring_function_parameters"]
    removed, kept = functions[0]["name"], functions[1]["name"]
    script = "#!/usr/bin/env bash\n" + "".join(f"echo step {i} of a long scorer script\n" for i in range(300))
    added = {"scorer": {"type": "bash_script_scorer", "bash_script": script}, "weight": 0.25}
    changes = {"scoring_contract": {"scoring_function_parameters": {removed: None, "e2e": added}}}
    for budget in (500, 4000):
        result = await mcp.call(
            "update_scenario", {"scenario_id": scenario["id"], "changes": changes, "max_tokens": budget}
        )
        assert not result.is_error, error_text(result)
        assert_fits(result, budget, real_tokens)
        shown = result.structured_content
        paths = [d["path"] for d in shown["diff"]]
        base = "scoring_contract.scoring_function_parameters"
        assert f"{base}.{removed}" in paths and f"{base}.e2e" in paths, paths
        assert not any(p == base for p in paths)  # never the whole list as one entry
        assert f"{base}.{kept}" not in paths  # an untouched scorer is not in the diff
        assert shown.get("diff_omitted", 0) == 0


def test_the_confirmation_summary_never_exceeds_its_cap() -> None:
    from runloop_scenarios_mcp.services.contracts import DiffEntry
    from runloop_scenarios_mcp.services.update.diff_view import CONFIRM_MAX_CHARS, confirmation_text

    long = "x" * 1_000
    entries = [DiffEntry(path=f"metadata.{'k' * 300}{i}", before=long, after=long + "y") for i in range(40)]
    text = confirmation_text("scn_1", entries, ["w" * 500] * 5)
    assert len(text) <= CONFIRM_MAX_CHARS
    assert text.startswith("Apply this change to Runloop scenario scn_1?")
    assert text.endswith("more lines (the preview shows every change)")


async def test_a_field_holding_the_api_key_is_never_written_back_redacted(mcp: Session, emulator: Emulator) -> None:
    from tests.support.common import CANARY_KEY

    scenario = active_scenario(emulator, small_scenario)
    scenario = dict(scenario, metadata={**scenario["metadata"], "deploy_token": CANARY_KEY})
    emulator.put(scenario)
    message = await mcp.error("update_scenario", {"scenario_id": scenario["id"], "changes": {"metadata": {"x": "y"}}})
    assert "metadata holds a secret value" in message and "Nothing was written" in message
    assert CANARY_KEY not in message
    # other fields stay editable, and the secret is left as it was
    preview = await preview_update(mcp, scenario["id"], {"name": "still-editable"})
    assert not (await apply_update(mcp, scenario["id"], {"name": "still-editable"}, preview["preview_token"])).is_error
    stored = emulator.get(scenario["id"])
    assert stored is not None and stored["metadata"]["deploy_token"] == CANARY_KEY
