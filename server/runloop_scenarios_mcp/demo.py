"""`runloop-scenarios-mcp demo`: a real MCP session over stdio against the embedded emulator.

It launches this package's own console script with ``--emulator`` as a subprocess, speaks MCP to it
with the official SDK client, and prints what an agent sees: the tools, a budgeted page, the next
page, one scenario, a dry-run preview of an edit, and the guarded apply.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from runloop_scenarios_mcp.services.budget import count_json, count_text


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _show(title: str, value: Any, limit: int = 900) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    if len(text) > limit:
        text = text[:limit] + f"\n  ... ({len(text) - limit} more characters)"
    _say(f"--- {title}")
    _say(text)


def _structured(result: CallToolResult) -> dict[str, Any]:
    if result.is_error or result.structured_content is None:
        text = result.content[0].text if result.content and hasattr(result.content[0], "text") else "?"
        raise RuntimeError(f"tool error: {text}")
    return dict(result.structured_content)


def _command() -> tuple[str, list[str]]:
    script = shutil.which("runloop-scenarios-mcp", path=os.path.dirname(sys.executable))
    if script:
        return script, ["--emulator", "--log-level", "WARNING"]
    return sys.executable, ["-m", "runloop_scenarios_mcp", "--emulator", "--log-level", "WARNING"]


async def _session(journal: str) -> None:
    command, args = _command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    env["RUNLOOP_MCP_JOURNAL"] = journal
    params = StdioServerParameters(command=command, args=args, env=env)
    _say(f"$ {os.path.basename(command)} {' '.join(args)}   (MCP over stdio, embedded emulator, no account)")
    async with Client(params, mode="legacy") as client:
        info = client.server_info
        name, version = (info.name, info.version) if info else ("?", "")
        _say(f"connected to {name} {version}, protocol {client.protocol_version}")
        tools = (await client.list_tools()).tools
        listing = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
        _say(f"tools: {', '.join(t.name for t in tools)}  (tools/list is {count_json(listing)} tokens)")
        _say()

        page = _structured(await client.call_tool("list_scenarios", {"max_tokens": 1500, "include_total_count": True}))
        _say(
            f"1. list_scenarios(max_tokens=1500): {page['returned']} of {page['total_count']} scenarios, "
            f"{count_json(page)} tokens, has_more={page['has_more']}"
        )
        _say(f"   hint: {page.get('hint', '')}")
        _show("first scenario of the page (lean summary)", page["scenarios"][0])
        _say()

        nxt = _structured(await client.call_tool("list_scenarios", {"cursor": page["next_cursor"], "max_tokens": 1500}))
        cursor_tokens = count_text(page["next_cursor"])  # exact (count_json bounds short texts by their bytes)
        _say(f"2. next page with cursor ({cursor_tokens} tokens): {nxt['returned']} more, {count_json(nxt)} tokens")
        _say("   names: " + "; ".join(str(s["name"]) for s in nxt["scenarios"][:5]) + " ...")
        _say()

        target = page["scenarios"][0]["id"]
        full = _structured(await client.call_tool("get_scenario", {"scenario_id": target, "max_tokens": 2000}))
        tokens, clipped = full["estimated_tokens"], len(full["clipped"])
        _say(f"3. get_scenario({target}, max_tokens=2000): {tokens} tokens, clipped={clipped}")
        _say(f"   hint: {full['hint']}")
        _say()

        if not any(t.name == "update_scenario" for t in tools):
            return
        changes = {"metadata": {"reviewed_by": "demo-agent"}}
        preview = _structured(await client.call_tool("update_scenario", {"scenario_id": target, "changes": changes}))
        _say(f"4. update_scenario dry run: applied={preview['applied']}, nothing written")
        _show("diff", preview["diff"])
        body = preview.get("upstream_body", f"{preview['upstream_body_bytes']} bytes")
        _show("upstream body apply would send", body)
        token = preview["preview_token"]
        _say(f"   preview_token {token} ({len(token)} characters), expires at {preview['expires_at']}")
        _say(f"   the whole preview is {count_json(preview)} tokens (max_tokens={preview['max_tokens']})")
        _say()
        applied = _structured(
            await client.call_tool(
                "update_scenario",
                {
                    "scenario_id": target,
                    "changes": changes,
                    "dry_run": False,
                    "preview_token": preview["preview_token"],
                },
            )
        )
        _say(f"5. apply with the token: applied={applied['applied']}, verified={applied['verified']}")
        _say(f"   journal entry: {applied['journal_entry']} (a temporary journal, deleted after the demo)")
        _say(f"   hint: {applied['hint']}")
        replay = await client.call_tool(
            "update_scenario",
            {"scenario_id": target, "changes": changes, "dry_run": False, "preview_token": preview["preview_token"]},
        )
        first = replay.content[0]
        _say(f"6. the same token again is refused: {getattr(first, 'text', '')}")
        _say()
        undo = {"scenario_id": target, "restore": applied["journal_entry"]}
        back = _structured(await client.call_tool("update_scenario", undo))
        _say(f"7. undo: restore={applied['journal_entry']} previews the way back")
        _show("diff", back["diff"])
        restored = _structured(
            await client.call_tool(
                "update_scenario", {**undo, "dry_run": False, "preview_token": back["preview_token"]}
            )
        )
        _say(f"   applied={restored['applied']}, verified={restored['verified']}: the scenario is as it was")


def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="runloop-scenarios-mcp-demo-") as tmp:
        anyio.run(_session, os.path.join(tmp, "journal.jsonl"))
    return 0
