"""The journal database: write latency per backend against the JSON Lines file of before, and applies per second.

Write latency: one journaled write is what an apply records around its POST: the entry (previous version,
body, expected version, about 3 KB of JSON here) committed before the POST, and its outcome after. The
baseline is the JSON Lines journal of earlier versions, as it wrote in the same run: two appended lines,
each opened, written, fsync'd and closed. Backends: SQLite (WAL, synchronous=FULL) and PostgreSQL (when a
server answers at RUNLOOP_MCP_TEST_DATABASE_URL or postgresql://127.0.0.1:5432/test; a fresh database,
dropped after). Also the check a new process makes for a used token on a journal of --entries entries:
before, the first check read the whole file; now it is one indexed query.

Applies per second: the emulator on loopback HTTP as the Runloop API, one and two HTTP replicas (real
processes of the console script, same RUNLOOP_MCP_SECRET and RUNLOOP_MCP_DATABASE_URL) behind a round-robin
proxy, --clients concurrent MCP clients (2026-07-28), each previewing and applying changes to a scenario of
its own, for --applies applies in all. Each apply takes the scenario's lock in the database, checks the
token, journals, POSTs and records the outcome.

    .venv/bin/python bench/journal.py [--writes 300] [--entries 20000] [--applies 120] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import postgres  # noqa: E402
from tests.support.common import CANARY_KEY  # noqa: E402
from tests.support.replicas import HTTP_TOKEN, RoundRobinProxy, http_client, http_replica, server_env  # noqa: E402

from runloop_scenarios_mcp.emulator.handler import Emulator  # noqa: E402
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator  # noqa: E402
from runloop_scenarios_mcp.services.journal import open_store  # noqa: E402
from runloop_scenarios_mcp.services.journal.store import ImportedEntry, JournalStore, NewEntry  # noqa: E402


def _scenario(number: int) -> dict[str, Any]:
    return {
        "id": f"scn_bench{number:06d}",
        "name": f"bench scenario {number}",
        "status": "active",
        "input_context": {"problem_statement": "Fix the failing test in the parser. " * 40},
        "metadata": {"team": "bench", "owner": f"owner-{number}"},
        "scoring_contract": {"scoring_function_parameters": [{"name": "tests", "weight": 1.0, "scorer": {}}]},
    }


def _entry(number: int) -> NewEntry:
    before = _scenario(number)
    return NewEntry(
        entry=f"j_20260101T000000Z_{number:08x}",
        created_at=datetime.now(UTC),
        scenario_id=before["id"],
        token_id=f"{number:012x}",
        fields=["metadata"],
        changes=["metadata.reviewer"],
        before=before,
        body={"metadata": {**before["metadata"], "reviewer": "bench"}},
        expected={**before, "metadata": {**before["metadata"], "reviewer": "bench"}},
    )


class JsonLines:
    """The journal of earlier versions, as it wrote: one line per record, opened, appended, fsync'd, closed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, new: NewEntry) -> None:
        at = new.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._append(
            {"entry": new.entry, "event": "prepared", "at": at, "scenario_id": new.scenario_id,
             "token": new.token_id, "before": new.before, "body": new.body}
        )  # fmt: skip
        self._append({"entry": new.entry, "event": "applied", "at": at, "after": new.expected})

    def fill(self, count: int) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            for item in _imported(count, 20_000_000):
                at = item.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                prepared = {"entry": item.entry, "event": "prepared", "at": at, "scenario_id": item.scenario_id,
                            "token": item.token_id, "before": item.before, "body": item.body}  # fmt: skip
                applied = {"entry": item.entry, "event": "applied", "at": at, "after": item.after}
                handle.write(json.dumps(prepared, separators=(",", ":")) + "\n")
                handle.write(json.dumps(applied, separators=(",", ":")) + "\n")

    def used_token_cold(self, nonce: str) -> str | None:
        """What a new process did on its first apply: read and index the whole file."""
        used: dict[str, str] = {}
        token_of: dict[str, str] = {}
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["event"] == "prepared":
                    token_of[record["entry"]] = record["token"]
                elif record["entry"] in token_of:
                    used[token_of[record["entry"]]] = record["event"]
        return used.get(nonce)


def _store_target(
    store: JournalStore, name: str
) -> tuple[Callable[[NewEntry], None], Callable[[str], Any], Callable[[int], None]]:
    """Write one entry (committed, then finished), check a token, fill in bulk."""

    def write(new: NewEntry) -> None:
        store.insert_entry(new)
        store.finish_entry(new.entry, "applied", datetime.now(UTC), new.expected, "")

    def check(nonce: str) -> Any:
        return store.used_token("scn_bench000001", nonce)

    def fill(count: int) -> None:
        store.import_entries(f"bench:{name}", _imported(count, 20_000_000))

    return write, check, fill


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def _time_writes(write: Callable[[NewEntry], None], count: int, offset: int) -> list[float]:
    times = []
    for number in range(offset, offset + count):
        new = _entry(number)
        start = time.perf_counter()
        write(new)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _imported(count: int, offset: int) -> Iterator[ImportedEntry]:
    for number in range(offset, offset + count):
        new = _entry(number)
        yield ImportedEntry(
            new.entry, new.created_at, new.scenario_id, new.token_id, new.fields, new.before, new.body,
            "applied", new.created_at, new.expected, "",
        )  # fmt: skip


