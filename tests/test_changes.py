"""expand_changes: the agent's changes as a plain merge patch (pure-function tests).

Unknown keys refused with a did-you-mean unless the scenario holds them, dotted top-level
shorthand, scorers patched by name, in-place text edits, bounded nesting, and arguments never
mutated. Every case also checks that the result shares no container with its inputs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runloop_scenarios_mcp.emulator.data import generate_dataset
from runloop_scenarios_mcp.errors import InvalidArgument, InvalidChanges
from runloop_scenarios_mcp.services.merge_patch import merge_patch
from runloop_scenarios_mcp.services.update.changes import MAX_DEPTH, expand_changes

STATEMENT = (
    "# cli: retries sleep far too long\n\n"
    "In `src/cli/retry.py`, the backoff doubles twice per attempt.\n"
    "Steps to reproduce:\n\n    run the sync command against a flaky server\n\n"
    "Expected: the delay doubles once per attempt.\n"
)
SCRIPT = "#!/bin/bash\nset -e\nmake test\necho score=1.0\n"


def scenario() -> dict[str, Any]:
    """A realistic scenario, with fields this server does not know at three depths."""
    return {
        "id": "scn_2f8k3j4h5g6f7d8s9a0p1o2i",
        "name": "fix-retry-backoff",
        "input_context": {
            "problem_statement": STATEMENT,
            "additional_context": {"repository": "https://github.com/acme/cli", "replace": "kept as data"},
        },
        "scoring_contract": {
            "scoring_function_parameters": [
                {
                    "name": "tests",
                    "scorer": {
                        "type": "test_based_scorer",
                        "test_command": "pytest -q tests/test_retry.py",
                        "test_files": [{"file_path": "tests/test_retry.py", "file_contents": "def test_x(): ..."}],
                        "sandbox_profile": "strict",
                    },
                    "weight": 0.6,
                    "x_weight_source": "auto",
                },
                {"name": "lint", "scorer": {"type": "command_scorer", "command": "ruff check ."}, "weight": 0.2},
                {
                    "name": "judge",
                    "scorer": {
                        "type": "custom_scorer",
                        "custom_scorer_type": "llm_judge",
                        "scorer_params": {"rubric": "strict", "model": {"name": "m1"}},
                    },
                    "weight": 0.1,
                },
                {"name": "script", "scorer": {"type": "bash_script_scorer", "bash_script": SCRIPT}, "weight": 0.1},
            ]
        },
        "environment": {
            "blueprint_id": "bpt_123",
            "launch_parameters": {"resource_size_request": "SMALL", "gpu_request": {"count": 1, "model": "l4"}},
            "working_directory": "/home/user/cli",
        },
        "metadata": {"team": "infra", "owner": "ana", "ci.stage": "nightly"},
        "status": "active",
        "reference_output": "diff --git a/src/cli/retry.py b/src/cli/retry.py\n-    delay *= 4\n+    delay *= 2\n",
        "required_secret_names": ["GITHUB_TOKEN"],
        "scorer_timeout_sec": 900,
        "validation_type": "FORWARD",
        "difficulty": {"level": "hard", "estimated_minutes": 30},
    }


def _containers(value: Any) -> set[int]:
    found: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.add(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            found.add(id(item))
            stack.extend(item)
    return found


def expand(changes: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """expand_changes, checking that neither argument changes and the result shares no container with them."""
    current = scenario() if current is None else current
    before = (copy.deepcopy(current), copy.deepcopy(changes))
    try:
        result = expand_changes(current, changes)
    finally:
        assert (current, changes) == before, "expand_changes mutated its arguments"
    assert not _containers(result) & (_containers(current) | _containers(changes))
    return result


def refused(changes: dict[str, Any], current: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidChanges) as caught:
        expand(changes, current)
    message = str(caught.value)
    assert message.endswith("Nothing was written."), message
    assert len(message) < 400, message
    return message


def scorers(patch: Any) -> dict[str, Any]:
    return {"scoring_contract": {"scoring_function_parameters": patch}}


def functions(result: dict[str, Any]) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = result["scoring_contract"]["scoring_function_parameters"]
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_invalid_changes_is_an_invalid_argument() -> None:
    assert issubclass(InvalidChanges, InvalidArgument)


# --- plain merge-patch content passes through --------------------------------------------------

PASS_THROUGH: list[dict[str, Any]] = [
    {"name": "new-name"},
    {"metadata": {"owner": None, "reviewer": "bo"}},
    {"metadata": {"a.b": "x"}},  # a metadata key may contain dots: not shorthand
    {"metadata": None},
    {"reference_output": None, "required_secret_names": [], "scorer_timeout_sec": 60},
    {"input_context": {"additional_context": {"language": "python", "files": ["a.py"]}}},
    {"input_context": {"additional_context": {"replace": [{"old": "a", "new": "b"}]}}},  # a dict: a plain merge
    {"environment": {"launch_parameters": {"resource_size_request": "LARGE", "after_idle": {"idle_time_seconds": 60}}}},
    {"environment": None},
    {"difficulty": {"level": "easy"}},  # top-level field the server does not know, held by the scenario
    {"environment": {"launch_parameters": {"gpu_request": {"count": 2}}}},  # nested unknown field, held
    {"scoring_contract": {"scoring_function_parameters": []}},
    {"id": "scn_other", "status": "archived", "is_public": True},  # read-only: plan_update refuses these
    {"environment_parameters": {"blueprint_id": "bpt_x"}},  # plan_update says to use environment
]


@pytest.mark.parametrize("changes", PASS_THROUGH, ids=range(len(PASS_THROUGH)))
def test_plain_merge_patch_passes_through(changes: dict[str, Any]) -> None:
    assert expand(changes) == changes


def test_array_replaces_the_whole_list_and_may_carry_fields_the_scenario_holds() -> None:
    new = [
        {
            "name": "only",
            "scorer": {"type": "test_based_scorer", "test_command": "pytest", "sandbox_profile": "off"},
            "weight": 1.0,
            "x_weight_source": "manual",
        }
    ]
    assert expand(scorers(new)) == scorers(new)


def test_a_whole_scenario_sent_back_is_accepted_as_is() -> None:
    current = scenario()
    assert expand(copy.deepcopy(current), current) == current


def test_generated_scenarios_sent_back_are_accepted() -> None:
    """Every scenario of the emulator's data set (future fields included) can be echoed back field by field."""
    for current in generate_dataset(seed=3, count=40):
        for key, value in current.items():
            assert expand({key: copy.deepcopy(value)}, current) == {key: value}


