"""An independent fake of the Runloop scenarios API, written only from the upstream contract in docs/upstream-api.md.

It is deliberately *not* the emulator: its own data (own seed, own names), and wherever the contract
leaves a choice open it takes a different legal one, so a server that leans on an emulator quirk fails:

- list order is creation time, and ids are random (sorting by id gives another order);
- ``limit`` defaults to 20; ``total_count`` is sent only when asked (or, by option, never / as null);
  an obsolete ``remaining_count`` is always present and always 0 (the contract says to ignore it);
- an unknown ``starting_after`` gives an empty page, an error, or (option) resumes by position;
- scenarios of every era: no ``status`` (means active), no ``validation_type``/``metadata``/``environment``,
  ``prebuilt_id`` and ``is_public`` from 2025, unknown fields at every level, unknown enum values
  (``NEW_KIND``, ``llm_judge_scorer``), null next to absent, unicode, problem statements of tens of KB;
- update (POST) keeps omitted/null fields, replaces provided ones wholesale, takes ``environment_parameters``
  and returns ``environment``, rejects unknown body fields (``additionalProperties: false``), blank names
  and archived scenarios with 400; unknown ids are 404 and a wrong key is 401, each as ``{"message": ...}``.
"""

from __future__ import annotations

import copy
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import httpx

UPDATE_FIELDS: frozenset[str] = frozenset(
    {
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
    }
)
"""The update body fields (docs/upstream-api.md, "Update body fields"); anything else is rejected
(additionalProperties: false)."""
VALIDATION_TYPES: tuple[str, ...] = ("UNSPECIFIED", "FORWARD", "REVERSE", "EVALUATION")
SCORER_TYPES: tuple[str, ...] = (
    "ast_grep_scorer",
    "bash_script_scorer",
    "command_scorer",
    "custom_scorer",
    "python_script_scorer",
    "test_based_scorer",
)
DEFAULT_LIMIT = 20
MAX_LIMIT = 5000

UnknownCursor = Literal["empty", "error", "position"]
NestedUpdate = Literal["merge", "replace"]
TotalCount = Literal["when_asked", "never", "null"]

# --- data ------------------------------------------------------------------------------------------------

_VERBS = ("mend", "port", "harden", "untangle", "profile", "vendor", "retire", "shard", "debounce", "backfill")
_NOUNS = (
    "ledger-sync",
    "tile-renderer",
    "webhook-fanout",
    "csv-importer",
    "quota-service",
    "geo-index",
    "audit-trail",
    "pdf-splitter",
    "oauth-broker",
    "cron-planner",
    "image-thumbnailer",
    "feature-flags",
)
_PROSE = (
    "the handler drops a frame when the queue drains before the flush completes and the retry loop never "
    "observes the sentinel so downstream consumers see a partial batch with stale offsets while the metrics "
    "exporter reports success tests must cover the empty batch the single item batch and the overflow path "
    "without sleeping in the suite keep the public interface stable and document any new configuration knob"
)
_WORDS = tuple(_PROSE.split(" "))
_UNICODE_BITS = (
    "Ünïcødé",
    "数据管道",
    "パイプライン",
    "🚀",
    "👩🏽‍💻",
    "עברית",
    "العربية",
    "e\u0301",
    "\U0001d518\U0001d52b\U0001d526",  # mathematical fraktur, astral plane
    "Ω≈ç√∫",
    "ß",
    "\u00a0",
)
_SQUADS = ("kestrel", "marmot", "osprey", "tamarin", "quokka")
_LANGS = ("python", "go", "rust", "typescript", "java")


def _random_id(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(20))


