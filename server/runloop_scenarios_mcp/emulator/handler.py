"""The embedded Runloop scenarios API in memory: an emulator of the three endpoints we use.

It serves ``GET /v1/scenarios`` (filters, ``limit``/``starting_after`` paging, ``has_more``,
``total_count``), ``GET /v1/scenarios/{id}`` and ``POST /v1/scenarios/{id}`` (null keeps, provided
replaces, atomic, validated) exactly as ``docs/upstream-api.md`` describes the upstream contract,
over a realistic deterministic data set (:mod:`runloop_scenarios_mcp.emulator.data`).

:meth:`Emulator.handle` is the whole API as a function of an ``httpx.Request``;
:meth:`Emulator.transport` wraps it in an ``httpx.MockTransport`` for in-process use (``--emulator``).
Every request is recorded as a :class:`RecordedRequest`. Serving it on a real socket, with fault
injection, is :mod:`runloop_scenarios_mcp.emulator.loopback`'s job.

The emulator is deliberately dict-based and independent of the project's models, so it can catch
their bugs. It never stores or echoes the API key.
"""

from __future__ import annotations

import copy
import functools
import hmac
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import httpx

from runloop_scenarios_mcp.emulator.data import (
    ARCHITECTURES,
    RESOURCE_SIZES,
    SCENARIO_COUNT_DEFAULT,
    SCORER_TYPES,
    VALIDATION_TYPES,
    Dataset,
    generate,
    generate_dataset,
)

__all__ = [
    "SCENARIO_COUNT_DEFAULT",
    "Emulator",
    "RecordedRequest",
    "generate_dataset",
]

LIST_PATH = "/v1/scenarios"
REQUEST_LOG_LIMIT = 10_000
"""Requests the emulator remembers (``requests``), newest last; older ones are forgotten."""
LIMIT_DEFAULT = 20
LIMIT_MAX = 5000
UNAUTHORIZED_MESSAGE = "Unauthorized: missing or invalid API key"
ARCHIVED_MESSAGE = "Scenario is archived and cannot be updated"
NOT_FOUND_MESSAGE = "Scenario not found"
UPDATE_KEYS: tuple[str, ...] = (
    "name",
    "input_context",
    "scoring_contract",
    "environment_parameters",
    "metadata",
    "reference_output",
    "required_environment_variables",
    "required_secret_names",
    "scorer_timeout_sec",
    "validation_type",
)
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_INTEGER = re.compile(r"^-?[0-9]+$")
# Required string fields of each scorer variant (docs/upstream-api.md, "Scorers").
_SCORER_REQUIRED: dict[str, tuple[str, ...]] = {
    "ast_grep_scorer": ("pattern", "search_directory"),
    "custom_scorer": ("custom_scorer_type",),
    "python_script_scorer": ("python_script",),
}


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_bytes(payload: Any) -> bytes:
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a client's "\ud800": keep it escaped
        return json.dumps(payload, separators=(",", ":")).encode("ascii")


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "application/json", **(headers or {})}, content=_json_bytes(payload)
    )


def _raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")


def _request_body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@functools.lru_cache(maxsize=4)
def _cached_dataset(seed: int, count: int) -> Dataset:
    """Generated once per (seed, count); every Emulator deep-copies it, so the cache is never mutated."""
    return generate(seed, count)


# --- request log -----------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the emulator saw. Header values are never kept (they could hold the key)."""

    method: str
    path: str  # raw (percent-encoded) path, without the query string
    query: dict[str, str]  # first value of each parameter
    body: Any | None  # parsed JSON, raw text if not JSON, None if empty
    status: int  # status sent; 0 when the connection was dropped without a response
    authorized: bool
    request_id: str | None  # the x-request-id header (the SDK's idempotency key)


# --- the API ---------------------------------------------------------------------------------