# --- unknown keys -----------------------------------------------------------------------------

REFUSED: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"input_context": {"problem_statment": "x"}},
        ["input_context.problem_statment", 'did you mean "problem_statement"?'],
    ),
    (
        {"environment": {"launch_parameters": {"resource_size": "LARGE"}}},
        ["environment.launch_parameters.resource_size", 'did you mean "resource_size_request"?'],
    ),
    (
        {"environment": {"launch_parameters": {"lifecycle": {"after_idl": {"on_idle": "suspend"}}}}},
        ["environment.launch_parameters.lifecycle.after_idl", 'did you mean "after_idle"?'],
    ),
    (
        {"environment": {"launch_parameters": {"user_parameters": {"usrname": "u"}}}},
        ['did you mean "username"?'],
    ),
    ({"input_context": {"zzz": 1}}, ["input_context.zzz", "problem_statement, additional_context"]),
    (
        scorers({"tests": {"scorer": {"test_comand": "pytest"}}}),
        ["scoring_contract.scoring_function_parameters.tests.scorer.test_comand", 'did you mean "test_command"?'],
    ),
    (scorers({"tests": {"wieght": 0.5}}), ['did you mean "weight"?']),
    (
        scorers({"lint": {"scorer": {"python_script": "print(1)"}}}),  # known keys follow the scorer's type
        ["lint.scorer.python_script", "type, command"],
    ),
    (
        scorers({"lint": {"scorer": {"type": "python_script_scorer", "python_scrip": "print(1)"}}}),
        ['did you mean "python_script"?'],  # ... the merged type
    ),
    (
        scorers([{"name": "a", "scorer": {"type": "command_scorer", "comand": "make"}, "weight": 1}]),
        ["scoring_function_parameters.0.scorer.comand", 'did you mean "command"?'],
    ),
    (
        scorers(
            [{"name": "a", "scorer": {"type": "test_based_scorer", "test_files": [{"file_pth": "t.py"}]}, "weight": 1}]
        ),
        ["scorer.test_files.0.file_pth", 'did you mean "file_path"?'],
    ),
    (scorers([{"name": "a", "scorer": {"type": "command_scorer"}, "weigth": 1}]), ['did you mean "weight"?']),
    ({"nmae": "x"}, ['nmae is an unknown field; did you mean "name"?']),
    ({"prebuilt_id": "pre_1"}, ["unknown field", "update_scenario can change: name, input_context,"]),
    ({"scoring_contract": {"scoring_functions": []}}, ['did you mean "scoring_function_parameters"?']),
    # dotted top-level keys
    ({"metdata.owner": "x"}, ['"metdata.owner"', 'did you mean "metadata"?']),
    ({"metadata": {"owner": "a"}, "metadata.owner": "b"}, ["send it once", '{"metadata": {"owner": "b"}}']),
    ({"metadata": None, "metadata.owner": "b"}, ["send it once"]),
    (
        {"scoring_contract": {"scoring_function_parameters": []}, "scoring_contract.scoring_function_parameters.a": {}},
        ["send it once"],
    ),
    ({"metadata.a.b": "x"}, ["ambiguous", 'send {"metadata": {"a.b": "x"}} instead']),
    (
        {"scoring_contract.scoring_function_parameters.0.weight": 0.6},
        ['send {"scoring_contract": {"scoring_function_parameters": {"tests": {"weight": 0.6}}}} instead'],
    ),
    (
        {"scoring_contract.scoring_function_parameters.9.weight": 0.6},
        ['{"scoring_contract": {"scoring_function_parameters": {"<scorer name>": {"weight": 0.6}}}}'],
    ),
    ({"required_secret_names.0": "X"}, ["required_secret_names is a list", "complete new list"]),
    ({"name.first": "x"}, ['name is not an object; send {"name": "<new value>"} instead']),
    ({"metadata.": "x"}, ["empty segment", '{"metadata": "x"}']),
    ({"a.b.c.d.e.f.g.h.i.j": 1}, ["too many dots"]),
    ({"environment_parameters.blueprint_id": "bpt_1"}, ["use environment"]),
    # scorers by name
    (scorers({"test": {"weight": 0.5}}), ['no scorer is named "test"; did you mean "tests"?', "tests, lint, judge"]),
    (scorers({"test": None}), ['no scorer is named "test"', 'did you mean "tests"?']),
    (
        scorers({"e2e": {"scorer": {"type": "command_scorer", "command": "make e2e"}}}),
        [
            "a new scorer needs weight",
            '{"e2e": {"scorer": {"type": "command_scorer", "command": "make e2e"}, "weight": 0.25}}',
        ],
    ),
    (scorers({"e2e": {"scorer": {"command": "x"}, "weight": 0.1}}), ["needs scorer.type"]),
    (scorers({"e2e": {"scorer": None, "weight": 0.1}}), ["needs scorer (an object with a type)"]),
    (
        scorers({"e2e": {"scorer": {"type": "python_script_scorer"}}}),
        ['{"e2e": {"scorer": {"type": "python_script_scorer", "python_script": "print(1.0)"}, "weight": 0.25}}'],
    ),
    (scorers({"e2e": {"name": "other", "scorer": {"type": "command_scorer"}, "weight": 1}}), ["named by its key"]),
    (scorers({"tests": 0.5}), ["give an object"]),
    (scorers({"tests": [1]}), ["give an object"]),
    # replace edits
    ({"name": {"replace": [{"old": "nope", "new": "x"}]}}, ["name.replace[0]", "occurs 0 times"]),
    ({"name": {"replace": [{"old": "r", "new": "x"}]}}, ["name.replace[0]", "occurs 2 times", "exactly once"]),
    ({"name": {"replace": [{"old": "FIX", "new": "x"}]}}, ["occurs 0 times", "ignoring case"]),
    (
        {"input_context": {"problem_statement": {"replace": [{"old": "doubles twice per attempt. Steps", "new": ""}]}}},
        ["occurs 0 times", "different whitespace"],
    ),
    (
        {"name": {"replace": [{"old": "fix", "new": "mend"}, {"old": "fix", "new": "x"}]}},
        ["name.replace[1]", "occurs 0 times", "after the previous edits"],
    ),
    ({"scorer_timeout_sec": {"replace": [{"old": "9", "new": "1"}]}}, ["needs existing text", "is a number"]),
    ({"required_secret_names": {"replace": [{"old": "G", "new": "g"}]}}, ["is a list"]),
    ({"environment": {"snapshot_id": {"replace": [{"old": "a", "new": "b"}]}}}, ["is absent"]),
    ({"metadata": {"new_key": {"replace": [{"old": "a", "new": "b"}]}}}, ["metadata.new_key", "is absent"]),
    ({"name": {"replace": []}}, ["name.replace is empty"]),
    ({"name": {"replace": ["fix"]}}, ["name.replace[0]", "must be an object"]),
    ({"name": {"replace": [{"old": "fix", "new": "x", "count": 2}]}}, ["unexpected key count", 'exactly {"old"']),
    ({"name": {"replace": [{"old": "", "new": "x"}]}}, ["old must be a non-empty string"]),
    ({"name": {"replace": [{"old": "fix"}]}}, ["new must be a string"]),
    ({"name": {"replace": [{"old": "fix", "new": None}]}}, ["new must be a string"]),
    ({"name": {"replace": [{"old": "fix", "new": "x"}], "all": True}}, ["with no other key"]),
    (
        scorers(
            {"e2e": {"scorer": {"type": "bash_script_scorer", "bash_script": {"replace": [{"old": "a", "new": ""}]}}}}
        ),
        ["e2e.scorer.bash_script", "needs existing text"],
    ),
    (
        scorers({"script": {"scorer": {"bash_script": {"replace": [{"old": "echo", "new": "printf"}, {"old": "x"}]}}}}),
        ["script.scorer.bash_script.replace[1]", "new must be a string"],
    ),
]


