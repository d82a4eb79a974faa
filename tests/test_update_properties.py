"""Property-based tests of update_scenario with generated change sets (Hypothesis).

Through the real MCP client (both protocol modes) against the emulator's request log:
no POST without a prior matching preview; every POST body equals the previewed body; every field
the update does not touch (unknown ones included) survives; every refused apply leaves the scenario
byte-identical. A pure-function property checks that the preview's expected scenario is exactly
what the emulator stores when sent the previewed body. ``bench/update.py`` runs a bigger campaign
with the same strategies.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import CallToolResult

from runloop_scenarios_mcp.app import build_server
from runloop_scenarios_mcp.emulator.handler import Emulator
from runloop_scenarios_mcp.errors import RunloopMcpError
from runloop_scenarios_mcp.services.update.plan import plan_update
from runloop_scenarios_mcp.upstream.models import UPDATE_FIELD_NAMES
from tests.support.common import CANARY_KEY, Session, canonical_json, error_text, make_settings

MCP_EXAMPLES = 200
"""Per protocol mode and property; the pure property runs PURE_EXAMPLES."""
PURE_EXAMPLES = 1200
NEVER_SENT = {"id", "status", "is_public", "prebuilt_id", "environment"}

# --- strategies ------------------------------------------------------------------------------

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_ 0123456789é漢", min_size=0, max_size=12)
names = st.one_of(st.sampled_from(["", "   ", "fix-bug", "Ünïcode name"]), words)
identifiers = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=8)
metadata_patch = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["team", "owner", "language", "source", "reviewer", "x"]),
        st.one_of(st.none(), words),
        max_size=4,
    ),
    st.just({"n": 1}),
)
scorers = st.one_of(
    st.builds(lambda c: {"type": "command_scorer", "command": c}, words),
    st.builds(lambda b: {"type": "bash_script_scorer", "bash_script": b}, words),
    st.builds(lambda p: {"type": "python_script_scorer", "python_script": p}, words),
    st.just({"type": "custom_scorer", "custom_scorer_type": "judge", "scorer_params": {"k": [1, None]}}),
    st.just({"type": "ast_grep_scorer"}),  # missing required fields
    st.just({"type": "no_such_scorer"}),
)
functions = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["unit", "lint", "e2e-1", "bad name", ""]),
        "scorer": scorers,
        "weight": st.one_of(st.sampled_from([1.0, 0.5, 0.25, 0, -1, 1]), st.floats(0.01, 2.0)),
    }
)
environment_patch = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "working_directory": st.one_of(st.none(), words),
            "blueprint_id": st.one_of(st.none(), st.just("bpt_1")),
            "snapshot_id": st.none(),
            "x_env_new": st.just({"kept": True}),
        },
    ),
)


def _changes(valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Change sets: ``valid`` ones lean towards what the API accepts; the others mix in every kind of mistake."""
    good_names = words.filter(lambda w: bool(w.strip()))
    good_functions = st.fixed_dictionaries(
        {
            "name": st.sampled_from(["unit", "lint", "e2e-1", "Style_2"]),
            "scorer": scorers.filter(lambda s: s["type"] not in ("ast_grep_scorer", "no_such_scorer")),
            "weight": st.one_of(st.sampled_from([1.0, 0.5, 0.25, 1]), st.floats(0.01, 2.0)),
        }
    )
    fields: dict[str, st.SearchStrategy[Any]] = {
        "name": good_names if valid else names,
        "metadata": metadata_patch.filter(lambda m: m != {"n": 1}) if valid else metadata_patch,
        "required_environment_variables": st.one_of(st.none(), st.lists(identifiers, max_size=3)),
        "required_secret_names": st.one_of(st.none(), st.lists(identifiers, max_size=2)),
        "reference_output": st.one_of(st.none(), words),
        "scorer_timeout_sec": st.integers(1, 900) if valid else st.one_of(st.none(), st.integers(-2, 900)),
        "validation_type": st.sampled_from(
            ["FORWARD", "REVERSE", "EVALUATION", "UNSPECIFIED"] + ([] if valid else ["X"])
        ),
        "input_context": st.fixed_dictionaries(
            {},
            optional={
                "problem_statement": words,
                "additional_context": st.one_of(st.none(), st.just({"hint": "x", "n": [1, 2]})),
            },
        ),
        "environment": environment_patch.filter(lambda e: e is not None) if valid else environment_patch,
        "scoring_contract": st.fixed_dictionaries(
            {"scoring_function_parameters": st.lists(good_functions if valid else functions, min_size=1, max_size=3)}
        ),
    }
    if not valid:
        fields |= {
            "id": st.just("scn_other"),
            "status": st.sampled_from(["archived", "active"]),
            "x_future": st.sampled_from([{"nested": [1, 2, {"deep": None}]}, "changed"]),
        }
    changes = st.fixed_dictionaries({}, optional=fields)
    return changes.filter(bool) if valid else changes


