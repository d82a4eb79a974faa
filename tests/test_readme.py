"""The README is checked against the code: the Tools section is what the live server lists and answers,
every host config snippet starts a working server, and the configuration table names every flag and
environment variable. Regenerate the Tools section with ``UPDATE_README=1 pytest tests/test_readme.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.cli import build_parser
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator
from tests.support.common import CANARY_KEY, ROOT

pytestmark = pytest.mark.anyio

README = ROOT / "README.md"
SCRIPT = Path(sys.executable).parent / "runloop-scenarios-mcp"
BEGIN, END = "<!-- BEGIN TOOLS -->", "<!-- END TOOLS -->"
SHORTEN_AT = 100
MASKED = {"preview_token": "pv_…", "expires_at": "2026-01-01T00:10:00Z", "journal_entry": "j_…"}
"""Values that differ on every run; the README shows a stand-in."""


def _volatile(value: Any) -> dict[str, str]:
    """Each run-dependent value in ``value`` (at any depth) -> its stand-in."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in MASKED and isinstance(item, str):
                found[item] = MASKED[key]
            found |= _volatile(item)
    elif isinstance(value, list):
        for item in value:
            found |= _volatile(item)
    return found


def _masked(text: str, volatile: dict[str, str] | None) -> str:
    for actual, stand_in in (volatile or {}).items():
        text = text.replace(actual, stand_in)
    return text


def _shorten(value: Any, volatile: dict[str, str] | None = None) -> Any:
    """``value`` as the README shows it: run-dependent values masked, long strings (but hints) shortened."""
    if isinstance(value, str):
        value = _masked(value, volatile)
        return value if len(value) <= SHORTEN_AT else value[: SHORTEN_AT - 1] + "…"
    if isinstance(value, dict):
        return {k: _shorten(v, volatile) if k != "hint" else _masked(v, volatile) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, volatile) for v in value]
    return value


def _arguments_table(schema: dict[str, Any]) -> list[str]:
    rows = ["| Argument | Type | Required / default | Description |", "| --- | --- | --- | --- |"]
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        types = [option.get("type", "object") for option in prop.get("anyOf", [prop])]
        kind = " or ".join(str(t) for t in types if t != "null") or "any"
        if "enum" in json.dumps(prop):
            enum = next(o["enum"] for o in prop.get("anyOf", [prop]) if "enum" in o)
            kind = " \\| ".join(f"`{e}`" for e in enum)
        need = (
            "required"
            if name in required
            else f"default `{json.dumps(prop['default'])}`"
            if "default" in prop
            else "optional"
        )
        text = prop["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {kind} | {need} | {text} |")
    return rows


@contextlib.contextmanager
def _repeatable_randomness() -> Iterator[None]:
    """Preview tokens and journal entry ids are random and hold the time, and their length in tokens varies
    with their bytes, so a result's ``estimated_tokens`` would vary from run to run. Here they come from a
    counter at a fixed time, so the section is the same on every run (their text is masked anyway): hex
    strings are all digits (the same token count whichever thread draws first), bytes count up."""
    drawn = itertools.count(1)
    with (
        mock.patch.object(secrets, "token_bytes", lambda n=32: next(drawn).to_bytes(n, "big")),
        mock.patch.object(secrets, "token_hex", lambda n=32: f"{next(drawn):0{2 * n}d}"),
        mock.patch.object(time, "time", lambda: 1_790_000_000.0),
    ):
        yield


async def generate_tools_section(journal: Path) -> str:
    """The README's Tools section, from tools/list and real calls against the emulator."""
    settings = Settings(emulator=True, secret=SecretStr("readme-example-secret-0123456789"), journal_path=journal)
    examples: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    with _repeatable_randomness():
        return await _generate(settings, journal, examples)


