"""`python -m runloop_scenarios_mcp` is the console script."""

from runloop_scenarios_mcp.cli import main

main()
