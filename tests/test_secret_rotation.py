"""Any replica continues any call: cursors, preview tokens and the SDK's ``requestState`` are sealed with
keys from ``RUNLOOP_MCP_SECRET``, which may be a comma-separated list (the first signs, all verify).

What one server issued under secret A still works on a server configured ``B,A`` and is refused on
``B`` alone; what ``B,A`` issues works on ``B``. A 2026-07-28 confirmation round trip started on one
server is finished by another with the same secret (in memory and over real HTTP), and refused, with
nothing written, by one with another secret.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ElicitResult, InputRequiredResult
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.cli import build_parser, settings_from
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator
from runloop_scenarios_mcp.errors import ConfigurationError, InvalidCursor, PreviewRefused
from runloop_scenarios_mcp.logs import RedactingFormatter
from runloop_scenarios_mcp.services import keys
from runloop_scenarios_mcp.services.cursor import CursorCodec, CursorState
from runloop_scenarios_mcp.services.update.tokens import PreviewTokens
from runloop_scenarios_mcp.tools.update import CONFIRM_KEY
from tests.support.common import (
    CANARY_KEY,
    Session,
    active_scenario,
    apply_update,
    error_text,
    make_settings,
    preview_update,
    small_scenario,
)
from tests.support.raw_stdio import EXIT_TIMEOUT, SCRIPT, base_env
from tests.support.serving import serving

pytestmark = pytest.mark.anyio

OLD = "old-secret-for-rotation-0123456789"
NEW = "new-secret-for-rotation-9876543210"
OTHER = "unrelated-secret-0123456789abcdef"
META = {"metadata": {"reviewer": "ann"}}
ACCEPT = ElicitResult(action="accept", content={"confirm": True})


# --- configuration ---------------------------------------------------------------------------


def test_a_comma_separated_secret_is_a_key_ring_first_signs() -> None:
    settings = Settings(secret=SecretStr(f" {NEW} , {OLD}"))
    assert [key.get_secret_value() for key in settings.secrets] == [NEW, OLD]
    from_env = settings_from(build_parser().parse_args([]), {"RUNLOOP_MCP_SECRET": f"{NEW},{OLD}"})
    assert [key.get_secret_value() for key in from_env.secrets] == [NEW, OLD]
    one = settings_from(build_parser().parse_args([]), {"RUNLOOP_MCP_SECRET": OLD})
    assert [key.get_secret_value() for key in one.secrets] == [OLD]
    # every key alone, and the whole value, is scrubbed; none shows in a repr
    assert {NEW, OLD, f"{NEW},{OLD}"} <= set(from_env.secret_values)
    assert NEW not in repr(from_env) and OLD not in repr(from_env)
    formatter = RedactingFormatter(from_env.secret_values)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, f"a={OLD} b={NEW} both={NEW},{OLD}", None, None)
    line = formatter.format(record)
    assert OLD not in line and NEW not in line and line.count("[redacted]") == 3


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("short", "at least 16 characters"),
        (f"{NEW},tiny-key", "key 2 of 2 in the comma-separated list is too short"),
        (f"{NEW},", "key 2 of 2 in the comma-separated list is empty"),
        (f"{NEW},,{OLD}", "key 2 of 3 in the comma-separated list is empty"),
        (f"tiny-key,{OLD}", "key 1 of 2"),
    ],
)
def test_each_key_is_checked_and_never_echoed(value: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings_from(build_parser().parse_args([]), {"RUNLOOP_MCP_SECRET": value})
    message = str(caught.value)
    assert "RUNLOOP_MCP_SECRET" in message and says in message and "\n" not in message
    for part in value.split(","):
        assert not part or part not in message


def test_the_command_line_refuses_a_short_key_in_one_line_without_the_value(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SCRIPT)],
        capture_output=True,
        text=True,
        env=base_env(tmp_path, RUNLOOP_MCP_SECRET=f"{NEW},tiny-key"),
        stdin=subprocess.DEVNULL,
        timeout=EXIT_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "RUNLOOP_MCP_SECRET" in lines[0], done.stderr
    assert NEW not in done.stderr and "tiny-key" not in done.stderr


# --- the codecs ------------------------------------------------------------------------------


def test_each_kind_has_its_own_keys_and_duplicates_collapse() -> None:
    ring = {purpose: keys.derive([NEW, OLD], purpose) for purpose in (keys.CURSOR, keys.PREVIEW, keys.REQUEST_STATE)}
    assert all(len(k) == 2 and all(len(key) == 32 for key in k) for k in ring.values())
    assert len({key for k in ring.values() for key in k}) == 6
    assert keys.derive([OLD, OLD], keys.CURSOR) == keys.derive(OLD, keys.CURSOR)
    with pytest.raises(ValueError):
        keys.derive([], keys.CURSOR)


def test_cursor_codec_signs_with_the_first_key_and_verifies_with_all() -> None:
    state = CursorState(after="scn_2f7k9", query={"filters": {"name": "x"}, "fields": ["id"]})
    old = CursorCodec(OLD).encode(state)
    assert CursorCodec([NEW, OLD]).decode(old) == state
    with pytest.raises(InvalidCursor):
        CursorCodec(NEW).decode(old)
    rotated = CursorCodec([NEW, OLD]).encode(state)
    assert len(rotated) == len(old)
    assert CursorCodec(NEW).decode(rotated) == state
    with pytest.raises(InvalidCursor):
        CursorCodec(OLD).decode(rotated)


def test_preview_tokens_stay_39_characters_and_open_under_any_key_of_the_ring() -> None:
    binding = ("scn_1", "changes-digest", "version-before", "version-after")
    old, _ = PreviewTokens(OLD).issue(*binding)
    rotated, _ = PreviewTokens([NEW, OLD]).issue(*binding)
    assert len(old) == len(rotated) == 39
    for token, ring in ((old, [NEW, OLD]), (rotated, [NEW]), (rotated, [NEW, OLD]), (old, [OLD])):
        tokens = PreviewTokens(ring)
        claims = tokens.open(token, "scn_1", "changes-digest")
        assert tokens.matches_version(claims, "scn_1", "changes-digest", "version-before")
        assert not tokens.matches_version(claims, "scn_1", "changes-digest", "another-version")
        assert tokens.matches_after(claims, "version-after")
        # the other refusals still tell their reasons apart under a rotated ring
        with pytest.raises(PreviewRefused, match="another scenario"):
            tokens.open(token, "scn_2", "changes-digest")
        with pytest.raises(PreviewRefused, match="changes differ"):
            tokens.open(token, "scn_1", "other-digest")
    for token, ring in ((old, [NEW]), (rotated, [OLD]), (old, [OTHER, NEW])):
        with pytest.raises(PreviewRefused, match="not valid") as caught:
            PreviewTokens(ring).open(token, "scn_1", "changes-digest")
        assert caught.value.reason == "invalid"


# --- through MCP: cursors and preview tokens across servers ------------------------------------


def server_with(tmp_path: Path, emulator: Emulator, secret: str) -> Any:
    """A server on the shared emulator and journal, sealing with ``secret`` (one key or a list)."""
    return build_server(make_settings(tmp_path, secret=SecretStr(secret)), transport=emulator.transport())


async def issued(tmp_path: Path, emulator: Emulator, secret: str, skip: int) -> tuple[str, str, str]:
    """A second-page cursor and a preview token issued by a server on ``secret``: (cursor, scenario id, token)."""
    sid = active_scenario(emulator, small_scenario, skip=skip)["id"]
    async with Client(server_with(tmp_path, emulator, secret)) as client:
        session = Session(client, "modern")
        page = await session.ok("list_scenarios", {"max_tokens": 500})
        token = (await preview_update(session, sid, META))["preview_token"]
    assert page["next_cursor"] and len(token) == 39
    return page["next_cursor"], sid, token


async def test_cursor_and_token_from_the_old_secret_work_on_new_old_and_not_on_new_alone(
    tmp_path: Path, emulator: Emulator
) -> None:
    cursor, sid, token = await issued(tmp_path, emulator, OLD, skip=0)
    async with Client(server_with(tmp_path, emulator, NEW)) as client:
        session = Session(client, "modern")
        message = await session.error("list_scenarios", {"cursor": cursor})
        assert "cursor is not valid" in message and "RUNLOOP_MCP_SECRET" in message
        refused = await apply_update(session, sid, META, token)
        assert refused.is_error and "preview_token is not valid" in error_text(refused)
        assert "RUNLOOP_MCP_SECRET" in error_text(refused)
    assert emulator.posts() == []
    async with Client(server_with(tmp_path, emulator, f"{NEW},{OLD}")) as client:
        session = Session(client, "modern")
        page = await session.ok("list_scenarios", {"cursor": cursor, "max_tokens": 500})
        assert page["returned"] >= 1
        applied = await apply_update(session, sid, META, token)
        assert not applied.is_error, error_text(applied)
    assert len(emulator.posts()) == 1


async def test_what_new_old_issues_works_on_new_alone(tmp_path: Path, emulator: Emulator) -> None:
    cursor, sid, token = await issued(tmp_path, emulator, f"{NEW},{OLD}", skip=1)
    async with Client(server_with(tmp_path, emulator, OLD)) as client:  # the retired key no longer verifies it
        session = Session(client, "modern")
        assert "cursor is not valid" in await session.error("list_scenarios", {"cursor": cursor})
        assert "not valid" in error_text(await apply_update(session, sid, META, token))
    async with Client(server_with(tmp_path, emulator, NEW)) as client:
        session = Session(client, "modern")
        await session.ok("list_scenarios", {"cursor": cursor, "max_tokens": 500})
        applied = await apply_update(session, sid, META, token)
        assert not applied.is_error, error_text(applied)
    assert len(emulator.posts()) == 1


# --- through MCP: a confirmation started on one server, answered on another --------------------


class Person:
    """An elicitation callback that accepts and counts how often it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        self.asked.append(params.message)
        return ACCEPT


