"""Hostile input: every tool call is answered with a valid result or a clear tool error, never a crash.

Three layers: Hypothesis fuzzing of every tool from its published input schema (``schemas/*.input.json``,
turned into strategies by a small generator below, then mutated: wrong types, unknown keys, huge strings,
lone surrogates, deep nesting); a table of targeted attacks (path traversal ids, cursor and preview-token
tampering); and malformed JSON-RPC over a real stdio subprocess.
"""

from __future__ import annotations

import json
import os
import reprlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import CallToolResult

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from tests.support.campaign import INTERNAL_ERROR, result_text
from tests.support.common import CANARY_KEY, SCHEMAS, Session, make_settings
from tests.support.raw_stdio import RawSession, base_env

TOOLS = ("list_scenarios", "get_scenario", "update_scenario")
HUGE = "x" * 1_000_000
CLIENT_MAX_DEPTH = 200
"""Deepest nesting the SDK client can serialize; deeper documents go raw over stdio below."""
SURROGATES = ("\ud800", "\udfff", "a\ud83dz", "scn_\udc80")


# --- what every answer must be ----------------------------------------------------------------


def _output_validator(tool: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / f"{tool}.output.json").read_text(encoding="utf-8")))


OUTPUT = {tool: _output_validator(tool) for tool in TOOLS}


def check_answer(tool: str, arguments: Any, result: CallToolResult) -> None:
    """A valid result of the published shape, or one clear, bounded, secret-free error message."""
    text = result_text(result)
    context = f"{tool}({_short(arguments)}) -> {text[:300]!r}"
    assert CANARY_KEY not in text, context
    if result.is_error:
        assert text.strip(), context
        assert INTERNAL_ERROR not in text, context
        assert "Traceback" not in text and 'File "' not in text, context
        assert len(text) < 2000, context
    else:
        assert result.structured_content is not None, context
        OUTPUT[tool].validate(result.structured_content)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 80, 80


def _short(value: Any) -> str:
    return _REPR.repr(value)


# --- strategies from JSON Schema --------------------------------------------------------------

_text = st.text(max_size=40) | st.sampled_from(["", " ", "../benchmarks", "%2e%2e", "*", "null", *SURROGATES])
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    # Keys stay valid Unicode: the MCP client itself cannot serialize a lone surrogate in a key.
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that satisfy ``schema`` (the subset pydantic emits: anyOf, enum, the JSON types, objects)."""
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 80)
        return st.text(min_size=low, max_size=min(high, 80)).filter(lambda s: len(s) >= low)
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=4)
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", []))
        props = schema["properties"]
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    if kind == "object":
        return st.dictionaries(st.text(max_size=12), json_values, max_size=4)
    return json_values


def _wrong_value() -> st.SearchStrategy[Any]:
    return (
        json_values
        | st.just(HUGE)
        | st.sampled_from(SURROGATES)
        | st.integers(min_value=2**63, max_value=2**70)
        | st.just(_nested(200))
        | st.just(float("inf"))
    )


def hostile(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid arguments, then maybe one key given a wrong or extreme value, maybe an unknown key."""
    valid = from_schema(schema)
    keys = sorted(schema["properties"])

    @st.composite
    def mutate(draw: st.DrawFn) -> dict[str, Any]:
        arguments: dict[str, Any] = dict(draw(valid))
        if draw(st.booleans()):
            arguments[draw(st.sampled_from(keys))] = draw(_wrong_value())
        if draw(st.integers(0, 9)) == 0:
            arguments[draw(st.sampled_from(["extra", "__proto__", "id", ""]))] = draw(json_values)
        return arguments

    return mutate()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth):
        value = {"a": value}
    return value


