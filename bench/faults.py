"""Faults, long run: a campaign of 1,000 MCP tool calls with 20% of upstream requests faulted, then hostile
upstreams and slow HTTP clients, one kind at a time, against the installed console script (issue 15).

Campaign: every fault kind the loopback emulator has (429 with Retry-After, 5xx, HTML 502, malformed JSON,
empty and truncated bodies, dropped connections, latency beyond the timeout, slow bodies). The server is the
real one (``build_server``) over real loopback HTTP, with a 0.3 s timeout and a 1 s retry budget so faults
are quick. Problems: a crash, a hung call, an unclear error, a partial or misreported write, final data not
equal to the replayed applies, the API key found anywhere.

Upstream kinds (``tests/support/hostile.py``): for each, a fresh ``runloop-scenarios-mcp`` process over stdio
with its default settings, every upstream request it makes answered with that fault (1 GB bodies with and
without a length, an endless body, a gzip bomb, an endless trickle, silence, a text 200, a 204, an HTML 500,
deep nesting, the API key echoed); get_scenario and list_scenarios are timed. Printed per kind: the worst call
time, the process's peak RSS, upstream requests made, progress notifications sent, and whether it stayed up and
answered once the fault was gone. Problems: no answer, a crash, success on a broken answer, the key leaked.

HTTP (``--transport http --emulator``, the process limited to 1,024 file descriptors): 1,100 clients trickling
their headers, 500 trickling a body, 10,000 legacy sessions left open; ordinary requests meanwhile. Printed:
requests answered and failed, the slowest, slow connections the server still held at the end, peak RSS, stderr
bytes and lines. Problems: a request not answered, the server down, a traceback on stderr.

Exits 1 when any part found a problem.

Usage: python bench/faults.py [--calls 1000] [--rate 0.2] [--seed 7] [--parts campaign,upstream,http]
       [--seconds 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.campaign import Campaign, CampaignConfig, summary
from tests.support.hostile import (
    CANARY,
    FD_LIMIT,
    UPSTREAM_KINDS,
    probe_legacy_sessions,
    probe_slow_clients,
    probe_upstream_kind,
    raise_own_fd_limit,
)

from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator


def campaign(args: argparse.Namespace, workdir: Path) -> int:
    config = CampaignConfig(calls=args.calls, rate=args.rate, seed=args.seed)
    report = anyio.run(Campaign(config, workdir).run)
    print(
        f"fault campaign: {args.calls} calls, fault rate {args.rate:.0%}, seed {args.seed}, call bound "
        f"{config.call_bound:.0f} s"
    )
    for line in summary(report):
        print("  " + line)
    return len(report.problems)


def upstream(workdir: Path) -> int:
    print(
        "hostile upstreams: a fresh server per kind, default settings (--call-timeout 40, --max-response-bytes 32 MiB)"
    )
    print(
        f"  {'kind':32} {'worst call':>10} {'peak RSS':>9} {'RSS after':>9} {'requests':>8} {'progress':>8}  up  answer"
    )
    problems = 0
    with LoopbackEmulator(Emulator(api_key=CANARY)) as loopback:
        for kind, fault in UPSTREAM_KINDS:
            report = probe_upstream_kind(loopback, kind, fault, workdir)
            up = "yes" if report.alive and report.recovered else "NO"
            print(
                f"  {kind:32} {report.worst_s:>8.1f} s {report.peak_rss_mib:>5.0f} MiB "
                f"{report.rss_after_mib:>5.0f} MiB {report.upstream_requests:>8} {report.progress:>8}  {up:3} "
                f"{report.answers[0][:100]}"
            )
            for problem in report.problems:
                print(f"    PROBLEM {problem}")
            problems += len(report.problems)
    return problems


def http(seconds: float, workdir: Path) -> int:
    raise_own_fd_limit(4096)
    print(f"slow HTTP clients: --transport http, the server limited to {FD_LIMIT} file descriptors, {seconds:g} s each")
    problems = 0
    reports = [
        probe_slow_clients("headers", 1100, seconds, workdir),
        probe_slow_clients("body", 500, seconds, workdir),
        probe_legacy_sessions(10_000, workdir),
    ]
    for report in reports:
        if report.sessions:
            outcome = (
                f"{report.sessions} sessions kept, {report.failed} refused (503), slowest answer {report.worst_s:.2f} s"
            )
        else:
            outcome = (
                f"{report.opened} opened; ordinary requests {report.answered} answered, {report.failed} failed, "
                f"slowest {report.worst_s:.2f} s; {report.still_open} slow ones still held at the end"
            )
        print(
            f"  {report.label}: {outcome}; peak RSS {report.peak_rss_mib:.0f} MiB; stderr {report.stderr_bytes:,} "
            f"bytes in {report.stderr_lines} lines, {report.tracebacks} tracebacks"
        )
        bad = (not report.alive) + report.tracebacks + (report.failed if not report.sessions else 0)
        if bad:
            print(
                f"    PROBLEM server {'up' if report.alive else 'DOWN'}, failed {report.failed}, "
                f"tracebacks {report.tracebacks}"
            )
        problems += bad
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", default="campaign,upstream,http", help="which parts to run (comma-separated)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each slow-client probe lasts")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    problems = 0
    with tempfile.TemporaryDirectory() as workdir:
        if "campaign" in parts:
            problems += campaign(args, Path(workdir))
        if "upstream" in parts:
            problems += upstream(Path(workdir))
        if "http" in parts:
            problems += http(args.seconds, Path(workdir))
    print("RESULT " + ("PASS" if not problems else f"FAIL ({problems} problems)"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