def write_latency(writes: int, entries: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp, ExitStack() as stack:
        jsonl = JsonLines(Path(tmp) / "journal.jsonl")
        targets: dict[str, tuple[Callable[[NewEntry], None], Callable[[str], Any], Callable[[int], None]]] = {
            "JSON Lines (before)": (jsonl.write, jsonl.used_token_cold, jsonl.fill)
        }
        stores = {"SQLite": f"sqlite://{Path(tmp) / 'journal.sqlite3'}"}
        if postgres.unreachable_reason() is None:
            stores["PostgreSQL"] = stack.enter_context(postgres.fresh_database())
        else:
            print(f"(PostgreSQL skipped: {postgres.unreachable_reason()})")
        for name, url in stores.items():
            store = open_store(url)
            store.migrate()
            stack.callback(store.close)
            targets[name] = _store_target(store, name)
        print(f"journal write latency: {writes} writes (entry before the POST + outcome after), ms")
        print(f"{'backend':22} {'p50':>8} {'p95':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
        base: tuple[float, float] | None = None
        for name, (write, _, _) in targets.items():
            _time_writes(write, 10, 10_000_000)  # warm-up
            p50, p95 = _percentiles(_time_writes(write, writes, 0))
            base = base or (p50, p95)
            print(f"{name:22} {p50:8.2f} {p95:8.2f} {p50 / base[0]:9.2f}x {p95 / base[1]:9.2f}x")
        print()
        print(f"used-token check of a new process on a journal of {entries:,} entries, ms (median of 5)")
        for name, (_, check, fill) in targets.items():
            fill(entries - writes - 10)  # the same rows everywhere, written in bulk
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                check("ffffffffffff")
                runs.append((time.perf_counter() - start) * 1000)
            print(f"{name:22} {statistics.median(runs):10.2f}")
        size = (Path(tmp) / "journal.jsonl").stat().st_size
        print(f"(JSON Lines file: {size / 1e6:.1f} MB)")


async def _applies(proxy_url: str, emulator: Emulator, applies: int, clients: int, label: str) -> float:
    ids = [s["id"] for s in emulator.snapshot().values() if s.get("status") == "active"][:clients]
    per_client = applies // clients
    done = 0

    async def worker(number: int) -> None:
        nonlocal done
        sid = ids[number]
        async with http_client(proxy_url) as client:
            for round_ in range(per_client):
                changes = {"metadata": {"bench": f"{label}-{number}-{round_}"}}
                preview = await client.call_tool("update_scenario", {"scenario_id": sid, "changes": changes})
                assert preview.structured_content is not None, preview.content
                token = preview.structured_content["preview_token"]
                arguments = {"scenario_id": sid, "changes": changes, "dry_run": False, "preview_token": token}
                result = await client.call_tool("update_scenario", arguments)
                assert not result.is_error, result.content
                done += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for number in range(clients):
            group.start_soon(worker, number)
    elapsed = time.perf_counter() - start
    assert done == per_client * clients
    return done / elapsed


def applies_per_second(applies: int, clients: int) -> None:
    backends = {"SQLite": "sqlite"}
    if postgres.unreachable_reason() is None:
        backends["PostgreSQL"] = "postgresql"
    print()
    print(f"applies per second: {clients} clients, {applies} applies (preview + apply each), HTTP replicas")
    print("behind a round-robin proxy, emulator on loopback HTTP")
    print(f"{'backend':12} {'1 replica':>10} {'2 replicas':>11}")
    for name, kind in backends.items():
        rates = []
        for count in (1, 2):
            with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp, ExitStack() as stack:
                emulator = Emulator(api_key=CANARY_KEY)
                loopback = stack.enter_context(LoopbackEmulator(emulator))
                if kind == "sqlite":
                    url = f"sqlite://{Path(tmp) / 'journal.sqlite3'}"
                else:
                    url = stack.enter_context(postgres.fresh_database())
                env = server_env(Path(tmp), url, loopback.base_url, RUNLOOP_MCP_HTTP_TOKEN=HTTP_TOKEN)
                replicas = [stack.enter_context(http_replica(env)) for _ in range(count)]
                proxy = RoundRobinProxy(replicas)
                proxy_url = stack.enter_context(proxy.running())

                async def run(proxy_url: str = proxy_url, emulator: Emulator = emulator) -> float:
                    await _applies(proxy_url, emulator, max(clients, applies // 10), clients, "warm-up")
                    return await _applies(proxy_url, emulator, applies, clients, "measured")

                rates.append(anyio.run(run))
        print(f"{name:12} {rates[0]:10.1f} {rates[1]:11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--applies", type=int, default=120)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    write_latency(args.writes, args.entries)
    applies_per_second(args.applies, args.clients)


if __name__ == "__main__":
    main()