@pytest.mark.parametrize(("changes", "expected"), REFUSED, ids=range(len(REFUSED)))
def test_refused_with_an_actionable_message(changes: dict[str, Any], expected: list[str]) -> None:
    message = refused(changes)
    for part in expected:
        assert part in message, message


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    message = refused({"environment": {"qqqq": 1}})
    assert "blueprint_id, snapshot_id, launch_parameters, working_directory" in message
    assert "did you mean" not in message


def test_keys_of_a_new_object_are_checked_where_the_scenario_has_none() -> None:
    current = scenario()
    del current["environment"]
    refused({"environment": {"launch_parameters": {"gpu_request": {"count": 1}}}}, current)  # held no more
    message = refused({"environment": {"blueprint": "bpt_1"}}, current)
    assert 'did you mean "blueprint_id"?' in message


def test_free_form_maps_take_any_key() -> None:
    changes = {
        "metadata": {"anything goes": "x", "a.b.c": "y"},
        "input_context": {"additional_context": {"whatever": {"deep": [1, {"x": None}]}}},
        **scorers({"judge": {"scorer": {"scorer_params": {"new_param": {"nested": True}}}}}),
    }
    result = expand(changes)
    assert result["metadata"] == changes["metadata"]
    assert result["input_context"] == changes["input_context"]
    assert functions(result)[2]["scorer"]["scorer_params"] == {
        "rubric": "strict",
        "model": {"name": "m1"},
        "new_param": {"nested": True},
    }


