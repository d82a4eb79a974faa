"""Tests of the embedded Runloop emulator: the data set, the API contract, and loopback faults."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from runloop_scenarios_mcp.emulator.data import HOSTILE_MARKER, SCORER_TYPES, VALIDATION_TYPES, generate
from runloop_scenarios_mcp.emulator.handler import SCENARIO_COUNT_DEFAULT, Emulator, generate_dataset
from runloop_scenarios_mcp.emulator.loopback import Fault, FaultPlan, LoopbackEmulator

AUTH = {"Authorization": "Bearer test-key"}
ALL_FAULT_METHODS = frozenset({"GET", "POST"})


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def emu() -> Emulator:
    return Emulator(seed=0)


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=emu.transport(), base_url="http://emulator", headers=AUTH) as c:
        yield c


@pytest.fixture
def loopback(emu: Emulator) -> Iterator[LoopbackEmulator]:
    with LoopbackEmulator(emu) as server:
        yield server


def http_client(server: LoopbackEmulator, timeout: float = 2.0) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=AUTH, timeout=timeout)


def active_ids(emu: Emulator) -> list[str]:
    return [sid for sid, s in emu.snapshot().items() if s.get("status") != "archived"]


def state(emu: Emulator) -> str:
    return json.dumps(emu.snapshot(), ensure_ascii=False)


def first_active(emu: Emulator, predicate: Any = None) -> dict[str, Any]:
    for scenario in emu.snapshot().values():
        if scenario["status"] == "active" and (predicate is None or predicate(scenario)):
            return scenario
    raise AssertionError("no matching active scenario in the data set")


def walk(client: httpx.Client, limit: int, **params: str) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    query: dict[str, str | int] = {"limit": limit, **params}
    while True:
        response = client.get("/v1/scenarios", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        ids += [s["id"] for s in page["scenarios"]]
        if not page["has_more"]:
            return ids, pages
        query["starting_after"] = page["scenarios"][-1]["id"]


# --- the data set ----------------------------------------------------------------------------


def test_dataset_is_deterministic_and_seed_dependent() -> None:
    assert json.dumps(generate_dataset(7, 80)) == json.dumps(generate_dataset(7, 80))
    assert generate_dataset(7, 80) != generate_dataset(8, 80)
    assert generate(3, 50).benchmarks == generate(3, 50).benchmarks


def test_dataset_default_size() -> None:
    # How long generation takes is a figure for bench/emulator.py, not an assertion here.
    scenarios = generate_dataset()
    assert len(scenarios) == SCENARIO_COUNT_DEFAULT
    assert len({s["id"] for s in scenarios}) == SCENARIO_COUNT_DEFAULT


def test_dataset_looks_real() -> None:
    data = generate()
    scenarios = data.scenarios
    assert SCENARIO_COUNT_DEFAULT == 520
    assert len(scenarios) >= 500
    ids = [s["id"] for s in scenarios]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"scn_[0-9a-z]{24}", sid) for sid in ids)
    for s in scenarios:
        assert {"id", "name", "input_context", "scoring_contract", "metadata", "status"} <= s.keys()
        assert isinstance(s["input_context"]["problem_statement"], str)
        assert all(isinstance(v, str) for v in s["metadata"].values())
        assert len(s["metadata"]) <= 6
        assert json.loads(json.dumps(s)) == s
    scorer_types = Counter(
        f["scorer"]["type"] for s in scenarios for f in s["scoring_contract"]["scoring_function_parameters"]
    )
    assert set(scorer_types) == set(SCORER_TYPES)
    sizes = [len(s["input_context"]["problem_statement"].encode()) for s in scenarios]
    assert sum(1 for n in sizes if n >= 20_000) >= 10
    assert max(sizes) <= 61_000
    assert sum(1 for n in sizes if 250 <= n <= 4_500) / len(sizes) > 0.9
    assert Counter(s["status"] for s in scenarios)["archived"] == round(0.04 * len(scenarios))
    validation = Counter(s.get("validation_type", "<absent>") for s in scenarios)
    assert set(VALIDATION_TYPES) | {None, "<absent>"} == set(validation)
    for optional in ("environment", "reference_output", "scorer_timeout_sec"):
        kinds = {("absent" if optional not in s else "null" if s[optional] is None else "set") for s in scenarios}
        assert kinds == {"absent", "null", "set"}, optional
    sums = [sum(f["weight"] for f in s["scoring_contract"]["scoring_function_parameters"]) for s in scenarios]
    off = sum(1 for total in sums if not math.isclose(total, 1.0))
    assert 0 < off < len(scenarios) * 0.05
    assert {len(s["scoring_contract"]["scoring_function_parameters"]) for s in scenarios} == {1, 2, 3}
    assert any(not s["name"].isascii() for s in scenarios)
    assert len({s["name"] for s in scenarios}) < len(scenarios)  # a few duplicate names, as upstream allows
    assert sum(1 for s in scenarios if (s.get("reference_output") or "").startswith("diff --git")) > 200


def test_dataset_benchmarks() -> None:
    data = generate()
    assert len(data.benchmarks) == 6
    assert all(b.startswith("bmd_") for b in data.benchmarks)
    assert all(40 <= len(members) <= 150 for members in data.benchmarks.values())
    memberships = Counter(sid for members in data.benchmarks.values() for sid in members)
    assert max(memberships.values()) == 2
    assert len(memberships) < len(data.scenarios)  # some scenarios are in no benchmark
    names = set(data.benchmark_names.values())
    assert any(s["metadata"].get("benchmark") in names for s in data.scenarios)


def test_dataset_has_future_and_hostile_fields() -> None:
    scenarios = generate_dataset()
    assert any("difficulty" in s for s in scenarios)
    assert any("x_labels" in s for s in scenarios)
    assert any("gpu_request" in (((s.get("environment") or {}).get("launch_parameters")) or {}) for s in scenarios)
    known = {"type", "pattern", "search_directory", "lang", "bash_script", "command", "custom_scorer_type"}
    known |= {"scorer_params", "python_script", "python_version_constraint", "requirements_contents"}
    known |= {"test_command", "test_files"}
    assert any(
        set(f["scorer"]) - known for s in scenarios for f in s["scoring_contract"]["scoring_function_parameters"]
    )
    hostile = [s for s in scenarios if HOSTILE_MARKER in s["input_context"]["problem_statement"]]
    assert len(hostile) >= 3
    statement = hostile[0]["input_context"]["problem_statement"]
    assert "\x00" in statement and "\x1b" in statement and "\u2028" in statement


# --- listing ---------------------------------------------------------------------------------


def test_paging_walk_returns_every_active_scenario_once(emu: Emulator, client: httpx.Client) -> None:
    ids, pages = walk(client, 37)
    expected = active_ids(emu)
    assert ids == expected  # stable creation order, each exactly once
    assert len(expected) < len(emu.snapshot())  # archived ones exist and were skipped
    assert all(p["total_count"] == len(expected) for p in pages)
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert all(len(p["scenarios"]) == 37 for p in pages[:-1])


def test_default_limit_and_max_limit(emu: Emulator, client: httpx.Client) -> None:
    assert len(client.get("/v1/scenarios").json()["scenarios"]) == 20
    everything = client.get("/v1/scenarios", params={"limit": 5000}).json()
    assert len(everything["scenarios"]) == len(active_ids(emu))
    assert everything["has_more"] is False


def test_exact_fit_page_has_no_more(emu: Emulator, client: httpx.Client) -> None:
    count = len(active_ids(emu))
    page = client.get("/v1/scenarios", params={"limit": count}).json()
    assert page["has_more"] is False and len(page["scenarios"]) == count
    page = client.get("/v1/scenarios", params={"limit": count - 1}).json()
    assert page["has_more"] is True


def test_filters(emu: Emulator, client: httpx.Client) -> None:
    target = first_active(emu)
    by_name = client.get("/v1/scenarios", params={"name": target["name"]}).json()
    assert target["id"] in [s["id"] for s in by_name["scenarios"]]
    assert all(s["name"] == target["name"] for s in by_name["scenarios"])
    assert client.get("/v1/scenarios", params={"name": target["name"].upper()}).json()["total_count"] == 0
    assert client.get("/v1/scenarios", params={"name": target["name"][:-1]}).json()["total_count"] == 0

    benchmark_id, members = next(iter(emu.benchmarks().items()))
    active_members = [sid for sid in members if emu.get(sid)["status"] == "active"]  # type: ignore[index]
    ids, pages = walk(client, 25, benchmark_id=benchmark_id)
    assert ids == active_members and pages[0]["total_count"] == len(active_members)
    assert client.get("/v1/scenarios", params={"benchmark_id": "bmk_unknown"}).json()["scenarios"] == []

    for vt in ("FORWARD", "UNSPECIFIED"):
        ids, _ = walk(client, 100, validation_type=vt)
        assert ids == [sid for sid in active_ids(emu) if emu.get(sid).get("validation_type") == vt]  # type: ignore[union-attr]
        assert ids

    by_id = client.get("/v1/scenarios", params={"search": target["id"][4:12].upper()}).json()
    assert target["id"] in [s["id"] for s in by_id["scenarios"]]
    ids, _ = walk(client, 100, search="RETRY")
    assert ids and all("retry" in emu.get(sid)["name"].lower() or "retry" in sid for sid in ids)  # type: ignore[index]

    ignored = client.get("/v1/scenarios", params={"bogus": "1", "limit": 3}).json()
    assert len(ignored["scenarios"]) == 3


def test_name_filter_returns_duplicates(emu: Emulator, client: httpx.Client) -> None:
    names = Counter(s["name"] for s in emu.snapshot().values() if s["status"] == "active")
    duplicate = next(name for name, n in names.items() if n > 1)
    page = client.get("/v1/scenarios", params={"name": duplicate}).json()
    assert page["total_count"] == names[duplicate] == len(page["scenarios"])


def test_include_total_count(client: httpx.Client) -> None:
    page = client.get("/v1/scenarios", params={"include_total_count": "false", "limit": 2}).json()
    assert "total_count" not in page and len(page["scenarios"]) == 2
    assert "total_count" in client.get("/v1/scenarios", params={"include_total_count": "true"}).json()
    assert client.get("/v1/scenarios", params={"include_total_count": "True"}).status_code == 400


@pytest.mark.parametrize("limit", ["0", "5001", "-1", "abc", "1.5", "1e3"])
def test_limit_out_of_range_is_400(client: httpx.Client, limit: str) -> None:
    response = client.get("/v1/scenarios", params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["message"]


def test_unknown_starting_after_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/scenarios", params={"starting_after": "scn_doesnotexist"})
    assert response.status_code == 400
    assert response.json() == {"message": "starting_after: no scenario with id scn_doesnotexist"}


def test_starting_after_an_archived_or_filtered_out_id(emu: Emulator, client: httpx.Client) -> None:
    archived = next(sid for sid, s in emu.snapshot().items() if s["status"] == "archived")
    order, active = list(emu.snapshot()), set(active_ids(emu))
    expected = [sid for sid in order[order.index(archived) + 1 :] if sid in active][:5]
    page = client.get("/v1/scenarios", params={"starting_after": archived, "limit": 5}).json()
    assert [s["id"] for s in page["scenarios"]] == expected


def test_configurable_readings_of_undocumented_behaviour() -> None:
    emu = Emulator(count=40, unknown_cursor="empty", limit_out_of_range="clamp", nested_updates="replace")
    with httpx.Client(transport=emu.transport(), base_url="http://emulator", headers=AUTH) as c:
        page = c.get("/v1/scenarios", params={"starting_after": "scn_gone"}).json()
        assert page["scenarios"] == [] and page["has_more"] is False and page["total_count"] == len(active_ids(emu))
        assert len(c.get("/v1/scenarios", params={"limit": 0}).json()["scenarios"]) == 1
        assert len(c.get("/v1/scenarios", params={"limit": 9999}).json()["scenarios"]) == len(active_ids(emu))
        assert c.get("/v1/scenarios", params={"limit": "ten"}).status_code == 400
        sid = first_active(emu)["id"]
        c.post(f"/v1/scenarios/{sid}", json={"input_context": {"additional_context": {"k": "v"}}})
        assert emu.get(sid)["input_context"] == {"additional_context": {"k": "v"}}  # type: ignore[index]


@pytest.mark.parametrize("count", [0, 1, 7])
def test_small_data_sets(count: int) -> None:
    emu = Emulator(count=count)
    with httpx.Client(transport=emu.transport(), base_url="http://emulator", headers=AUTH) as c:
        page = c.get("/v1/scenarios").json()
    assert page["total_count"] == len(active_ids(emu)) <= count
    assert len(emu.snapshot()) == count


# --- auth, routing, get ----------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "test-key"])
def test_missing_or_malformed_auth_is_401(emu: Emulator, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    with httpx.Client(transport=emu.transport(), base_url="http://emulator", headers=headers) as c:
        for path in ("/v1/scenarios", f"/v1/scenarios/{first_active(emu)['id']}", "/nowhere"):
            response = c.get(path)
            assert response.status_code == 401
            assert response.json() == {"message": "Unauthorized: missing or invalid API key"}
    assert not any(r.authorized for r in emu.requests)


def test_configured_key_must_match() -> None:
    emu = Emulator(count=30, api_key="right-key")
    with httpx.Client(transport=emu.transport(), base_url="http://emulator") as c:
        assert c.get("/v1/scenarios", headers={"Authorization": "Bearer wrong-key"}).status_code == 401
        assert c.get("/v1/scenarios", headers={"Authorization": "Bearer right-key-2"}).status_code == 401
        assert c.get("/v1/scenarios", headers={"Authorization": "Bearer right-key"}).status_code == 200
        assert c.get("/v1/scenarios", headers={"Authorization": "bearer right-key"}).status_code == 200
    assert [r.authorized for r in emu.requests] == [False, False, True, True]
    with pytest.raises(ValueError):
        Emulator(count=1, api_key=" ")


def test_get_and_not_found(emu: Emulator, client: httpx.Client) -> None:
    archived = next(s for s in emu.snapshot().values() if s["status"] == "archived")
    response = client.get(f"/v1/scenarios/{archived['id']}")
    assert response.status_code == 200 and response.json() == archived
    assert response.headers["content-type"] == "application/json"
    assert response.content == json.dumps(archived, separators=(",", ":"), ensure_ascii=False).encode()  # compact
    missing = client.get("/v1/scenarios/scn_missing")
    assert missing.status_code == 404 and missing.json() == {"message": "Scenario not found"}
    for path in ("/v2/scenarios", "/v1/scenarios/a/b", "/v1/scenarios/", "/"):
        response = client.get(path)
        assert response.status_code == 404 and "message" in response.json(), path
    assert client.put(f"/v1/scenarios/{archived['id']}", json={}).status_code == 405
    assert client.post("/v1/scenarios", json={}).status_code == 405
    assert client.delete(f"/v1/scenarios/{archived['id']}").status_code == 405


def test_percent_encoded_id(emu: Emulator, client: httpx.Client) -> None:
    odd = dict(first_active(emu), id="scn_a/b c%é?#")
    emu.put(odd)
    response = client.get("/v1/scenarios/" + quote(odd["id"], safe=""))
    assert response.status_code == 200 and response.json()["id"] == odd["id"]
    updated = client.post("/v1/scenarios/" + quote(odd["id"], safe=""), json={"name": "renamed"})
    assert updated.status_code == 200 and emu.get(odd["id"])["name"] == "renamed"  # type: ignore[index]
    assert client.get("/v1/scenarios/scn_a/b%20c").status_code == 404  # an unencoded slash is another path
    assert list(emu.snapshot())[-1] == odd["id"]  # put appends new ids at the end of the order


def test_async_client_through_mock_transport(emu: Emulator) -> None:
    async def fetch() -> int:
        async with httpx.AsyncClient(transport=emu.transport(), base_url="http://emulator", headers=AUTH) as c:
            return len((await c.get("/v1/scenarios", params={"limit": 7})).json()["scenarios"])

    assert asyncio.run(fetch()) == 7


# --- update ----------------------------------------------------------------------------------


def test_update_null_keeps_and_provided_replaces(emu: Emulator, client: httpx.Client) -> None:
    before = first_active(emu, lambda s: len(s["metadata"]) >= 2)
    sid = before["id"]
    response = client.post(
        f"/v1/scenarios/{sid}",
        json={"name": "renamed", "metadata": None, "reference_output": None, "required_secret_names": ["A_TOKEN"]},
    )
    assert response.status_code == 200
    after = emu.get(sid)
    assert after is not None and response.json() == after
    assert after["name"] == "renamed" and after["required_secret_names"] == ["A_TOKEN"]
    assert after["metadata"] == before["metadata"]
    assert after.get("reference_output") == before.get("reference_output")
    client.post(f"/v1/scenarios/{sid}", json={"metadata": {"only": "this"}})
    assert emu.get(sid)["metadata"] == {"only": "this"}  # type: ignore[index]  # replaced, not merged
    client.post(f"/v1/scenarios/{sid}", json={"metadata": {}, "required_secret_names": []})
    cleared = emu.get(sid)
    assert cleared is not None and cleared["metadata"] == {} and cleared["required_secret_names"] == []


@pytest.mark.parametrize("body", [b"", b"{}", b"  \n", b'{"name": null, "metadata": null}'])
def test_empty_update_is_a_noop(emu: Emulator, client: httpx.Client, body: bytes) -> None:
    sid = first_active(emu)["id"]
    before = state(emu)
    response = client.post(f"/v1/scenarios/{sid}", content=body)
    assert response.status_code == 200 and response.json() == emu.get(sid)
    assert state(emu) == before


def test_environment_parameters_replace_environment(emu: Emulator, client: httpx.Client) -> None:
    sid = first_active(emu, lambda s: bool((s.get("environment") or {}).get("launch_parameters")))["id"]
    response = client.post(f"/v1/scenarios/{sid}", json={"environment_parameters": {"blueprint_id": "bpt_new"}})
    assert response.status_code == 200
    after = emu.get(sid)
    assert after is not None
    assert after["environment"] == {"blueprint_id": "bpt_new"}  # the whole environment was replaced
    assert "environment_parameters" not in after
    bad = client.post(
        f"/v1/scenarios/{sid}", json={"environment_parameters": {"launch_parameters": {"architecture": "riscv"}}}
    )
    assert bad.status_code == 400 and "architecture" in bad.json()["message"]


def test_input_context_and_scoring_contract_merge_one_level(emu: Emulator, client: httpx.Client) -> None:
    before = first_active(emu, lambda s: isinstance(s["input_context"].get("additional_context"), dict))
    sid = before["id"]
    client.post(f"/v1/scenarios/{sid}", json={"input_context": {"problem_statement": "new statement"}})
    after = emu.get(sid)
    assert after is not None
    assert after["input_context"] == {
        "problem_statement": "new statement",
        "additional_context": before["input_context"]["additional_context"],
    }
    client.post(f"/v1/scenarios/{sid}", json={"input_context": {"problem_statement": None, "additional_context": {}}})
    assert emu.get(sid)["input_context"] == {"problem_statement": "new statement", "additional_context": {}}  # type: ignore[index]
    functions = [{"name": "only-one", "weight": 1.0, "scorer": {"type": "command_scorer", "command": "true"}}]
    client.post(f"/v1/scenarios/{sid}", json={"scoring_contract": {"scoring_function_parameters": functions}})
    assert emu.get(sid)["scoring_contract"] == {"scoring_function_parameters": functions}  # type: ignore[index]
    client.post(f"/v1/scenarios/{sid}", json={"scoring_contract": {}})
    assert emu.get(sid)["scoring_contract"] == {"scoring_function_parameters": functions}  # type: ignore[index]


def test_clearing_values(emu: Emulator, client: httpx.Client) -> None:
    sid = first_active(emu, lambda s: s.get("validation_type") and s.get("reference_output"))["id"]
    response = client.post(f"/v1/scenarios/{sid}", json={"validation_type": "", "reference_output": ""})
    assert response.status_code == 200
    after = emu.get(sid)
    assert after is not None and after["validation_type"] is None and after["reference_output"] == ""
    assert (
        client.post(f"/v1/scenarios/{sid}", json={"validation_type": "REVERSE"}).json()["validation_type"] == "REVERSE"
    )


def _function(**overrides: Any) -> dict[str, Any]:
    return {"name": "ok", "weight": 1.0, "scorer": {"type": "command_scorer", "command": "true"}, **overrides}


BAD_UPDATES: list[tuple[bytes | Any, str]] = [
    (b"{not json", "JSON"),
    (b'{"scorer_timeout_sec": NaN}', "JSON"),
    ([], "object"),
    ("name", "object"),
    ({"is_public": True}, "is_public"),
    ({"status": "archived"}, "status"),
    ({"id": "scn_other"}, "id"),
    ({"environment": {}}, "environment"),
    ({"prebuilt_id": "x"}, "prebuilt_id"),
    ({"name": "   "}, "name"),
    ({"name": 5}, "name"),
    ({"name": "fine", "metadata": {"a": 1}}, "metadata"),
    ({"metadata": ["a"]}, "metadata"),
    ({"input_context": {"problem_statement": 3}}, "problem_statement"),
    ({"input_context": {"extra": "x"}}, "extra"),
    ({"scoring_contract": {"scoring_function_parameters": [_function(name="bad name!")]}}, "name"),
    ({"scoring_contract": {"scoring_function_parameters": [_function(weight="1")]}}, "weight"),
    ({"scoring_contract": {"scoring_function_parameters": [_function(weight=True)]}}, "weight"),
    ({"scoring_contract": {"scoring_function_parameters": [_function(scorer={"type": "magic"})]}}, "type"),
    ({"scoring_contract": {"scoring_function_parameters": [_function(scorer={"type": "ast_grep_scorer"})]}}, "pattern"),
    ({"scoring_contract": {"scoring_function_parameters": "x"}}, "scoring_function_parameters"),
    ({"validation_type": "SIDEWAYS"}, "validation_type"),
    ({"scorer_timeout_sec": "600"}, "scorer_timeout_sec"),
    ({"scorer_timeout_sec": 1.5}, "scorer_timeout_sec"),
    ({"required_environment_variables": [1]}, "required_environment_variables"),
    ({"reference_output": 12}, "reference_output"),
    ({"environment_parameters": "bpt_x"}, "environment_parameters"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_UPDATES)
def test_rejected_update_changes_nothing(body: Any, mentions: str) -> None:
    emu = Emulator(count=40)  # small: this test runs once per bad body
    sid = first_active(emu)["id"]
    before = state(emu)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(transport=emu.transport(), base_url="http://emulator", headers=AUTH) as client:
        response = client.post(f"/v1/scenarios/{sid}", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert mentions in response.json()["message"]
    assert state(emu) == before


def test_update_unknown_id_is_404(client: httpx.Client) -> None:
    response = client.post("/v1/scenarios/scn_missing", json={"name": "x"})
    assert response.status_code == 404 and response.json()["message"] == "Scenario not found"


def test_unknown_fields_survive_an_update(emu: Emulator, client: httpx.Client) -> None:
    def has_future(s: dict[str, Any]) -> bool:
        lp = (s.get("environment") or {}).get("launch_parameters") or {}
        return "gpu_request" in lp or "difficulty" in s or "x_labels" in s

    before = first_active(emu, has_future)
    sid = before["id"]
    response = client.post(
        f"/v1/scenarios/{sid}", json={"name": "renamed", "input_context": {"problem_statement": "short"}}
    )
    assert response.status_code == 200
    after = emu.get(sid)
    assert after is not None and list(after) == list(before)  # same keys, same order
    for key in before:
        if key not in ("name", "input_context"):
            assert json.dumps(after[key]) == json.dumps(before[key]), key
    assert json.dumps(after["input_context"].get("additional_context")) == json.dumps(
        before["input_context"].get("additional_context")
    )


def test_archived_scenarios(emu: Emulator, client: httpx.Client) -> None:
    archived = [sid for sid, s in emu.snapshot().items() if s["status"] == "archived"]
    listed, _ = walk(client, 5000)
    assert archived and not set(archived) & set(listed)
    assert client.get(f"/v1/scenarios/{archived[0]}").json()["status"] == "archived"
    before = state(emu)
    for body in ({"name": "x"}, {}):
        response = client.post(f"/v1/scenarios/{archived[0]}", json=body)
        assert response.status_code == 400
        assert response.json() == {"message": "Scenario is archived and cannot be updated"}
    assert state(emu) == before
    victim = listed[0]
    emu.archive(victim)
    assert victim not in walk(client, 5000)[0]
    assert client.get("/v1/scenarios").json()["total_count"] == len(listed) - 1
    with pytest.raises(KeyError):
        emu.archive("scn_missing")


def test_direct_access_returns_copies(emu: Emulator, client: httpx.Client) -> None:
    sid = first_active(emu)["id"]
    copy_ = emu.get(sid)
    assert copy_ is not None
    copy_["name"] = "mutated"
    emu.snapshot()[sid]["name"] = "mutated"
    assert emu.get(sid)["name"] != "mutated"  # type: ignore[index]
    assert emu.get("scn_missing") is None
    custom = Emulator(scenarios=[dict(copy_, id="scn_one"), dict(copy_, id="scn_two", name="other")])
    custom.set_benchmark("bmk_x", ["scn_two"])
    with httpx.Client(transport=custom.transport(), base_url="http://e", headers=AUTH) as c:
        page = c.get("/v1/scenarios", params={"benchmark_id": "bmk_x"}).json()
        assert [s["id"] for s in page["scenarios"]] == ["scn_two"]
        c.post("/v1/scenarios/scn_one", json={"name": "posted"})
    assert [r.path for r in custom.posts()] == ["/v1/scenarios/scn_one"]
    assert custom.posts()[0].body == {"name": "posted"}


def test_concurrent_requests(emu: Emulator) -> None:
    ids = active_ids(emu)[:8]
    errors: list[BaseException] = []

    def worker(sid: str) -> None:
        try:
            with httpx.Client(transport=emu.transport(), base_url="http://e", headers=AUTH) as c:
                for i in range(10):
                    assert c.post(f"/v1/scenarios/{sid}", json={"metadata": {"i": str(i)}}).status_code == 200
                    assert c.get("/v1/scenarios", params={"limit": 50}).status_code == 200
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(emu.requests) == 8 * 20
    assert all(emu.get(sid)["metadata"] == {"i": "9"} for sid in ids)  # type: ignore[index]


def test_request_log_never_holds_the_key() -> None:
    canary = "rk_CANARY_5f0e3a9c_do_not_log"
    emu = Emulator(count=40, api_key=canary)
    sid = emu.snapshot().popitem()[0]
    with httpx.Client(transport=emu.transport(), base_url="http://e") as c:
        headers = {"Authorization": f"Bearer {canary}", "x-request-id": "req-123"}
        c.get("/v1/scenarios", headers=headers)
        c.post(f"/v1/scenarios/{sid}", json={"name": "n"}, headers=headers)
        c.get("/v1/scenarios", headers={"Authorization": f"Bearer {canary}x"})
    with LoopbackEmulator(emu) as server, httpx.Client(base_url=server.base_url, timeout=2) as c:
        c.get(f"/v1/scenarios/{sid}", headers={"Authorization": f"Bearer {canary}"})
        server.faults.queue(Fault("status", status=503))
        c.get("/v1/scenarios", headers={"Authorization": f"Bearer {canary}"})
    assert len(emu.requests) == 5
    assert [r.authorized for r in emu.requests] == [True, True, False, True, True]
    assert emu.requests[1].request_id == "req-123" and emu.requests[1].body == {"name": "n"}
    assert canary not in repr(emu.requests)
    assert canary[3:20] not in repr(emu.requests)


def test_request_log_keeps_only_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    from runloop_scenarios_mcp.emulator import handler as emulator_module

    monkeypatch.setattr(emulator_module, "REQUEST_LOG_LIMIT", 5)
    emu = Emulator(count=10, api_key="k")
    with httpx.Client(transport=emu.transport(), base_url="http://e", headers={"Authorization": "Bearer k"}) as c:
        for limit in range(1, 9):
            c.get("/v1/scenarios", params={"limit": limit})
    assert [r.query["limit"] for r in emu.requests] == ["4", "5", "6", "7", "8"]


# --- loopback and faults ---------------------------------------------------------------------


def test_loopback_serves_the_same_api(emu: Emulator, client: httpx.Client, loopback: LoopbackEmulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", loopback.base_url)
    with http_client(loopback) as c:
        over_http = c.get("/v1/scenarios", params={"limit": 9, "validation_type": "FORWARD"})
        assert (
            over_http.content == client.get("/v1/scenarios", params={"limit": 9, "validation_type": "FORWARD"}).content
        )
        assert c.get("/v1/scenarios", headers={"Authorization": ""}).status_code == 401
        sid = first_active(emu)["id"]
        assert c.post(f"/v1/scenarios/{sid}", json={"name": "over-http"}).json()["name"] == "over-http"
        chunked = c.post(f"/v1/scenarios/{sid}", content=iter([b'{"name":', b' "chunked"}']))
        assert chunked.status_code == 200 and emu.get(sid)["name"] == "chunked"  # type: ignore[index]
        assert c.get("/v1/scenarios/" + quote("scn_a/b", safe="")).status_code == 404
    assert emu.requests[-1].path == "/v1/scenarios/scn_a%2Fb"


@pytest.mark.parametrize(
    ("fault", "headers"),
    [
        (Fault("status", status=429, retry_after="2"), {"retry-after": "2"}),
        (Fault("status", status=429, retry_after_ms="150"), {"retry-after-ms": "150"}),
        (
            Fault("status", status=429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"),
            {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"},
        ),
        (Fault("status", status=503, should_retry=False), {"x-should-retry": "false"}),
        (Fault("status", status=500, should_retry=True), {"x-should-retry": "true"}),
        (Fault("status", status=408), {}),
        (Fault("status", status=409), {}),
        (Fault("status", status=502), {}),
    ],
)
def test_status_faults_never_apply_the_write(
    emu: Emulator, loopback: LoopbackEmulator, fault: Fault, headers: dict[str, str]
) -> None:
    sid = first_active(emu)["id"]
    before = state(emu)
    loopback.faults.queue(fault)
    with http_client(loopback) as c:
        response = c.post(f"/v1/scenarios/{sid}", json={"name": "should-not-land"})
        assert response.status_code == fault.status
        assert response.headers["content-type"] == "application/json"
        assert "message" in response.json()
        for key, value in headers.items():
            assert response.headers[key] == value
        assert state(emu) == before
        assert c.post(f"/v1/scenarios/{sid}", json={"name": "lands"}).status_code == 200  # one request each
    assert [r.status for r in emu.posts()] == [fault.status, 200]
    assert loopback.faults.injected == [("POST", f"/v1/scenarios/{sid}", "status")]


def test_malformed_html_and_empty_bodies(emu: Emulator, loopback: LoopbackEmulator) -> None:
    sid = first_active(emu)["id"]
    before = state(emu)
    loopback.faults.queue(Fault("malformed_json"), Fault("html_error"), Fault("empty_body"))
    with http_client(loopback) as c:
        malformed = c.post(f"/v1/scenarios/{sid}", json={"name": "x1"})
        assert malformed.status_code == 200 and malformed.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            malformed.json()
        html = c.post(f"/v1/scenarios/{sid}", json={"name": "x2"})
        assert html.status_code == 502 and html.headers["content-type"].startswith("text/html")
        assert b"<center>nginx" in html.content
        empty = c.post(f"/v1/scenarios/{sid}", json={"name": "x3"})
        assert empty.status_code == 200 and empty.content == b"" and empty.headers["content-length"] == "0"
    assert state(emu) == before
    assert [r.status for r in emu.requests] == [200, 502, 200]
    assert [k for _, _, k in loopback.faults.injected] == ["malformed_json", "html_error", "empty_body"]


def test_truncated_body(emu: Emulator, loopback: LoopbackEmulator) -> None:
    sid = first_active(emu)["id"]
    before = state(emu)
    loopback.faults.queue(Fault("truncated_body"), Fault("truncated_body"))
    with http_client(loopback) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/v1/scenarios", params={"limit": 5})
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(f"/v1/scenarios/{sid}", json={"name": "never"})
        assert state(emu) == before
        assert c.get(f"/v1/scenarios/{sid}").json()["name"] != "never"  # the server recovers
    assert [(r.method, r.status) for r in emu.requests] == [("GET", 200), ("POST", 200), ("GET", 200)]


def test_drop_connection(emu: Emulator, loopback: LoopbackEmulator) -> None:
    sid = first_active(emu)["id"]
    before = state(emu)
    loopback.faults.queue(Fault("drop_connection"), Fault("drop_connection"))
    with http_client(loopback) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/v1/scenarios")
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(f"/v1/scenarios/{sid}", json={"name": "never"})
    assert state(emu) == before
    assert [r.status for r in emu.requests] == [0, 0]


def test_latency(emu: Emulator, loopback: LoopbackEmulator) -> None:
    sid = first_active(emu)["id"]
    loopback.faults.queue(Fault("latency", delay=0.3), Fault("latency", delay=0.3, methods=frozenset({"POST"})))
    # The delay is really applied: a read timeout below it expires (a slower machine only makes that surer).
    with http_client(loopback, timeout=0.1) as c, pytest.raises(httpx.ReadTimeout):
        c.get("/v1/scenarios", params={"limit": 1})
    with http_client(loopback) as c:
        response = c.post(f"/v1/scenarios/{sid}", json={"name": "slow-but-applied"})
        assert response.status_code == 200
    assert loopback.faults.injected == [
        ("GET", "/v1/scenarios", "latency"),
        ("POST", f"/v1/scenarios/{sid}", "latency"),
    ]
    assert emu.get(sid)["name"] == "slow-but-applied"  # type: ignore[index]  # latency serves normally


def test_slow_body(emu: Emulator, loopback: LoopbackEmulator, client: httpx.Client) -> None:
    expected = client.get("/v1/scenarios", params={"limit": 10}).content
    loopback.faults.queue(Fault("slow_body", delay=0.05), Fault("slow_body", delay=0.2))
    with http_client(loopback) as c:
        response = c.get("/v1/scenarios", params={"limit": 10})
        assert response.content == expected
    # The pauses between chunks are really applied: a read timeout below one expires mid-body.
    with http_client(loopback, timeout=0.05) as c, pytest.raises(httpx.ReadTimeout):
        c.get("/v1/scenarios", params={"limit": 10})
    assert [kind for _, _, kind in loopback.faults.injected] == ["slow_body", "slow_body"]


def test_queue_respects_methods(emu: Emulator, loopback: LoopbackEmulator) -> None:
    sid = first_active(emu)["id"]
    loopback.faults.queue(Fault("status", status=429, methods=frozenset({"POST"})), Fault("status", status=503))
    with http_client(loopback) as c:
        assert c.get("/v1/scenarios").status_code == 503  # the POST-only fault is skipped, not consumed
        assert c.get("/v1/scenarios").status_code == 200
        assert c.post(f"/v1/scenarios/{sid}", json={}).status_code == 429
        assert c.post(f"/v1/scenarios/{sid}", json={}).status_code == 200


def test_fault_plan_random_is_seeded() -> None:
    faults = [Fault("status", status=503), Fault("latency"), Fault("drop_connection", methods=frozenset({"GET"}))]

    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(seed=seed)
        plan.random(0.3, faults)
        out: list[str | None] = []
        for i in range(300):
            fault = plan.next_fault("GET" if i % 3 else "POST", "/v1/scenarios")
            out.append(fault.kind if fault else None)
        assert len(plan.injected) == sum(1 for k in out if k is not None)
        return out

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    hits = [k for k in first if k is not None]
    assert 50 < len(hits) < 130 and set(hits) == {"status", "latency", "drop_connection"}
    assert all(k != "drop_connection" for i, k in enumerate(first) if i % 3 == 0)  # POST never gets a GET-only fault

    plan = FaultPlan()
    plan.random(1.0, [Fault("empty_body")])
    plan.queue(Fault("html_error"))
    assert [f.kind for f in (plan.next_fault("GET"), plan.next_fault("GET")) if f] == ["html_error", "empty_body"]
    plan.clear()
    assert plan.next_fault("GET") is None and len(plan.injected) == 2
    with pytest.raises(ValueError):
        plan.random(1.5, [])


def test_random_faults_over_loopback(emu: Emulator) -> None:
    plan = FaultPlan(seed=5)
    plan.random(0.5, [Fault("status", status=503, should_retry=True)])
    with LoopbackEmulator(emu, faults=plan) as server, http_client(server) as c:
        statuses = [c.get("/v1/scenarios", params={"limit": 1}).status_code for _ in range(20)]
    assert statuses.count(503) == len(plan.injected) and 0 < statuses.count(503) < 20
    assert [r.status for r in emu.requests] == statuses


def test_loopback_lifecycle() -> None:
    server = LoopbackEmulator(Emulator(count=5))
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    with pytest.raises(RuntimeError):
        server.start()
    url = server.base_url
    host, port = url.removeprefix("http://").split(":")
    # A keep-alive connection left open: its handler thread waits on it (for up to 30 s) until stop() wakes it.
    # The 10 s socket timeout is a hang guard only; how long stop() takes is a figure for bench/emulator.py.
    idle = http.client.HTTPConnection(host, int(port), timeout=10)
    idle.request("GET", "/v1/scenarios", headers=AUTH)
    response = idle.getresponse()
    assert response.status == 200 and not response.will_close
    response.read()
    server.stop()
    server.stop()
    assert idle.sock is not None and idle.sock.recv(1) == b""  # the server closed the idle connection
    idle.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/v1/scenarios", headers=AUTH, timeout=1)


def test_serve_logs_to_stderr_and_stops_on_sigterm() -> None:
    code = "from runloop_scenarios_mcp.emulator.loopback import serve; serve(port=0, count=30, api_key='k1')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        match = re.fullmatch(r"Runloop emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        assert httpx.get(url + "/v1/scenarios", timeout=2).status_code == 401
        page = httpx.get(url + "/v1/scenarios", params={"limit": 30}, headers={"Authorization": "Bearer k1"}, timeout=2)
        assert page.status_code == 200 and page.json()["total_count"] <= 30
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert stdout == b""
