"""Streamable HTTP (``--transport http``): both protocol modes through the SDK's HTTP client, DNS-rebinding
checks on Host and Origin, the bearer token, and the refusal to bind a non-loopback address without one.

The server runs in-process under uvicorn on a free loopback port (a real socket), except for the
start-up tests, which launch the installed console script as a person would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr

from runloop_scenarios_mcp.config import Settings
from tests.support.common import make_settings
from tests.support.raw_stdio import initialize
from tests.support.serving import serving

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
TOKEN = "http-token-for-tests-5b8c2e"
INITIALIZE = initialize(client="raw-test")
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def http_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, emulator=True, transport="http", api_key=None)


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_both_protocol_modes_list_and_call(http_settings: Settings, mode: str, version: str) -> None:
    with serving(http_settings) as url:
        async with Client(url, mode=mode) as client:
            assert client.protocol_version == version
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"list_scenarios", "get_scenario", "update_scenario"}
            page = await client.call_tool("list_scenarios", {"max_tokens": 1500, "limit": 3})
            assert not page.is_error
            assert page.structured_content is not None
            assert page.structured_content["returned"] == 3
            first = page.structured_content["scenarios"][0]["id"]
            scenario = await client.call_tool("get_scenario", {"scenario_id": first})
            assert scenario.structured_content is not None
            assert scenario.structured_content["scenario"]["id"] == first
            bad = await client.call_tool("get_scenario", {"scenario_id": ""})
            assert bad.is_error


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_confirmed_write_over_http(http_settings: Settings, mode: str) -> None:
    """The person's confirmation (elicitation) reaches an HTTP client in both modes, and the write lands."""
    asked: list[str] = []

    async def accept(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    with serving(http_settings) as url:
        async with Client(url, mode=mode, elicitation_callback=accept) as client:
            page = await client.call_tool("list_scenarios", {"limit": 1})
            assert page.structured_content is not None
            scenario_id = page.structured_content["scenarios"][0]["id"]
            changes = {"metadata": {"reviewed_by": f"http-{mode}"}}
            preview = await client.call_tool("update_scenario", {"scenario_id": scenario_id, "changes": changes})
            assert preview.structured_content is not None, preview.content
            token = preview.structured_content["preview_token"]
            applied = await client.call_tool(
                "update_scenario",
                {"scenario_id": scenario_id, "changes": changes, "dry_run": False, "preview_token": token},
            )
            assert not applied.is_error, applied.content
            assert applied.structured_content is not None
            assert applied.structured_content["applied"] is True
            assert asked and scenario_id in asked[0]
            after = await client.call_tool("get_scenario", {"scenario_id": scenario_id})
            assert after.structured_content is not None
            assert after.structured_content["scenario"]["metadata"]["reviewed_by"] == f"http-{mode}"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "https://attacker.test:8000"}, 403),
        ({"Host": "evil.example"}, 421),
        ({"Host": "rebind.attacker.test:8000"}, 421),
    ],
)
def test_foreign_origin_or_host_is_refused(http_settings: Settings, headers: dict[str, str], status: int) -> None:
    with serving(http_settings) as url:
        response = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | headers)
        assert response.status_code == status
        assert "result" not in response.text
        allowed = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"Origin": url.rsplit("/", 1)[0]})
        assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"],
)
def test_requests_without_the_bearer_token_get_401(tmp_path: Path, authorization: str | None) -> None:
    settings = make_settings(tmp_path, emulator=True, transport="http", api_key=None, http_token=SecretStr(TOKEN))
    with serving(settings) as url:
        headers = dict(MCP_HEADERS)
        if authorization is not None:
            headers["Authorization"] = authorization
        refused = httpx.post(url, json=INITIALIZE, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "RUNLOOP_MCP_HTTP_TOKEN" in refused.json()["message"]
        assert TOKEN not in refused.text
        accepted = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"Authorization": f"Bearer {TOKEN}"})
        assert accepted.status_code == 200, accepted.text


async def test_the_sdk_client_with_the_token_works(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, emulator=True, transport="http", api_key=None, http_token=SecretStr(TOKEN))
    with serving(settings) as url:
        http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        async with http_client, Client(streamable_http_client(url, http_client=http_client)) as client:
            result = await client.call_tool("list_scenarios", {"limit": 2})
            assert result.structured_content is not None
            assert result.structured_content["returned"] == 2


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")} | (env or {})
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=clean, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_non_loopback_bind_without_token_refuses_to_start(host: str) -> None:
    done = _cli("--emulator", "--transport", "http", "--host", host, "--port", "1")
    assert done.returncode == 2
    assert "RUNLOOP_MCP_HTTP_TOKEN" in done.stderr and "not a loopback address" in done.stderr
    assert done.stdout == ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_console_script_serves_http_on_loopback_by_default() -> None:
    """``--transport http`` without ``--host`` listens on 127.0.0.1 only, and says where on stderr."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    process = subprocess.Popen(
        [str(SCRIPT), "--emulator", "--transport", "http", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=clean,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.05)
        async with Client(url) as client:
            tools = (await client.list_tools()).tools
            assert len(tools) == 3
        listening = _listening_addresses(port)
        assert listening == {"127.0.0.1"}, listening
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert out == "", "stdout must stay empty"
    assert f"http://127.0.0.1:{port}/mcp" in err


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from /proc/net/tcp and tcp6."""
    found: set[str] = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        path = Path(name)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(_decode_address(address, width))
    return found


def _decode_address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def test_wildcard_bind_relies_on_the_token_and_refuses_browser_origins(tmp_path: Path) -> None:
    """On 0.0.0.0 the Host is whatever name clients use; the token guards, and browser pages are refused."""
    settings = make_settings(
        tmp_path, emulator=True, transport="http", api_key=None, host="0.0.0.0", http_token=SecretStr(TOKEN)
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serving(settings) as url:  # the app of a 0.0.0.0 server, listening on loopback for the test
        by_name = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | auth | {"Host": "build-box.internal:8000"})
        assert by_name.status_code == 200, by_name.text
        browser = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | auth | {"Origin": "http://evil.example"})
        assert browser.status_code == 403
        assert httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS).status_code == 401


def test_specific_address_bind_accepts_only_that_host(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, emulator=True, transport="http", api_key=None, host="192.0.2.10", http_token=SecretStr(TOKEN)
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serving(settings) as url:
        good = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | auth | {"Host": "192.0.2.10:8000"})
        assert good.status_code == 200, good.text
        other = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | auth | {"Host": "evil.example:8000"})
        assert other.status_code == 421
