"""Short fault campaign: ~150 tool calls over real loopback HTTP with 20% of upstream requests faulted.

The long run (1,000 calls) is ``bench/faults.py``; both use :mod:`campaign`, which documents every check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.campaign import CAMPAIGN_CANARY, Campaign, CampaignConfig, summary
from tests.support.journal import journal_entries

pytestmark = pytest.mark.anyio

ALL_KINDS = {
    "status",
    "html_error",
    "malformed_json",
    "empty_body",
    "truncated_body",
    "drop_connection",
    "latency",
    "slow_body",
}


async def test_fault_campaign_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    config = CampaignConfig(calls=150, rate=0.2, seed=11)
    report = await Campaign(config, tmp_path).run()
    lines = "\n".join(summary(report))

    assert report.problems == [], lines
    assert report.calls == config.calls
    # The campaign really exercised what it claims: faults of (nearly) every kind, at about the rate asked.
    assert len(set(report.faults) & ALL_KINDS) >= 6, lines
    assert sum(report.faults.values()) >= 0.1 * report.upstream_requests, lines
    # Calls both succeeded and failed, and writes both landed and were refused under faults.
    assert report.applies["applied"] > 0, lines
    assert sum(report.errors.values()) > 0, lines
    assert max(report.durations) < config.call_bound
    # The journal recorded the writes, and the key is in none of it.
    rows = journal_entries(tmp_path)
    assert len(rows) >= report.applies["applied"]
    assert CAMPAIGN_CANARY not in "".join(json.dumps(row.document()) for row in rows)
    assert CAMPAIGN_CANARY.encode() not in b"".join(path.read_bytes() for path in tmp_path.glob("journal.sqlite3*"))