def test_an_unknown_scorer_type_takes_any_key() -> None:
    current = scenario()
    functions(current)[1]["scorer"] = {"type": "gpu_benchmark_scorer", "suite": "a"}
    result = expand(scorers({"lint": {"scorer": {"suite": "b", "threshold": 2}}}), current)
    assert functions(result)[1]["scorer"] == {"type": "gpu_benchmark_scorer", "suite": "b", "threshold": 2}


def test_messages_stay_short_whatever_the_key() -> None:
    huge = "k" * 200_000
    for changes in (
        {"input_context": {huge: 1}},
        {huge: 1},
        {f"metadata.{huge}.x": "v"},
        scorers({huge: {"weight": 1}}),
        scorers({huge: {"scorer": {"type": "command_scorer"}}}),
        {"name": {"replace": [{"old": huge, "new": ""}]}},
        {"metadata": {"owner": "a"}, "metadata.owner": huge},
        {"environment": {"launch_parameters": {"\ud800\x00\u2028": 1}}},
    ):
        message = refused(changes)
        message.encode("utf-8")  # no lone surrogate


# --- dotted top-level keys ----------------------------------------------------------------------

DOTTED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"metadata.owner": "bo"}, {"metadata": {"owner": "bo"}}),
    ({"metadata.owner": None}, {"metadata": {"owner": None}}),
    ({"input_context.problem_statement": "new"}, {"input_context": {"problem_statement": "new"}}),
    (
        {"metadata": {"team": "core"}, "metadata.owner": "bo", "name": "n"},
        {"metadata": {"team": "core", "owner": "bo"}, "name": "n"},
    ),
    (
        {"environment.launch_parameters.resource_size_request": "LARGE", "environment.working_directory": "/w"},
        {"environment": {"launch_parameters": {"resource_size_request": "LARGE"}, "working_directory": "/w"}},
    ),
    ({"difficulty.level": "easy"}, {"difficulty": {"level": "easy"}}),  # a field the scenario holds
]


