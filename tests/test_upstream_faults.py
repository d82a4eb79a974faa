"""RunloopClient against the emulator on real loopback HTTP, one test per fault it can inject.

Each test counts the requests the emulator saw, so the retry policy of docs/upstream-api.md, "Retries", is
checked by behaviour: reads retry 408/409/429/5xx, dropped connections, timeouts and broken bodies;
the update POST retries only on 429 and on connections that failed before anything was sent, and
reuses its ``x-request-id``. Every call runs under a deadline, so a hang fails instead of stalling.
The retry maths (``should_retry``, ``retry_delay``, ``parse_retry_after``) is tested as tables.
"""

from __future__ import annotations

import email.utils
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

from runloop_scenarios_mcp.config import DEFAULT_RETRY_INITIAL_DELAY
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.emulator.loopback import Fault, LoopbackEmulator
from runloop_scenarios_mcp.errors import (
    InvalidArgument,
    MalformedResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    WriteOutcomeUnknown,
)
from runloop_scenarios_mcp.upstream import client as runloop_client
from runloop_scenarios_mcp.upstream.client import (
    MAX_RETRY_DELAY,
    ListQuery,
    RunloopClient,
    parse_retry_after,
    retry_delay,
    scenario_path,
    should_retry,
)
from tests.support.common import CANARY_KEY

pytestmark = pytest.mark.anyio

RETRIES = 3
"""Retries of a read in these tests (the server default is 5; fewer keeps the suite fast)."""
BOUND = 20.0
"""Seconds any single call may take here: far above what each needs, so only a hang trips it."""
ONLY_GET = frozenset({"GET"})
ONLY_POST = frozenset({"POST"})


class Waits:
    """Records the client's retry callbacks: (attempt, delay, reason)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float, str]] = []

    async def __call__(self, attempt: int, delay: float, reason: str) -> None:
        self.calls.append((attempt, delay, reason))

    @property
    def delays(self) -> list[float]:
        return [delay for _, delay, _ in self.calls]


def make_client(base_url: str, **overrides: Any) -> RunloopClient:
    values: dict[str, Any] = {
        "api_key": CANARY_KEY,
        "base_url": base_url,
        "timeout": 2.0,
        "connect_timeout": 1.0,
        "max_retries": RETRIES,
        "initial_retry_delay": 0.01,
        "max_retry_delay": 0.05,
    }
    values.update(overrides)
    return RunloopClient(**values)


@pytest.fixture
async def client(loopback: LoopbackEmulator) -> AsyncIterator[RunloopClient]:
    runloop = make_client(loopback.base_url)
    yield runloop
    await runloop.aclose()


def active_id(emulator: Emulator) -> str:
    return next(sid for sid, s in emulator.snapshot().items() if s.get("status") == "active")


def seen(loopback: LoopbackEmulator, method: str) -> int:
    """Requests of ``method`` that reached the emulator: served, faulted, or dropped."""
    served = sum(1 for r in loopback.emulator.requests if r.method == method)
    # A latency fault records its request only after sleeping; the fault log has it at once.
    sleeping = sum(1 for m, _, kind in loopback.faults.injected if m == method and kind == "latency")
    return max(served, sleeping)


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the client module passes to ``anyio.sleep`` from now on (the sleeps still happen)."""
    slept: list[float] = []

    class RecordingAnyio:
        def __getattr__(self, name: str) -> Any:
            return getattr(anyio, name)

        async def sleep(self, delay: float) -> None:
            slept.append(delay)
            await anyio.sleep(delay)

    monkeypatch.setattr(runloop_client, "anyio", RecordingAnyio())
    return slept


async def bounded(call: Callable[[], Awaitable[Any]]) -> Any:
    with anyio.fail_after(BOUND):
        return await call()


async def expect_error(call: Callable[[], Awaitable[Any]], kind: type[UpstreamError] | type[InvalidArgument]) -> str:
    """Run ``call`` (bounded), assert it raises ``kind`` exactly, return its message after common checks."""
    with pytest.raises(kind) as caught:
        await bounded(call)
    message = str(caught.value)
    assert CANARY_KEY not in message
    assert "Traceback" not in message and "\n" not in message
    assert len(message) > 40, "an error message must say what happened and what to do"
    return message