async def first_round(client: Client, sid: str) -> tuple[dict[str, Any], InputRequiredResult]:
    """Preview, then the apply's first round on ``client``: the server asks the person (2026-07-28)."""
    assert client.protocol_version == "2026-07-28"
    token = (await preview_update(Session(client, "modern"), sid, META))["preview_token"]
    arguments = {"scenario_id": sid, "changes": META, "dry_run": False, "preview_token": token}
    asked = await client.session.call_tool("update_scenario", arguments, allow_input_required=True)
    assert isinstance(asked, InputRequiredResult), asked
    assert asked.input_requests is not None and CONFIRM_KEY in asked.input_requests
    assert asked.request_state and asked.request_state.startswith("v1.")
    return arguments, asked


async def second_round(client: Client, arguments: dict[str, Any], asked: InputRequiredResult) -> Any:
    """The retried call with the person's answer and the echoed request_state, sent to ``client``'s server."""
    return await client.call_tool(
        "update_scenario", arguments, input_responses={CONFIRM_KEY: ACCEPT}, request_state=asked.request_state
    )


@pytest.mark.parametrize("second", [OLD, f"{NEW},{OLD}"])
async def test_a_confirmation_started_on_one_server_completes_on_another(
    tmp_path: Path, emulator: Emulator, second: str
) -> None:
    sid = active_scenario(emulator, small_scenario)["id"]
    person = Person()
    async with Client(server_with(tmp_path, emulator, OLD), elicitation_callback=person) as one:
        arguments, asked = await first_round(one, sid)
    assert emulator.posts() == []
    async with Client(server_with(tmp_path, emulator, second), elicitation_callback=person) as other:
        result = await second_round(other, arguments, asked)
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None and result.structured_content["applied"] is True
    assert person.asked == []  # the answer came with the retried call; the other server did not ask again
    assert len(emulator.posts()) == 1
    stored = emulator.get(sid)
    assert stored is not None and stored["metadata"]["reviewer"] == "ann"