change_sets = st.one_of(_changes(valid=True), _changes(valid=True), _changes(valid=True), _changes(valid=False))
"""Three in four change sets lean valid (so most reach the POST), one in four may hold any mistake."""


def scenario_pool(emulator: Emulator) -> list[dict[str, Any]]:
    """Small active scenarios of the data set plus one carrying fields unknown to the server at every level."""
    pool = [s for s in emulator.snapshot().values() if s["status"] == "active" and len(json.dumps(s)) < 3000][:12]
    base = copy.deepcopy(pool[0])
    base.update(
        id="scn_prop_unknown",
        prebuilt_id="pre_1",
        is_public=False,
        x_future={"nested": [1, 2, {"deep": None}]},
        environment={"blueprint_id": "bpt_0", "x_env_future": {"k": "v"}, "launch_parameters": {"x_lp": 1}},
    )
    base["scoring_contract"]["scoring_function_parameters"][0]["x_fn_future"] = "keep"
    emulator.put(base)
    return [*pool, base]


def untouched_fields_survive(before: dict[str, Any], after: dict[str, Any], body: dict[str, Any]) -> None:
    sent = {read for read, request in UPDATE_FIELD_NAMES.items() if request in body}
    for key in set(before) | set(after):
        if key not in sent:
            assert canonical_json(before.get(key)) == canonical_json(after.get(key)), key
    if isinstance(before.get("environment"), dict) and "environment_parameters" in body:
        for key, value in before["environment"].items():
            if key.startswith("x_") and "environment" not in body:
                assert after["environment"][key] == value


