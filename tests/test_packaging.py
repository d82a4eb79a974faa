"""Packaging: the wheel builds and installs into a fresh virtualenv with a working console script, and
``server.json`` (the MCP registry manifest) agrees with pyproject.toml and with the code.

The fresh venv gets the wheel only (``--no-deps``); its dependencies are borrowed from the dev venv
through a ``.pth`` line, so the test needs no network and still runs the installed copy, not server/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from runloop_scenarios_mcp.cli import build_parser
from tests.support.common import ROOT

pytestmark = pytest.mark.anyio

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SERVER_JSON = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
SOURCE = ROOT / "server" / "runloop_scenarios_mcp"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv holding only the built wheel (dependencies borrowed, read-only, from the dev venv)."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    yield venv / "bin"


def test_wheel_contents(installed: Path) -> None:
    wheel = next((installed.parent.parent / "dist").glob("*.whl"))
    assert wheel.name == f"{PYPROJECT['name'].replace('-', '_')}-{PYPROJECT['version']}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"runloop_scenarios_mcp/{p.name}" for p in SOURCE.glob("*.py")}
    assert modules <= names, modules - names
    assert "runloop_scenarios_mcp/py.typed" in names
    assert "runloop_scenarios_mcp/emulator/data/vocabulary.json" in names  # package data, read at import
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "server/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "runloop-scenarios-mcp = runloop_scenarios_mcp.cli:main" in text


def test_console_script_version_and_help(installed: Path) -> None:
    script = installed / "runloop-scenarios-mcp"
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert version.stdout.strip() == f"runloop-scenarios-mcp {PYPROJECT['version']}"
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    for needle in ("--emulator", "--read-only", "--transport", "RUNLOOP_API_KEY", "Claude"):
        assert needle in shown.stdout, needle
    where = subprocess.run(
        [str(installed / "python"), "-c", "import runloop_scenarios_mcp as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed.parent)), f"imported from {where}, not the installed wheel"


@pytest.mark.parametrize("how", ["console script", "python -m"])
async def test_installed_server_lists_tools_over_stdio(installed: Path, how: str) -> None:
    if how == "console script":
        params = StdioServerParameters(command=str(installed / "runloop-scenarios-mcp"), args=["--emulator"])
    else:
        params = StdioServerParameters(
            command=str(installed / "python"), args=["-m", "runloop_scenarios_mcp", "--emulator"]
        )
    async with Client(params, mode="legacy") as client:
        assert client.server_info is not None and client.server_info.version == PYPROJECT["version"]
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {"list_scenarios", "get_scenario", "update_scenario"}
        page = await client.call_tool("list_scenarios", {"limit": 1})
        assert page.structured_content is not None and page.structured_content["returned"] == 1


def _env_vars_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for path in SOURCE.glob("*.py"):
        if path.name.startswith("emulator"):
            continue  # the emulator's sample data mentions names that are not configuration
        found |= set(re.findall(r"""["'](RUNLOOP_[A-Z_]+[A-Z])["']""", path.read_text(encoding="utf-8")))
    return found


def test_server_json_matches_pyproject_and_the_code() -> None:
    assert SERVER_JSON["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    assert SERVER_JSON["$schema"].endswith("/server.schema.json")
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", SERVER_JSON["name"])
    assert SERVER_JSON["name"].endswith("/" + PYPROJECT["name"])
    assert 1 <= len(SERVER_JSON["description"]) <= 100
    assert SERVER_JSON["version"] == PYPROJECT["version"]
    (package,) = SERVER_JSON["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == PYPROJECT["name"]
    assert package["version"] == PYPROJECT["version"]
    assert package["transport"] == {"type": "stdio"}
    declared = {variable["name"] for variable in package["environmentVariables"]}
    read = _env_vars_read_by_the_code()
    assert {"RUNLOOP_API_KEY", "RUNLOOP_BASE_URL", "RUNLOOP_MCP_READ_ONLY"} <= read
    assert declared == read, f"declared but not read: {declared - read}; read but not declared: {read - declared}"
    for variable in package["environmentVariables"]:
        assert variable["description"], variable["name"]
        secret = variable["name"] in {
            "RUNLOOP_API_KEY",
            "RUNLOOP_MCP_SECRET",
            "RUNLOOP_MCP_HTTP_TOKEN",
            "RUNLOOP_MCP_DATABASE_URL",  # may hold a password
        }
        assert variable.get("isSecret", False) is secret, variable["name"]


def test_readme_carries_the_registry_ownership_marker() -> None:
    """PyPI packages prove ownership to the MCP registry with an ``mcp-name:`` line in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"mcp-name: {SERVER_JSON['name']}" in readme


def test_help_names_every_environment_variable() -> None:
    epilog = build_parser().epilog or ""
    missing = [name for name in _env_vars_read_by_the_code() if name not in epilog]
    assert not missing, f"--help does not mention {missing}"
