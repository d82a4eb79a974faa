"""Start and stop of the installed console script, as a newcomer meets them (issue 10).

One SIGINT (Ctrl-C) or SIGTERM ends the server with exit code 0 and no traceback, on stdio (while
the client keeps stdin open and is quiet) and on HTTP; a taken port is one line and exit code 2,
before ``server_start`` is logged; no key and no ``--emulator`` is one warning line saying how to fix
it; ``--port``/``--host`` without ``--transport http`` is refused; ``emulator`` says how to point the
server at it; ``schemas --check`` is one line when up to date. Every test runs real subprocesses;
time limits only guard against hangs.
"""

from __future__ import annotations

import json
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.common import CANARY_KEY, ROOT
from tests.support.raw_stdio import (
    EXIT_TIMEOUT,
    INITIALIZED,
    SCRIPT,
    RawSession,
    base_env,
    call,
    check_json_rpc_lines,
    initialize,
)

PREFIX = "runloop-scenarios-mcp: error: "
STDIO_REFUSAL = PREFIX + "--port/--host apply to --transport http; add --transport http or drop them"
INITIALIZE = initialize(client="lifecycle")
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=EXIT_TIMEOUT, env=env, stdin=subprocess.DEVNULL
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def open_session(args: list[str], env: dict[str, str]) -> RawSession:
    """The server on stdio, past the initialize handshake (so its signal handlers are in place)."""
    session = RawSession(args, env)
    answer = session.request(INITIALIZE)
    assert "result" in answer, answer
    session.send(INITIALIZED)
    return session


def ended_by(session: RawSession, signum: signal.Signals) -> tuple[int, str]:
    """Send ``signum`` while stdin stays open; the exit code and stderr once the process ended on its own."""
    session.process.send_signal(signum)
    session.process.wait(timeout=EXIT_TIMEOUT)  # stdin is still open: the signal alone ends the server
    code = session.close()
    return code, session.stderr.decode(errors="replace")


@contextmanager
def http_server(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``--transport http`` on a free loopback port, once it answers MCP; yields the process and the /mcp URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "--transport", "http", "--port", str(port), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while True:
            try:
                if httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the HTTP server did not answer"
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def assert_clean_stop(code: int, stderr: str, signum: signal.Signals) -> None:
    assert code == 0, stderr
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    assert f"server_stop signal={signum.name}" in stderr, stderr


# --- 1. one signal ends the server cleanly ----------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_a_quiet_stdio_session_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    session = open_session(["--emulator"], base_env(tmp_path))
    page = session.request(call(2, "list_scenarios", {"limit": 2}))
    assert page["result"]["structuredContent"]["returned"] == 2
    code, stderr = ended_by(session, signum)
    assert_clean_stop(code, stderr, signum)
    check_json_rpc_lines(session.stdout_lines)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_http_server_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    with http_server(["--emulator"], base_env(tmp_path)) as (process, _):
        process.send_signal(signum)
        out, err = process.communicate(timeout=EXIT_TIMEOUT)
    assert_clean_stop(process.returncode, err, signum)
    assert out == ""


def test_a_signal_ends_the_http_server_while_a_client_holds_an_event_stream(tmp_path: Path) -> None:
    """A 2025-11-25 session's GET event stream stays open; the stop still ends the process, exit code 0."""
    with http_server(["--emulator"], base_env(tmp_path)) as (process, url):
        opened = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
        session_headers = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
        assert httpx.post(url, json=INITIALIZED, headers=MCP_HEADERS | session_headers, timeout=10).is_success
        streaming = threading.Event()
        ended: list[Any] = []

        def hold_stream() -> None:
            try:
                headers = {"Accept": "text/event-stream"} | session_headers
                with httpx.stream("GET", url, headers=headers, timeout=None) as response:
                    streaming.set()
                    for _ in response.iter_bytes():
                        pass
                ended.append("closed")
            except httpx.HTTPError as exc:
                ended.append(exc)
            finally:
                streaming.set()

        holder = threading.Thread(target=hold_stream, daemon=True)
        holder.start()
        assert streaming.wait(EXIT_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=EXIT_TIMEOUT)
        holder.join(EXIT_TIMEOUT)
    assert_clean_stop(process.returncode, err, signal.SIGTERM)
    assert out == ""
    assert ended, "the event stream was not ended"


# --- 2. a taken port ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["--emulator", "--transport", "http", "--port"], ["--transport", "http", "--port"], ["emulator", "--port"]],
)
def test_a_taken_port_is_one_line_and_exit_code_2(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run([*command, str(port)], base_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{PREFIX}port {port} is already in use on 127.0.0.1; stop what listens there or pick another with --port"
    ]


def test_an_address_not_of_this_machine_is_one_line(tmp_path: Path) -> None:
    env = base_env(tmp_path, RUNLOOP_MCP_HTTP_TOKEN="lifecycle-token-0123456789")
    done = run(["--emulator", "--transport", "http", "--host", "192.0.2.10", "--port", str(free_port())], env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX + "cannot listen on 192.0.2.10:"), done.stderr
    assert "--host" in lines[0]


# --- 3. no key, no --emulator ------------------------------------------------------------------


def _key_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line and "RUNLOOP_API_KEY" in line]


