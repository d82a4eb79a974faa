"""Async client for the three Runloop scenario endpoints: list, get, update.

It owns authentication, timeouts, the retry policy of the official SDKs (docs/upstream-api.md,
"Retries") and the mapping of every failure to a typed error from :mod:`errors`. Results are the raw JSON
the API returned (checked for shape, never re-serialized), so fields unknown to this code survive.
Nothing above this module builds HTTP requests.

Bounds, so that no upstream answer can exhaust the server (docs/upstream-api.md, "Limits"):

* bytes: every body is streamed and read at most to ``max_response_bytes`` (decoded; gzip and deflate are
  inflated in bounded steps, so a compression bomb stops at the cap too). A larger answer is an
  :class:`~errors.ResponseTooLarge` at once, never retried, its bytes dropped;
* time: one :class:`Deadline` per tool call (:func:`call_deadline`, set at the tool boundary; else one per
  client call) bounds every request, retry and wait together. Each request also has its own ``timeout``
  for the whole exchange, body included (a trickling body cannot stretch it);
* shape: JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused before anything walks it;
* secrets: the API key is replaced by ``[redacted]`` in every string of a parsed body (an upstream that
  echoes it cannot get it into results, diffs or the journal).

Answers that retrying cannot fix are not retried: a 2xx body that is not JSON or is empty (a 204),
an HTML error page other than a gateway's 502/503/504, a too-large or too-deep body.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx

from runloop_scenarios_mcp import __version__
from runloop_scenarios_mcp.config import (
    DEFAULT_BASE_URL,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_RETRY_INITIAL_DELAY,
    DEFAULT_TIMEOUT,
)
from runloop_scenarios_mcp.errors import (
    InvalidArgument,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    WriteOutcomeUnknown,
    clean_detail,
    status_message,
)
from runloop_scenarios_mcp.upstream.models import LIST_FILTERS

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
"""Cap of one backoff delay, and of an honoured Retry-After (as the official SDKs)."""
RETRYABLE_STATUSES = frozenset({408, 409, 429})
API_MAX_LIMIT = 5000
"""The largest ``limit`` the API's list endpoint documents ("Max is 5000"); a larger one is never sent."""
MAX_ID_LENGTH = 256
MAX_FILTER_LENGTH = 2048

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in an upstream body (a scenario is about 8 levels deep)."""
PROGRESS_INTERVAL = 5.0
"""Seconds between progress reports while a request waits for its answer."""
WRITE_CHECK_RESERVE = 5.0
"""Seconds of a call's deadline an update POST leaves unused, so the read that checks its outcome can run."""
REDACTED = "[redacted]"
_GATEWAY_STATUSES = frozenset({502, 503, 504})
"""Statuses a proxy or gateway answers with an HTML page while the API behind it recovers: worth a retry."""

OnWait = Callable[[int, float, str], Awaitable[None]]
"""Progress: called with (attempt number, delay in seconds, reason) before each retry, and with a delay of 0
every :data:`PROGRESS_INTERVAL` seconds while a request is still waiting for its answer."""

T = TypeVar("T")
_tick = anyio.sleep
"""The progress ticker's sleep, kept apart from the retry waits (``anyio.sleep`` below), which tests count."""


@dataclass
class Deadline:
    """When the current tool call must be done with the Runloop API."""

    seconds: float
    at: float = field(default=0.0)
    """On the event loop's clock (``anyio.current_time()``)."""

    def __post_init__(self) -> None:
        if not self.at:
            self.at = anyio.current_time() + self.seconds

    def remaining(self) -> float:
        return self.at - anyio.current_time()


_deadline: ContextVar[Deadline | None] = ContextVar("runloop_call_deadline", default=None)


@contextmanager
def call_deadline(seconds: float) -> Iterator[Deadline]:
    """Every client call inside shares one deadline, ``seconds`` from now (the tool boundary sets it)."""
    token = _deadline.set(Deadline(seconds))
    try:
        yield _deadline.get()  # type: ignore[misc]
    finally:
        _deadline.reset(token)


@contextmanager
def deadline_paused() -> Iterator[None]:
    """Time spent inside (waiting for a person to confirm) does not count against the call's deadline."""
    deadline, started = _deadline.get(), anyio.current_time()
    try:
        yield
    finally:
        if deadline is not None:
            deadline.at += anyio.current_time() - started


class _Unparsable(MalformedResponse):
    """A 2xx body that does not parse as JSON (raised as a plain MalformedResponse when not retried)."""


class _OutOfTime(Exception):
    """The call's deadline passed (or is too close for another attempt); ``reason`` is the last failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Answer:
    """One upstream answer, its body read in full (within the byte cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    path: str

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def is_html(self) -> bool:
        kind = self.headers.get("content-type", "").lower()
        return "html" in kind or self.content[:64].lstrip().startswith(b"<")


HttpTransport = httpx.AsyncBaseTransport
"""What replaces the network under the client: the in-process emulator or a test double."""


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a read answered with ``status`` may be retried (``x-should-retry`` wins)."""
    override = headers.get("x-should-retry", "").strip().lower()
    if override in ("true", "false"):
        return override == "true"
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``retry-after``), if any."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - (time.time() if now is None else now)


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    initial: float = DEFAULT_RETRY_INITIAL_DELAY,
    cap: float = MAX_RETRY_DELAY,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): Retry-After if sane, else backoff with jitter."""
    if retry_after is not None and 0 < retry_after <= cap:
        return retry_after
    jitter = 1 - 0.25 * (rng or random).random()
    return min(initial * 2.0**attempt, cap) * jitter


def scenario_path(scenario_id: str) -> str:
    """``/v1/scenarios/{id}`` with the id percent-encoded as one path segment; bad ids refused before sending."""
    if not isinstance(scenario_id, str) or not scenario_id.strip():
        raise InvalidArgument("scenario_id is empty: pass a scenario id such as scn_..., as list_scenarios returns it")
    if scenario_id.strip() in (".", "..") or len(scenario_id) > MAX_ID_LENGTH:
        raise InvalidArgument(
            f"scenario_id is not a valid scenario id; pass an id such as scn_... (at most {MAX_ID_LENGTH} characters)"
        )
    return "/v1/scenarios/" + quote(scenario_id, safe="")


@dataclass(frozen=True)
class ListQuery:
    """Upstream list parameters; ``None`` means "not sent"."""

    name: str | None = None
    benchmark_id: str | None = None
    validation_type: str | None = None
    search: str | None = None
    limit: int | None = None
    starting_after: str | None = None
    include_total_count: bool | None = None

    def params(self) -> dict[str, str]:
        if self.limit is not None and not 1 <= self.limit <= API_MAX_LIMIT:
            raise InvalidArgument(f"limit must be between 1 and {API_MAX_LIMIT}; got {self.limit}")
        out: dict[str, str] = {}
        for key in (*LIST_FILTERS, "starting_after"):
            value = getattr(self, key)
            if value is not None:
                if len(value) > MAX_FILTER_LENGTH:  # beyond any real name or id, and beyond what a URL can carry
                    raise InvalidArgument(
                        f"{key} is {len(value)} characters long; send at most {MAX_FILTER_LENGTH} (a name, id or "
                        "search term)"
                    )
                out[key] = value
        if self.limit is not None:
            out["limit"] = str(self.limit)
        if self.include_total_count is not None:
            out["include_total_count"] = "true" if self.include_total_count else "false"
        return out


class RunloopClient:
    """The Runloop scenarios API over one ``httpx.AsyncClient``.

    ``transport`` lets the embedded emulator (or a test) stand in for the network; the code path
    is otherwise identical to the real API.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        initial_retry_delay: float = DEFAULT_RETRY_INITIAL_DELAY,
        max_retry_delay: float = MAX_RETRY_DELAY,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        transport: HttpTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._max_retries = max_retries
        self._initial_retry_delay = initial_retry_delay
        self._max_retry_delay = max_retry_delay
        self._retry_budget = retry_budget
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._call_timeout = call_timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",  # the encodings _BoundedDecoder inflates within the cap
                "User-Agent": f"runloop-scenarios-mcp/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never show the key
        return f"RunloopClient(base_url={str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_scenarios(self, query: ListQuery, *, on_wait: OnWait | None = None) -> dict[str, Any]:
        """One upstream page: ``{"scenarios": [...], "has_more": bool, "total_count": int | None}``."""
        body = await self._read("/v1/scenarios", query.params(), on_wait)
        return _check_page(body)

    async def get_scenario(self, scenario_id: str, *, on_wait: OnWait | None = None) -> dict[str, Any]:
        """One scenario, archived ones included, as the API returned it."""
        return _check_scenario(await self._read(scenario_path(scenario_id), {}, on_wait))

    def _call_deadline(self) -> Deadline:
        """The tool call's deadline, or (a client used on its own) one for this client call."""
        return _deadline.get() or Deadline(self._call_timeout)

    async def update_scenario(
        self, scenario_id: str, body: dict[str, Any], *, on_wait: OnWait | None = None
    ) -> dict[str, Any]:
        """POST an update. Retried only on 429 or when the connection failed before anything was sent."""
        path = scenario_path(scenario_id)
        headers = {"x-request-id": f"runloop-scenarios-mcp-{uuid.uuid4()}", "Content-Type": "application/json"}
        try:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:  # a lone surrogate the API sent ("\ud800") goes back as the escape it came as
            content = json.dumps(body, separators=(",", ":")).encode()
        call = self._call_deadline()
        # The POST leaves a few seconds of the call's deadline to the read that checks what happened to it.
        deadline = Deadline(call.seconds, at=call.at - min(WRITE_CHECK_RESERVE, call.seconds / 4))
        waited = 0.0
        for attempt in range(self._max_retries + 1):
            last = attempt == self._max_retries
            try:
                answer = await self._exchange(
                    "POST", path, deadline, attempt, on_wait, content=content, headers=headers
                )
            except _OutOfTime as exc:
                if attempt == 0 or exc.reason.startswith("no time"):  # nothing of this attempt was sent
                    raise self._out_of_time(deadline, exc.reason, write=True) from None
                raise WriteOutcomeUnknown(
                    f"The Runloop API did not answer the update within this call's time limit ({call.seconds:g} s, "
                    "--call-timeout), so it may or may not have been applied. Read the scenario with get_scenario "
                    "to see its current state before retrying."
                ) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: safe to try again.
                if last:
                    raise _connection_error(exc) from None
                waited = await self._wait(attempt, None, "connection failed", waited, deadline, on_wait)
                continue
            except httpx.TransportError as exc:
                raise WriteOutcomeUnknown(
                    "The connection to the Runloop API broke after the update was sent, so it may or may not have "
                    "been applied. Read the scenario with get_scenario to see its current state before retrying."
                ) from exc
            if answer.status_code == 429 and not last and should_retry(429, answer.headers):
                delay = parse_retry_after(answer.headers)
                waited = await self._wait(attempt, delay, "rate limited", waited, deadline, on_wait)
                continue
            try:
                return _check_scenario(self._decode(answer))
            except _Unparsable as exc:
                raise MalformedResponse(str(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(self, path: str, params: dict[str, str], on_wait: OnWait | None) -> Any:
        deadline = self._call_deadline()
        waited = 0.0
        for attempt in range(self._max_retries + 1):
            last = attempt == self._max_retries
            try:
                answer = await self._exchange("GET", path, deadline, attempt, on_wait, params=params)
            except _OutOfTime as exc:
                raise self._out_of_time(deadline, exc.reason) from None
            except httpx.TransportError as exc:
                if last:
                    raise _connection_error(exc) from None
                waited = await self._wait(attempt, None, type(exc).__name__, waited, deadline, on_wait)
                continue
            if answer.status_code >= 400 and not last and self._retryable_status(answer):
                reason = f"HTTP {answer.status_code}"
                retry_after = parse_retry_after(answer.headers)
                waited = await self._wait(attempt, retry_after, reason, waited, deadline, on_wait)
                continue
            try:
                return self._decode(answer)
            except _Unparsable as exc:  # only a JSON body cut short may come whole next time
                if last or not _maybe_cut_short(answer):
                    raise MalformedResponse(str(exc)) from None
                waited = await self._wait(attempt, None, "malformed body", waited, deadline, on_wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _retryable_status(answer: _Answer) -> bool:
        """The SDKs' rule, except an HTML page from something that is not a gateway: retrying cannot change it."""
        if not should_retry(answer.status_code, answer.headers):
            return False
        explicit = answer.headers.get("x-should-retry", "").strip().lower() == "true"
        return explicit or not answer.is_html or answer.status_code in _GATEWAY_STATUSES | {408, 429}

    async def _exchange(
        self, method: str, path: str, deadline: Deadline, attempt: int, on_wait: OnWait | None, **kwargs: Any
    ) -> _Answer:
        """One request and its whole body, within the request timeout and the call's deadline.

        httpx applies its timeout to each network read, so a body that trickles in a few bytes at a
        time would otherwise never time out; this bound covers connect, send and the full body.
        Raises :class:`_OutOfTime` when the deadline, not the request timeout, ended it.
        """
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _OutOfTime("no time left for another attempt")
        limit = min(self._timeout, remaining)
        with anyio.move_on_after(limit):
            return await self._with_progress(lambda: self._fetch(method, path, **kwargs), attempt, on_wait)
        if limit < self._timeout:
            raise _OutOfTime("no complete answer")
        raise httpx.ReadTimeout(f"no complete answer within {self._timeout} s")

    async def _with_progress(self, work: Callable[[], Awaitable[T]], attempt: int, on_wait: OnWait | None) -> T:
        """``work()``, reporting progress every :data:`PROGRESS_INTERVAL` seconds while it waits.

        On asyncio the ticker is a timer, started as a task only once the first interval has passed: a request
        that is answered sooner (nearly all) spawns no task. An error of ``on_wait`` is raised once the work ends.
        """
        if on_wait is None:
            return await work()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio)
            return await _progress_in_task_group(work, attempt, on_wait)
        started = anyio.current_time()
        ticker: list[asyncio.Task[None]] = []
        failure: list[Exception] = []

        async def tick() -> None:
            while True:
                waited = anyio.current_time() - started
                try:
                    await on_wait(attempt + 1, 0.0, f"waiting for the answer ({waited:.0f} s so far)")
                except Exception as exc:  # raised in the request's own task once the work ends
                    failure.append(exc)
                    return
                await _tick(PROGRESS_INTERVAL)

        timer = loop.call_later(PROGRESS_INTERVAL, lambda: ticker.append(loop.create_task(tick())))
        try:
            outcome = await work()
        finally:
            timer.cancel()
            if ticker:
                ticker[0].cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(ticker)
        if failure:
            raise failure[0]
        return outcome

    async def _fetch(self, method: str, path: str, **kwargs: Any) -> _Answer:
        """Send one request and read its body, at most ``max_response_bytes`` of it (decoded)."""
        request = self._http.build_request(method, path, **kwargs)
        response = await self._http.send(request, stream=True)
        try:
            cap = self._max_response_bytes
            if response.is_stream_consumed:  # built in memory (the in-process emulator, a test double): read already
                if len(response.content) > cap:
                    raise self._too_large(response.status_code)
                return _Answer(response.status_code, response.headers, response.content, request.url.path)
            declared = response.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > cap and not response.headers.get("content-encoding"):
                raise self._too_large(response.status_code, declared=int(declared))
            decoder = _BoundedDecoder(response.headers.get("content-encoding", ""))
            chunks: list[bytes] = []
            size = 0
            async for raw in response.aiter_raw():
                data = decoder.feed(raw, cap - size)
                if data is None:
                    raise self._too_large(response.status_code)
                size += len(data)
                chunks.append(data)
            tail = decoder.flush(cap - size)
            if tail is None:
                raise self._too_large(response.status_code)
            chunks.append(tail)
            return _Answer(response.status_code, response.headers, b"".join(chunks), request.url.path)
        finally:
            await response.aclose()

    def _too_large(self, status: int, *, declared: int | None = None) -> ResponseTooLarge:
        cap = self._max_response_bytes
        size = f"declared {declared:,} bytes" if declared is not None else f"more than {cap:,} bytes"
        logger.warning("upstream_too_large status=%d declared=%s cap=%d", status, declared, cap)
        return ResponseTooLarge(
            f"The Runloop API's answer (HTTP {status}) is too large: {size}, above this server's limit of "
            f"{_mib(cap)} (--max-response-bytes). It was not read and not retried. For list_scenarios ask for fewer "
            "scenarios (limit); if scenarios really are this large, raise --max-response-bytes; else check "
            "RUNLOOP_BASE_URL points at the Runloop API."
        )

    def _out_of_time(self, deadline: Deadline, reason: str, *, write: bool = False) -> UpstreamTimeout:
        outcome = "The update was not sent, so nothing was written. " if write else ""
        return UpstreamTimeout(
            f"The Runloop API gave no usable answer within this call's time limit of {deadline.seconds:g} s "
            f"(--call-timeout), retries included (last: {reason}). {outcome}Try again later, or raise --call-timeout."
        )

    async def _wait(
        self,
        attempt: int,
        retry_after: float | None,
        reason: str,
        waited: float,
        deadline: Deadline,
        on_wait: OnWait | None,
    ) -> float:
        delay = retry_delay(attempt, retry_after, initial=self._initial_retry_delay, cap=self._max_retry_delay)
        if waited + delay > self._retry_budget:
            raise UpstreamConnectionError(
                f"The Runloop API kept failing ({reason}) and the retry budget of {self._retry_budget:.0f} s is "
                "spent. Try again later."
            )
        if delay >= deadline.remaining():  # the retry could not finish in time: say so now instead of waiting
            raise UpstreamConnectionError(
                f"The Runloop API kept failing ({reason}), and waiting {delay:.1f} s for another try would pass this "
                f"call's time limit of {deadline.seconds:g} s (--call-timeout). Try again later."
            )
        logger.warning("upstream_retry attempt=%d reason=%r delay_s=%.2f", attempt + 1, reason, delay)
        if on_wait is not None:
            await on_wait(attempt + 1, delay, reason)
        await anyio.sleep(delay)
        return waited + delay

    def _decode(self, answer: _Answer) -> Any:
        """The JSON body of an answer, or the typed error it stands for."""
        logger.debug("upstream_response status=%d path=%s", answer.status_code, answer.path)
        if answer.status_code >= 400:
            detail = self._detail(answer)
            message = status_message(answer.status_code, detail)
            if answer.status_code >= 500 and answer.is_html and not self._retryable_status(answer):
                message = (
                    f"The Runloop API's address answered HTTP {answer.status_code} with an HTML error page, not the "
                    "API's JSON, so it was not retried. Try again later; if it persists, check RUNLOOP_BASE_URL points "
                    "at the Runloop API."
                )
            raise UpstreamStatusError(answer.status_code, message, detail=detail)
        if answer.is_redirect:  # redirects are not followed: the Authorization header must not travel
            location = clean_detail(answer.headers.get("location", ""), (self._api_key,))
            raise UpstreamStatusError(
                answer.status_code,
                f"The Runloop API answered with a redirect (HTTP {answer.status_code}"
                + (f" to {location}" if location else "")
                + f"), which this server does not follow. Check RUNLOOP_BASE_URL (the default is {DEFAULT_BASE_URL}).",
                detail=location or None,
            )
        if not answer.content:
            raise MalformedResponse(
                f"The Runloop API answered HTTP {answer.status_code} with an empty body where JSON was expected. "
                "Try again; if it persists, check RUNLOOP_BASE_URL points at the Runloop API."
            )
        try:
            body = json.loads(answer.content)
        except RecursionError:
            raise _too_deep() from None
        except (ValueError, UnicodeDecodeError):
            kind = answer.headers.get("content-type", "unknown type").split(";")[0]
            raise _Unparsable(
                f"The Runloop API answered HTTP {answer.status_code} with a body that is not valid JSON "
                f"({clean_detail(kind)[:60]}, {len(answer.content)} bytes). Try again; if it persists, check "
                "RUNLOOP_BASE_URL points at the Runloop API."
            ) from None
        if _cannot_hold(answer.content, self._api_key):
            _check_depth(body)
            return body
        return _inspect(body, self._api_key)

    def _detail(self, answer: _Answer) -> str | None:
        """The upstream's own error text, parsed leniently and made safe to show."""
        text = answer.content[:65536].decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            for key in ("message", "error", "detail"):
                value = parsed.get(key)
                if isinstance(value, str) and value.strip():
                    return clean_detail(value, (self._api_key,))
            return None
        if answer.is_html:
            return "an HTML error page (a proxy or gateway failed)"
        return clean_detail(text, (self._api_key,)) or None


class _BoundedDecoder:
    """Content-Encoding undone in steps that never produce more than the bytes still allowed.

    httpx would inflate a whole network chunk at once (1,000x for gzip, more for other codings), so the
    raw bytes are decoded here instead. Only what the client asks for (gzip, deflate) is accepted.
    """

    def __init__(self, encoding: str) -> None:
        self._coding = encoding.strip().lower()
        self._started = False
        self._inflate: Any = None
        if self._coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._coding == "deflate":
            self._inflate = zlib.decompressobj()
        elif self._coding not in ("", "identity"):
            raise MalformedResponse(
                f"The Runloop API answered with a body encoded as {clean_detail(encoding)[:40]!r}, which this server "
                "did not ask for (it accepts gzip and deflate). Check RUNLOOP_BASE_URL points at the Runloop API."
            )

    def feed(self, data: bytes, room: int) -> bytes | None:
        """The decoded bytes of ``data``, or None when they would be more than ``room``."""
        if self._inflate is None:
            return data if len(data) <= room else None
        try:
            out: bytes = self._inflate.decompress(data, room + 1)
        except zlib.error:
            if self._coding == "deflate" and not self._started:  # deflate without its zlib header, as some send
                self._started = True
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise MalformedResponse(
                "The Runloop API answered with a compressed body that does not decompress. Try again; if it "
                "persists, check RUNLOOP_BASE_URL points at the Runloop API."
            ) from None
        self._started = True
        if len(out) > room or self._inflate.unconsumed_tail:
            return None
        return out

    def flush(self, room: int) -> bytes | None:
        if self._inflate is None:
            return b""
        out: bytes = self._inflate.flush()
        return out if len(out) <= room else None


async def _progress_in_task_group(work: Callable[[], Awaitable[T]], attempt: int, on_wait: OnWait) -> T:
    """:meth:`RunloopClient._with_progress` on an event loop other than asyncio: the ticker in a task of its own."""
    outcome: list[T] = []
    failure: list[Exception] = []

    async def tick() -> None:
        started = anyio.current_time()
        while True:
            await _tick(PROGRESS_INTERVAL)
            waited = anyio.current_time() - started
            await on_wait(attempt + 1, 0.0, f"waiting for the answer ({waited:.0f} s so far)")

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        try:
            outcome.append(await work())
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            failure.append(exc)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return outcome[0]


def _maybe_cut_short(answer: _Answer) -> bool:
    """A JSON body that fails to parse may have been cut short on the way: worth another try. Other text is not."""
    kind = answer.headers.get("content-type", "").lower()
    return "json" in kind and answer.content.lstrip()[:1] in (b"{", b"[")


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB" if size % (1024 * 1024) == 0 else f"{size:,} bytes"


def _too_deep() -> MalformedResponse:
    return MalformedResponse(
        f"The Runloop API answered with JSON nested more than {MAX_JSON_DEPTH} levels deep, deeper than any "
        "scenario; it was not used. Check RUNLOOP_BASE_URL points at the Runloop API, or read another scenario."
    )


_AN_ASCII_ESCAPE = re.compile(rb"\\(?:u00[2-7]|/)")
"""A JSON escape that decodes to a printable ASCII character (``\\u0041``, ``\\/``; ``\\u007f`` too, to be
simple); other escapes give quotes, backslashes, control characters or non-ASCII ones."""


def _cannot_hold(raw: bytes, secret: str) -> bool:
    """True when no string parsed from ``raw`` can contain ``secret`` (so there is nothing to redact).

    A key of printable ASCII without quotes or backslashes can appear in a parsed string only as its own bytes
    in the body, or spelled with escapes that decode to printable ASCII characters; with neither in the body, it is not
    there. The body must be UTF-8 (it starts with ``{`` or ``[``). Anything else is inspected string by string.
    """
    if not secret:
        return True
    if not (secret.isascii() and secret.isprintable() and '"' not in secret and "\\" not in secret):
        return False
    if raw[:1] not in (b"{", b"[") or b"\x00" in raw[:4]:
        return False  # perhaps UTF-16 or UTF-32, or a byte order mark: json.loads reads those too
    return secret.encode() not in raw and _AN_ASCII_ESCAPE.search(raw) is None


def _check_depth(body: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH`, a level at a time (no recursion, no per-value stack).

    ``body`` comes from ``json.loads``, whose containers are exactly ``dict`` and ``list``: comparing classes is
    1.8x faster than ``isinstance`` over a page's few thousand values.
    """
    level: list[Any] = [body] if body.__class__ is dict or body.__class__ is list else []
    for _ in range(MAX_JSON_DEPTH):
        if not level:
            return
        level = [
            child
            for value in level
            for child in (value.values() if value.__class__ is dict else value)
            if child.__class__ is dict or child.__class__ is list
        ]
    if level:
        raise _too_deep()


def _inspect(body: Any, secret: str) -> Any:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` and replace ``secret`` in every string, without recursing."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            if secret and any(secret in key for key in value):
                renamed = {key.replace(secret, REDACTED): item for key, item in value.items()}
                value.clear()
                value.update(renamed)
            for key, item in value.items():
                if isinstance(item, str):
                    if secret and secret in item:
                        value[key] = item.replace(secret, REDACTED)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    if secret and secret in item:
                        value[index] = item.replace(secret, REDACTED)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
    if isinstance(body, str) and secret and secret in body:
        return body.replace(secret, REDACTED)
    return body


def _connection_error(exc: httpx.TransportError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(
            "The Runloop API did not answer in time, even after retries. Try again later, or raise --timeout."
        )
    return UpstreamConnectionError(
        f"The connection to the Runloop API failed or broke off ({type(exc).__name__}), even after retries. Check "
        "the network and RUNLOOP_BASE_URL, then try again."
    )


def _malformed(what: str) -> MalformedResponse:
    return MalformedResponse(
        f"The Runloop API answered with JSON that is not {what}. Try again; if it persists, check "
        "RUNLOOP_BASE_URL points at the Runloop API."
    )


def _check_scenario(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise _malformed("a scenario (an object with an id)")
    return body


def _check_page(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("scenarios"), list):
        raise _malformed("a page of scenarios")
    for item in body["scenarios"]:
        _check_scenario(item)
    has_more = body.get("has_more", False)
    total = body.get("total_count")
    if not isinstance(has_more, bool) or (total is not None and (not isinstance(total, int) or total < 0)):
        raise _malformed("a page of scenarios (has_more / total_count)")
    return {"scenarios": body["scenarios"], "has_more": has_more, "total_count": total}
