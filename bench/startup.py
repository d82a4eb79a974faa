"""Cold start: launch the stdio server and time until its first tools/list answer (median of N).

Baseline in the same run: a bare MCPServer from the SDK with one trivial tool, launched the same
way, so the figure is a ratio that survives a noisy shared machine. Also reports the import time
of the package (``python -X importtime``-free: wall time of ``import runloop_scenarios_mcp.app``).

Usage: python bench/startup.py [--runs 10]
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


async def time_to_tools(command: str, args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOOP_")}
    params = StdioServerParameters(command=command, args=args, env=env)
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - start
        assert tools.tools, "no tools listed"
    return elapsed


def _import_time() -> float:
    code = "import time; t=time.perf_counter(); import runloop_scenarios_mcp.app; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    ours_cmd = server_command()
    base_cmd = (sys.executable, ["-c", BASELINE])
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):  # interleaved, so drift in machine load hits both alike
        ours.append(anyio.run(time_to_tools, *ours_cmd))
        base.append(anyio.run(time_to_tools, *base_cmd))
    imports = [_import_time() for _ in range(runs)]
    ours_med, base_med = statistics.median(ours), statistics.median(base)
    print(f"cold start to first tools/list, median of {runs}:")
    for label, values in (("runloop-scenarios-mcp", ours), ("bare MCPServer", base)):
        low, high = min(values) * 1000, max(values) * 1000
        print(f"  {label:<22} {statistics.median(values) * 1000:8.1f} ms  (min {low:.1f}, max {high:.1f})")
    print(f"  ratio ours / bare      {ours_med / base_med:8.2f}x")
    print(f"import runloop_scenarios_mcp.app, median of {runs}: {statistics.median(imports) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
