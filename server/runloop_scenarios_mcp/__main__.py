"""`python -m runloop_scenarios_mcp` is the console script."""

from .cli import main

main()