class Emulator:
    """The Runloop scenarios API in memory. Thread-safe; every request is recorded in `requests`.

    `api_key` None accepts any non-blank bearer token. `scenarios` replaces the generated data set
    (deep-copied; no benchmarks until `set_benchmark`). The last three options choose between the
    readings of behaviour left open upstream (docs/upstream-api.md, "Undocumented and ambiguous"); the
    defaults are the strict readings: an unknown ``starting_after`` is a 400 (``"empty"``: an
    empty last page), an out-of-range ``limit`` is a 400 (``"clamp"``: clamped to 1..5000), and
    ``input_context`` / ``scoring_contract`` updates merge one level (``"replace"``: the provided
    object replaces the stored one wholesale, absent sub-fields are dropped).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        count: int = SCENARIO_COUNT_DEFAULT,
        api_key: str | None = None,
        scenarios: list[dict[str, Any]] | None = None,
        unknown_cursor: Literal["error", "empty"] = "error",
        limit_out_of_range: Literal["error", "clamp"] = "error",
        nested_updates: Literal["merge", "replace"] = "merge",
    ) -> None:
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must be None (accept any bearer token) or a non-blank string")
        self._api_key = api_key
        self._unknown_cursor = unknown_cursor
        self._clamp_limit = limit_out_of_range == "clamp"
        self._merge_nested = nested_updates == "merge"
        self._lock = threading.RLock()
        self._scenarios: dict[str, dict[str, Any]] = {}  # insertion order is creation order
        self._order: list[str] = []
        self._position: dict[str, int] = {}
        self._benchmarks: dict[str, set[str]] = {}
        self.requests: list[RecordedRequest] = []
        if scenarios is None:
            dataset = _cached_dataset(seed, count)
            for scenario in copy.deepcopy(dataset.scenarios):
                self._insert(scenario)
            for benchmark_id, members in dataset.benchmarks.items():
                self._benchmarks[benchmark_id] = set(members)
        else:
            for scenario in copy.deepcopy(scenarios):
                self._insert(scenario)

    # -- direct access for tests and set-up ---------------------------------------------------

    def _insert(self, scenario: dict[str, Any]) -> None:
        sid = scenario.get("id")
        if not isinstance(sid, str) or not sid:
            raise ValueError("a scenario needs a non-empty string id")
        if sid not in self._position:
            self._position[sid] = len(self._order)
            self._order.append(sid)
        self._scenarios[sid] = scenario

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Deep copy of every scenario (archived included), id -> scenario, in creation order."""
        with self._lock:
            return copy.deepcopy(self._scenarios)

    def get(self, scenario_id: str) -> dict[str, Any] | None:
        with self._lock:
            scenario = self._scenarios.get(scenario_id)
            return copy.deepcopy(scenario) if scenario is not None else None

    def put(self, scenario: dict[str, Any]) -> None:
        """Insert or replace a scenario as-is (no validation); a new id goes last in the order."""
        with self._lock:
            self._insert(copy.deepcopy(scenario))

    def set_benchmark(self, benchmark_id: str, scenario_ids: list[str]) -> None:
        """Make `scenario_ids` the members of `benchmark_id` (replacing its previous members)."""
        with self._lock:
            self._benchmarks[benchmark_id] = set(scenario_ids)

    def benchmarks(self) -> dict[str, list[str]]:
        """Benchmark id -> member scenario ids in creation order."""
        with self._lock:
            return {b: [s for s in self._order if s in members] for b, members in self._benchmarks.items()}

    def archive(self, scenario_id: str) -> None:
        with self._lock:
            if scenario_id not in self._scenarios:
                raise KeyError(scenario_id)
            self._scenarios[scenario_id]["status"] = "archived"

    def posts(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- request handling ---------------------------------------------------------------------

    def authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization")
        if header is None:
            return False
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        if self._api_key is None:
            return True
        return hmac.compare_digest(token.encode("utf-8"), self._api_key.encode("utf-8"))

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request against the current state (the whole API, fault-free)."""
        return self._handle(request, apply=True)

    def _handle(self, request: httpx.Request, *, apply: bool) -> httpx.Response:
        with self._lock:
            try:
                response = self._route(request, apply=apply)
            except _ApiError as error:
                response = _json_response(error.status, {"message": error.message})
            self._record(request, response.status_code)
            return response

    def _record(self, request: httpx.Request, status: int) -> None:
        content = _request_body(request)
        body: Any | None = None
        if content:
            try:
                body = json.loads(content)
            except (ValueError, RecursionError):
                body = content.decode("utf-8", "replace")
        entry = RecordedRequest(
            method=request.method,
            path=_raw_path(request),
            query={k: request.url.params[k] for k in request.url.params},
            body=body,
            status=status,
            authorized=self.authorized(request),
            request_id=request.headers.get("x-request-id"),
        )
        with self._lock:
            self.requests.append(entry)
            if len(self.requests) > REQUEST_LOG_LIMIT:  # a long-running --emulator must not grow without bound
                del self.requests[: len(self.requests) - REQUEST_LOG_LIMIT]

    def _route(self, request: httpx.Request, *, apply: bool) -> httpx.Response:
        if not self.authorized(request):
            raise _ApiError(401, UNAUTHORIZED_MESSAGE)
        path, method = _raw_path(request), request.method.upper()
        if path == LIST_PATH:
            if method != "GET":
                return _json_response(405, {"message": f"Method {method} not allowed"}, {"allow": "GET"})
            return _json_response(200, self._list(request.url.params))
        rest = path[len(LIST_PATH) + 1 :] if path.startswith(LIST_PATH + "/") else ""
        if not rest or "/" in rest:
            raise _ApiError(404, "Not found")
        scenario_id = unquote(rest, errors="replace")
        if method == "GET":
            scenario = self._scenarios.get(scenario_id)
            if scenario is None:
                raise _ApiError(404, NOT_FOUND_MESSAGE)
            return _json_response(200, scenario)
        if method == "POST":
            return _json_response(200, self._update(scenario_id, _request_body(request), apply=apply))
        return _json_response(405, {"message": f"Method {method} not allowed"}, {"allow": "GET, POST"})

    def _list(self, params: httpx.QueryParams) -> dict[str, Any]:
        def param(name: str) -> str | None:
            value = params.get(name)
            return value if value else None  # every parameter allows an empty value: empty = absent

        raw_limit = param("limit")
        limit = LIMIT_DEFAULT
        if raw_limit is not None:
            if not _INTEGER.match(raw_limit) or not (self._clamp_limit or 1 <= int(raw_limit) <= LIMIT_MAX):
                raise _ApiError(400, f"limit: must be an integer between 1 and {LIMIT_MAX}")
            limit = min(max(int(raw_limit), 1), LIMIT_MAX)
        raw_total = param("include_total_count")
        if raw_total not in (None, "true", "false"):
            raise _ApiError(400, "include_total_count: must be true or false")
        start = 0
        after = param("starting_after")
        if after is not None:
            if after in self._position:
                start = self._position[after] + 1
            elif self._unknown_cursor == "empty":
                start = len(self._order)
            else:
                raise _ApiError(400, f"starting_after: no scenario with id {after}")
        name, benchmark_id = param("name"), param("benchmark_id")
        validation_type, search = param("validation_type"), param("search")
        members = self._benchmarks.get(benchmark_id, set()) if benchmark_id is not None else None
        needle = search.casefold() if search is not None else None
        total = 0
        page: list[dict[str, Any]] = []
        has_more = False
        for index, sid in enumerate(self._order):
            scenario = self._scenarios[sid]
            if scenario.get("status") == "archived":
                continue
            if name is not None and scenario.get("name") != name:
                continue
            if members is not None and sid not in members:
                continue
            if validation_type is not None and scenario.get("validation_type") != validation_type:
                continue
            if (
                needle is not None
                and needle not in sid.casefold()
                and needle not in str(scenario.get("name")).casefold()
            ):
                continue
            total += 1
            if index >= start:
                if len(page) < limit:
                    page.append(scenario)
                else:
                    has_more = True
        result: dict[str, Any] = {"scenarios": page, "has_more": has_more}
        if raw_total != "false":
            result["total_count"] = total
        return result

    def _update(self, scenario_id: str, content: bytes, *, apply: bool) -> dict[str, Any]:
        current = self._scenarios.get(scenario_id)
        if current is None:
            raise _ApiError(404, NOT_FOUND_MESSAGE)
        changes: Any = {}
        if content.strip():
            try:
                changes = json.loads(content, parse_constant=_reject_constant)
            except (ValueError, RecursionError) as error:
                raise _ApiError(400, "Request body is not valid JSON") from error
        if not isinstance(changes, dict):
            raise _ApiError(400, "Request body must be a JSON object")
        unknown = [key for key in changes if key not in UPDATE_KEYS]
        if unknown:
            raise _ApiError(400, f"Unrecognized field(s) in update body: {', '.join(sorted(unknown))}")
        if current.get("status") == "archived":
            raise _ApiError(400, ARCHIVED_MESSAGE)
        updated = copy.deepcopy(current)
        for key in UPDATE_KEYS:
            value = changes.get(key)
            if value is not None:
                _apply_field(updated, key, value, merge_nested=self._merge_nested)
        if apply:
            self._scenarios[scenario_id] = updated
        return updated


# --- update validation (each failure is a 400 that names the field) --------------------------


def _bad(field_path: str, problem: str) -> _ApiError:
    return _ApiError(400, f"{field_path}: {problem}")


def _string_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(key, "must be a list of strings")
    return value


def _merge_one_level(updated: dict[str, Any], key: str, value: Any, allowed: dict[str, type], merge: bool) -> None:
    if not isinstance(value, dict):
        raise _bad(key, "must be an object")
    for sub in value:
        if sub not in allowed:
            raise _bad(f"{key}.{sub}", "unrecognized field")
    target = updated.get(key)
    merged = dict(target) if merge and isinstance(target, dict) else {}
    for sub, kind in allowed.items():
        sub_value = value.get(sub)
        if sub_value is None:
            continue  # null or absent: keep
        if not isinstance(sub_value, kind):
            raise _bad(
                f"{key}.{sub}", f"must be {'a string' if kind is str else 'an array' if kind is list else 'an object'}"
            )
        merged[sub] = sub_value
    updated[key] = merged


def _check_scoring_functions(functions: list[Any]) -> None:
    for i, function in enumerate(functions):
        where = f"scoring_contract.scoring_function_parameters[{i}]"
        if not isinstance(function, dict):
            raise _bad(where, "must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
            raise _bad(f"{where}.name", "must match ^[a-zA-Z0-9_-]+$")
        weight = function.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise _bad(f"{where}.weight", "must be a number")
        scorer = function.get("scorer")
        if not isinstance(scorer, dict):
            raise _bad(f"{where}.scorer", "must be an object")
        scorer_type = scorer.get("type")
        if scorer_type not in SCORER_TYPES:
            raise _bad(
                f"{where}.scorer.type",
                f"unknown scorer type {scorer_type!r}; expected one of {', '.join(SCORER_TYPES)}",
            )
        for required in _SCORER_REQUIRED.get(str(scorer_type), ()):
            if not isinstance(scorer.get(required), str):
                raise _bad(f"{where}.scorer.{required}", f"is required for {scorer_type} and must be a string")


def _check_environment(value: Any) -> None:
    if not isinstance(value, dict):
        raise _bad("environment_parameters", "must be an object")
    launch = value.get("launch_parameters")
    if launch is None:
        return
    if not isinstance(launch, dict):
        raise _bad("environment_parameters.launch_parameters", "must be an object")
    for sub, allowed in (("resource_size_request", RESOURCE_SIZES), ("architecture", ARCHITECTURES)):
        if launch.get(sub) is not None and launch.get(sub) not in allowed:
            raise _bad(f"environment_parameters.launch_parameters.{sub}", f"must be one of {', '.join(allowed)}")


def _apply_field(updated: dict[str, Any], key: str, value: Any, *, merge_nested: bool) -> None:
    """Validate one provided (non-null) update field and apply it to `updated`."""
    if key == "name":
        if not isinstance(value, str):
            raise _bad("name", "must be a string")
        if not value.strip():
            raise _bad("name", "cannot be blank")
        updated["name"] = value
    elif key == "input_context":
        _merge_one_level(updated, key, value, {"problem_statement": str, "additional_context": dict}, merge_nested)
    elif key == "scoring_contract":
        _merge_one_level(updated, key, value, {"scoring_function_parameters": list}, merge_nested)
        _check_scoring_functions(updated[key].get("scoring_function_parameters") or [])
    elif key == "environment_parameters":
        _check_environment(value)
        updated["environment"] = value  # the request name differs from the response name
    elif key == "metadata":
        if not isinstance(value, dict):
            raise _bad("metadata", "must be an object mapping strings to strings")
        for meta_key, meta_value in value.items():
            if not isinstance(meta_value, str):
                raise _bad(f"metadata.{meta_key}", "values must be strings")
        updated["metadata"] = value
    elif key == "reference_output":
        if not isinstance(value, str):
            raise _bad("reference_output", "must be a string")
        updated["reference_output"] = value  # "" clears, and is stored as ""
    elif key in ("required_environment_variables", "required_secret_names"):
        updated[key] = _string_list(key, value)
    elif key == "scorer_timeout_sec":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _bad("scorer_timeout_sec", "must be a positive integer (seconds)")
        updated["scorer_timeout_sec"] = value
    elif key == "validation_type":
        if value == "":
            updated["validation_type"] = None  # "Pass in empty string to clear"
        elif value in VALIDATION_TYPES:
            updated["validation_type"] = value
        else:
            raise _bad("validation_type", f"must be one of {', '.join(VALIDATION_TYPES)} (or empty to clear)")


class LazyEmulator(httpx.AsyncBaseTransport):
    """The emulator as a transport that builds its data set when first needed, off the server's start-up path.

    ``build()`` may be called ahead (e.g. from a warm-up thread once the client is initialized); the first
    request waits for it or builds it itself.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._transport: httpx.MockTransport | None = None

    def build(self) -> None:
        with self._lock:
            if self._transport is None:
                self._transport = Emulator(**self._options).transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            self.build()
        assert self._transport is not None
        return await self._transport.handle_async_request(request)
