"""Cold start: launch the stdio server and time until its first tools/list answer (median of N).

Baseline in the same run: a bare MCPServer from the SDK with one trivial tool, launched the same
way, so the figure is a ratio that survives a noisy shared machine. Also reports the import time
of the package (``python -X importtime``-free: wall time of ``import runloop_scenarios_mcp.app``).

Also the time from launch to the first list_scenarios answer (ours only: the services' imports, the
tokenizers and, with --emulator, the data set are built after the first tools/list answer, so this
shows what that costs).
``--command`` times another build's console script as a third column (e.g. a git worktree of an
earlier commit), interleaved with the other two.

Usage: python bench/startup.py [--runs 20] [--command /tmp/before/.venv/bin/runloop-scenarios-mcp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import anyio
from mcp import Client, StdioServerParameters

BASELINE = """
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="baseline")
@server.tool()
def ping() -> str:
    return "pong"
server.run()
"""


def server_command() -> tuple[str, list[str]]:
    script = shutil.which("runloop-scenarios-mcp", path=os.path.dirname(sys.executable))
    if script:
        return script, ["--emulator", "--log-level", "WARNING"]
    return sys.executable, ["-m", "runloop_scenarios_mcp", "--emulator", "--log-level", "WARNING"]


async def time_to_tools(command: str, args: list[str], first_list: bool = False) -> tuple[float, float]:
    """(seconds to the first tools/list answer, seconds to the first list_scenarios answer or 0.0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    params = StdioServerParameters(command=command, args=args, env=env)
    start = time.perf_counter()
    listed = 0.0
    async with Client(params, mode="legacy") as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - start
        assert tools.tools, "no tools listed"
        if first_list:
            result = await client.call_tool("list_scenarios", {})
            listed = time.perf_counter() - start
            assert not result.is_error, result.content
    return elapsed, listed


def _import_time() -> float:
    code = "import time; t=time.perf_counter(); import runloop_scenarios_mcp.app; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--command", help="another build's console script to time as well (same flags as ours)")
    args = parser.parse_args()
    runs = args.runs
    ours_cmd = server_command()
    base_cmd = (sys.executable, ["-c", BASELINE])
    other_cmd = (args.command, ours_cmd[1]) if args.command else None
    ours: list[float] = []
    base: list[float] = []
    other: list[float] = []
    ours_list: list[float] = []
    other_list: list[float] = []
    for _ in range(runs):  # interleaved, so drift in machine load hits all alike
        tools, listed = anyio.run(time_to_tools, *ours_cmd, True)
        ours.append(tools)
        ours_list.append(listed)
        base.append(anyio.run(time_to_tools, *base_cmd)[0])
        if other_cmd is not None:
            tools, listed = anyio.run(time_to_tools, *other_cmd, True)
            other.append(tools)
            other_list.append(listed)
    imports = [_import_time() for _ in range(runs)]
    ours_med, base_med = statistics.median(ours), statistics.median(base)
    rows = [("runloop-scenarios-mcp", ours), ("bare MCPServer", base)]
    rows += [("--command", other)] if other else []
    print(f"cold start to first tools/list, median of {runs} interleaved runs:")
    for label, values in rows:
        low, high = min(values) * 1000, max(values) * 1000
        print(f"  {label:<22} {statistics.median(values) * 1000:8.1f} ms  (min {low:.1f}, max {high:.1f})")
    print(f"  ratio ours / bare      {ours_med / base_med:8.2f}x")
    if other:
        print(f"  ratio --command / bare {statistics.median(other) / base_med:8.2f}x")
    print(f"launch to first list_scenarios answer (default arguments), median of {runs}:")
    for label, values in [("runloop-scenarios-mcp", ours_list)] + ([("--command", other_list)] if other else []):
        low, high = min(values) * 1000, max(values) * 1000
        print(f"  {label:<22} {statistics.median(values) * 1000:8.1f} ms  (min {low:.1f}, max {high:.1f})")
    print(f"import runloop_scenarios_mcp.app, median of {runs}: {statistics.median(imports) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
