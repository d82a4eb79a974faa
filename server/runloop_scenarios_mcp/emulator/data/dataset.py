"""The whole data set: scenario ids, benchmark membership, and which scenarios get the rare traits
(archived, large, hostile, odd weights, unknown fields), all drawn from one ``random.Random(seed)``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from runloop_scenarios_mcp.emulator.data.draw import unique_ids
from runloop_scenarios_mcp.emulator.data.scenario import add_future_fields, build_scenario
from runloop_scenarios_mcp.emulator.data.vocabulary import BENCHMARK_NAMES, SCORER_TYPES

SCENARIO_COUNT_DEFAULT = 520


@dataclass(frozen=True)
class Dataset:
    """Scenarios in creation order, plus benchmark membership (not part of ``ScenarioView``)."""

    scenarios: list[dict[str, Any]]
    benchmarks: dict[str, list[str]]  # benchmark id -> member scenario ids, in creation order
    benchmark_names: dict[str, str]  # benchmark id -> human name


def generate_dataset(seed: int = 0, count: int = SCENARIO_COUNT_DEFAULT) -> list[dict[str, Any]]:
    """Scenarios in creation order, exactly as ``GET /v1/scenarios/{id}`` would return them."""
    return generate(seed, count).scenarios


def generate(seed: int = 0, count: int = SCENARIO_COUNT_DEFAULT) -> Dataset:
    """The whole data set for ``(seed, count)``: deterministic, about 1 ms per scenario."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    ids = unique_ids(rng, "scn_", count)
    bench_ids = unique_ids(rng, "bmd_", len(BENCHMARK_NAMES))  # as Runloop's benchmark ids (the SDKs' tests)
    bench_names = dict(zip(bench_ids, BENCHMARK_NAMES, strict=True))
    membership = _benchmark_membership(rng, count, len(bench_ids))

    def pick(share: float, minimum: int = 1) -> set[int]:
        k = min(count, max(minimum, round(count * share))) if count else 0
        return set(rng.sample(range(count), k))

    archived, large, future = pick(0.04), pick(0.04), pick(0.05)
    odd_weights, hostile = pick(0.02), pick(0.0, minimum=3)
    scenarios: list[dict[str, Any]] = []
    for i, sid in enumerate(ids):
        benches = [bench_names[bench_ids[b]] for b in membership[i]]
        scenario = build_scenario(
            rng,
            i,
            sid,
            benches,
            archived=i in archived,
            large=i in large,
            hostile=i in hostile,
            odd_weights=i in odd_weights,
            forced_scorer=SCORER_TYPES[i] if i < len(SCORER_TYPES) else None,
            previous=scenarios,
        )
        if i in future:
            add_future_fields(rng, scenario)
        scenarios.append(scenario)
    benchmarks = {b: [ids[i] for i in range(count) if k in membership[i]] for k, b in enumerate(bench_ids)}
    return Dataset(scenarios=scenarios, benchmarks=benchmarks, benchmark_names=bench_names)


def _benchmark_membership(rng: random.Random, count: int, benches: int) -> list[list[int]]:
    """Each benchmark gets 40-150 members (scaled to `count`); nobody is in more than two."""
    member_of: list[list[int]] = [[] for _ in range(count)]
    for b in range(benches):
        size = max(1, min(count, round(rng.randint(40, 150) * count / SCENARIO_COUNT_DEFAULT))) if count else 0
        free = [i for i in range(count) if len(member_of[i]) < 2]
        for i in sorted(rng.sample(free, min(size, len(free)))):
            member_of[i].append(b)
    return member_of