async def _generate(
    settings: Settings, journal: Path, examples: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]
) -> str:
    async with Client(build_server(settings), mode="legacy") as client:
        tools = (await client.list_tools()).tools

        async def run(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error and result.structured_content is not None, result.content
            content = dict(result.structured_content)
            examples.setdefault(tool, []).append((arguments, content))
            return content

        page = await run("list_scenarios", {"search": "csv", "limit": 2, "fields": ["id", "name", "status"]})
        scenario_id = page["scenarios"][0]["id"]
        await run("get_scenario", {"scenario_id": scenario_id, "max_tokens": 800})
        changes = {"metadata": {"owner": "team-a"}}
        preview = await run("update_scenario", {"scenario_id": scenario_id, "changes": changes})
        token = preview["preview_token"]
        apply = {"scenario_id": scenario_id, "changes": changes, "dry_run": False, "preview_token": token}
        await run("update_scenario", apply)

    volatile = {str(journal): "~/.local/state/runloop-scenarios-mcp/journal.jsonl"}
    for calls in examples.values():
        for arguments, result in calls:
            volatile |= _volatile(arguments) | _volatile(result)
    lines: list[str] = []
    for tool in tools:
        description = tool.description or ""
        lines += [f"### `{tool.name}`: {tool.title}", "", description.split("\n\n")[0].replace("\n", " "), ""]
        lines += [*_arguments_table(tool.input_schema), ""]
        for arguments, result in examples.get(tool.name, []):
            shown = dict(_shorten(arguments, volatile))
            if shown.get("scenario_id") == scenario_id:
                shown["scenario_id"] = scenario_id
            lines += [
                "```json",
                json.dumps({"name": tool.name, "arguments": shown}, ensure_ascii=False),
                "```",
                "",
                "<details><summary>Result (<code>structuredContent</code>)</summary>",
                "",
                "```json",
                json.dumps(_shorten(result, volatile), indent=2, ensure_ascii=False),
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def _current_section(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


async def test_tools_section_matches_the_live_server(tmp_path: Path) -> None:
    expected = await generate_tools_section(tmp_path / "journal.jsonl")
    text = README.read_text(encoding="utf-8")
    if os.environ.get("UPDATE_README") == "1":
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + expected + text[end:], encoding="utf-8")
        text = README.read_text(encoding="utf-8")
    assert _current_section(text) == expected, (
        "README.md's Tools section is stale; regenerate it with: UPDATE_README=1 .venv/bin/python -m pytest "
        "tests/test_readme.py"
    )


# --- host config snippets --------------------------------------------------------------------


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _json_servers() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for block in _code_blocks("json"):
        config = json.loads(block)
        if not isinstance(config, dict) or ("mcpServers" not in config and "servers" not in config):
            continue
        key = "mcpServers" if "mcpServers" in config else "servers"
        found += [(f"{key}.{name}", entry) for name, entry in config[key].items()]
    return found


def _claude_code_servers() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for block in _code_blocks("sh"):
        for line in block.splitlines():
            if not line.startswith("claude mcp add "):
                continue
            words = shlex.split(line)
            split = words.index("--")
            options, command = words[3:split], words[split + 1 :]
            env: dict[str, str] = {}
            rest: list[str] = []
            i = 0
            while i < len(options):
                if options[i] in ("-e", "--env"):
                    key, _, value = options[i + 1].partition("=")
                    env[key] = value
                    i += 2
                elif options[i] in ("-s", "--scope", "-t", "--transport"):
                    i += 2
                else:
                    rest.append(options[i])
                    i += 1
            assert len(rest) == 1, f"expected `claude mcp add NAME [options] -- command`: {line}"
            found.append((f"claude-code.{rest[0]}", {"command": command[0], "args": command[1:], "env": env}))
    return found


def test_readme_has_a_snippet_for_every_host() -> None:
    names = [name for name, _ in _json_servers() + _claude_code_servers()]
    assert any(n.startswith("mcpServers.") for n in names), "Claude Desktop / Cursor"
    assert any(n.startswith("servers.") for n in names), "VS Code"
    assert any(n.startswith("claude-code.") for n in names), "Claude Code"
    text = README.read_text(encoding="utf-8")
    for needle in ("claude_desktop_config.json", ".vscode/mcp.json", ".cursor/mcp.json", "claude mcp add"):
        assert needle in text


def _placeholder_free(value: str) -> str:
    """The key a person would paste: stand-ins and host-side variables become the test key."""
    return CANARY_KEY if value.startswith(("${", "rl_your")) else value


async def test_every_config_snippet_starts_a_working_server(loopback: LoopbackEmulator) -> None:
    servers = _json_servers() + _claude_code_servers()
    assert len(servers) >= 5
    failures: dict[str, str] = {}

    async def check(label: str, entry: dict[str, Any]) -> None:
        assert entry.get("type", "stdio") == "stdio"
        assert entry["command"] == "runloop-scenarios-mcp", f"{label}: the command is the console script"
        args = list(entry.get("args", []))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
        env |= {k: _placeholder_free(v) for k, v in entry.get("env", {}).items()}
        if "--emulator" not in args:
            assert env.get("RUNLOOP_API_KEY") == CANARY_KEY, f"{label}: the key goes in the host's env config"
            env["RUNLOOP_BASE_URL"] = loopback.base_url  # the real API, as far as the server can tell
        params = StdioServerParameters(command=str(SCRIPT), args=args, env=env)
        try:
            async with Client(params, mode="legacy") as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                expected = {"list_scenarios", "get_scenario"} | (
                    set() if "--read-only" in args else {"update_scenario"}
                )
                assert tools == expected, tools
                page = await client.call_tool("list_scenarios", {"limit": 1})
                assert not page.is_error, page.content
        except Exception as exc:  # collected so one run reports every broken snippet
            failures[label] = repr(exc)

    async with anyio.create_task_group() as group:
        for label, entry in servers:
            group.start_soon(check, label, entry)
    assert not failures, failures
    assert any(r.method == "GET" and r.authorized for r in loopback.emulator.requests), "no snippet reached the API"


# --- configuration table ---------------------------------------------------------------------


def test_configuration_table_names_every_flag_and_environment_variable() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Configuration") : text.index("## Undoing a change")]
    flags = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing_flags = sorted(flag for flag in flags if f"`{flag}" not in table)
    assert not missing_flags, f"README configuration table lacks {missing_flags}"
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "server" / "runloop_scenarios_mcp").glob("*.py"))
    variables = set(re.findall(r"""["'](RUNLOOP_[A-Z_]+[A-Z])["']""", source))
    missing_vars = sorted(v for v in variables if f"`{v}" not in table)
    assert not missing_vars, f"README configuration table lacks {missing_vars}"


def test_sections_are_in_place() -> None:
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    for heading in ("Safety", "Install", "Tools", "Configuration", "Undoing a change", "Troubleshooting"):
        assert heading in headings, heading
    assert headings.index("Safety") < headings.index("Install") < headings.index("Tools")
    assert "make demo" in text and "make test" in text and "--read-only" in text and "25,000" in text