@pytest.mark.parametrize(("changes", "expected"), DOTTED, ids=range(len(DOTTED)))
def test_dotted_top_level_keys_are_shorthand(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    assert expand(changes) == expected


def test_dotted_key_into_a_metadata_key_with_a_dot_is_refused() -> None:
    message = refused({"metadata.ci.stage": "weekly"})
    assert 'send {"metadata": {"ci.stage": "weekly"}} instead' in message


def test_dotted_shorthand_reaches_scorers_by_name() -> None:
    result = expand({"scoring_contract.scoring_function_parameters.lint.weight": 0.3})
    assert [f["weight"] for f in functions(result)] == [0.6, 0.3, 0.1, 0.1]


def test_dotted_key_the_scenario_holds_literally() -> None:
    current = scenario()
    current["x.labels"] = ["flaky"]
    assert expand({"x.labels": ["flaky"]}, current) == {"x.labels": ["flaky"]}  # sent back unchanged
    assert expand({"x.labels": ["db"]}, current) == {"x.labels": ["db"]}  # no other reading: plan_update decides
    assert "literally" in refused({"x.labels.0": "db"}, current)
    current["metadata.owner"] = "bo"
    assert "literally" in refused({"metadata.owner": "x"}, current)  # a path too: ambiguous


def test_dotted_value_too_long_to_show_is_a_placeholder() -> None:
    message = refused({"metadata": {"owner": "a"}, "metadata.owner": "x" * 5000})
    assert '{"metadata": {"owner": <your value>}}' in message


# --- scorers by name ----------------------------------------------------------------------------


def test_patch_by_name_changes_only_that_scorer() -> None:
    current = scenario()
    result = expand(scorers({"tests": {"weight": 0.5}}), current)
    after = functions(result)
    assert after[0] == {**functions(current)[0], "weight": 0.5}  # its unknown fields kept
    assert after[1:] == functions(current)[1:]
    assert [f["name"] for f in after] == ["tests", "lint", "judge", "script"]


def test_nested_scorer_object_merges() -> None:
    current = scenario()
    result = expand(scorers({"tests": {"scorer": {"test_command": "pytest -x", "sandbox_profile": None}}}), current)
    scorer = functions(result)[0]["scorer"]
    assert scorer == {
        "type": "test_based_scorer",
        "test_command": "pytest -x",
        "test_files": functions(current)[0]["scorer"]["test_files"],
    }


def test_null_removes_a_scorer_and_keeps_the_order_of_the_rest() -> None:
    result = expand(scorers({"lint": None, "judge": None}))
    assert [f["name"] for f in functions(result)] == ["tests", "script"]
    assert functions(result) == [functions(scenario())[0], functions(scenario())[3]]


def test_a_new_complete_scorer_is_added_at_the_end() -> None:
    new = {"scorer": {"type": "command_scorer", "command": "make e2e"}, "weight": 0.1}
    result = expand(scorers({"e2e": new, "lint": {"weight": 0.1}, "more": {**new, "name": "more"}}))
    after = functions(result)
    assert [f["name"] for f in after] == ["tests", "lint", "judge", "script", "e2e", "more"]
    assert after[4] == {"name": "e2e", **new}
    assert after[1]["weight"] == 0.1


def test_a_new_scorer_drops_nulls_as_a_merge_patch_does() -> None:
    new = {"scorer": {"type": "command_scorer", "command": None}, "weight": 0.1}
    assert functions(expand(scorers({"e2e": new})))[-1] == {
        "name": "e2e",
        "scorer": {"type": "command_scorer"},
        "weight": 0.1,
    }
    # a null under a key no scorer knows is still an unknown key (a typo would otherwise pass silently)
    assert "e2e.scorer.comand" in refused(
        scorers({"e2e": {**new, "scorer": {"type": "command_scorer", "comand": None}}})
    )


def test_scorers_by_name_where_the_scenario_has_none() -> None:
    current = scenario()
    del current["scoring_contract"]
    new = {"scorer": {"type": "command_scorer", "command": "make"}, "weight": 1}
    assert functions(expand(scorers({"only": new}), current)) == [{"name": "only", **new}]
    assert "The scenario has no scorers" in refused(scorers({"only": {"weight": 1}}), current)


def test_two_scorers_with_one_name_cannot_be_patched_by_that_name() -> None:
    current = scenario()
    functions(current)[1]["name"] = "tests"
    message = refused(scorers({"tests": {"weight": 0.5}}), current)
    assert '2 scorers are named "tests"' in message and "whole list as an array" in message
    # other names still work, and both namesakes are kept
    assert [f["name"] for f in functions(expand(scorers({"judge": None}), current))] == ["tests", "tests", "script"]


def test_weights_are_not_validated_here() -> None:
    assert functions(expand(scorers({"tests": {"weight": -3}})))[0]["weight"] == -3


def test_scorer_type_change_by_name_merges() -> None:
    result = expand(
        scorers({"lint": {"scorer": {"type": "python_script_scorer", "python_script": "p", "command": None}}})
    )
    assert functions(result)[1]["scorer"] == {"type": "python_script_scorer", "python_script": "p"}


# --- text edits in place ------------------------------------------------------------------------


def test_replace_edit_once() -> None:
    result = expand({"name": {"replace": [{"old": "retry", "new": "sync"}]}})
    assert result == {"name": "fix-sync-backoff"}


def test_replace_edits_apply_in_order_on_the_edited_text() -> None:
    edits = [
        {"old": "doubles twice per attempt", "new": "triples"},
        {"old": "triples", "new": "grows 4x per attempt"},
        {"old": "\nExpected: the delay doubles once per attempt.\n", "new": ""},
    ]
    result = expand({"input_context": {"problem_statement": {"replace": edits}}})
    text = result["input_context"]["problem_statement"]
    assert text == STATEMENT.replace("doubles twice per attempt", "grows 4x per attempt").replace(
        "\nExpected: the delay doubles once per attempt.\n", ""
    )
    assert result["input_context"] == {"problem_statement": text}  # additional_context untouched: not in the patch


def test_replace_edit_in_metadata_and_reference_output() -> None:
    result = expand(
        {
            "metadata": {"owner": {"replace": [{"old": "ana", "new": "ana, bo"}]}},
            "reference_output": {"replace": [{"old": "*= 2", "new": "*= 3"}]},
        }
    )
    assert result["metadata"] == {"owner": "ana, bo"}
    assert result["reference_output"].endswith("+    delay *= 3\n")


def test_replace_edit_inside_a_scorer_patched_by_name() -> None:
    current = scenario()
    edit = {"replace": [{"old": "make test", "new": "make test-retry"}]}
    result = expand(scorers({"script": {"scorer": {"bash_script": edit}}}), current)
    after = functions(result)
    assert after[3]["scorer"]["bash_script"] == SCRIPT.replace("make test", "make test-retry")
    assert after[:3] == functions(current)[:3]


def test_replace_edit_on_a_field_the_server_does_not_know() -> None:
    result = expand({"difficulty": {"level": {"replace": [{"old": "hard", "new": "medium"}]}}})
    assert result == {"difficulty": {"level": "medium"}}


def test_replace_edit_on_null_is_refused() -> None:
    current = scenario()
    current["reference_output"] = None
    assert "is null" in refused({"reference_output": {"replace": [{"old": "a", "new": "b"}]}}, current)


def test_replace_edit_counts_overlapping_occurrences() -> None:
    current = scenario()
    current["name"] = "aaa"
    assert "occurs 2 times" in refused({"name": {"replace": [{"old": "aa", "new": "b"}]}}, current)


def test_a_literal_replace_key_in_a_dict_is_data() -> None:
    result = expand({"input_context": {"additional_context": {"replace": None}}})
    assert result == {"input_context": {"additional_context": {"replace": None}}}


# --- depth and types ----------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_nesting_up_to_the_limit_is_fine() -> None:
    changes = {"metadata": _nested(MAX_DEPTH - 1)}
    assert expand(changes) == changes


@pytest.mark.parametrize("depth", [MAX_DEPTH, 200, 100_000])
def test_deep_nesting_is_refused_without_recursion_error(depth: int) -> None:
    changes = {"metadata": _nested(depth)}
    with pytest.raises(InvalidChanges, match=f"nested more than {MAX_DEPTH} levels"):
        expand_changes(scenario(), changes)


def test_deep_lists_are_refused_too() -> None:
    value: Any = "x"
    for _ in range(10_000):
        value = [value]
    with pytest.raises(InvalidChanges, match="nested more than"):
        expand_changes(scenario(), {"required_secret_names": value})


def test_changes_must_be_an_object() -> None:
    with pytest.raises(InvalidChanges, match="changes must be an object"):
        expand_changes(scenario(), ["name"])  # type: ignore[arg-type]


def test_a_deep_scenario_is_copied_without_recursion_error() -> None:
    current = scenario()
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": deep}
    functions(current)[2]["scorer"]["scorer_params"] = deep
    result = expand_changes(current, scorers({"tests": {"weight": 0.5}}))
    assert functions(result)[2]["scorer"]["scorer_params"] is not deep


# --- property: untouched scorers survive any sequence of patches by name -------------------------

NAMES = ["tests", "lint", "judge", "script", "e2e", "perf", "docs"]


@st.composite
def patch_rounds(draw: st.DrawFn) -> list[dict[str, Any]]:
    rounds = []
    for _ in range(draw(st.integers(1, 4))):
        chosen = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
        patch: dict[str, Any] = {}
        for name in chosen:
            patch[name] = draw(
                st.one_of(
                    st.none(),
                    st.builds(lambda w: {"weight": w}, st.floats(0.01, 1)),
                    st.builds(
                        lambda c, w: {"scorer": {"type": "command_scorer", "command": c}, "weight": w},
                        st.text(max_size=8),
                        st.floats(0.01, 1),
                    ),
                )
            )
        rounds.append(patch)
    return rounds


@settings(max_examples=150, deadline=None)
@given(patch_rounds())
def test_untouched_scorers_are_byte_identical_and_in_order(rounds: list[dict[str, Any]]) -> None:
    current = scenario()
    for patch in rounds:
        before = functions(current)
        names = [f["name"] for f in before]
        invalid = any(name not in names and (value is None or "scorer" not in value) for name, value in patch.items())
        if invalid:
            with pytest.raises(InvalidChanges):
                expand_changes(current, scorers(patch))
            continue
        after = functions(expand(scorers(patch), current))
        untouched = [f for f in before if f["name"] not in patch]
        assert [canonical(f) for f in after if f["name"] not in patch] == [canonical(f) for f in untouched]
        kept = [n for n in names if patch.get(n, {}) is not None]
        added = [n for n, v in patch.items() if n not in names]
        assert [f["name"] for f in after] == kept + added
        for function in after:
            value = patch.get(function["name"])
            if isinstance(value, dict) and "weight" in value:
                assert function["weight"] == value["weight"]
        current = merge_patch(current, scorers(after))