COMMON = settings(
    max_examples=MCP_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- through the MCP client -------------------------------------------------------------------


@dataclass
class Wire:
    """An MCP session held open across Hypothesis examples (its event loop runs in a portal thread)."""

    portal: BlockingPortal
    session: Session
    emulator: Emulator
    pool: list[dict[str, Any]]

    def call(self, arguments: dict[str, Any]) -> CallToolResult:
        async def go() -> CallToolResult:
            return await self.session.call("update_scenario", arguments)

        return self.portal.call(go)


@pytest.fixture(scope="module", params=["legacy", "auto"])
def wire(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    emulator = Emulator(api_key=CANARY_KEY)
    pool = scenario_pool(emulator)
    settings_ = make_settings(tmp_path_factory.mktemp("journal"))
    with start_blocking_portal() as portal:
        client = Client(build_server(settings_, transport=emulator.transport()), mode=request.param)
        with portal.wrap_async_context_manager(client) as connected:
            yield Wire(portal, Session(connected, request.param), emulator, pool)


def _apply_args(sid: str, changes: dict[str, Any], token: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"scenario_id": sid, "changes": changes, "dry_run": False}
    if token is not None:
        arguments["preview_token"] = token
    return arguments


@COMMON
@given(data=st.data())
def test_every_post_follows_a_matching_preview_and_sends_its_body(wire: Wire, data: st.DataObject) -> None:
    emulator = wire.emulator
    original = data.draw(st.sampled_from(wire.pool))
    emulator.put(original)
    changes = data.draw(change_sets)
    posts = len(emulator.posts())
    preview = wire.call({"scenario_id": original["id"], "changes": changes})
    assert len(emulator.posts()) == posts, "a dry run sent a POST"
    if preview.is_error:
        assert canonical_json(emulator.get(original["id"])) == canonical_json(original)
        return
    previewed = preview.structured_content
    assert previewed is not None
    result = wire.call(_apply_args(original["id"], changes, previewed["preview_token"]))
    assert not result.is_error, (changes, error_text(result))
    new_posts = emulator.posts()[posts:]
    assert len(new_posts) == 1
    body = new_posts[0].body
    assert body and not NEVER_SENT & set(body)
    # the preview showed this exact body, or (when it holds long text) its exact size and fields
    assert previewed.get("upstream_body", body) == body
    assert previewed["upstream_body_bytes"] == len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    sent_as = {"environment": "environment_parameters"}
    assert {sent_as.get(f, f) for f in previewed["changed_fields"]} == set(body)
    stored = emulator.get(original["id"])
    assert stored is not None
    untouched_fields_survive(original, stored, body)
    assert result.structured_content is not None and result.structured_content["verified"] is True


ATTACKS = ["no token", "altered token", "other changes", "extra change", "other scenario", "changed upstream", "reused"]


@COMMON
@given(data=st.data())
def test_every_refused_apply_leaves_the_scenario_byte_identical(wire: Wire, data: st.DataObject) -> None:
    emulator = wire.emulator
    original, other = data.draw(
        st.lists(st.sampled_from(wire.pool), min_size=2, max_size=2, unique_by=lambda s: s["id"])
    )
    emulator.put(original)
    emulator.put(other)
    changes = data.draw(change_sets)
    preview = wire.call({"scenario_id": original["id"], "changes": changes})
    if preview.is_error:
        return
    token = (preview.structured_content or {})["preview_token"]
    attack = data.draw(st.sampled_from(ATTACKS))
    sid, apply_changes, apply_token = original["id"], changes, token
    if attack == "no token":
        apply_token = None
    elif attack == "altered token":
        index = data.draw(st.integers(0, len(token) - 1))
        apply_token = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
    elif attack == "other changes":
        apply_changes = data.draw(change_sets.filter(lambda c: canonical_json(c) != canonical_json(changes)))
    elif attack == "extra change":
        apply_changes = {**changes, "reference_output": "sneaked in"}
        if canonical_json(apply_changes) == canonical_json(changes):
            apply_changes = {}
    elif attack == "other scenario":
        sid = other["id"]
    elif attack == "changed upstream":
        emulator.put(dict(original, name=original["name"] + "-edited"))
    elif attack == "reused":
        assert not wire.call(_apply_args(sid, changes, token)).is_error
    before = canonical_json(emulator.get(sid))
    before_other = canonical_json(emulator.get(other["id"]))
    posts = len(emulator.posts())
    result = wire.call(_apply_args(sid, apply_changes, apply_token))
    assert result.is_error, attack
    assert len(emulator.posts()) == posts, attack
    assert canonical_json(emulator.get(sid)) == before
    assert canonical_json(emulator.get(other["id"])) == before_other
    assert "Traceback" not in error_text(result)


# --- the plan against the emulator's own update semantics --------------------------------------


@settings(COMMON, max_examples=PURE_EXAMPLES)
@given(data=st.data())
def test_preview_expects_exactly_what_the_api_stores(data: st.DataObject) -> None:
    emulator = _shared_emulator()
    original = data.draw(st.sampled_from(_shared_pool()))
    changes = data.draw(change_sets)
    try:
        plan = plan_update(copy.deepcopy(original), changes)
    except RunloopMcpError:
        return
    assert not NEVER_SENT & set(plan.body)
    for read, request in UPDATE_FIELD_NAMES.items():
        if request in plan.body:
            assert plan.body[request] == plan.expected[read], read  # each sent field is complete
        else:
            assert canonical_json(plan.expected.get(read)) == canonical_json(original.get(read)), read
    emulator.put(original)
    response = emulator.handle(
        httpx.Request("POST", f"http://emulator/v1/scenarios/{original['id']}", json=plan.body, headers=_AUTH)
    )
    assert response.status_code == 200, (plan.body, response.text)
    assert canonical_json(response.json()) == canonical_json(plan.expected)
    untouched_fields_survive(original, response.json(), plan.body)


_AUTH = {"authorization": "Bearer any"}
_STATE: dict[str, Any] = {}


def _shared_emulator() -> Emulator:
    if "emulator" not in _STATE:
        _STATE["emulator"] = Emulator()
        _STATE["pool"] = scenario_pool(_STATE["emulator"])
    emulator: Emulator = _STATE["emulator"]
    return emulator


def _shared_pool() -> list[dict[str, Any]]:
    _shared_emulator()
    pool: list[dict[str, Any]] = _STATE["pool"]
    return pool