def _input_schema(tool: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{tool}.input.json").read_text(encoding="utf-8"))
    return schema


# --- fuzzing through the MCP client -----------------------------------------------------------


@pytest.fixture
def portal_client(tmp_path: Path, emulator: Emulator) -> Iterator[tuple[Any, Client]]:
    """A live in-memory MCP session usable from synchronous Hypothesis tests, through a blocking portal."""
    from anyio.from_thread import start_blocking_portal

    server = build_server(make_settings(tmp_path), transport=emulator.transport())
    with start_blocking_portal("asyncio") as portal, portal.wrap_async_context_manager(Client(server)) as client:
        yield portal, client


@pytest.mark.parametrize("tool", TOOLS)
def test_fuzz_every_tool_from_its_input_schema(
    tool: str, portal_client: tuple[Any, Client], emulator: Emulator
) -> None:
    portal, client = portal_client
    before = emulator.snapshot()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(arguments=hostile(_input_schema(tool)))
    def call(arguments: dict[str, Any]) -> None:
        result = portal.call(client.call_tool, tool, arguments)
        check_answer(tool, arguments, result)

    call()
    # No fuzzed call wrote anything: an apply needs a preview token the fuzzer cannot forge.
    assert emulator.posts() == []
    assert emulator.snapshot() == before


# --- targeted attacks -------------------------------------------------------------------------

pytestmark_async = pytest.mark.anyio

TRAVERSAL_IDS = [
    "../benchmarks",
    "..",
    ".",
    "%2e%2e",
    "%2e%2e/benchmarks",
    "..%2fbenchmarks",
    "scn_x/../../v1/benchmarks",
    "scn_x?limit=5000",
    "scn_x#fragment",
    "scn_\x00null",
    "scn_\r\nX-Injected: 1",
    "\\..\\..\\etc\\passwd",
    " ",
    "a" * 257,
    HUGE,
    *SURROGATES,
]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario_id", TRAVERSAL_IDS, ids=lambda s: repr(s)[:30])
async def test_hostile_ids_never_leave_the_scenario_path(mcp: Session, emulator: Emulator, scenario_id: str) -> None:
    for tool, arguments in (
        ("get_scenario", {"scenario_id": scenario_id}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"name": "x"}}),
    ):
        result = await mcp.call(tool, arguments)
        check_answer(tool, arguments, result)
        assert result.is_error, f"{tool} accepted the id {scenario_id!r}"
    for request in emulator.requests:  # what reached the API stayed one percent-encoded segment under /v1/scenarios/
        rest = request.path.removeprefix("/v1/scenarios/")
        assert request.path.startswith("/v1/scenarios/") and "/" not in rest and rest not in ("", ".", ".."), request
    assert emulator.posts() == []


WRONG_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("list_scenarios", {"max_tokens": 10**30}),
    ("list_scenarios", {"max_tokens": -1}),
    ("list_scenarios", {"limit": 10**6}),
    ("list_scenarios", {"fields": "name"}),
    ("list_scenarios", {"fields": []}),
    ("list_scenarios", {"fields": ["name", "*"]}),
    ("list_scenarios", {"fields": ["../secret"]}),
    ("list_scenarios", {"fields": [HUGE]}),
    ("list_scenarios", {"validation_type": "DROP TABLE"}),
    ("list_scenarios", {"search": HUGE}),
    ("list_scenarios", {"name": HUGE}),
    ("list_scenarios", {"search": "\ud800"}),
    ("list_scenarios", {"name": {"$ne": None}}),
    ("list_scenarios", {"unknown": 1}),
    ("get_scenario", {}),
    ("get_scenario", {"scenario_id": None}),
    ("get_scenario", {"scenario_id": ["scn_a"]}),
    ("get_scenario", {"scenario_id": "scn_a", "offset": -5}),
    ("get_scenario", {"scenario_id": "scn_a", "field": "../../etc/passwd"}),
    ("update_scenario", {"scenario_id": "scn_a"}),
    ("update_scenario", {"scenario_id": "scn_a", "changes": []}),
    ("update_scenario", {"scenario_id": "scn_a", "changes": "name=x"}),
    ("update_scenario", {"scenario_id": "scn_a", "changes": {}, "dry_run": "false"}),
    ("update_scenario", {"scenario_id": "scn_a", "changes": {"metadata": _nested(CLIENT_MAX_DEPTH)}}),
    ("update_scenario", {"scenario_id": "scn_a", "changes": {"name": HUGE * 4}}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments"), WRONG_ARGUMENTS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(WRONG_ARGUMENTS)]
)
async def test_wrong_types_and_extremes_are_clear_errors(mcp: Session, tool: str, arguments: dict[str, Any]) -> None:
    result = await mcp.call(tool, arguments)
    check_answer(tool, arguments, result)
    assert result.is_error


@pytest.mark.anyio
async def test_extremes_against_a_real_scenario(mcp: Session, emulator: Emulator) -> None:
    scenario_id = next(iter(emulator.snapshot()))
    cases: list[tuple[str, dict[str, Any]]] = [
        ("get_scenario", {"scenario_id": scenario_id, "field": "../../etc/passwd"}),
        ("list_scenarios", {"benchmark_id": "../benchmarks"}),  # just a filter value: an empty page is right
        ("list_scenarios", {"max_tokens": "4000"}),  # pydantic's lax mode may coerce; either answer is clear
        ("list_scenarios", {"limit": True}),
        ("get_scenario", {"scenario_id": scenario_id, "field": "input_context.problem_statement", "offset": 10**12}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"metadata": _nested(CLIENT_MAX_DEPTH)}}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"name": "\ud800"}}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"id": "scn_other"}}),
        ("update_scenario", {"scenario_id": scenario_id, "changes": {"metadata": {"k": HUGE}}}),
    ]
    for tool, arguments in cases:
        result = await mcp.call(tool, arguments)
        check_answer(tool, arguments, result)
    assert emulator.posts() == []


def _flip(token: str, at: int) -> str:
    at %= len(token)
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@pytest.mark.anyio
async def test_cursor_tampering_is_refused(mcp: Session) -> None:
    page = await mcp.ok("list_scenarios", {"max_tokens": 1000})
    cursor = page["next_cursor"]
    assert isinstance(cursor, str)
    forged = [
        _flip(cursor, len(cursor) // 3),
        _flip(cursor, -3),
        cursor[:-5],
        cursor + "A",
        cursor + ".~~~~~REVERSE",  # a query the tag was not made for
        str(int(cursor) + 1),  # a neighbouring position (a default listing's cursor is all digits)
        "cu1_" + cursor[4:].split(".")[0],
        cursor.split(".")[0] + "." + "A" * 27,
        "",
        "x" * 9000,
        "\ud800",
    ]
    for bad in forged:
        message = await mcp.error("list_scenarios", {"cursor": bad})
        assert "cursor" in message and INTERNAL_ERROR not in message
    # A genuine cursor with other filters is refused too, and the untouched cursor still works.
    message = await mcp.error("list_scenarios", {"cursor": cursor, "search": "auth"})
    assert "cursor" in message
    assert (await mcp.ok("list_scenarios", {"cursor": cursor, "max_tokens": 1000}))["returned"] > 0


@pytest.mark.anyio
async def test_preview_token_tampering_writes_nothing(mcp: Session, emulator: Emulator) -> None:
    scenario_id, other_id = list(emulator.snapshot())[:2]
    changes = {"metadata": {"owner": "fuzz"}}
    preview = await mcp.ok("update_scenario", {"scenario_id": scenario_id, "changes": changes})
    token = preview["preview_token"]
    cursor = (await mcp.ok("list_scenarios", {"max_tokens": 1000}))["next_cursor"]
    attempts: list[tuple[str, dict[str, Any], str | None]] = [
        (scenario_id, changes, _flip(token, len(token) // 2)),
        (scenario_id, changes, token[:-4]),
        (scenario_id, changes, cursor),  # a cursor is signed for another purpose
        (scenario_id, changes, ""),
        (scenario_id, changes, None),
        (scenario_id, changes, "\ud800"),
        (scenario_id, {"metadata": {"owner": "other"}}, token),  # changes differ
        (other_id, changes, token),  # another scenario
    ]
    for sid, attempt_changes, attempt_token in attempts:
        arguments = {"scenario_id": sid, "changes": attempt_changes, "dry_run": False, "preview_token": attempt_token}
        result = await mcp.call("update_scenario", arguments)
        check_answer("update_scenario", arguments, result)
        assert result.is_error
    assert emulator.posts() == []


# --- malformed JSON-RPC over a real stdio subprocess ------------------------------------------


def _request(rid: Any, method: str, params: Any = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def test_malformed_json_rpc_over_stdio(tmp_path: Path) -> None:
    server = RawSession(["--emulator", "--journal", os.devnull], {**base_env(tmp_path), "RUNLOOP_API_KEY": CANARY_KEY})
    try:
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}
        server.send(_request(0, "initialize", init))
        assert "result" in server.wait_for(0)
        server.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        garbage = [
            b"not json at all",
            b"{",
            b"[]",
            b"null",
            b"42",
            b'"a string"',
            b'{"jsonrpc":"2.0"}',
            b"\xff\xfe\x00 invalid utf-8",
            b"{" * 10000,
            b'{"jsonrpc":"2.0","method":"notifications/unknown"}',
            b'{"jsonrpc":"2.0","id":{"nested":1},"method":"tools/list"}',
            b'[{"jsonrpc":"2.0","id":900,"method":"tools/list"}]',
            b"x" * 3_000_000,
            # Deeper than the SDK's JSON parser accepts: answered with an error whose id is null.
            b'{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"update_scenario","arguments":'
            + b'{"scenario_id":"s","changes":{"metadata":'
            + b'{"a":' * 3000
            + b"1"
            + b"}" * 3000
            + b"}}}}",
        ]
        # Well-formed requests the server must answer, with a result or a JSON-RPC / tool error.
        answered: dict[int, bytes] = {
            1: _request(1, "no/such/method"),
            2: _request(2, "tools/call", {"name": "no_such_tool", "arguments": {}}),
            3: _request(3, "tools/call", {"name": "get_scenario", "arguments": "not an object"}),
            4: _request(4, "tools/call", {"name": "get_scenario", "arguments": {"scenario_id": 12}}),
            5: _request(5, "tools/call", {"name": "get_scenario", "arguments": {"scenario_id": "../benchmarks"}}),
            6: _request(6, "tools/call", {"name": "list_scenarios", "arguments": {"search": "x" * 3_000_000}}),
            7: _request(7, "tools/call", {"name": "list_scenarios", "arguments": {"cursor": "cu1_forged.AAAA"}}),
            8: _request(8, "tools/call", {"name": "update_scenario", "arguments": {"scenario_id": "s", "changes": 1}}),
            9: _request(9, "resources/read", {"uri": "file:///etc/passwd"}),
            10: _request(10, "tools/call", {"name": "list_scenarios", "arguments": {"max_tokens": 10**40}}),
        }
        for index, line in enumerate(garbage):
            server.send(line)
            rid = 100 + index
            server.send(_request(rid, "tools/list"))  # after each bad line the server still answers
            assert "result" in server.wait_for(rid)
        # Every bad line got a JSON-RPC error reply, but for the two the SDK reads as notifications (which get
        # none): the unknown notification, and the request with an object id (parsed as a notification).
        rejected = [json.loads(line) for line in server.stdout_lines if b'"id":null' in line]
        assert len(rejected) == len(garbage) - 2, rejected
        assert all(reply["error"]["code"] in (-32700, -32600) for reply in rejected)
        for rid, line in answered.items():
            server.send(line)
            reply = server.wait_for(rid)
            assert ("result" in reply) != ("error" in reply), reply
            assert reply.get("error", {}).get("code") != -32603, reply  # never an internal error
            if "result" in reply and "content" in reply["result"]:
                text = " ".join(block.get("text", "") for block in reply["result"]["content"])
                assert INTERNAL_ERROR not in text and "Traceback" not in text, reply
        assert server.process.poll() is None, "the server died"
        server.send(_request(999, "tools/call", {"name": "list_scenarios", "arguments": {"max_tokens": 1000}}))
        final = server.wait_for(999)
        assert final["result"]["isError"] is False if "isError" in final["result"] else True
    finally:
        code = server.close()
    assert code == 0, server.stderr.decode(errors="replace")[-2000:]
    for line in server.stdout_lines:  # stdout carries JSON-RPC messages only
        message = json.loads(line)
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:200]
    everything = b"".join(server.stdout_lines) + server.stderr
    assert CANARY_KEY.encode() not in everything
    assert b"Traceback" not in server.stderr, server.stderr.decode(errors="replace")[-3000:]