async def test_a_server_with_another_secret_refuses_the_request_state(tmp_path: Path, emulator: Emulator) -> None:
    sid = active_scenario(emulator, small_scenario)["id"]
    async with Client(server_with(tmp_path, emulator, OLD), elicitation_callback=Person()) as one:
        arguments, asked = await first_round(one, sid)
    for secret in (NEW, f"{NEW},{OTHER}"):
        # refused at the SDK's boundary, before the tool (or its preview token check) runs
        async with Client(server_with(tmp_path, emulator, secret), elicitation_callback=Person()) as other:
            with pytest.raises(MCPError) as caught:
                await second_round(other, arguments, asked)
        assert caught.value.error.code == INVALID_PARAMS
        assert "requestState" in caught.value.error.message
    assert emulator.posts() == []
    # nothing was used up: a server that holds the key still completes the call
    async with Client(server_with(tmp_path, emulator, OLD), elicitation_callback=Person()) as again:
        result = await second_round(again, arguments, asked)
    assert not result.is_error, error_text(result)
    assert len(emulator.posts()) == 1


# --- two real HTTP servers -----------------------------------------------------------------------


@pytest.fixture
async def replicas(tmp_path: Path, loopback: LoopbackEmulator) -> AsyncIterator[tuple[str, str]]:
    """Two HTTP servers (own processes' worth of state) on one upstream and one journal, sharing the secret."""
    settings = make_settings(tmp_path, base_url=loopback.base_url, transport="http", secret=SecretStr(OLD))
    with serving(settings) as first, serving(settings) as second:
        yield first, second


