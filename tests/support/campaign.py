"""The fault campaign: many MCP tool calls against the loopback emulator while it injects faults.

Shared by ``tests/test_fault_campaign.py`` (a short run) and ``bench/faults.py`` (1,000 calls). The
server runs unmodified (``build_server``) over real loopback HTTP; only its timeouts and retry
budget are small so faults cost milliseconds. Every call goes through the in-memory MCP client.

What is checked, per call and at the end (each a list of violations, empty when all is well):

* no crash: no call raises, no result is the generic internal error, no ``tool_crash`` log line;
* no hung call: each call ends within ``CampaignConfig.call_bound`` seconds;
* every error is a clear tool error: one short message that says what to do, no traceback;
* every apply is all or nothing, and reported truthfully: the emulator's own state (read directly,
  past the faults) is either the previous version or exactly the previous version plus the
  previewed body; "applied" means it landed, "unchanged" means it did not, "could not be
  confirmed" may be either (counted as unknown);
* the final data equal the initial data plus the applies that landed, replayed on a clean emulator;
* the API key (a canary) appears nowhere: results, errors, log records (with tracebacks), the
  journal database, the emulator's recorded request bodies.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp_types import CallToolResult, TextContent
from pydantic import SecretStr

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.config import Settings
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import Fault, FaultPlan, LoopbackEmulator
from tests.support.journal import journal_entries

CAMPAIGN_CANARY = "rl_canary_campaign_93b1f0d2c7e84a56"
SIGNING_SECRET = "campaign-signing-secret-0123456789"
INTERNAL_ERROR = "Internal error in runloop-scenarios-mcp"
_ACTIONABLE = re.compile(
    r"try again|get_scenario|list_scenarios|dry run|dry_run|preview_token|check |wait|raise --timeout|send ",
    re.IGNORECASE,
)
_NOT_WRITTEN = "nothing was written"
_UNCONFIRMED = "could not be confirmed"
_MAY_LAND = "may still land"


def fault_mix(timeout: float) -> list[Fault]:
    """One of every fault kind the loopback emulator has, scaled to the client timeout."""
    return [
        Fault("status", status=429, retry_after="1", retry_after_ms="20"),  # honoured, short
        Fault("status", status=429, retry_after="30"),  # longer than the retry budget: give up at once
        Fault("status", status=500),
        Fault("status", status=503),
        Fault("html_error"),
        Fault("malformed_json"),
        Fault("empty_body"),
        Fault("truncated_body"),
        Fault("drop_connection"),
        Fault("latency", delay=timeout * 1.6),  # beyond the timeout
        Fault("slow_body", delay=timeout * 0.3),  # slow but within the per-read timeout
    ]


@dataclass
class CampaignConfig:
    calls: int = 120
    rate: float = 0.2
    seed: int = 7
    timeout: float = 0.3
    max_retries: int = 2
    retry_initial_delay: float = 0.02
    retry_budget: float = 1.0
    call_bound: float = 20.0
    """Seconds any one tool call may take; beyond it the call counts as hung (and is abandoned)."""
    update_pool: int = 12
    """How many scenarios the applies touch (few, so several applies hit the same scenario)."""


@dataclass
class CampaignReport:
    calls: int = 0
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    applies: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    upstream_requests: int = 0
    crashes: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    unclear_errors: list[str] = field(default_factory=list)
    apply_violations: list[str] = field(default_factory=list)
    final_state_violations: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    log_lines: int = 0
    journal_bytes: int = 0
    elapsed: float = 0.0

    @property
    def problems(self) -> list[str]:
        return [
            *self.crashes,
            *self.hung,
            *self.unclear_errors,
            *self.apply_violations,
            *self.final_state_violations,
            *self.leaks,
        ]


class _Capture(logging.Handler):
    """Every log record of the process, formatted with its traceback, unredacted (so a leak would show)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def result_text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def apply_body(scenario: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What the API makes of ``scenario`` after POSTing ``body``: replayed on a clean, fault-free emulator."""
    clean = Emulator(scenarios=[scenario])
    response = clean.handle(
        httpx.Request(
            "POST",
            f"http://replay/v1/scenarios/{scenario['id']}",
            json=body,
            headers={"Authorization": "Bearer replay"},
        )
    )
    assert response.status_code == 200, f"replay of an applied body failed: {response.text}"
    after = clean.get(scenario["id"])
    assert after is not None
    return after


class Campaign:
    def __init__(self, config: CampaignConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.report = CampaignReport()
        self.rng = random.Random(config.seed)
        self.emulator = Emulator(api_key=CAMPAIGN_CANARY)
        self.plan = FaultPlan(seed=config.seed)
        self.transcript: list[str] = []
        """Every result and error text, for the secret grep."""
        self._cursor: str | None = None

    def settings(self, base_url: str) -> Settings:
        c = self.config
        return Settings(
            api_key=SecretStr(CAMPAIGN_CANARY),
            base_url=base_url,
            secret=SecretStr(SIGNING_SECRET),
            journal_path=self.workdir / "journal.jsonl",
            timeout=c.timeout,
            connect_timeout=c.timeout,
            max_retries=c.max_retries,
            retry_initial_delay=c.retry_initial_delay,
            retry_budget=c.retry_budget,
            log_level="DEBUG",
        )

    async def run(self) -> CampaignReport:
        capture = _Capture()
        root = logging.getLogger()
        previous_level = root.level
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        started = time.perf_counter()
        try:
            with LoopbackEmulator(self.emulator, faults=self.plan) as loopback:
                await self._run(loopback)
        finally:
            root.removeHandler(capture)
            root.setLevel(previous_level)
        self.report.elapsed = time.perf_counter() - started
        self.report.faults = Counter(kind for _, _, kind in self.plan.injected)
        self.report.upstream_requests = len(self.emulator.requests)
        self.report.log_lines = len(capture.lines)
        self.report.crashes += [f"log: {line[:200]}" for line in capture.lines if "tool_crash" in line]
        self._grep_secrets(capture.lines)
        return self.report

    async def _run(self, loopback: LoopbackEmulator) -> None:
        initial = self.emulator.snapshot()
        self.expected = copy.deepcopy(initial)
        active = [sid for sid, s in initial.items() if s.get("status") != "archived"]
        pool = self.rng.sample(active, self.config.update_pool)
        self.pool, self.active = pool, active
        server = build_server(self.settings(loopback.base_url))
        async with Client(server, mode="legacy") as client:
            self.plan.random(self.config.rate, fault_mix(self.config.timeout))
            while self.report.calls < self.config.calls:
                roll = self.rng.random()
                if roll < 0.3:
                    await self._list(client)
                elif roll < 0.6:
                    await self._get(client)
                else:
                    await self._update(client, self.report.calls)
            self.plan.clear()
        self._check_final()

    # -- one call, with its bound --------------------------------------------------------------

    async def _call(self, client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult | None:
        self.report.calls += 1
        label = f"call {self.report.calls} {tool}"
        start = time.perf_counter()
        result: CallToolResult | None = None
        try:
            with anyio.fail_after(self.config.call_bound):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            self.report.hung.append(f"{label}: no answer within {self.config.call_bound} s")
        except Exception as exc:  # a crash of the server or the session: record it, keep going
            text = "".join(traceback.format_exception(exc))
            self.transcript.append(text)
            self.report.crashes.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
        self.report.durations.append(time.perf_counter() - start)
        if result is None:
            return None
        text = result_text(result)
        self.transcript.append(text)
        if result.structured_content is not None:
            self.transcript.append(json.dumps(result.structured_content, ensure_ascii=False))
        if result.is_error:
            self.report.errors[tool] += 1
            self._check_error(label, text)
        else:
            self.report.ok[tool] += 1
        return result

    def _check_error(self, label: str, text: str) -> None:
        if INTERNAL_ERROR in text:
            self.report.crashes.append(f"{label}: generic internal error")
        elif not text.strip() or "Traceback" in text or len(text) > 1500 or not _ACTIONABLE.search(text):
            self.report.unclear_errors.append(f"{label}: {text[:300]!r}")

    # -- the operations ------------------------------------------------------------------------

    async def _list(self, client: Client) -> None:
        arguments: dict[str, Any] = {"max_tokens": self.rng.choice([1000, 2000, 4000])}
        if self._cursor is not None and self.rng.random() < 0.6:
            arguments = {"cursor": self._cursor, **arguments}
        elif self.rng.random() < 0.3:
            arguments["search"] = self.rng.choice(["auth", "cache", "scn_", "parser"])
        result = await self._call(client, "list_scenarios", arguments)
        if result is not None and not result.is_error and result.structured_content is not None:
            self._cursor = result.structured_content.get("next_cursor")

    async def _get(self, client: Client) -> None:
        sid = self.rng.choice(self.pool if self.rng.random() < 0.5 else self.active)
        if self.rng.random() < 0.05:
            sid = "scn_does_not_exist"
        await self._call(client, "get_scenario", {"scenario_id": sid, "max_tokens": 4000})

    async def _update(self, client: Client, serial: int) -> None:
        sid = self.rng.choice(self.pool)
        changes: dict[str, Any] = {"metadata": {"campaign_rev": f"r{serial}"}}
        if self.rng.random() < 0.3:
            changes["name"] = f"campaign-{serial}"
        preview = await self._call(client, "update_scenario", {"scenario_id": sid, "changes": changes})
        if preview is None or preview.is_error or preview.structured_content is None:
            return
        token = preview.structured_content["preview_token"]
        body = preview.structured_content["upstream_body"]
        before = self.emulator.get(sid)
        assert before is not None
        mark, posts = len(self.plan.injected), len(self.emulator.posts())
        arguments = {"scenario_id": sid, "changes": changes, "dry_run": False, "preview_token": token}
        result = await self._call(client, "update_scenario", arguments)
        await self._settle(sid, since=mark, posts_before=posts)
        self._judge_apply(sid, before, body, result)

    async def _settle(self, sid: str, *, since: int, posts_before: int) -> None:
        """Wait until every POST of this apply that got a fault is in the emulator's request log.

        A POST held back by a latency fault lands after the client gave up. Every faulted POST is logged
        exactly once, and an apply's last POST is the only one that can be unfaulted or still held back
        (a POST is retried only after a 429), so the apply is settled when the log has as many new POSTs
        as the fault plan faulted. Polled, with ``call_bound`` as a hang guard only, instead of a fixed
        sleep that a slow machine could outrun.
        """
        faulted = sum(1 for method, _, _ in self.plan.injected[since:] if method == "POST")
        with anyio.move_on_after(self.config.call_bound) as scope:
            while len(self.emulator.posts()) - posts_before < faulted:
                await anyio.sleep(0.01)
        if scope.cancelled_caught:
            self.report.hung.append(f"apply to {sid}: a faulted POST never reached the emulator")

    def _judge_apply(
        self, sid: str, before: dict[str, Any], body: dict[str, Any], result: CallToolResult | None
    ) -> None:
        after = self.emulator.get(sid)
        assert after is not None
        applied_state = apply_body(before, body)
        landed = after == applied_state and after != before
        if after not in (before, applied_state):
            self.report.apply_violations.append(f"{sid}: partial write, the state is neither before nor after")
            return
        if result is None:
            self.report.applies["no answer"] += 1
        elif not result.is_error:
            self.report.applies["applied"] += 1
            if not landed:
                self.report.apply_violations.append(f"{sid}: reported applied, but the write did not land")
        else:
            text = result_text(result)
            if _UNCONFIRMED in text or _MAY_LAND in text:
                self.report.applies["unknown (" + ("landed" if landed else "not landed") + ")"] += 1
            elif landed:
                self.report.apply_violations.append(f"{sid}: reported an error but the write landed: {text[:200]!r}")
            else:
                self.report.applies["not applied"] += 1
                if "upstream" in text.lower() and _NOT_WRITTEN not in text and "unchanged" not in text:
                    self.report.apply_violations.append(f"{sid}: failed write without saying so: {text[:200]!r}")
        if landed:
            self.expected[sid] = apply_body(self.expected[sid], body)

    # -- end checks ----------------------------------------------------------------------------

    def _check_final(self) -> None:
        final = self.emulator.snapshot()
        if set(final) != set(self.expected):
            self.report.final_state_violations.append("the set of scenario ids changed")
        for sid, expected in self.expected.items():
            if final.get(sid) != expected:
                self.report.final_state_violations.append(f"{sid}: final data differ from the replayed applies")

    def _grep_secrets(self, log_lines: list[str]) -> None:
        journal_text = "".join(  # every entry in full, as `journal export` writes it
            json.dumps(row.document(), ensure_ascii=False) + "\n" for row in journal_entries(self.workdir)
        )
        self.report.journal_bytes = len(journal_text.encode())
        bodies = [json.dumps(r.body, ensure_ascii=False) for r in self.emulator.requests if r.body is not None]
        haystacks = {
            "results and errors": self.transcript,
            "log lines": log_lines,
            "journal": [journal_text],
            "request bodies": bodies,
        }
        for where, texts in haystacks.items():
            hits = sum(CAMPAIGN_CANARY in text for text in texts)
            if hits:
                self.report.leaks.append(f"the API key appears {hits} times in {where}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(report: CampaignReport) -> list[str]:
    """The report as printable lines."""
    lines = [
        f"tool calls {report.calls} in {report.elapsed:.1f} s; upstream requests {report.upstream_requests}; "
        f"faults injected {sum(report.faults.values())} "
        f"({sum(report.faults.values()) / max(1, report.upstream_requests):.0%} of requests)",
        "faults by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())),
        "ok by tool: " + ", ".join(f"{k} {v}" for k, v in sorted(report.ok.items())),
        "tool errors by tool: " + ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items())),
        "applies: " + ", ".join(f"{k} {v}" for k, v in sorted(report.applies.items())),
        f"call duration p50 {percentile(report.durations, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(report.durations, 0.95) * 1000:.0f} ms, max {max(report.durations, default=0):.2f} s",
        f"crashes {len(report.crashes)}, hung calls {len(report.hung)}, unclear errors {len(report.unclear_errors)}, "
        f"apply violations {len(report.apply_violations)}, final-state violations "
        f"{len(report.final_state_violations)}, secret leaks {len(report.leaks)} "
        f"(grepped {report.log_lines} log lines, {report.journal_bytes} journal bytes, every result and error)",
    ]
    lines += [f"  PROBLEM {p}" for p in report.problems[:40]]
    return lines
