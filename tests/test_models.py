"""Tricky scenarios survive list, get and update unchanged, through the MCP protocol against the emulator.

"Tricky": fields this code has never heard of at every nesting level, an unknown scorer type,
unknown enum values, missing optional fields, null next to absent, unicode (including control and
separator characters), numbers whose JSON type matters (1 vs 1.0, 2**53 + 1), and huge strings.
"Unchanged" is byte-for-byte equivalent JSON: the same keys, the same values, the same JSON types.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.upstream.models import ScenarioView, UnknownScorer, dump
from tests.support.common import Session

pytestmark = pytest.mark.anyio


def same_json(a: Any, b: Any) -> bool:
    """Byte-for-byte equivalent JSON: key order aside, the same text (1 and 1.0 kept apart)."""
    return json.dumps(a, sort_keys=True, ensure_ascii=False) == json.dumps(b, sort_keys=True, ensure_ascii=False)


FUTURE: dict[str, Any] = {
    "id": "scn_future_everywhere",
    "name": "Fix the flaky retry loop — «ünïcödé» 修复 🚀 \u202eevil\u202c",
    "input_context": {
        "problem_statement": "Line one\nline two\ttabbed \u2028 sep \x00 nul \x1b[31m ansi 👩‍👩‍👧 e\u0301",
        "additional_context": {"hints": ["a", None, 1, 1.0, {"deep": {"deeper": []}}], "empty": {}},
        "x_attachments": [{"name": "log.txt", "bytes": 12}],
    },
    "scoring_contract": {
        "scoring_function_parameters": [
            {
                "name": "tests",
                "weight": 0.5,
                "scorer": {
                    "type": "test_based_scorer",
                    "test_command": "pytest -q",
                    "test_files": [{"file_path": "t.py", "file_contents": "assert 1", "x_mode": "0644"}],
                    "x_parallel": True,
                },
                "x_timeout_sec": 30,
            },
            {
                "name": "judge",
                "weight": 0.25,
                "scorer": {"type": "llm_judge_scorer", "rubric": {"criteria": ["correct", "tidy"]}, "model": None},
            },
            {
                "name": "ast",
                "weight": 0.25,
                "scorer": {"type": "ast_grep_scorer", "pattern": "$X", "search_directory": "."},
            },
        ],
        "x_aggregation": "weighted_mean",
    },
    "environment": {
        "blueprint_id": None,
        "snapshot_id": "snp_123",
        "working_directory": "/home/user/ρεπο",
        "launch_parameters": {
            "resource_size_request": "XXX_LARGE",
            "architecture": "riscv64",
            "provisioning_tier": "spot",
            "keep_alive_time_seconds": 3600,
            "custom_cpu_cores": 2.5,
            "after_idle": {"idle_time_seconds": 60, "on_idle": "hibernate", "x_grace": 5},
            "lifecycle": {"resume_triggers": {"http": True, "x_cron": "0 * * * *"}, "x_policy": {}},
            "user_parameters": {"uid": 0, "username": "root", "x_groups": ["wheel"]},
            "gpu_request": {"count": 1, "kind": "h100"},
        },
        "x_region": "eu-west-1",
    },
    "metadata": {"team": "infra", "": "empty key", "emoji 🔑": "värde"},
    "status": "paused",
    "validation_type": "SIDEWAYS",
    "is_public": False,
    "reference_output": None,
    "required_environment_variables": [],
    "scorer_timeout_sec": 900,
    "difficulty": {"level": 3, "score": 0.30000000000000004, "big": 9007199254740993, "tiny": 1e-07, "one": 1.0},
    "x_labels": None,
}
MINIMAL: dict[str, Any] = {
    "id": "scn_minimal",
    "name": "minimal",
    "input_context": {"problem_statement": ""},
    "scoring_contract": {"scoring_function_parameters": []},
    "metadata": {},
    "status": "active",
}
NULLS: dict[str, Any] = {
    **MINIMAL,
    "id": "scn_nulls",
    "input_context": {"problem_statement": "p", "additional_context": None},
    "environment": {"launch_parameters": None, "blueprint_id": "bp_1", "snapshot_id": None},
    "reference_output": None,
    "validation_type": None,
    "required_secret_names": None,
    "scorer_timeout_sec": None,
}
HUGE_TEXT = "".join(f"{i:06d} ünïcödé line of a very long problem statement 🚀\n" for i in range(5000))
HUGE: dict[str, Any] = {
    **MINIMAL,
    "id": "scn_huge",
    "input_context": {"problem_statement": HUGE_TEXT, "x_note": "kept"},
    "reference_output": "diff --git a/x b/x\n" + "+" * 150_000,
}
TRICKY = [FUTURE, MINIMAL, NULLS]
"""Small enough to come back whole from get_scenario within the default cap."""
ACTIVE_FUTURE = {**FUTURE, "id": "scn_future_active", "status": "active"}
ENV_FUTURE = copy.deepcopy({**ACTIVE_FUTURE, "id": "scn_future_environment"})
# The emulator checks these two enums on update (the API documents closed lists); the unknown fields stay.
ENV_FUTURE["environment"]["launch_parameters"].update(resource_size_request="LARGE", architecture="arm64")


@pytest.fixture
def stored(emulator: Emulator) -> Emulator:
    for scenario in [*TRICKY, HUGE, ACTIVE_FUTURE, ENV_FUTURE]:
        emulator.put(scenario)
    return emulator


# --- the models alone -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", [*TRICKY, HUGE], ids=lambda s: s["id"])
def test_models_round_trip_losslessly(scenario: dict[str, Any]) -> None:
    original = copy.deepcopy(scenario)
    model = ScenarioView.model_validate(scenario)
    assert same_json(dump(model), original)
    assert scenario == original  # validation did not touch the input


def test_models_tolerate_the_unknown() -> None:
    model = ScenarioView.model_validate(FUTURE)
    scorers = [f.scorer for f in model.scoring_contract.scoring_function_parameters]
    assert isinstance(scorers[1], UnknownScorer) and scorers[1].type == "llm_judge_scorer"
    assert model.status == "paused" and model.validation_type == "SIDEWAYS"
    assert model.environment is not None and model.environment.launch_parameters is not None
    assert model.environment.launch_parameters.architecture == "riscv64"
    assert model.model_extra == {"difficulty": FUTURE["difficulty"], "x_labels": None}
    minimal = ScenarioView.model_validate({"id": "scn_only_an_id"})
    assert dump(minimal) == {"id": "scn_only_an_id"}


# --- through MCP: list, get, update -----------------------------------------------------------


@pytest.mark.parametrize("scenario", TRICKY, ids=lambda s: s["id"])
async def test_get_returns_the_scenario_unchanged(mcp: Session, stored: Emulator, scenario: dict[str, Any]) -> None:
    result = await mcp.ok("get_scenario", {"scenario_id": scenario["id"], "max_tokens": 20000})
    assert result["clipped"] == []
    assert same_json(result["scenario"], scenario)


async def test_list_returns_every_field_unchanged(mcp: Session, stored: Emulator) -> None:
    for scenario in (ACTIVE_FUTURE, MINIMAL, NULLS):
        page = await mcp.ok("list_scenarios", {"search": scenario["id"], "fields": ["*"], "max_tokens": 20000})
        matches = [s for s in page["scenarios"] if s["id"] == scenario["id"]]
        assert len(matches) == 1, page["scenarios"]
        assert "clipped" not in page
        assert same_json(matches[0], scenario)


async def test_list_summary_tolerates_the_unknown(mcp: Session, stored: Emulator) -> None:
    page = await mcp.ok("list_scenarios", {"search": ACTIVE_FUTURE["id"]})
    (summary,) = page["scenarios"]
    assert summary["validation_type"] == "SIDEWAYS"
    assert {"name": "judge", "type": "llm_judge_scorer"}.items() <= summary["scorers"][1].items()


async def test_huge_strings_are_clipped_then_read_back_exactly(mcp: Session, stored: Emulator) -> None:
    result = await mcp.ok("get_scenario", {"scenario_id": HUGE["id"], "max_tokens": 4000})
    paths = {c["path"]: c for c in result["clipped"]}
    assert set(paths) == {"input_context.problem_statement", "reference_output"}
    assert paths["input_context.problem_statement"]["original_length"] == len(HUGE_TEXT)
    assert result["scenario"]["input_context"]["x_note"] == "kept"
    text, offset = "", 0
    for _ in range(200):
        piece = await mcp.ok(
            "get_scenario",
            {
                "scenario_id": HUGE["id"],
                "field": "input_context.problem_statement",
                "offset": offset,
                "max_tokens": 20000,
            },
        )
        text += piece["slice"]["text"]
        if piece["slice"]["next_offset"] is None:
            break
        offset = piece["slice"]["next_offset"]
    assert text == HUGE_TEXT


def changed(scenario: dict[str, Any], **values: Any) -> dict[str, Any]:
    out = copy.deepcopy(scenario)
    out.update(values)
    return out


async def apply(mcp: Session, scenario_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    preview = await mcp.ok("update_scenario", {"scenario_id": scenario_id, "changes": changes})
    arguments = {"scenario_id": scenario_id, "changes": changes, "dry_run": False}
    result = await mcp.ok("update_scenario", {**arguments, "preview_token": preview["preview_token"]})
    assert result["applied"] is True
    assert result["upstream_body"] == preview["upstream_body"]
    return result


async def test_update_of_one_field_leaves_everything_else_untouched(mcp: Session, stored: Emulator) -> None:
    sid = ACTIVE_FUTURE["id"]
    result = await apply(mcp, sid, {"name": "renamed ✓"})
    assert result["upstream_body"] == {"name": "renamed ✓"}
    assert same_json(stored.get(sid), changed(ACTIVE_FUTURE, name="renamed ✓"))
    assert result["verified"] is True and result["mismatches"] == []


async def test_update_of_metadata_sends_the_whole_merged_map(mcp: Session, stored: Emulator) -> None:
    sid = ACTIVE_FUTURE["id"]
    result = await apply(mcp, sid, {"metadata": {"team": "platform", "new": "1"}})
    merged = {"team": "platform", "": "empty key", "emoji 🔑": "värde", "new": "1"}
    assert result["upstream_body"] == {"metadata": merged}
    assert same_json(stored.get(sid), changed(ACTIVE_FUTURE, metadata=merged))


async def test_update_of_the_environment_keeps_its_unknown_fields(mcp: Session, stored: Emulator) -> None:
    sid = ENV_FUTURE["id"]
    result = await apply(mcp, sid, {"environment": {"launch_parameters": {"keep_alive_time_seconds": 60}}})
    environment = copy.deepcopy(ENV_FUTURE["environment"])
    environment["launch_parameters"]["keep_alive_time_seconds"] = 60
    assert same_json(result["upstream_body"], {"environment_parameters": environment})
    assert same_json(stored.get(sid), changed(ENV_FUTURE, environment=environment))


async def test_update_with_nulls_and_absent_fields(mcp: Session, stored: Emulator) -> None:
    sid = NULLS["id"]
    result = await apply(mcp, sid, {"required_environment_variables": ["HOME"]})
    assert result["upstream_body"] == {"required_environment_variables": ["HOME"]}
    assert same_json(stored.get(sid), changed(NULLS, required_environment_variables=["HOME"]))


async def test_update_of_a_huge_scenario_keeps_the_huge_strings(mcp: Session, stored: Emulator) -> None:
    result = await apply(mcp, HUGE["id"], {"name": "huge, renamed"})
    assert result["upstream_body"] == {"name": "huge, renamed"}
    assert same_json(stored.get(HUGE["id"]), changed(HUGE, name="huge, renamed"))


async def test_dry_run_carries_unknown_scorer_fields_into_the_body(mcp: Session, stored: Emulator) -> None:
    sid = ACTIVE_FUTURE["id"]
    functions = copy.deepcopy(ACTIVE_FUTURE["scoring_contract"]["scoring_function_parameters"])
    functions[0]["weight"] = 0.25
    functions[2]["weight"] = 0.5
    preview = await mcp.ok(
        "update_scenario",
        {"scenario_id": sid, "changes": {"scoring_contract": {"scoring_function_parameters": functions}}},
    )
    sent = preview["upstream_body"]["scoring_contract"]
    assert same_json(sent["scoring_function_parameters"], functions)
    assert {entry["path"] for entry in preview["diff"]} == {
        "scoring_contract.scoring_function_parameters.0.weight",
        "scoring_contract.scoring_function_parameters.2.weight",
    }
    assert same_json(stored.get(sid), ACTIVE_FUTURE)  # a dry run writes nothing


async def test_a_new_unknown_scorer_type_is_still_refused(mcp: Session, stored: Emulator) -> None:
    functions = copy.deepcopy(ACTIVE_FUTURE["scoring_contract"]["scoring_function_parameters"])
    functions[2]["scorer"] = {"type": "bash_scrpt_scorer", "bash_script": "echo score=1"}  # a typo, not upstream's
    message = await mcp.error(
        "update_scenario",
        {
            "scenario_id": ACTIVE_FUTURE["id"],
            "changes": {"scoring_contract": {"scoring_function_parameters": functions}},
        },
    )
    assert "bash_scrpt_scorer" in message and "bash_script_scorer" in message
    assert stored.posts() == []
