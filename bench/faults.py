"""Fault campaign, long run: 1,000 MCP tool calls (list, get, preview, apply) with 20% of upstream requests faulted.

Every fault kind the loopback emulator has (429 with Retry-After, 5xx, HTML 502, malformed JSON, empty and
truncated bodies, dropped connections, latency beyond the timeout, slow bodies). The server is the real one
(``build_server``) over real loopback HTTP, with a 0.3 s timeout and a 1 s retry budget so faults are quick.
Prints the figures and every problem; exits 1 when there is any (crash, hung call, unclear error, partial or
misreported write, final data not equal to the replayed applies, API key found anywhere).

Usage: python bench/faults.py [--calls 1000] [--rate 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.campaign import Campaign, CampaignConfig, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = CampaignConfig(calls=args.calls, rate=args.rate, seed=args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        report = anyio.run(Campaign(config, Path(workdir)).run)
    print(
        f"fault campaign: {args.calls} calls, fault rate {args.rate:.0%}, seed {args.seed}, call bound "
        f"{config.call_bound:.0f} s"
    )
    for line in summary(report):
        print("  " + line)
    print("RESULT " + ("PASS" if not report.problems else f"FAIL ({len(report.problems)} problems)"))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
