"""The upstream client's fast path for bodies that cannot hold the API key: the same answer as the full inspection."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.errors import MalformedResponse
from runloop_scenarios_mcp.upstream.client import MAX_JSON_DEPTH, _cannot_hold, _check_depth, _inspect

KEY = "rl_api_key_0123456789/abc"
_BITS = ["rl_", "api", "_key_", "0123456789", "/abc", "\\/", "中", "😀", '"', "\\", "\n", "a", " ", "\u0000", "\x7f"]


def _spellings(value: Any) -> list[bytes]:
    """Ways an upstream may spell ``value`` as JSON: ASCII-escaped, UTF-8, and with every character escaped."""
    plain = json.dumps(value).encode()
    raw = json.dumps(value, ensure_ascii=False).encode()
    every = json.dumps(value).replace("_", "\\u005f").replace("/", "\\/").encode()
    return [plain, raw, every]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    text = "".join(rng.choice(_BITS) for _ in range(rng.randrange(8)))
    kind = rng.randrange(4 if depth < 4 else 1)
    if kind == 0:
        return text
    if kind == 1:
        return rng.choice([1, None, True, 2.5])
    if kind == 2:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {text + str(index): _random_value(rng, depth + 1) for index in range(rng.randrange(3))}


def test_the_fast_path_is_taken_only_when_inspection_would_change_nothing() -> None:
    rng = random.Random(5)
    values = [_random_value(rng) for _ in range(3000)] + list(Emulator().snapshot().values())[:50]
    values += [{"echo": KEY}, {KEY: 1}, ["x" + KEY], {"a": {"b": [KEY[:5], KEY[5:]]}}]
    taken = 0
    for value in values:
        for raw in _spellings({"v": value}):
            body = json.loads(raw)
            inspected = _inspect(copy.deepcopy(body), KEY)
            if _cannot_hold(raw, KEY):
                taken += 1
                assert inspected == body, raw[:200]
            if KEY in json.dumps(body, ensure_ascii=False):
                assert not _cannot_hold(raw, KEY)
    assert taken > 1000  # the fast path is the common case


@pytest.mark.parametrize("raw", [json.dumps({"k": KEY}).encode("utf-16"), b"\xef\xbb\xbf{}", b' {"k": 1}', b"[]"])
def test_other_encodings_and_odd_starts_are_inspected(raw: bytes) -> None:
    assert _cannot_hold(raw, KEY) is (raw == b"[]")


@pytest.mark.parametrize("depth", [1, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 200])
@pytest.mark.parametrize("outer", [list, dict])
def test_depth_check_agrees_with_the_full_inspection(depth: int, outer: type) -> None:
    value: Any = "leaf"
    for index in range(depth):
        value = [value] if (index % 2 == 0) == (outer is list) else {"k": value, "s": "x"}
    try:
        _inspect(copy.deepcopy(value), KEY)
        full_ok = True
    except MalformedResponse:
        full_ok = False
    try:
        _check_depth(value)
        fast_ok = True
    except MalformedResponse:
        fast_ok = False
    assert fast_ok is full_ok is (depth <= MAX_JSON_DEPTH)