async def test_over_http_a_confirmation_started_on_one_replica_completes_on_the_other(
    replicas: tuple[str, str], loopback: LoopbackEmulator
) -> None:
    first, second = replicas
    assert first != second
    sid = active_scenario(loopback.emulator, small_scenario)["id"]
    person = Person()
    async with Client(first, mode="auto", elicitation_callback=person) as one:
        page = await one.call_tool("list_scenarios", {"max_tokens": 500})
        assert page.structured_content is not None
        cursor = page.structured_content["next_cursor"]
        arguments, asked = await first_round(one, sid)
    async with Client(second, mode="auto", elicitation_callback=person) as other:
        more = await other.call_tool("list_scenarios", {"cursor": cursor, "max_tokens": 500})
        assert not more.is_error, error_text(more)
        result = await second_round(other, arguments, asked)
    assert not result.is_error, error_text(result)
    assert person.asked == []
    assert len(loopback.emulator.posts()) == 1


async def test_over_http_a_replica_with_another_secret_refuses_the_request_state(
    tmp_path: Path, replicas: tuple[str, str], loopback: LoopbackEmulator
) -> None:
    first, _ = replicas
    sid = active_scenario(loopback.emulator, small_scenario)["id"]
    async with Client(first, mode="auto", elicitation_callback=Person()) as one:
        arguments, asked = await first_round(one, sid)
    stranger = make_settings(tmp_path, base_url=loopback.base_url, transport="http", secret=SecretStr(NEW))
    with serving(stranger) as url:
        async with Client(url, mode="auto", elicitation_callback=Person()) as other:
            with pytest.raises(MCPError) as caught:
                await second_round(other, arguments, asked)
    assert caught.value.error.code == INVALID_PARAMS and "requestState" in caught.value.error.message
    assert loopback.emulator.posts() == []
    assert CANARY_KEY not in caught.value.error.message