def test_without_a_key_one_warning_says_how_to_fix_it_and_tools_keep_answering(tmp_path: Path) -> None:
    session = open_session([], base_env(tmp_path))
    answer = session.request(call(2, "list_scenarios", {}))
    assert answer["result"]["isError"] is True
    assert "RUNLOOP_API_KEY" in answer["result"]["content"][0]["text"]
    assert session.close() == 0
    stderr = session.stderr.decode()
    warnings = _key_warnings(stderr)
    assert len(warnings) == 1, stderr
    for needle in ("RUNLOOP_API_KEY", "env", "MCP host", "--emulator"):
        assert needle in warnings[0]
    check_json_rpc_lines(session.stdout_lines)


def test_without_a_key_over_http_the_same_warning(tmp_path: Path) -> None:
    with http_server([], base_env(tmp_path)) as (process, _):
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=EXIT_TIMEOUT)
    assert process.returncode == 0, err
    assert len(_key_warnings(err)) == 1, err


@pytest.mark.parametrize(("args", "env"), [(["--emulator"], {}), ([], {"RUNLOOP_API_KEY": CANARY_KEY})])
def test_with_a_key_or_the_emulator_no_warning(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    session = open_session(args, base_env(tmp_path, **env))
    assert session.close() == 0
    stderr = session.stderr.decode()
    assert _key_warnings(stderr) == [] and "server_start" in stderr, stderr
    assert CANARY_KEY not in stderr


# --- 4. schemas --check -------------------------------------------------------------------------


def test_schemas_check_prints_one_line_when_up_to_date(tmp_path: Path) -> None:
    directory = tmp_path / "schemas"
    assert run(["schemas", "--write", "--dir", str(directory)], base_env(tmp_path)).returncode == 0
    done = run(["schemas", "--check", "--dir", str(directory)], base_env(tmp_path))
    count = len(list(directory.glob("*.json")))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"{directory}/ is up to date: {count} files"]


def test_schemas_check_on_drift_shows_the_diff_and_the_command(tmp_path: Path) -> None:
    directory = tmp_path / "schemas"
    assert run(["schemas", "--write", "--dir", str(directory)], base_env(tmp_path)).returncode == 0
    changed = sorted(directory.glob("*.json"))[0]
    changed.write_text(changed.read_text().replace('"type"', '"kind"', 1))
    (directory / "retired_tool.input.json").write_text("{}\n")
    done = run(["schemas", "--check", "--dir", str(directory)], base_env(tmp_path))
    assert done.returncode == 1
    assert f"--- {changed} (committed)" in done.stderr and f"+++ {changed} (code)" in done.stderr
    assert "retired_tool.input.json: no tool or model generates it any more" in done.stderr
    assert "make schemas" in done.stderr and f"runloop-scenarios-mcp schemas --write --dir {directory}" in done.stderr
    assert "up to date" not in done.stderr


