"""The emulator's own costs: generating the data set, and stopping the loopback server (median of N).

Each figure is a ratio against a baseline measured in the same run, interleaved, so it survives a
noisy shared machine (the tests assert behaviour only, never these durations):

* data set generation (``generate(seed, 520)``, uncached) against a deep copy of the same data set,
  which is what every ``Emulator()`` does with the cached set;
* ``LoopbackEmulator.stop()``, with no connection and with an idle keep-alive connection open (its
  handler thread must be woken, not left waiting 30 s), against ``shutdown()`` + ``server_close()``
  of a bare stdlib ``ThreadingHTTPServer`` on the same poll interval.

Usage: python bench/emulator.py [--runs 10]
"""

from __future__ import annotations

import argparse
import copy
import http.client
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runloop_scenarios_mcp.emulator.data import SCENARIO_COUNT_DEFAULT, generate
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import LoopbackEmulator

POLL_INTERVAL = 0.05
"""The loopback emulator's serve_forever poll interval; the baseline server uses the same."""


def timed(action: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def stop_bare_stdlib() -> float:
    """Seconds to stop a bare ThreadingHTTPServer serving in a thread, as LoopbackEmulator.stop() does."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return timed(stop)


def stop_loopback(emulator: Emulator, *, idle_connection: bool) -> float:
    """Seconds LoopbackEmulator.stop() takes; with ``idle_connection``, checks the idle connection was closed."""
    server = LoopbackEmulator(emulator).start()
    idle: http.client.HTTPConnection | None = None
    if idle_connection:
        host, port = server.base_url.removeprefix("http://").split(":")
        idle = http.client.HTTPConnection(host, int(port), timeout=10)
        idle.request("GET", "/v1/scenarios", headers={"Authorization": "Bearer bench"})
        response = idle.getresponse()
        response.read()
        assert response.status == 200 and not response.will_close, "no keep-alive connection to leave idle"
    elapsed = timed(server.stop)
    if idle is not None:
        assert idle.sock is not None and idle.sock.recv(1) == b"", "stop() left the idle connection open"
        idle.close()
    return elapsed


def report(title: str, rows: list[tuple[str, list[float]]], baseline: list[float]) -> None:
    print(title)
    base = statistics.median(baseline)
    for label, values in rows:
        median = statistics.median(values)
        low, high = min(values) * 1000, max(values) * 1000
        print(f"  {label:<40} {median * 1000:8.1f} ms  (min {low:.1f}, max {high:.1f})  {median / base:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs

    generation: list[float] = []
    copying: list[float] = []
    for seed in range(runs):  # interleaved, so drift in machine load hits both alike
        start = time.perf_counter()
        dataset = generate(seed, SCENARIO_COUNT_DEFAULT)
        generation.append(time.perf_counter() - start)
        copying.append(timed(copy.deepcopy, dataset.scenarios))
    report(
        f"data set of {SCENARIO_COUNT_DEFAULT} scenarios, median of {runs} (ratio against the deep copy):",
        [("generate(seed, count), uncached", generation), ("deep copy of the same data set (baseline)", copying)],
        copying,
    )

    emulator = Emulator(count=5)
    bare: list[float] = []
    plain: list[float] = []
    idle: list[float] = []
    for _ in range(runs):
        bare.append(stop_bare_stdlib())
        plain.append(stop_loopback(emulator, idle_connection=False))
        idle.append(stop_loopback(emulator, idle_connection=True))
    report(
        f"loopback shutdown, median of {runs} (ratio against the bare stdlib server):",
        [
            ("LoopbackEmulator.stop(), no connection", plain),
            ("LoopbackEmulator.stop(), idle keep-alive", idle),
            ("bare ThreadingHTTPServer stop (baseline)", bare),
        ],
        bare,
    )


if __name__ == "__main__":
    main()
