"""50 concurrent tool calls over streamable HTTP, in both protocol modes, all answered correctly.

The server is the real HTTP app (``serve.http_app``) under uvicorn on a free loopback port; the
client is the SDK's streamable HTTP client. Reads, dry runs and guarded applies on distinct
scenarios run at once; every answer is checked against what was asked, and every apply lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.support.common import make_settings
from tests.support.serving import serving

pytestmark = pytest.mark.anyio

CONCURRENT = 50


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_fifty_concurrent_calls_over_http(tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path, emulator=True, transport="http", api_key=None)
    with serving(settings) as url:
        async with Client(url, mode=mode) as client:
            first = await client.call_tool("list_scenarios", {"limit": 40, "fields": ["id"], "max_tokens": 4000})
            assert first.structured_content is not None
            ids = [s["id"] for s in first.structured_content["scenarios"]]
            assert len(ids) == 40
            cursor = first.structured_content["next_cursor"]
            writes = ids[:10]  # distinct scenarios: applies do not contend
            results: dict[int, Any] = {}

            async def one(i: int) -> None:
                if i < 10:  # dry run then apply, both inside the concurrent burst
                    changes = {"metadata": {"concurrent": f"{mode}-{i}"}}
                    preview = await client.call_tool("update_scenario", {"scenario_id": writes[i], "changes": changes})
                    assert preview.structured_content is not None, preview.content
                    token = preview.structured_content["preview_token"]
                    arguments = {"scenario_id": writes[i], "changes": changes, "dry_run": False, "preview_token": token}
                    results[i] = await client.call_tool("update_scenario", arguments)
                elif i < 30:
                    results[i] = await client.call_tool("get_scenario", {"scenario_id": ids[i], "max_tokens": 2000})
                elif i < 40:
                    results[i] = await client.call_tool("list_scenarios", {"cursor": cursor, "max_tokens": 1500})
                else:
                    results[i] = await client.call_tool("list_scenarios", {"search": "scn_", "max_tokens": 1000})

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    for i in range(CONCURRENT):
                        group.start_soon(one, i)

            assert sorted(results) == list(range(CONCURRENT))
            for i, result in results.items():
                assert not result.is_error, (i, result.content)
                data = result.structured_content
                assert data is not None
                if i < 10:
                    assert data["applied"] is True and data["scenario_id"] == writes[i]
                elif i < 30:
                    assert data["scenario"]["id"] == ids[i]
                elif i < 40:  # every continuation of the same cursor resumes at the same place
                    assert data["scenarios"][0]["id"] == results[30].structured_content["scenarios"][0]["id"]
                    assert data.get("estimated_tokens", 0) <= 1500  # (a first page says it; later ones fit as well)
                else:
                    assert data["estimated_tokens"] <= 1000
            for i, sid in enumerate(writes):  # the writes landed, each on its own scenario
                after = await client.call_tool("get_scenario", {"scenario_id": sid, "max_tokens": 4000})
                assert after.structured_content is not None
                assert after.structured_content["scenario"]["metadata"]["concurrent"] == f"{mode}-{i}"