# --- 5. --port/--host only with --transport http ---------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "8001"],
        ["--host", "127.0.0.1"],
        ["--emulator", "--host", "localhost", "--port", "8001"],
        ["--transport", "stdio", "--port", "8001"],
        ["--port", "8001", "emulator"],
    ],
)
def test_port_or_host_without_http_transport_is_refused(tmp_path: Path, args: list[str]) -> None:
    done = run(args, base_env(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [STDIO_REFUSAL]


def test_documented_commands_pass_port_or_host_only_with_http_transport() -> None:
    """The README's commands and snippets, and server.json's stdio package, never give --port/--host to stdio."""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if "runloop-scenarios-mcp" in line and ("--port" in line or "--host" in line) and "|" not in line:
            assert "--transport http" in line, line
    for block in _readme_json_blocks():
        for entry in block.get("servers", block.get("mcpServers", {})).values():
            arguments = entry.get("args", [])
            if "--port" in arguments or "--host" in arguments:
                assert "http" in arguments, entry
    registry = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
    for package in registry["packages"]:
        if package["transport"]["type"] == "stdio":
            names = json.dumps(package.get("packageArguments", [])) + json.dumps(package.get("runtimeArguments", []))
            assert "--port" not in names and "--host" not in names


def _readme_json_blocks() -> list[dict[str, Any]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks: list[dict[str, Any]] = []
    for chunk in text.split("```json")[1:]:
        try:
            parsed = json.loads(chunk.split("```", 1)[0])
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            blocks.append(parsed)
    return blocks


# --- 6. the emulator says how to use it ----------------------------------------------------------


def test_the_emulator_prints_a_command_that_points_the_server_at_it(tmp_path: Path) -> None:
    port = free_port()
    emulator = subprocess.Popen(
        [str(SCRIPT), "emulator", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base_env(tmp_path),
        text=True,
    )
    try:
        assert emulator.stderr is not None
        lines = [emulator.stderr.readline(), emulator.stderr.readline()]
        assert lines[0] == f"Runloop emulator listening on http://127.0.0.1:{port}\n", lines
        label, _, command = lines[1].partition(": ")
        assert label == "Point the MCP server at it", lines
        words = shlex.split(command)
        assert words[-1] == "runloop-scenarios-mcp", words
        assignments = dict(word.split("=", 1) for word in words[:-1])
        assert assignments == {"RUNLOOP_BASE_URL": f"http://127.0.0.1:{port}", "RUNLOOP_API_KEY": "any"}

        session = open_session([], base_env(tmp_path, **assignments))  # the printed command, as given
        page = session.request(call(2, "list_scenarios", {"limit": 2}))
        assert page["result"]["structuredContent"]["returned"] == 2, page
        assert session.close() == 0

        emulator.send_signal(signal.SIGINT)
        out, err = emulator.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.communicate()
    assert emulator.returncode == 0, err
    assert out == "" and "Traceback" not in err


def test_the_emulator_with_a_key_names_it_without_echoing_it(tmp_path: Path) -> None:
    key = "emulator-key-4d1f9a"
    port = free_port()
    emulator = subprocess.Popen(
        [str(SCRIPT), "emulator", "--port", str(port), "--api-key", key],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base_env(tmp_path),
        text=True,
    )
    try:
        assert emulator.stderr is not None
        lines = [emulator.stderr.readline(), emulator.stderr.readline()]
        emulator.send_signal(signal.SIGTERM)
        out, err = emulator.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.communicate()
    assert "RUNLOOP_API_KEY=<your --api-key>" in lines[1], lines
    assert key not in "".join(lines) + err
    assert emulator.returncode == 0, err
    assert out == "" and "Traceback" not in err