# --- reads: statuses and Retry-After ----------------------------------------------------------


async def test_429_retry_after_seconds_is_honoured(loopback: LoopbackEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    runloop = make_client(loopback.base_url, max_retry_delay=5.0)
    waits = Waits()
    slept = record_sleeps(monkeypatch)
    loopback.faults.queue(Fault("status", status=429, retry_after="1"))
    sid = active_id(loopback.emulator)
    scenario = await bounded(lambda: runloop.get_scenario(sid, on_wait=waits))
    await runloop.aclose()
    assert scenario == loopback.emulator.get(sid)
    assert waits.delays == [1.0]
    assert "429" in waits.calls[0][2]
    assert slept == [1.0]  # the client really waited the Retry-After before retrying
    assert seen(loopback, "GET") == 2


async def test_429_retry_after_ms_wins_over_seconds(loopback: LoopbackEmulator) -> None:
    runloop = make_client(loopback.base_url, max_retry_delay=5.0)
    waits = Waits()
    loopback.faults.queue(Fault("status", status=429, retry_after="4", retry_after_ms="150"))
    await bounded(lambda: runloop.list_scenarios(ListQuery(limit=3), on_wait=waits))
    await runloop.aclose()
    assert waits.delays == [0.15]
    assert seen(loopback, "GET") == 2


async def test_429_retry_after_http_date_is_honoured(
    loopback: LoopbackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's clock is frozen at a whole second, so the date means exactly 1 s however slow this machine is.
    now = float(int(time.time()))
    monkeypatch.setattr(runloop_client, "time", SimpleNamespace(time=lambda: now))
    runloop = make_client(loopback.base_url, max_retry_delay=5.0)
    waits = Waits()
    when = email.utils.formatdate(now + 1, usegmt=True)
    loopback.faults.queue(Fault("status", status=429, retry_after=when))
    await bounded(lambda: runloop.get_scenario(active_id(loopback.emulator), on_wait=waits))
    await runloop.aclose()
    assert waits.delays == [1.0]  # far above the 0.01 s backoff: the date was used
    assert seen(loopback, "GET") == 2


async def test_retry_after_above_the_cap_falls_back_to_backoff(
    loopback: LoopbackEmulator, client: RunloopClient
) -> None:
    waits = Waits()
    loopback.faults.queue(Fault("status", status=429, retry_after="3600"))
    await bounded(lambda: client.get_scenario(active_id(loopback.emulator), on_wait=waits))
    assert len(waits.delays) == 1 and waits.delays[0] <= 0.01


async def test_retry_budget_bounds_the_wait(loopback: LoopbackEmulator) -> None:
    runloop = make_client(loopback.base_url, max_retry_delay=30.0, retry_budget=0.5)
    loopback.faults.queue(Fault("status", status=503, retry_after="20"))
    message = await expect_error(lambda: runloop.get_scenario(active_id(loopback.emulator)), UpstreamConnectionError)
    await runloop.aclose()
    assert "retry budget" in message and "Try again later" in message
    assert seen(loopback, "GET") == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_status_then_success(loopback: LoopbackEmulator, client: RunloopClient, status: int) -> None:
    loopback.faults.queue(*[Fault("status", status=status, methods=ONLY_GET)] * RETRIES)
    waits = Waits()
    page = await bounded(lambda: client.list_scenarios(ListQuery(limit=5), on_wait=waits))
    assert len(page["scenarios"]) == 5
    assert seen(loopback, "GET") == RETRIES + 1
    assert [attempt for attempt, _, _ in waits.calls] == list(range(1, RETRIES + 1))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_persistent_server_error_is_reported_after_all_retries(
    loopback: LoopbackEmulator, client: RunloopClient, status: int
) -> None:
    loopback.faults.queue(*[Fault("status", status=status)] * (RETRIES + 1))
    with pytest.raises(UpstreamStatusError) as caught:
        await bounded(lambda: client.get_scenario(active_id(loopback.emulator)))
    assert caught.value.status_code == status
    message = str(caught.value)
    assert f"server error ({status})" in message and "Try again later" in message
    assert "injected fault" in message  # the upstream's own message is passed on, cleaned
    assert seen(loopback, "GET") == RETRIES + 1


async def test_x_should_retry_false_stops_a_retryable_status(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(Fault("status", status=500, should_retry=False))
    with pytest.raises(UpstreamStatusError) as caught:
        await bounded(lambda: client.get_scenario(active_id(loopback.emulator)))
    assert caught.value.status_code == 500
    assert seen(loopback, "GET") == 1


async def test_x_should_retry_true_retries_a_client_error(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(Fault("status", status=400, should_retry=True))
    await bounded(lambda: client.get_scenario(active_id(loopback.emulator)))
    assert seen(loopback, "GET") == 2


@pytest.mark.parametrize(
    ("status", "advice"),
    [(400, "invalid"), (403, "permission"), (404, "list_scenarios"), (422, "invalid")],
)
async def test_client_errors_are_not_retried(
    loopback: LoopbackEmulator, client: RunloopClient, status: int, advice: str
) -> None:
    loopback.faults.queue(Fault("status", status=status))
    message = await expect_error(lambda: client.get_scenario(active_id(loopback.emulator)), UpstreamStatusError)
    assert advice in message
    assert seen(loopback, "GET") == 1


async def test_wrong_key_is_401_with_advice_and_no_key(loopback: LoopbackEmulator) -> None:
    runloop = make_client(loopback.base_url, api_key="rl_wrong_key_0000")
    message = await expect_error(lambda: runloop.list_scenarios(ListQuery()), UpstreamStatusError)
    await runloop.aclose()
    assert "401" in message and "RUNLOOP_API_KEY" in message
    assert "rl_wrong_key_0000" not in message
    assert seen(loopback, "GET") == 1


async def test_unknown_id_is_404_and_not_retried(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        await bounded(lambda: client.get_scenario("scn_missing"))
    assert caught.value.status_code == 404
    assert seen(loopback, "GET") == 1


# --- reads: broken bodies and connections -----------------------------------------------------


async def test_malformed_json_once_is_retried(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(Fault("malformed_json"))
    page = await bounded(lambda: client.list_scenarios(ListQuery(limit=2)))
    assert len(page["scenarios"]) == 2
    assert seen(loopback, "GET") == 2


async def test_persistent_malformed_json_is_a_malformed_response(
    loopback: LoopbackEmulator, client: RunloopClient
) -> None:
    loopback.faults.queue(*[Fault("malformed_json")] * (RETRIES + 1))
    message = await expect_error(lambda: client.list_scenarios(ListQuery()), MalformedResponse)
    assert "not valid JSON" in message and "RUNLOOP_BASE_URL" in message
    assert seen(loopback, "GET") == RETRIES + 1


async def test_html_error_page(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(*[Fault("html_error")] * (RETRIES + 1))
    with pytest.raises(UpstreamStatusError) as caught:
        await bounded(lambda: client.get_scenario(active_id(loopback.emulator)))
    message = str(caught.value)
    assert caught.value.status_code == 502
    assert "HTML error page" in message and "<" not in message
    assert seen(loopback, "GET") == RETRIES + 1


async def test_empty_body(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(*[Fault("empty_body")] * (RETRIES + 1))
    message = await expect_error(lambda: client.get_scenario(active_id(loopback.emulator)), MalformedResponse)
    assert "empty body" in message
    assert seen(loopback, "GET") == 1  # a 2xx without a body stays one: not retried (tests/test_bounds.py)


async def test_truncated_body(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(*[Fault("truncated_body")] * (RETRIES + 1))
    message = await expect_error(lambda: client.list_scenarios(ListQuery(limit=50)), UpstreamConnectionError)
    assert "broke off" in message and "RUNLOOP_BASE_URL" in message
    assert seen(loopback, "GET") == RETRIES + 1


async def test_truncated_body_once_is_retried(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(Fault("truncated_body"))
    page = await bounded(lambda: client.list_scenarios(ListQuery(limit=50)))
    assert len(page["scenarios"]) == 50
    assert seen(loopback, "GET") == 2


async def test_dropped_connection(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(*[Fault("drop_connection")] * (RETRIES + 1))
    message = await expect_error(lambda: client.get_scenario(active_id(loopback.emulator)), UpstreamConnectionError)
    assert "even after retries" in message
    assert seen(loopback, "GET") == RETRIES + 1


async def test_slow_body_beyond_the_timeout(loopback: LoopbackEmulator) -> None:
    # Each chunk arrives well within the timeout, the whole body does not: the deadline is per exchange.
    runloop = make_client(loopback.base_url, timeout=0.5, max_retries=1)
    loopback.faults.queue(*[Fault("slow_body", delay=0.25)] * 2)
    message = await expect_error(lambda: runloop.get_scenario(active_id(loopback.emulator)), UpstreamTimeout)
    await runloop.aclose()
    assert "--timeout" in message
    assert seen(loopback, "GET") == 2


async def test_slow_body_within_the_timeout_succeeds(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    loopback.faults.queue(Fault("slow_body", delay=0.02))
    sid = active_id(loopback.emulator)
    assert await bounded(lambda: client.get_scenario(sid)) == loopback.emulator.get(sid)
    assert seen(loopback, "GET") == 1


async def test_latency_beyond_the_timeout(loopback: LoopbackEmulator) -> None:
    runloop = make_client(loopback.base_url, timeout=0.3, max_retries=2)
    waits = Waits()
    loopback.faults.queue(*[Fault("latency", delay=1.0)] * 3)
    message = await expect_error(lambda: runloop.list_scenarios(ListQuery(), on_wait=waits), UpstreamTimeout)
    await runloop.aclose()
    assert "did not answer in time" in message
    assert seen(loopback, "GET") == 3
    # Each attempt was cut off by the timeout, not waited out (expect_error's deadline is the hang guard).
    assert [reason for _, _, reason in waits.calls] == ["ReadTimeout", "ReadTimeout"]


async def test_connection_refused_is_retried_then_reported() -> None:
    runloop = make_client(f"http://127.0.0.1:{closed_port()}")
    waits = Waits()
    message = await expect_error(lambda: runloop.list_scenarios(ListQuery(), on_wait=waits), UpstreamConnectionError)
    await runloop.aclose()
    assert len(waits.calls) == RETRIES
    assert "RUNLOOP_BASE_URL" in message


# --- the update POST ------------------------------------------------------------------------


async def test_post_429_is_retried_with_the_same_request_id(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    sid = active_id(loopback.emulator)
    loopback.faults.queue(*[Fault("status", status=429, retry_after_ms="10", methods=ONLY_POST)] * 2)
    updated = await bounded(lambda: client.update_scenario(sid, {"metadata": {"owner": "faults"}}))
    assert updated["metadata"] == {"owner": "faults"}
    posts = loopback.emulator.posts()
    assert [p.status for p in posts] == [429, 429, 200]
    ids = {p.request_id for p in posts}
    assert len(ids) == 1 and None not in ids


async def test_post_429_exhausted(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    sid = active_id(loopback.emulator)
    before = loopback.emulator.get(sid)
    loopback.faults.queue(*[Fault("status", status=429, methods=ONLY_POST)] * (RETRIES + 1))
    with pytest.raises(UpstreamStatusError) as caught:
        await bounded(lambda: client.update_scenario(sid, {"name": "never written"}))
    assert caught.value.status_code == 429 and "rate limiting" in str(caught.value)
    posts = loopback.emulator.posts()
    assert len(posts) == RETRIES + 1 and len({p.request_id for p in posts}) == 1
    assert loopback.emulator.get(sid) == before


async def test_each_update_has_its_own_request_id(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    sid = active_id(loopback.emulator)
    for name in ("first", "second"):
        await bounded(lambda name=name: client.update_scenario(sid, {"name": name}))  # type: ignore[misc]
    ids = [p.request_id for p in loopback.emulator.posts()]
    assert len(ids) == 2 and len(set(ids)) == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=500),
        Fault("status", status=502),
        Fault("status", status=503, retry_after="0"),
        Fault("status", status=408),
        Fault("status", status=409),
        Fault("status", status=500, should_retry=True),
        Fault("html_error"),
    ],
    ids=["500", "502", "503", "408", "409", "500-should-retry", "html"],
)
async def test_post_error_statuses_are_not_retried(
    loopback: LoopbackEmulator, client: RunloopClient, fault: Fault
) -> None:
    sid = active_id(loopback.emulator)
    before = loopback.emulator.get(sid)
    loopback.faults.queue(fault, fault, fault)
    await expect_error(lambda: client.update_scenario(sid, {"name": "not written"}), UpstreamStatusError)
    assert len(loopback.emulator.posts()) == 1
    assert loopback.emulator.get(sid) == before


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("drop_connection"), WriteOutcomeUnknown),
        (Fault("truncated_body"), WriteOutcomeUnknown),
        (Fault("latency", delay=1.0), WriteOutcomeUnknown),
        (Fault("slow_body", delay=0.25), WriteOutcomeUnknown),
        (Fault("malformed_json"), MalformedResponse),
        (Fault("empty_body"), MalformedResponse),
    ],
    ids=["drop", "truncated", "latency", "slow-body", "malformed", "empty"],
)
async def test_post_broken_answers_are_not_retried(
    loopback: LoopbackEmulator, fault: Fault, error: type[UpstreamError]
) -> None:
    runloop = make_client(loopback.base_url, timeout=0.5)
    sid = active_id(loopback.emulator)
    loopback.faults.queue(fault, fault, fault)
    message = await expect_error(lambda: runloop.update_scenario(sid, {"name": "maybe written"}), error)
    await runloop.aclose()
    if error is WriteOutcomeUnknown:
        assert "get_scenario" in message  # the agent is told to look before retrying
    assert seen(loopback, "POST") == 1


async def test_post_connect_failure_is_retried_before_anything_is_sent() -> None:
    runloop = make_client(f"http://127.0.0.1:{closed_port()}")
    waits = Waits()
    await expect_error(lambda: runloop.update_scenario("scn_x", {"name": "n"}, on_wait=waits), UpstreamConnectionError)
    await runloop.aclose()
    assert [reason for _, _, reason in waits.calls] == ["connection failed"] * RETRIES


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario_id", ["a/b", "../scn_x", "scn 1", "x?y=1#z", "%2e%2e", "100%", "é✓", "./.."])
async def test_ids_are_one_percent_encoded_segment(
    loopback: LoopbackEmulator, client: RunloopClient, scenario_id: str
) -> None:
    expected = "/v1/scenarios/" + quote(scenario_id, safe="")
    for call in (lambda: client.get_scenario(scenario_id), lambda: client.update_scenario(scenario_id, {"name": "n"})):
        with pytest.raises(UpstreamStatusError) as caught:
            await bounded(call)
        assert caught.value.status_code == 404
    paths = [r.path for r in loopback.emulator.requests]
    assert paths == [expected, expected]
    assert expected.count("/") == 3 and "?" not in expected and "#" not in expected


async def test_an_id_with_a_slash_reaches_its_own_scenario(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    scenario = {**loopback.emulator.get(active_id(loopback.emulator)), "id": "scn_a/b?c"}  # type: ignore[dict-item]
    loopback.emulator.put(scenario)
    assert await bounded(lambda: client.get_scenario("scn_a/b?c")) == scenario


@pytest.mark.parametrize("scenario_id", ["", " ", ".", "..", " .. ", "x" * 257])
async def test_bad_ids_are_refused_before_any_request(
    loopback: LoopbackEmulator, client: RunloopClient, scenario_id: str
) -> None:
    for call in (lambda: client.get_scenario(scenario_id), lambda: client.update_scenario(scenario_id, {"name": "n"})):
        message = await expect_error(call, InvalidArgument)
        assert "scenario_id" in message and "scn_" in message
    assert loopback.emulator.requests == []
    with pytest.raises(InvalidArgument):
        scenario_path(scenario_id)


async def test_limit_out_of_range_is_refused_before_any_request(
    loopback: LoopbackEmulator, client: RunloopClient
) -> None:
    for limit in (0, -1, 5001):
        with pytest.raises(InvalidArgument, match="limit"):
            await bounded(lambda limit=limit: client.list_scenarios(ListQuery(limit=limit)))  # type: ignore[misc]
    assert loopback.emulator.requests == []


async def test_only_given_list_params_are_sent(loopback: LoopbackEmulator, client: RunloopClient) -> None:
    await bounded(lambda: client.list_scenarios(ListQuery(limit=3, search="a")))
    await bounded(lambda: client.list_scenarios(ListQuery()))
    assert [r.query for r in loopback.emulator.requests] == [{"limit": "3", "search": "a"}, {}]


async def test_a_redirect_is_an_error_not_followed() -> None:
    # No emulator fault redirects, so this one fakes the network with a MockTransport.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://api.runloop.ai" + request.url.path})

    runloop = make_client("http://api.runloop.ai", transport=httpx.MockTransport(handler))
    message = await expect_error(lambda: runloop.list_scenarios(ListQuery()), UpstreamStatusError)
    await runloop.aclose()
    assert "redirect" in message and "RUNLOOP_BASE_URL" in message and "https://api.runloop.ai" in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the retry maths, as tables -------------------------------------------------------------


def h(**values: str) -> httpx.Headers:
    return httpx.Headers({key.replace("_", "-"): value for key, value in values.items()})


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, h(), True),
        (409, h(), True),
        (429, h(), True),
        (500, h(), True),
        (502, h(), True),
        (503, h(), True),
        (504, h(), True),
        (599, h(), True),
        (400, h(), False),
        (401, h(), False),
        (403, h(), False),
        (404, h(), False),
        (422, h(), False),
        (500, h(x_should_retry="false"), False),
        (429, h(x_should_retry="False"), False),
        (400, h(x_should_retry="true"), True),
        (404, h(x_should_retry=" TRUE "), True),
        (500, h(x_should_retry="maybe"), True),
        (400, h(x_should_retry="maybe"), False),
    ],
)
def test_should_retry(status: int, headers: httpx.Headers, expected: bool) -> None:
    assert should_retry(status, headers) is expected


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (20, 60.0)],
)
def test_retry_delay_backoff(attempt: int, base: float) -> None:
    assert retry_delay(attempt, None, rng=FixedRandom(0.0)) == base  # no jitter
    assert retry_delay(attempt, None, rng=FixedRandom(1.0)) == pytest.approx(base * 0.75)  # most jitter
    for _ in range(50):
        assert base * 0.75 <= retry_delay(attempt, None) <= base


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (3.0, 3.0),
        (0.25, 0.25),
        (MAX_RETRY_DELAY, MAX_RETRY_DELAY),
        (MAX_RETRY_DELAY + 1, None),
        (0.0, None),
        (-5.0, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_retry_delay_honours_a_sane_retry_after(retry_after: float, expected: float | None) -> None:
    delay = retry_delay(2, retry_after, rng=FixedRandom(0.0))
    assert delay == (expected if expected is not None else 4 * DEFAULT_RETRY_INITIAL_DELAY)


def test_retry_delay_respects_custom_initial_and_cap() -> None:
    assert retry_delay(0, None, initial=0.01, cap=0.05, rng=FixedRandom(0.0)) == 0.01
    assert retry_delay(9, None, initial=0.01, cap=0.05, rng=FixedRandom(0.0)) == 0.05
    assert retry_delay(0, 0.2, initial=0.01, cap=0.05, rng=FixedRandom(0.0)) == 0.01  # above the cap: backoff


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (h(), None),
        (h(retry_after="3"), 3.0),
        (h(retry_after="1.5"), 1.5),
        (h(retry_after=" 7 "), 7.0),
        (h(retry_after="-2"), -2.0),
        (h(retry_after_ms="250"), 0.25),
        (h(retry_after_ms="250", retry_after="9"), 0.25),
        (h(retry_after_ms="soon", retry_after="9"), 9.0),
        (h(retry_after=email.utils.formatdate(NOW + 30, usegmt=True)), 30.0),
        (h(retry_after=email.utils.formatdate(NOW - 30, usegmt=True)), -30.0),
        (h(retry_after="Wed, 99 Foo 2015 07:28:00 GMT"), None),
        (h(retry_after="soon"), None),
        (h(retry_after=""), None),
    ],
)
def test_parse_retry_after(headers: httpx.Headers, expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected
