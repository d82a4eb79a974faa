"""Async client for the three Runloop scenario endpoints: list, get, update.

It owns authentication, timeouts, the retry policy of the official SDKs (docs/upstream-api.md,
"Retries") and the mapping of every failure to a typed error from :mod:`errors`. Results are the raw JSON
the API returned (checked for shape, never re-serialized), so fields unknown to this code survive.
Nothing above this module builds HTTP requests.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from runloop_scenarios_mcp import __version__
from runloop_scenarios_mcp.config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_RETRY_INITIAL_DELAY,
    DEFAULT_TIMEOUT,
)
from runloop_scenarios_mcp.errors import (
    InvalidArgument,
    MalformedResponse,
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

OnWait = Callable[[int, float, str], Awaitable[None]]
"""Called before each retry with (attempt number, delay in seconds, reason): used for progress."""


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
        transport: HttpTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._max_retries = max_retries
        self._initial_retry_delay = initial_retry_delay
        self._max_retry_delay = max_retry_delay
        self._retry_budget = retry_budget
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
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

    async def update_scenario(
        self, scenario_id: str, body: dict[str, Any], *, on_wait: OnWait | None = None
    ) -> dict[str, Any]:
        """POST an update. Retried only on 429 or when the connection failed before anything was sent."""
        path = scenario_path(scenario_id)
        headers = {"x-request-id": f"runloop-scenarios-mcp-{uuid.uuid4()}", "Content-Type": "application/json"}
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        waited = 0.0
        for attempt in range(self._max_retries + 1):
            last = attempt == self._max_retries
            try:
                response = await self._exchange("POST", path, content=content, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: safe to try again.
                if last:
                    raise _connection_error(exc) from None
                waited = await self._wait(attempt, None, "connection failed", waited, on_wait)
                continue
            except httpx.TransportError as exc:
                raise WriteOutcomeUnknown(
                    "The connection to the Runloop API broke after the update was sent, so it may or may not have "
                    "been applied. Read the scenario with get_scenario to see its current state before retrying."
                ) from exc
            if response.status_code == 429 and not last and should_retry(429, response.headers):
                waited = await self._wait(attempt, parse_retry_after(response.headers), "rate limited", waited, on_wait)
                continue
            return _check_scenario(self._decode(response))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(self, path: str, params: dict[str, str], on_wait: OnWait | None) -> Any:
        waited = 0.0
        for attempt in range(self._max_retries + 1):
            last = attempt == self._max_retries
            try:
                response = await self._exchange("GET", path, params=params)
            except httpx.TransportError as exc:
                if last:
                    raise _connection_error(exc) from None
                waited = await self._wait(attempt, None, type(exc).__name__, waited, on_wait)
                continue
            if response.status_code >= 400 and not last and should_retry(response.status_code, response.headers):
                reason = f"HTTP {response.status_code}"
                retry_after = parse_retry_after(response.headers)
                waited = await self._wait(attempt, retry_after, reason, waited, on_wait)
                continue
            try:
                return self._decode(response)
            except MalformedResponse:
                if last or response.status_code >= 400:
                    raise
                waited = await self._wait(attempt, None, "malformed body", waited, on_wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request and its whole body, bounded as a whole by the timeout.

        httpx applies its timeout to each network read, so a body that trickles in a few bytes at a
        time would otherwise never time out; this deadline covers connect, send and the full body.
        """
        try:
            with anyio.fail_after(self._timeout):
                return await self._http.request(method, path, **kwargs)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer within {self._timeout} s") from None

    async def _wait(
        self, attempt: int, retry_after: float | None, reason: str, waited: float, on_wait: OnWait | None
    ) -> float:
        delay = retry_delay(attempt, retry_after, initial=self._initial_retry_delay, cap=self._max_retry_delay)
        if waited + delay > self._retry_budget:
            raise UpstreamConnectionError(
                f"The Runloop API kept failing ({reason}) and the retry budget of {self._retry_budget:.0f} s is "
                "spent. Try again later."
            )
        logger.warning("upstream_retry attempt=%d reason=%r delay_s=%.2f", attempt + 1, reason, delay)
        if on_wait is not None:
            await on_wait(attempt + 1, delay, reason)
        await anyio.sleep(delay)
        return waited + delay

    def _decode(self, response: httpx.Response) -> Any:
        """The JSON body of a response, or the typed error it stands for."""
        logger.debug("upstream_response status=%d path=%s", response.status_code, response.request.url.path)
        if response.status_code >= 400:
            raise UpstreamStatusError(
                response.status_code,
                status_message(response.status_code, self._detail(response)),
                detail=self._detail(response),
            )
        if response.is_redirect:  # redirects are not followed: the Authorization header must not travel
            location = clean_detail(response.headers.get("location", ""), (self._api_key,))
            raise UpstreamStatusError(
                response.status_code,
                f"The Runloop API answered with a redirect (HTTP {response.status_code}"
                + (f" to {location}" if location else "")
                + f"), which this server does not follow. Check RUNLOOP_BASE_URL (the default is {DEFAULT_BASE_URL}).",
                detail=location or None,
            )
        if not response.content:
            raise MalformedResponse(
                f"The Runloop API answered HTTP {response.status_code} with an empty body where JSON was expected. "
                "Try again; if it persists, check RUNLOOP_BASE_URL points at the Runloop API."
            )
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "unknown type").split(";")[0]
            raise MalformedResponse(
                f"The Runloop API answered HTTP {response.status_code} with a body that is not valid JSON "
                f"({kind}, {len(response.content)} bytes). Try again; if it persists, check RUNLOOP_BASE_URL "
                "points at the Runloop API."
            ) from None

    def _detail(self, response: httpx.Response) -> str | None:
        """The upstream's own error text, parsed leniently and made safe to show."""
        text = response.content.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in ("message", "error", "detail"):
                value = parsed.get(key)
                if isinstance(value, str) and value.strip():
                    return clean_detail(value, (self._api_key,))
            return None
        if "html" in response.headers.get("content-type", "").lower() or text.lstrip().startswith("<"):
            return "an HTML error page (a proxy or gateway failed)"
        return clean_detail(text, (self._api_key,)) or None


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