def _prose(rng: random.Random, chars: int, *, unicode_share: float = 0.0) -> str:
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_UNICODE_BITS) if rng.random() < unicode_share else rng.choice(_WORDS)
        if rng.random() < 0.04:
            word += ".\n\n"
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def _scorer(rng: random.Random, kind: str, big: bool = False) -> dict[str, Any]:
    if kind == "ast_grep_scorer":
        out: dict[str, Any] = {"type": kind, "pattern": "$X.unwrap()", "search_directory": "src"}
        if rng.random() < 0.5:
            out["lang"] = "rust"
        return out
    if kind == "bash_script_scorer":
        body = "\n".join(f"grep -q 'case_{i}' out.log && pass=$((pass+1))" for i in range(400 if big else 5))
        return {"type": kind, "bash_script": f'#!/bin/bash\npass=0\n{body}\necho score=$(echo "$pass/5" | bc -l)'}
    if kind == "command_scorer":
        return {"type": kind, "command": rng.choice(("make check", "npm test --silent", "cargo test -q"))}
    if kind == "custom_scorer":
        params: dict[str, Any] | None = {"threshold": rng.choice((0.5, 0.8)), "mode": "strict"}
        return {"type": kind, "custom_scorer_type": "diff_similarity", "scorer_params": params}
    if kind == "python_script_scorer":
        out = {"type": kind, "python_script": "import sys\nprint(1.0 if 'ok' in open('out.txt').read() else 0.0)\n"}
        if rng.random() < 0.5:
            out["python_version_constraint"] = None
            out["requirements_contents"] = "pytest==8.3.0\n"
        return out
    files = [
        {"file_path": f"tests/test_{i}.py", "file_contents": f"def test_{i}():\n    assert True\n"} for i in (1, 2)
    ]
    if big:
        files.append({"file_path": "tests/test_big.py", "file_contents": _prose(rng, 9000)})
    return {"type": "test_based_scorer", "test_command": "pytest -q", "test_files": files}


def _contract(rng: random.Random, kinds: list[str], *, big: bool = False) -> dict[str, Any]:
    weights = [round(1.0 / len(kinds), 4)] * len(kinds)
    weights[-1] = round(1.0 - sum(weights[:-1]), 4)
    functions = [
        {"name": f"{kind.split('_')[0]}_{i}", "scorer": _scorer(rng, kind, big), "weight": weight}
        for i, (kind, weight) in enumerate(zip(kinds, weights, strict=True))
    ]
    return {"scoring_function_parameters": functions}


def _environment(rng: random.Random) -> dict[str, Any]:
    env: dict[str, Any] = {"working_directory": rng.choice(("/home/user/repo", "/workspace", "/srv/app"))}
    if rng.random() < 0.6:
        env["blueprint_id"] = _random_id(rng, "bpt_")
    else:
        env["snapshot_id"] = _random_id(rng, "snp_")
    if rng.random() < 0.7:
        env["launch_parameters"] = {
            "resource_size_request": rng.choice(("SMALL", "MEDIUM", "LARGE")),
            "architecture": rng.choice(("x86_64", "arm64")),
            "keep_alive_time_seconds": 3600,
            "launch_commands": ["git fetch --depth 1", "make deps"],
            "after_idle": {"idle_time_seconds": 600, "on_idle": "suspend"},
        }
    return env


def _regular(rng: random.Random, index: int) -> dict[str, Any]:
    name = f"{rng.choice(_VERBS)}-{rng.choice(_NOUNS)}-{index:03d}"
    kinds = rng.sample(SCORER_TYPES, rng.randint(1, 3))
    scenario: dict[str, Any] = {
        "id": _random_id(rng, "scn_"),
        "name": name,
        "input_context": {"problem_statement": _prose(rng, rng.randint(150, 2500), unicode_share=0.02)},
        "scoring_contract": _contract(rng, kinds),
        "metadata": {"squad": rng.choice(_SQUADS), "lang": rng.choice(_LANGS)},
        "status": "active",
        "environment": _environment(rng),
        "reference_output": "diff --git a/x b/x\n" + _prose(rng, rng.randint(50, 800)),
        "required_environment_variables": rng.choice(([], ["GITHUB_TOKEN"], ["DB_URL", "CACHE_URL"])),
        "required_secret_names": rng.choice(([], ["npm_token"])),
        "scorer_timeout_sec": rng.choice((600, 1800)),
        "validation_type": rng.choice(VALIDATION_TYPES),
        "create_time_ms": 0,  # unknown to the contract: a field the server must carry through untouched
    }
    if rng.random() < 0.3:
        scenario["input_context"]["additional_context"] = {"ticket": f"ENG-{rng.randint(100, 9999)}"}
    if rng.random() < 0.2:
        scenario["labels"] = [{"key": "tier", "value": rng.choice(("gold", "silver"))}]
    return scenario


