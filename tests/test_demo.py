"""`make demo` runs `runloop-scenarios-mcp demo`: a real MCP client drives the console script over stdio.

The demo once crashed on a field the lean list envelope leaves out; this runs it whole, as a new user would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.support.common import ROOT


def test_the_demo_runs_every_step() -> None:
    script = shutil.which("runloop-scenarios-mcp", path=os.path.dirname(sys.executable))
    assert script, "the console script is not installed beside this Python"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNLOOP_")}
    done = subprocess.run([script, "demo"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    for step in ("1. list_scenarios(max_tokens=1500)", "2. next page with cursor", "4. update_scenario dry run"):
        assert step in done.stdout, done.stdout[-2000:]
    assert "5. apply with the token: applied=True, verified=True" in done.stdout
    assert "6. the same token again is refused" in done.stdout
    assert "applied=True, verified=True: the scenario is as it was" in done.stdout