def _quirks(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Scenarios of the shapes the contract says a client must survive, by purpose."""
    base = {key: _regular(rng, 900 + i) for i, key in enumerate(_QUIRK_KEYS)}
    q = {key: dict(value) for key, value in base.items()}
    del q["no_status"]["status"]
    del q["no_validation_type"]["validation_type"]
    del q["no_metadata"]["metadata"]
    del q["no_environment"]["environment"]
    nulls = q["nulls"]
    nulls.update(environment=None, reference_output=None, validation_type=None, scorer_timeout_sec=None)
    nulls["input_context"] = {"problem_statement": "Nulls everywhere they are allowed.", "additional_context": None}
    for key in ("required_environment_variables", "required_secret_names"):
        nulls.pop(key, None)
    old = q["old_era"]  # the 2025 SEED-U shape: prebuilt_id, is_public, none of the later fields
    for key in ("status", "validation_type", "required_environment_variables", "required_secret_names"):
        old.pop(key, None)
    old.pop("scorer_timeout_sec", None)
    old["is_public"] = True
    old["environment"] = {"prebuilt_id": "prb_legacy_py311", "working_directory": "/home/user/legacy"}
    new = q["new_kinds"]
    new["validation_type"] = "NEW_KIND"
    new["scoring_contract"] = {
        "scoring_function_parameters": [
            {
                "name": "judge",
                "scorer": {"type": "llm_judge_scorer", "rubric": "Is the fix minimal?", "model": {"family": "x"}},
                "weight": 0.6,
                "explain": True,
            },
            {"name": "tests", "scorer": {"type": "command_scorer", "command": "make test"}, "weight": 0.4},
        ],
        "aggregation": "weighted_mean",
    }
    new["environment"] = {
        "blueprint_id": "bpt_future",
        "launch_parameters": {"resource_size_request": "GIGANTIC", "provisioning_tier": "turbo", "gpu": {"count": 1}},
        "network_sandbox": "strict",
    }
    new["evaluation_budget"] = {"usd": "12.50", "hard_stop": False}
    new["input_context"] = {"problem_statement": "A scenario from the future.", "attachments": [{"uri": "s3://b/k"}]}
    flat = q["flat_scorer"]  # before 2025-03 a scoring function was flat
    flat["scoring_contract"] = {
        "scoring_function_parameters": [
            {"name": "legacy", "type": "bash_script_scorer", "weight": 1.0, "bash_script": "echo score=1.0"}
        ]
    }
    q["minimal"] = {"id": q["minimal"]["id"], "name": "minimal-shape", "input_context": {"problem_statement": "Tiny."}}
    q["bare"] = {"id": q["bare"]["id"]}  # only id is indispensable (docs/upstream-api.md, "Scenario fields")
    big = q["big"]
    big["name"] = "big-" + big["name"]
    big["input_context"] = {"problem_statement": _prose(rng, 42000, unicode_share=0.15)}
    big["reference_output"] = _prose(rng, 16000)
    big["scoring_contract"] = _contract(rng, ["bash_script_scorer", "test_based_scorer"], big=True)
    uni = q["unicode"]
    uni["name"] = "数据管道-🚀-réparer-עברית"
    uni["metadata"] = {"équipe": "données", "emoji": "👩🏽‍💻", "rtl": "العربية"}
    uni["input_context"] = {"problem_statement": _prose(rng, 6000, unicode_share=0.9)}
    q["empty_scoring"]["scoring_contract"] = {"scoring_function_parameters": []}
    q["twin_a"]["name"] = q["twin_b"]["name"] = "twin-name-scenario"  # names are not unique
    q["archived"]["status"] = "archived"
    q["archived_old"]["status"] = "archived"
    q["archived_old"]["is_public"] = False
    return q


_QUIRK_KEYS = (
    "no_status",
    "no_validation_type",
    "no_metadata",
    "no_environment",
    "nulls",
    "old_era",
    "new_kinds",
    "flat_scorer",
    "minimal",
    "bare",
    "big",
    "unicode",
    "empty_scoring",
    "twin_a",
    "twin_b",
    "archived",
    "archived_old",
)


def generate(seed: int, count: int) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, str]]:
    """Scenarios in creation order, benchmarks (id -> member ids) and the quirk scenarios' ids by purpose."""
    rng = random.Random(seed)
    quirks = _quirks(rng)
    scenarios = [_regular(rng, i) for i in range(count - len(quirks))]
    for scenario in quirks.values():
        scenarios.insert(rng.randrange(len(scenarios) + 1), scenario)
    for scenario in rng.sample(scenarios, 10):  # more archived ones, among the regular ones
        scenario["status"] = "archived"
    for key, scenario in quirks.items():  # the quirks keep the status (or its absence) they were made with
        if key in ("archived", "archived_old"):
            scenario["status"] = "archived"
        elif key in ("no_status", "old_era", "minimal", "bare"):
            scenario.pop("status", None)
        else:
            scenario["status"] = "active"
    clock = 1_767_225_600_000
    for scenario in scenarios:
        clock += rng.randint(1, 90_000_000)
        if "create_time_ms" in scenario:
            scenario["create_time_ms"] = clock
    ids = [s["id"] for s in scenarios]
    members_a = [*sorted(rng.sample(ids, 34), key=ids.index), quirks["archived"]["id"]]
    members_b = sorted(rng.sample(ids, 17), key=ids.index)
    for key in ("big", "old_era", "new_kinds", "no_status"):
        if quirks[key]["id"] not in members_b:
            members_b.append(quirks[key]["id"])
    benchmarks = {_random_id(rng, "bmk_"): members_a, _random_id(rng, "bmk_"): members_b}
    return scenarios, benchmarks, {key: value["id"] for key, value in quirks.items()}


# --- the API ---------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeRunloop:
    """The three scenario endpoints over an in-memory store; ``transport()`` plugs it into httpx."""

    def __init__(
        self,
        api_key: str,
        *,
        seed: int = 20261122,
        count: int = 120,
        unknown_cursor: UnknownCursor = "empty",
        nested: NestedUpdate = "merge",
        total_count: TotalCount = "when_asked",
        max_page: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.unknown_cursor: UnknownCursor = unknown_cursor
        self.nested: NestedUpdate = nested
        self.total_count: TotalCount = total_count
        self.max_page = max_page
        """When set, a page holds at most this many scenarios whatever the limit (has_more stays truthful)."""
        scenarios, self.benchmarks, self.quirks = generate(seed, count)
        self.order: list[str] = [s["id"] for s in scenarios]
        self.store: dict[str, dict[str, Any]] = {s["id"]: s for s in scenarios}
        self.requests: list[Seen] = []

    # helpers for tests
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def scenario(self, scenario_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.store[scenario_id])

    def is_active(self, scenario: dict[str, Any]) -> bool:
        return bool(scenario.get("status", "active") != "archived")

    def listed(self, **filters: str) -> list[str]:
        """Ids the list endpoint returns for ``filters``, in its order (archived ones never)."""
        return [sid for sid in self.order if self._matches(self.store[sid], filters)]

    def archive(self, scenario_id: str) -> None:
        self.store[scenario_id]["status"] = "archived"

    def posts(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST"]

    def lists(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "GET" and r.path == "/v1/scenarios"]

    # the handler
    def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
        query = dict(request.url.params.multi_items())
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                body = request.content.decode("utf-8", "replace")
        self.requests.append(Seen(request.method, raw, query, body, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Unauthorized: missing or invalid API key.")
        if raw == "/v1/scenarios":
            return self._list(query) if request.method == "GET" else _error(405, "Method not allowed.")
        prefix = "/v1/scenarios/"
        rest = raw[len(prefix) :] if raw.startswith(prefix) else ""
        if not rest or "/" in rest:
            return _error(404, "Not found.")
        scenario_id = unquote(rest)
        if request.method == "GET":
            found = self.store.get(scenario_id)
            return _json(200, found) if found is not None else _error(404, f"Scenario {scenario_id} not found.")
        if request.method == "POST":
            return self._update(scenario_id, request.content, body)
        return _error(405, "Method not allowed.")

    def _matches(self, scenario: dict[str, Any], filters: dict[str, str]) -> bool:
        if not self.is_active(scenario):
            return False
        if "name" in filters and scenario.get("name") != filters["name"]:
            return False
        if "validation_type" in filters and scenario.get("validation_type") != filters["validation_type"]:
            return False
        if "benchmark_id" in filters and scenario["id"] not in self.benchmarks.get(filters["benchmark_id"], []):
            return False
        needle = filters.get("search", "").casefold()
        return not needle or needle in scenario["id"].casefold() or needle in str(scenario.get("name", "")).casefold()

    def _list(self, query: dict[str, str]) -> httpx.Response:
        try:
            limit = int(query["limit"]) if query.get("limit", "") != "" else DEFAULT_LIMIT
        except ValueError:
            return _error(400, "limit must be an integer.")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}.")
        filters = {k: v for k, v in query.items() if k in ("name", "benchmark_id", "validation_type", "search") and v}
        items = self.listed(**filters)
        start = 0
        after = query.get("starting_after")
        if after:
            if after in items:
                start = items.index(after) + 1
            elif self.unknown_cursor == "error":
                return _error(400, "starting_after does not name a scenario of this listing.")
            elif self.unknown_cursor == "position" and after in self.store:
                position = self.order.index(after)
                start = sum(1 for sid in items if self.order.index(sid) <= position)
            else:
                start = len(items)
        size = limit if self.max_page is None else min(limit, self.max_page)
        page = items[start : start + size]
        out: dict[str, Any] = {
            "scenarios": [self.store[sid] for sid in page],
            "has_more": start + len(page) < len(items),
            "remaining_count": 0,  # obsolete (removed 2026-03); present and wrong on purpose
        }
        if query.get("include_total_count", "true").lower() != "false":
            if self.total_count == "when_asked":
                out["total_count"] = len(items)
            elif self.total_count == "null":
                out["total_count"] = None
        return _json(200, out)

    def _update(self, scenario_id: str, content: bytes, body: Any) -> httpx.Response:
        current = self.store.get(scenario_id)
        if current is None:
            return _error(404, f"Scenario {scenario_id} not found.")
        if content and not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object.")
        changes: dict[str, Any] = body if isinstance(body, dict) else {}
        unknown = sorted(set(changes) - UPDATE_FIELDS)
        if unknown:
            return _error(400, f"Unrecognized field(s) in request body: {', '.join(unknown)}.")
        if not self.is_active(current):
            return _error(400, "Archived scenarios cannot be updated.")
        problem = _invalid(changes)
        if problem:
            return _error(400, problem)
        updated = copy.deepcopy(current)
        for key, value in changes.items():
            if value is None:
                continue  # null preserves the existing value
            if key == "environment_parameters":
                updated["environment"] = copy.deepcopy(value)
            elif key == "validation_type" and value == "":
                updated.pop("validation_type", None)
            elif key in ("input_context", "scoring_contract") and self.nested == "merge":
                merged = dict(updated.get(key) or {})
                merged.update({k: copy.deepcopy(v) for k, v in value.items() if v is not None})
                updated[key] = merged
            elif key in ("input_context", "scoring_contract"):
                updated[key] = {k: copy.deepcopy(v) for k, v in value.items() if v is not None}
            else:
                updated[key] = copy.deepcopy(value)
        self.store[scenario_id] = updated
        return _json(200, updated)


def _invalid(changes: dict[str, Any]) -> str | None:
    """Why the update body is not a valid ScenarioUpdateParameters, or None."""
    for key, value in changes.items():
        if value is None:
            continue
        if key == "name" and (not isinstance(value, str) or not value.strip()):
            return "name cannot be blank."
        if key in ("reference_output",) and not isinstance(value, str):
            return f"{key} must be a string."
        if key == "metadata" and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            return "metadata must be a map of strings to strings."
        if key in ("required_environment_variables", "required_secret_names") and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            return f"{key} must be a list of strings."
        if key == "scorer_timeout_sec" and (isinstance(value, bool) or not isinstance(value, int)):
            return "scorer_timeout_sec must be an integer."
        if key == "validation_type" and value not in (*VALIDATION_TYPES, ""):
            return f"validation_type must be one of {', '.join(VALIDATION_TYPES)}."
        if key in ("input_context", "scoring_contract", "environment_parameters") and not isinstance(value, dict):
            return f"{key} must be an object."
        if key == "input_context" and not isinstance(value.get("problem_statement", ""), str | None):
            return "input_context.problem_statement must be a string."
        if key == "scoring_contract":
            functions = value.get("scoring_function_parameters")
            if functions is not None and not isinstance(functions, list):
                return "scoring_contract.scoring_function_parameters must be a list."
            for function in functions or []:
                if not (
                    isinstance(function, dict)
                    and isinstance(function.get("name"), str)
                    and isinstance(function.get("scorer"), dict)
                    and isinstance(function["scorer"].get("type"), str)
                    and isinstance(function.get("weight"), int | float)
                ):
                    return "each scoring function needs name, scorer (with type) and weight."
    return None


def _json(status: int, value: Any) -> httpx.Response:
    return httpx.Response(status, json=value)


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message})
